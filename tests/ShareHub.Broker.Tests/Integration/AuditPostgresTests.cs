using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Component;
using ShareHub.Broker.Tests.Infrastructure;
using static ShareHub.Broker.Tests.Component.AuditTestKit;

namespace ShareHub.Broker.Tests.Integration;

/// <summary>Issue #5: the hash chain on a real PostgreSQL server — concurrent writers, and tampering with SQL.</summary>
[Collection(RealServersCollection.Name)]
public sealed class AuditPostgresTests
{
    private static Dictionary<string, string?> Settings(RealServers servers)
    {
        var settings = servers.HubSettings(dispatcherEnabled: false);
        settings["ShareHub:Bus"] = "InMemory"; // the chain is about the database; no broker needed here
        settings["ShareHub:Audit:CheckpointsEnabled"] = "false";
        return settings;
    }

    [Fact]
    public async Task ConcurrentSubmissions_OnPostgres_GetOneGaplessChainInCommitOrder_ThatVerifies()
    {
        await using var servers = await RealServers.CreateAsync();
        await using var hub = new HubFactory(Settings(servers));
        var client = hub.ClientFor(Signals.Gemeente);

        await Task.WhenAll(Enumerable.Range(0, 24).Select(_ => client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod, Signals.Politie))));

        var fg = Fg(hub); // registering the FG's client is itself an audit entry: before counting
        var sequences = await hub.WithDbAsync(db => db.AuditEntries.OrderBy(a => a.Sequence).Select(a => a.Sequence).ToListAsync());
        Assert.Equal(24 * 3, await hub.WithDbAsync(db => db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.Decision)));
        Assert.Equal(Enumerable.Range(1, sequences.Count).Select(i => (long)i), sequences);
        var result = await fg.VerifyAsync();
        Assert.True(result.Valid, result.Problem);
        Assert.Equal(sequences.Count, result.Entries);
    }

    public static TheoryData<string, string, long> Tampering => new()
    {
        { "a changed explanation", "UPDATE audit_entries SET \"Explanation\" = 'niets aan de hand' WHERE \"Sequence\" = 3", 3 },
        { "a changed subject", "UPDATE audit_entries SET \"SubjectPseudonym\" = 'psn:00000000000000000000000000000000' WHERE \"Sequence\" = 2", 2 },
        { "a time moved by one microsecond", "UPDATE audit_entries SET \"RecordedAt\" = \"RecordedAt\" + interval '1 microsecond' WHERE \"Sequence\" = 4", 4 },
        // A permitted decision cannot even be deleted: its outbox row references it (ON DELETE RESTRICT). A refusal can.
        { "a deleted entry", "DELETE FROM audit_entries WHERE \"Sequence\" = 4", 4 },
        { "two swapped entries", "DROP INDEX \"IX_audit_entries_Sequence\"; UPDATE audit_entries SET \"Sequence\" = CASE \"Sequence\" WHEN 4 THEN 5 ELSE 4 END WHERE \"Sequence\" IN (4, 5)", 4 },
        { "a deleted tail", "DELETE FROM audit_entries WHERE \"Sequence\" >= 6", 6 },
    };

    [Theory]
    [MemberData(nameof(Tampering))]
    public async Task TamperingWithPostgresBySql_FailsVerify_NamingTheFirstBadEntry(string what, string sql, long firstBad)
    {
        await using var servers = await RealServers.CreateAsync();
        await using var hub = new HubFactory(Settings(servers));
        var client = hub.ClientFor(Signals.Gemeente);
        // 1 = policy.activated, 2 = the test client's registration (identity.client-registered)
        await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod)); // entries 3 (permit) and 4 (deny)
        await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod)); // entries 5 (permit) and 6 (deny)
        var fg = Fg(hub);
        var before = await fg.VerifyAsync(); // 7 = the FG client's registration, 8 = this verification
        Assert.True(before.Valid, before.Problem);

        Assert.True(await servers.ExecuteAsync(sql) > 0, what);

        var after = await fg.VerifyAsync();
        Assert.False(after.Valid, what);
        Assert.Equal(firstBad, after.FirstBadSequence);
    }

    [Fact]
    public async Task ATrailOfSeveralReadBatches_OnPostgres_Verifies_AndTamperingInALaterBatchIsNamed()
    {
        await using var servers = await RealServers.CreateAsync();
        await using var hub = new HubFactory(Settings(servers));
        var fg = Fg(hub);
        await AppendRefusalsAsync(hub, (2 * AuditLinkBatch.Capacity) + 10); // read as three COPY batches
        var before = await fg.VerifyAsync();
        Assert.True(before.Valid, before.Problem);
        Assert.True(before.Entries > 2 * AuditLinkBatch.Capacity);

        // A changed text in the third batch, then a deleted entry at the start of the second: each is named.
        var late = (2 * AuditLinkBatch.Capacity) + 5;
        Assert.Equal(1, await servers.ExecuteAsync($"UPDATE audit_entries SET \"Explanation\" = 'niets aan de hand' WHERE \"Sequence\" = {late}"));
        Assert.Equal(late, (await fg.VerifyAsync()).FirstBadSequence);
        Assert.Equal(1, await servers.ExecuteAsync($"DELETE FROM audit_entries WHERE \"Sequence\" = {AuditLinkBatch.Capacity + 1}"));
        var after = await fg.VerifyAsync();
        Assert.False(after.Valid);
        Assert.Equal(AuditLinkBatch.Capacity + 1, after.FirstBadSequence);
    }
}
