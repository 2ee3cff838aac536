using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ShareHub.Broker;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Configuration;
using ShareHub.Broker.Data;
using ShareHub.Contracts;

namespace ShareHub.Cli;

/// <summary>
/// <c>sharehub audit verify|search|art15|export|purge</c>. The CLI talks to the hub's database directly, with the same
/// settings as the broker (<c>ShareHub__Database</c>, <c>ShareHub__ConnectionString</c>, <c>ShareHub__PartnershipKey</c>,
/// <c>ShareHub__Audit__SigningKeyPath</c>; <c>ASPNETCORE_ENVIRONMENT=Development</c> for the development keys). Whoever
/// holds the database credentials sees the whole partnership, so the CLI reads with the partnership scope — and every
/// read is audited, with actor <c>cli:&lt;user&gt;</c>.
/// </summary>
internal static class AuditCommands
{
    public const int ExitOk = 0;
    public const int ExitVerificationFailed = 1;
    public const int ExitInvalidInput = 2;

    internal const string CliOrganisation = "sharehub-cli";
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static Command Create()
    {
        var audit = new Command("audit", "Verify, search and export the audit trail; AVG art. 15 report; retention purge (see docs/audit.md).");
        audit.Subcommands.Add(CreateVerify());
        audit.Subcommands.Add(CreateSearch());
        audit.Subcommands.Add(CreateExport());
        audit.Subcommands.Add(CreateArt15());
        audit.Subcommands.Add(CreatePurge());
        return audit;
    }

