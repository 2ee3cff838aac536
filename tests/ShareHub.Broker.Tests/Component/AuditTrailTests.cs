using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;
using static ShareHub.Broker.Tests.Component.AuditTestKit;

namespace ShareHub.Broker.Tests.Component;

/// <summary>Issue #5: every event is one chained, verifiable entry with the Logius fields; tampering is found at the exact entry.</summary>
public sealed class AuditTrailTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task EveryKindOfEvent_IsOneEntryInOneContiguousChain_ThatVerifies()
    {
        await using var hub = new ComponentHub();
        await ExchangeAsync(hub.Factory, Patience);

        // Authentication failures: no credentials (401), a refused credential (401), a missing role (403).
        using (var anonymous = hub.Factory.CreateClient())
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v1/audit")).StatusCode);
        }

        using (var forged = hub.Factory.CreateClient())
        {
            forged.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "not-a-token");
            Assert.Equal(HttpStatusCode.Unauthorized, (await forged.GetAsync("/api/v1/audit")).StatusCode);
        }

        Assert.Equal(HttpStatusCode.Forbidden, (await hub.ClientFor(Signals.Gemeente).GetAsync("/api/v1/audit")).StatusCode);

        var fg = Fg(hub.Factory);
        await fg.SearchAsync();
        var verification = await fg.VerifyAsync();
        Assert.True(verification.Valid, verification.Problem);

        var entries = await hub.Factory.WithDbAsync(db => db.AuditEntries.AsNoTracking().OrderBy(a => a.Sequence).ToListAsync());
        Assert.Equal(Enumerable.Range(1, entries.Count).Select(i => (long)i), entries.Select(e => e.Sequence));
        var kinds = entries.Select(e => e.Kind).ToHashSet();
        Assert.Superset(new HashSet<string>
        {
            AuditKinds.PolicyActivated, AuditKinds.Decision, AuditKinds.Dispatched, AuditKinds.Acknowledgement,
            AuditKinds.AuthenticationFailed, AuditKinds.AuditAccessed, AuditKinds.AuditVerified,
        }, kinds);
        Assert.Single(entries, e => e.Kind == AuditKinds.AuthenticationFailed && e.ReasonCode == "SH-A0401");
        Assert.Single(entries, e => e.Kind == AuditKinds.AuthenticationFailed && e.ReasonCode == "SH-I0402");
        Assert.Single(entries, e => e.Kind == AuditKinds.AuthenticationFailed && e.ReasonCode == "SH-A0403" && e.ActorOrganisation == Signals.Gemeente);
        Assert.Contains(entries, e => e.Kind == AuditKinds.AuthenticationFailed && e.Explanation.Contains("credentials were refused", StringComparison.Ordinal));

        // Logius "Logboek dataverwerkingen": trace and span ids, a versioned processing activity, the subject only as pseudonym.
        Assert.All(entries, e =>
        {
            Assert.Matches("^[0-9a-f]{32}$", e.TraceId!);
            Assert.Matches("^[0-9a-f]{16}$", e.SpanId!);
            Assert.Matches("^urn:sharehub:verwerkingsregister:[a-z-]+@[0-9a-z]+$", e.ProcessingActivityId!);
            Assert.Equal(32, e.Hash.Length);
            Assert.Equal(0, e.RecordedAt.Ticks % 10); // microseconds, as PostgreSQL stores them
        });
        var exchange = entries.Where(e => e.Kind is AuditKinds.Decision or AuditKinds.Dispatched or AuditKinds.Acknowledgement).ToList();
        Assert.All(exchange, e => Assert.StartsWith("psn:", e.SubjectPseudonym, StringComparison.Ordinal));
        Assert.All(exchange, e => Assert.Equal("urn:sharehub:verwerkingsregister:signaalweging@" + e.PolicyVersion![..12], e.ProcessingActivityId));
        var dispatched = Assert.Single(entries, e => e.Kind == AuditKinds.Dispatched);
        var decision = Assert.Single(entries, e => e.Kind == AuditKinds.Decision && e.DeliveryId == dispatched.DeliveryId);
        Assert.Equal(decision.TraceId, dispatched.TraceId);
        Assert.Equal(decision.SpanId, dispatched.ParentSpanId);
        Assert.Equal(decision.LegalGround, dispatched.LegalGround);

        // The acknowledgement entry stands alone too: it repeats what the decision entry says about the exchange.
        var acknowledged = Assert.Single(entries, e => e.Kind == AuditKinds.Acknowledgement && e.DeliveryId == dispatched.DeliveryId);
        Assert.Equal(
            (decision.SignalId, decision.Provider, decision.Recipient, decision.Category, decision.Purpose, decision.CaseReference, decision.SubjectType),
            (acknowledged.SignalId, acknowledged.Provider, acknowledged.Recipient, acknowledged.Category, acknowledged.Purpose, acknowledged.CaseReference, acknowledged.SubjectType));
        Assert.Equal(
            (decision.SubjectPseudonym, decision.RuleId, decision.LegalGround, decision.PolicyVersion, decision.TraceId),
            (acknowledged.SubjectPseudonym, acknowledged.RuleId, acknowledged.LegalGround, acknowledged.PolicyVersion, acknowledged.TraceId));
        Assert.NotNull(decision.Purpose);
        Assert.NotNull(decision.LegalGround);
    }

    [Fact]
    public async Task CallersTraceparent_IsKeptAsForeignOperation_AndItsTraceIdIsUsed()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        const string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        var client = hub.ClientFor(Signals.Gemeente);
        client.DefaultRequestHeaders.Add("traceparent", traceparent);

        await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));

        var decision = await hub.Factory.WithDbAsync(db => db.AuditEntries.SingleAsync(a => a.Kind == AuditKinds.Decision));
        Assert.Equal(traceparent, decision.ForeignOperation);
        Assert.Equal("4bf92f3577b34da6a3ce929d0e0e4736", decision.TraceId);
    }

    public static TheoryData<string, string, long> Tampering => new()
    {
        // what, SQL (entry 3 is the first decision: policy.activated is 1… see the arrange step), first bad sequence
        { "a changed outcome", "UPDATE audit_entries SET \"Outcome\" = 'tampered' WHERE \"Sequence\" = 3", 3 },
        { "a changed legal ground", "UPDATE audit_entries SET \"LegalGround\" = 'Wet X' WHERE \"Sequence\" = 5", 5 },
        { "a changed time", "UPDATE audit_entries SET \"RecordedAt\" = \"RecordedAt\" + 10 WHERE \"Sequence\" = 4", 4 },
        { "a deleted entry", "DELETE FROM audit_entries WHERE \"Sequence\" = 4", 4 },
        { "two swapped entries", "UPDATE audit_entries SET \"Sequence\" = CASE \"Sequence\" WHEN 3 THEN 4 ELSE 3 END WHERE \"Sequence\" IN (3, 4)", 3 },
        { "a deleted tail", "DELETE FROM audit_entries WHERE \"Sequence\" >= 6", 6 },
        { "a recomputed hash", "UPDATE audit_entries SET \"Hash\" = zeroblob(32) WHERE \"Sequence\" = 2", 2 },
    };

    [Theory]
    [MemberData(nameof(Tampering))]
    public async Task TamperingWithTheSqliteFile_FailsVerify_NamingTheFirstBadEntry(string what, string sql, long firstBad)
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Audit:CheckpointsEnabled"] = "false" });
        await ExchangeAsync(hub.Factory, Patience);
        var fg = Fg(hub.Factory);
        var before = await fg.VerifyAsync();
        Assert.True(before.Valid, before.Problem);
        // Swapping sequences needs room: the unique index on Sequence is dropped for the swap, as an attacker would.
        await SqliteAsync(hub.DatabaseFile, "DROP INDEX IF EXISTS \"IX_audit_entries_Sequence\"");

        Assert.True(await SqliteAsync(hub.DatabaseFile, sql) > 0, what);

        var result = await fg.VerifyAsync();
        Assert.False(result.Valid, what);
        Assert.Equal(firstBad, result.FirstBadSequence);
        Assert.False(string.IsNullOrEmpty(result.Problem));
    }

    [Fact]
    public async Task ATrailOfSeveralReadBatches_InSqlite_Verifies_AndTamperingInALaterBatchIsNamed()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Audit:CheckpointsEnabled"] = "false", ["ShareHub:Dispatcher:Enabled"] = "false" });
        var fg = Fg(hub.Factory);
        await AppendRefusalsAsync(hub.Factory, (2 * AuditLinkBatch.Capacity) + 10);
        var before = await fg.VerifyAsync();
        Assert.True(before.Valid, before.Problem);
        Assert.True(before.Entries > 2 * AuditLinkBatch.Capacity);

        var late = (2 * AuditLinkBatch.Capacity) + 5;
        Assert.Equal(1, await SqliteAsync(hub.DatabaseFile, $"UPDATE audit_entries SET \"CaseReference\" = 'zaak-x' WHERE \"Sequence\" = {late}"));
        Assert.Equal(late, (await fg.VerifyAsync()).FirstBadSequence);
        Assert.Equal(1, await SqliteAsync(hub.DatabaseFile, $"DELETE FROM audit_entries WHERE \"Sequence\" = {AuditLinkBatch.Capacity + 1}"));
        var after = await fg.VerifyAsync();
        Assert.False(after.Valid);
        Assert.Equal(AuditLinkBatch.Capacity + 1, after.FirstBadSequence);
    }

    [Fact]
    public async Task SignedCheckpoint_CatchesARewrittenChain_AndADeletedTail_AndAForgedSignature()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Audit:CheckpointsEnabled"] = "false" });
        await ExchangeAsync(hub.Factory, Patience);
        var fg = Fg(hub.Factory);
        using var signed = await fg.PostAsync("/api/v1/audit/checkpoints", null);
        var checkpoint = (await signed.Content.ReadFromJsonAsync<AuditCheckpointDto>(Signals.Json))!;
        var verified = await fg.VerifyAsync();
        Assert.True(verified.Valid, verified.Problem);
        Assert.Equal(1, verified.CheckpointsVerified);

        // Delete the tail and move the head row back: only the signed checkpoint still knows how long the chain was.
        var keep = checkpoint.Sequence - 2;
        await SqliteAsync(hub.DatabaseFile, $"DELETE FROM audit_entries WHERE \"Sequence\" > {keep}");
        await SqliteAsync(hub.DatabaseFile, $"UPDATE audit_chain_head SET \"Sequence\" = {keep}, \"Hash\" = (SELECT \"Hash\" FROM audit_entries WHERE \"Sequence\" = {keep})");
        var truncated = await fg.VerifyAsync();
        Assert.False(truncated.Valid);
        Assert.Equal(keep + 1, truncated.FirstBadSequence);

        await SqliteAsync(hub.DatabaseFile, "UPDATE audit_checkpoints SET \"Sequence\" = 1");
        var forged = await fg.VerifyAsync();
        Assert.False(forged.Valid);
        Assert.Contains("invalid signature", forged.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFailedAuditedSave_NeverMovesTheHead_WhenTheSameContextLaterSavesSomethingElse()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));
        var headBefore = await hub.Factory.WithDbAsync(db => db.Set<AuditChainHead>().AsNoTracking().SingleAsync());

        await hub.Factory.WithDbAsync(async db =>
        {
            // An audited save that fails in the database (a signal id that exists) after the entry joined the chain.
            var existing = await db.Signals.AsNoTracking().FirstAsync();
            db.AuditEntries.Add(Delivery.AcknowledgementRecorder.Rejected(Guid.NewGuid(), Signals.Riec, "test", null, TimeProvider.System.GetUtcNow()));
            db.Signals.Add(existing);
            await Assert.ThrowsAsync<DbUpdateException>(() => db.SaveChangesAsync());
            foreach (var added in db.ChangeTracker.Entries().Where(e => e.State == EntityState.Added).ToList())
            {
                added.State = EntityState.Detached;
            }

            // The same context then saves something without audit entries.
            (await db.Outbox.FirstAsync()).LastError = "noted";
            return await db.SaveChangesAsync();
        });

        var headAfter = await hub.Factory.WithDbAsync(db => db.Set<AuditChainHead>().AsNoTracking().SingleAsync());
        Assert.Equal(headBefore.Sequence, headAfter.Sequence);
        Assert.Equal(headBefore.Hash, headAfter.Hash);
        var verification = await Fg(hub.Factory).VerifyAsync();
        Assert.True(verification.Valid, verification.Problem);
    }

    [Fact]
    public async Task ChangingAnAuditEntryThroughTheHub_IsRefused_TheTrailIsAppendOnly()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => hub.Factory.WithDbAsync(async db =>
        {
            var entry = await db.AuditEntries.FirstAsync(a => a.Kind == AuditKinds.Decision);
            entry.Outcome = "deny";
            return await db.SaveChangesAsync();
        }));
        Assert.Contains("append-only", error.Message, StringComparison.Ordinal);
        Assert.True((await Fg(hub.Factory).VerifyAsync()).Valid);
    }

    [Fact]
    public async Task Production_WithoutASigningKey_RefusesToStart_SayingWhatToSet()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Authentication:Mode"] = "None", ["ShareHub:Audit:SigningKeyPath"] = "" }, environment: "Production");

        var error = Assert.ThrowsAny<Exception>(() => hub.Factory.Server);

        Assert.Contains("ShareHub:Audit:SigningKeyPath", error.ToString(), StringComparison.Ordinal);
    }
}
