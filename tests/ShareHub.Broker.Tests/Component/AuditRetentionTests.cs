using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;
using static ShareHub.Broker.Tests.Component.AuditTestKit;

namespace ShareHub.Broker.Tests.Component;

/// <summary>Issue #5 §5: payloads are deleted when their retention ends; the audit metadata stays and the purge is audited.</summary>
public sealed class AuditRetentionTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private static readonly DateTimeOffset Start = new(2026, 3, 2, 9, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task PurgeOnDemand_DeletesRefusedPayloadsAfterTheGracePeriod_AndPermittedOnesAfterTheirRetention_AuditMetadataStays()
    {
        var clock = new FakeTimeProvider(Start);
        await using var hub = new ClockedHub(clock, new() { ["ShareHub:Retention:Enabled"] = "false" });
        // A fresh client (and token) after each clock jump: access tokens live 5 minutes on the hub's clock.
        var fg = Fg(hub.Factory);
        var shared = await ExchangeAsync(hub.Factory, Patience);              // riec permitted (RIEC-SIG-01: P6M), fiod refused
        var refused = await hub.Factory.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.FiscaalToFiod()); // nobody permitted

        Assert.Equal(new RetentionPurgeResultDto(0, 0, 0), await PurgeAsync(fg));

        clock.Advance(TimeSpan.FromMinutes(16)); // past the 15-minute grace period for refused-only signals
        Assert.Equal(new RetentionPurgeResultDto(1, 0, 0), await PurgeAsync(Fg(hub.Factory)));
        var purgedRefused = await hub.Factory.WithDbAsync(db => db.Signals.AsNoTracking().SingleAsync(s => s.Id == refused.SignalId));
        Assert.Equal((string.Empty, string.Empty, Start.AddMinutes(16)), (purgedRefused.PayloadJson, purgedRefused.SubjectId, purgedRefused.PayloadPurgedAt!.Value));
        Assert.StartsWith("psn:", purgedRefused.SubjectPseudonym, StringComparison.Ordinal); // what the audit trail refers to stays

        clock.Advance(TimeSpan.FromDays(179)); // P6M counts 180 days from delivery (RetentionPeriod): not yet
        Assert.Equal(0, (await PurgeAsync(Fg(hub.Factory))).SignalsPurged);
        clock.Advance(TimeSpan.FromDays(1));
        Assert.Equal(new RetentionPurgeResultDto(1, 1, 0), await PurgeAsync(Fg(hub.Factory)));

        var (signal, copy, purges, decisions) = await hub.Factory.WithDbAsync(async db => (
            await db.Signals.AsNoTracking().SingleAsync(s => s.Id == shared.SignalId),
            await db.Outbox.AsNoTracking().SingleAsync(o => o.SignalId == shared.SignalId),
            await db.AuditEntries.AsNoTracking().Where(a => a.Kind == AuditKinds.RetentionPurged).OrderBy(a => a.Sequence).ToListAsync(),
            await db.AuditEntries.AsNoTracking().CountAsync(a => a.Kind == AuditKinds.Decision)));
        Assert.Equal(string.Empty, signal.PayloadJson);
        Assert.Equal(string.Empty, copy.MessageJson);
        Assert.Equal(3, decisions); // the decisions themselves are never purged
        Assert.Equal([refused.SignalId, shared.SignalId], purges.Select(p => p.SignalId!.Value));
        Assert.All(purges, p => Assert.Equal(("purged", "SH-U0201", Signals.Riec), (p.Outcome, p.ReasonCode, p.ActorOrganisation)));
        Assert.All(purges, p => Assert.StartsWith("psn:", p.SubjectPseudonym, StringComparison.Ordinal));

        var report = (await Fg(hub.Factory).GetFromJsonAsync<Art15ReportDto>("/api/v1/audit/art15?subjectType=kvk&subject=12345678", Signals.Json))!;
        Assert.Equal(Start.AddMinutes(16).AddDays(180), Assert.Single(report.Disclosures).PurgedAt);
        Assert.True((await Fg(hub.Factory).VerifyAsync()).Valid);
    }

    [Fact]
    public async Task PurgeJob_RunsOnTheInjectedClock_AndIsAuditedAsTheHub()
    {
        var clock = new FakeTimeProvider(Start);
        await using var hub = new ClockedHub(clock, new() { ["ShareHub:Retention:PurgeIntervalMinutes"] = "60" });
        var refused = await hub.Factory.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.FiscaalToFiod());

        clock.Advance(TimeSpan.FromMinutes(61));

        Assert.True(await PartnerRecorder.WaitUntilAsync(
            () => hub.Factory.WithDbAsync(db => db.AuditEntries.AnyAsync(a => a.Kind == AuditKinds.RetentionPurged && a.SignalId == refused.SignalId)), Patience));
        var entry = await hub.Factory.WithDbAsync(db => db.AuditEntries.SingleAsync(a => a.Kind == AuditKinds.RetentionPurged));
        Assert.Equal(("sharehub", "retention-job"), (entry.ActorOrganisation, entry.Actor));
        Assert.Equal(string.Empty, await hub.Factory.WithDbAsync(db => db.Signals.Select(s => s.PayloadJson).SingleAsync()));
    }

    [Fact]
    public async Task PurgeOnDemand_IsForTheFgOnly()
    {
        await using var hub = new ClockedHub(new FakeTimeProvider(Start), []);
        using var response = await hub.Factory.ClientFor(Signals.Gemeente, PartnerOfficer).PostAsync("/api/v1/retention/purge", null);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    private static async Task<RetentionPurgeResultDto> PurgeAsync(HttpClient fg)
    {
        using var response = await fg.PostAsync("/api/v1/retention/purge", null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<RetentionPurgeResultDto>(Signals.Json))!;
    }

    /// <summary>The embedded-default hub with in-process partners and the clock replaced by a <see cref="FakeTimeProvider"/>.</summary>
    private sealed class ClockedHub : IAsyncDisposable
    {
        private readonly string _folder = Path.Combine(Path.GetTempPath(), "sharehub-tests", Guid.NewGuid().ToString("N"));

        public ClockedHub(FakeTimeProvider clock, Dictionary<string, string?> settings)
        {
            Directory.CreateDirectory(_folder);
            var all = new Dictionary<string, string?>
            {
                ["ShareHub:Database"] = "Sqlite",
                ["ShareHub:ConnectionString"] = $"Data Source={Path.Combine(_folder, "hub.db")}",
                ["ShareHub:Bus"] = "InMemory",
                ["ShareHub:Audit:CheckpointsEnabled"] = "false",
            };
            foreach (var (key, value) in settings)
            {
                all[key] = value;
            }

            var partners = HubFactory.WithPartners(new PartnerRecorder(), Signals.Riec, Signals.Fiod);
            Factory = new HubFactory(all, services =>
            {
                partners(services);
                services.AddSingleton<TimeProvider>(clock);
            });
        }

        public HubFactory Factory { get; }

        public async ValueTask DisposeAsync()
        {
            await Factory.DisposeAsync();
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            try
            {
                Directory.Delete(_folder, recursive: true);
            }
            catch (IOException)
            {
                // left for the temp cleaner
            }
        }
    }
}