    private static Command CreateVerify()
    {
        var command = new Command("verify", "Recompute the hash chain from the database and check the signed checkpoints. Exit 0 intact, 1 broken (names the first bad entry).");
        command.SetAction((parse, cancellationToken) => WithHubAsync(parse, async (services, output) =>
        {
            using var scope = services.CreateScope();
            var db = scope.ServiceProvider.GetRequiredService<HubDbContext>();
            var result = await scope.ServiceProvider.GetRequiredService<AuditVerifier>().VerifyAsync(db, cancellationToken);
            await Trail(scope).RecordAccessAsync(CliOrganisation, Actor, AuditKinds.AuditVerified, result.Valid ? "verified" : "failed",
                result.Valid ? ErrorCodes.AuditVerified : ErrorCodes.AuditVerificationFailed,
                result.Valid ? $"Hash chain of {result.Entries} entries verified with the CLI." : $"Verification with the CLI failed: {result.Problem}", [], cancellationToken);
            var rate = result.Milliseconds == 0 ? 0 : result.Entries * 1000 / result.Milliseconds;
            if (result.Valid)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"INTACT: {result.Entries} entries, {result.CheckpointsVerified} of {result.Checkpoints} signed checkpoint(s) verified (key {result.KeyId}) in {result.Milliseconds} ms ({rate:N0} entries/s)."));
                output.WriteLine($"head {result.HeadHash}");
                return ExitOk;
            }

            output.WriteLine($"BROKEN at entry {result.FirstBadSequence?.ToString(CultureInfo.InvariantCulture) ?? "?"}: {result.Problem}");
            return ExitVerificationFailed;
        }));
        return command;
    }

    private sealed record FilterOptions(Option<string?> Subject, Option<string> SubjectType, Option<string?> Organisation, Option<string?> From, Option<string?> To,
        Option<string?> Category, Option<string?> Purpose, Option<string?> Decision, Option<string?> Kind, Option<int> Limit);

    private static FilterOptions AddFilters(Command command, int defaultLimit)
    {
        var options = new FilterOptions(
            new("--subject") { Description = "BSN, KvK number or address as given to the FG (pseudonymised here with the partnership key), or a psn: pseudonym." },
            new("--subject-type") { Description = "bsn, kvk, address or pseudonym.", DefaultValueFactory = _ => "bsn" },
            new("--organisation") { Description = "Provider, recipient or actor." },
            new("--from") { Description = "Recorded at or after (ISO 8601)." },
            new("--to") { Description = "Recorded before (ISO 8601)." },
            new("--category") { Description = "Data category." },
            new("--purpose") { Description = "Purpose." },
            new("--decision") { Description = "Outcome: permit, deny, dispatched, acknowledged, rejected, purged, …" },
            new("--kind") { Description = "Entry kind, e.g. signal.decision." },
            new("--limit") { Description = "Maximum entries.", DefaultValueFactory = _ => defaultLimit });
        foreach (var option in new Option[] { options.Subject, options.SubjectType, options.Organisation, options.From, options.To, options.Category, options.Purpose, options.Decision, options.Kind, options.Limit })
        {
            command.Options.Add(option);
        }

        return options;
    }

    private static bool TryFilter(ParseResult parse, FilterOptions o, AuditQuery query, TextWriter output, out AuditFilter filter, out string? pseudonym)
    {
        filter = new AuditFilter();
        pseudonym = null;
        var parameters = new Broker.Api.AuditSearchParameters
        {
            Subject = parse.GetValue(o.Subject), SubjectType = parse.GetValue(o.SubjectType), Organisation = parse.GetValue(o.Organisation),
            From = parse.GetValue(o.From), To = parse.GetValue(o.To), Category = parse.GetValue(o.Category), Purpose = parse.GetValue(o.Purpose),
            Decision = parse.GetValue(o.Decision), Kind = parse.GetValue(o.Kind), Limit = parse.GetValue(o.Limit),
        };
        if (!parameters.TryToFilter(out filter, out var problem))
        {
            output.WriteLine($"{ErrorCodes.AuditInvalidQuery}: {problem}");
            return false;
        }

        if (!query.TryResolveSubject(filter.SubjectType, filter.Subject, out _, out pseudonym, out _))
        {
            output.WriteLine($"{ErrorCodes.AuditInvalidSubject}: not a valid BSN (elfproef), KvK number, address or psn: pseudonym.");
            return false;
        }

        return true;
    }

    private static Command CreateSearch()
    {
        var command = new Command("search", "Search the audit trail (partnership scope). The search is itself audited.");
        var filters = AddFilters(command, 100);
        command.SetAction((parse, cancellationToken) => WithHubAsync(parse, async (services, output) =>
        {
            using var scope = services.CreateScope();
            var query = scope.ServiceProvider.GetRequiredService<AuditQuery>();
            if (!TryFilter(parse, filters, query, output, out var filter, out var pseudonym))
            {
                return ExitInvalidInput;
            }

            var entries = await query.Query(AuditScope.Partnership, filter, pseudonym).Take(Math.Max(1, filter.Limit)).ToListAsync(cancellationToken);
            await Trail(scope).RecordAccessAsync(CliOrganisation, Actor, AuditKinds.AuditAccessed, "read", ErrorCodes.AuditRead,
                $"Audit trail searched with the CLI ({Broker.Api.AuditApi.Describe(filter)}): {entries.Count} entries.", entries.Select(e => (e.SubjectType, e.SubjectPseudonym)), cancellationToken);
            foreach (var e in entries)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"#{e.Sequence,-5} {e.RecordedAt:yyyy-MM-dd HH:mm:ss} {e.Kind,-21} {e.Outcome,-12} {e.Provider ?? e.ActorOrganisation} → {e.Recipient ?? "-"}  {e.Category}/{e.Purpose}  {e.SubjectType}:{e.SubjectPseudonym}  [{e.ReasonCode}] {e.LegalGround}"));
            }

            output.WriteLine($"{entries.Count} entr{(entries.Count == 1 ? "y" : "ies")}.");
            return ExitOk;
        }));
        return command;
    }

    private static Command CreateExport()
    {
        var command = new Command("export", "Export matching entries as CSV or JSON (Logius field names). The export is itself audited.");
        var filters = AddFilters(command, 1_000_000);
        var format = new Option<string>("--format") { Description = "csv or json.", DefaultValueFactory = _ => "csv" };
        var file = new Option<FileInfo?>("--output", "-o") { Description = "File to write (default: standard output)." };
        command.Options.Add(format);
        command.Options.Add(file);
        command.SetAction((parse, cancellationToken) => WithHubAsync(parse, async (services, output) =>
        {
            var kind = parse.GetValue(format)!.ToLowerInvariant();
            if (kind is not ("csv" or "json"))
            {
                output.WriteLine($"{ErrorCodes.AuditInvalidQuery}: --format must be csv or json.");
                return ExitInvalidInput;
            }

            using var scope = services.CreateScope();
            var query = scope.ServiceProvider.GetRequiredService<AuditQuery>();
            if (!TryFilter(parse, filters, query, output, out var filter, out var pseudonym))
            {
                return ExitInvalidInput;
            }

            var entries = await query.Query(AuditScope.Partnership, filter, pseudonym).Take(Math.Max(1, filter.Limit)).ToListAsync(cancellationToken);
            var records = entries.Select(AuditQuery.ToRecord).ToList();
            var text = kind == "csv" ? AuditCsv.Write(records) : JsonSerializer.Serialize(records, AuditCsv.Json);
            await Trail(scope).RecordAccessAsync(CliOrganisation, Actor, AuditKinds.AuditAccessed, "read", ErrorCodes.AuditRead,
                $"Audit trail exported ({kind}) with the CLI ({Broker.Api.AuditApi.Describe(filter)}): {entries.Count} entries.", entries.Select(e => (e.SubjectType, e.SubjectPseudonym)), cancellationToken);
            if (parse.GetValue(file) is { } target)
            {
                await File.WriteAllTextAsync(target.FullName, text, cancellationToken);
                output.WriteLine($"{records.Count} entries written to {target.FullName}.");
            }
            else
            {
                output.Write(text);
            }

            return ExitOk;
        }));
        return command;
    }

    private static Command CreateArt15()
    {
        var subject = new Option<string>("--subject") { Description = "The data subject's BSN (or KvK number / address / psn: pseudonym).", Required = true };
        var subjectType = new Option<string>("--subject-type") { Description = "bsn, kvk, address or pseudonym.", DefaultValueFactory = _ => "bsn" };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON." };
        var command = new Command("art15", "AVG art. 15 report for one data subject: who received which categories about them, when, why, on which ground.") { subject, subjectType, json };
        command.SetAction((parse, cancellationToken) => WithHubAsync(parse, async (services, output) =>
        {
            using var scope = services.CreateScope();
            var query = scope.ServiceProvider.GetRequiredService<AuditQuery>();
            if (!query.TryResolveSubject(parse.GetValue(subjectType), parse.GetValue(subject), out var type, out var pseudonym, out _) || pseudonym is null)
            {
                output.WriteLine($"{ErrorCodes.AuditInvalidSubject}: not a valid BSN (elfproef), KvK number, address or psn: pseudonym.");
                return ExitInvalidInput;
            }

            var report = await query.Art15Async(AuditScope.Partnership, type, pseudonym, cancellationToken);
            await Trail(scope).RecordAccessAsync(CliOrganisation, Actor, AuditKinds.AuditAccessed, "read", ErrorCodes.AuditRead,
                $"AVG art. 15 report made with the CLI: {report.Disclosures.Count} disclosure(s), {report.Refusals.Count} refusal(s).", [(report.SubjectType, pseudonym)], cancellationToken);
            output.Write(parse.GetValue(json) ? JsonSerializer.Serialize(report, Json) + Environment.NewLine : Art15Text(report));
            return ExitOk;
        }));
        return command;
    }

    private static Command CreatePurge()
    {
        var command = new Command("purge", "Run the retention purge now: delete payloads whose retention ended (audited).");
        command.SetAction((parse, cancellationToken) => WithHubAsync(parse, async (services, output) =>
        {
            using var scope = services.CreateScope();
            var result = await scope.ServiceProvider.GetRequiredService<RetentionPurger>().PurgeAsync(CliOrganisation, Actor, cancellationToken);
            output.WriteLine($"{result.SignalsPurged} signal(s) and {result.OutboxCopiesPurged} recipient copies purged; {result.WaitingForDispatch} past retention still wait for dispatch.");
            return ExitOk;
        }));
        return command;
    }

    /// <summary>The art. 15 report as text (also printed at the end of <c>sharehub demo</c>).</summary>
    public static string Art15Text(Art15ReportDto report)
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"AVG art. 15 report for data subject {report.SubjectType}:{report.SubjectPseudonym} (scope: {report.Scope}, made {report.GeneratedAt:yyyy-MM-dd HH:mm:ss} UTC)");
        text.AppendLine(CultureInfo.InvariantCulture, $"Disclosed ({report.Disclosures.Count}):");
        foreach (var d in report.Disclosures)
        {
            var received = d.AcknowledgedAt is { } ack ? string.Create(CultureInfo.InvariantCulture, $"; received {ack:HH:mm:ss}") : string.Empty;
            var deleted = d.PurgedAt is { } purged ? string.Create(CultureInfo.InvariantCulture, $"; hub copies deleted {purged:yyyy-MM-dd}") : string.Empty;
            text.AppendLine(CultureInfo.InvariantCulture, $"  {d.DecidedAt:yyyy-MM-dd HH:mm:ss}  {d.Provider} → {d.Recipient}: '{d.Category}' for '{d.Purpose}' on ground: {d.LegalGround} (rule {d.RuleId}){received}{deleted}");
        }

        text.AppendLine(CultureInfo.InvariantCulture, $"Refused, nothing sent ({report.Refusals.Count}):");
        foreach (var r in report.Refusals)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  {r.DecidedAt:yyyy-MM-dd HH:mm:ss}  {r.Provider} → {r.Recipient}: '{r.Category}' for '{r.Purpose}' [{r.ReasonCode}]");
        }

        return text.ToString();
    }

    internal static string Actor => $"cli:{Environment.UserName}";

    private static AuditTrail Trail(IServiceScope scope) => scope.ServiceProvider.GetRequiredService<AuditTrail>();

    /// <summary>Builds the broker's services (not its server) from the usual configuration and runs <paramref name="action"/>.</summary>
    internal static async Task<int> WithHubAsync(ParseResult parse, Func<IServiceProvider, TextWriter, Task<int>> action)
    {
        var output = parse.InvocationConfiguration.Output;
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Error);
        builder.AddBroker();
        await using var app = builder.Build();
        try
        {
            _ = app.Services.GetRequiredService<IOptions<ShareHubOptions>>().Value;
            _ = app.Services.GetRequiredService<IOptions<AuditOptions>>().Value;
        }
        catch (OptionsValidationException ex)
        {
            output.WriteLine("The configuration is not usable:");
            foreach (var failure in ex.Failures)
            {
                output.WriteLine($"  {failure}");
            }

            return ExitInvalidInput;
        }

        return await action(app.Services, output);
    }
}
