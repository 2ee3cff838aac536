using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Infrastructure;

namespace ShareHub.Broker.Tests.Integration;

/// <summary>
/// The indexes the hub keeps are the ones its lookups use (every index costs each appended row a write in the group
/// commit, docs/architecture.md "Indexes"): on a real PostgreSQL server with a trail of some size, each lookup as EF
/// Core sends it — prepared, with a generic plan, as Npgsql's automatic preparation runs it — reads its index.
/// </summary>
[Collection(RealServersCollection.Name)]
public sealed partial class QueryIndexPostgresTests
{
    private const int Rows = 20_000;

    [Fact]
    public async Task TheHubsLookups_OnPostgres_ReadTheirIndexes_WithAGenericPlan()
    {
        await using var servers = await RealServers.CreateAsync();
        var settings = servers.HubSettings(dispatcherEnabled: false);
        settings["ShareHub:Bus"] = "InMemory";
        await using var hub = new HubFactory(settings);
        _ = hub.Services; // starts the hub: the schema is migrated

        // A trail with cases on one entry in five (one case per ten of those), 2,000 subjects, and one outbox row per
        // entry, a case event's on one in twenty. Written by SQL: the chain is not what this test is about.
        await servers.ScalarAsync<int>($$"""
            INSERT INTO audit_entries ("Kind", "RecordedAt", "ActorOrganisation", "Actor", "SignalId", "DeliveryId", "Provider", "Recipient",
                "CaseReference", "SubjectType", "SubjectPseudonym", "Outcome", "ReasonCode", "Explanation", "Sequence", "Hash")
            SELECT 'decision', now() - g * interval '1 second', 'org-' || g % 19, 'actor', gen_random_uuid(), gen_random_uuid(), 'org-' || g % 19, 'org-' || (g * 7) % 19,
                CASE WHEN g % 5 = 0 THEN 'RIEC-2026-' || g / 50 END, 'bsn', 'psn:' || g % 2000, 'permit', 'SH-P0000', '', 1000000 + g, '\x00'
            FROM generate_series(1, {{Rows}}) g;
            INSERT INTO outbox ("DeliveryId", "SignalId", "CaseId", "MessageType", "Recipient", "AuditEntryId", "MessageJson", "CreatedAt", "Attempts")
            SELECT a."DeliveryId", a."SignalId", CASE WHEN a."Sequence" % 20 = 0 THEN gen_random_uuid() END, 'signal', a."Recipient", a."Id", '{}', now(), 0
            FROM audit_entries a WHERE a."Sequence" > 1000000;
            ANALYZE audit_entries; ANALYZE outbox;
            SELECT 0
            """);

        using var scope = hub.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<HubDbContext>();
        var audit = scope.ServiceProvider.GetRequiredService<AuditQuery>();
        var signal = Guid.NewGuid();
        var lookups = new (string Index, IQueryable Query)[]
        {
            // A case's history (CaseHistory), for the partnership FG and for a partner's.
            ("IX_audit_entries_CaseReference", audit.Query(AuditScope.Partnership, new AuditFilter(CaseReference: "RIEC-2026-7"), null)),
            ("IX_audit_entries_CaseReference", audit.Query(new AuditScope("org-3"), new AuditFilter(CaseReference: "RIEC-2026-7"), null)),
            // A subject's entries (AVG art. 15) for a partner's FG.
            ("IX_audit_entries_SubjectPseudonym", audit.Query(new AuditScope("org-3"), new AuditFilter(), "psn:7")),
            // A signal's decisions (status, idempotent replay) and deliveries.
            ("IX_audit_entries_SignalId", db.AuditEntries.Where(a => a.SignalId == signal && a.Kind == AuditKinds.Decision).OrderBy(a => a.Id)),
            ("IX_outbox_SignalId", db.Outbox.Where(o => o.SignalId == signal)),
            // A closed case's deliveries (RetentionPurger): only case events are in this index.
            ("IX_outbox_CaseId", db.Outbox.Where(o => o.CaseId == signal)),
        };

        foreach (var (index, query) in lookups)
        {
            var plan = await GenericPlanAsync(servers.PostgresConnectionString, query.ToQueryString());
            Assert.True(plan.Contains($"\"{index}\"", StringComparison.Ordinal), $"expected {index} in the plan of\n{query.ToQueryString()}\n\n{plan}");
        }
    }

    /// <summary>
    /// The generic plan of <paramref name="sql"/> as EF Core's <c>ToQueryString</c> gives it (<c>-- @name='value'</c>
    /// lines, then the statement): prepared with <c>$n</c> parameters, explained with <c>plan_cache_mode =
    /// force_generic_plan</c> so the plan cannot depend on the values.
    /// </summary>
    private static async Task<string> GenericPlanAsync(string connectionString, string sql)
    {
        var values = new List<string>();
        var names = new List<string>();
        var statement = new List<string>();
        foreach (var line in sql.Split('\n'))
        {
            if (Parameter().Match(line) is { Success: true } parameter)
            {
                names.Add(parameter.Groups["name"].Value);
                values.Add(parameter.Groups["value"].Value);
            }
            else
            {
                statement.Add(line);
            }
        }

        var text = string.Join('\n', statement);
        // Longest names first: @p1 must not eat the start of @p10.
        foreach (var (name, i) in names.Select((n, i) => (n, i)).OrderByDescending(p => p.n.Length))
        {
            text = text.Replace(name, $"${i + 1}", StringComparison.Ordinal);
        }

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using (var prepare = new NpgsqlCommand($"SET plan_cache_mode = force_generic_plan; PREPARE lookup AS {text}", connection))
        {
            await prepare.ExecuteNonQueryAsync();
        }

        var arguments = string.Join(", ", values.Select(v => $"'{v.Replace("'", "''", StringComparison.Ordinal)}'"));
        await using var explain = new NpgsqlCommand($"EXPLAIN EXECUTE lookup{(values.Count > 0 ? $"({arguments})" : string.Empty)}", connection);
        await using var reader = await explain.ExecuteReaderAsync();
        var plan = new List<string>();
        while (await reader.ReadAsync())
        {
            plan.Add(reader.GetString(0));
        }

        return string.Join('\n', plan);
    }

    [GeneratedRegex("^-- (?<name>@\\w+)='(?<value>.*)'( \\(.*\\))?$")]
    private static partial Regex Parameter();
}
