using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ShareHub.Broker.Data;
using ShareHub.Broker.Delivery;
using ShareHub.Broker.Observability;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;
using static ShareHub.Broker.Tests.Component.AuditTestKit;

namespace ShareHub.Broker.Tests.Integration;

/// <summary>
/// The group commit on a real PostgreSQL server, where it writes without EF Core's change tracker
/// (<see cref="PostgresGroupWrite"/>): the rows it stores are the rows EF Core would have stored, its entries and EF Core's
/// share one verifiable chain, and concurrent duplicates are absorbed as on the other providers.
/// </summary>
[Collection(RealServersCollection.Name)]
public sealed class GroupCommitPostgresTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    /// <summary>PostgreSQL for the database; the in-memory bus with in-process partners for the deliveries.</summary>
    private static Dictionary<string, string?> Settings(RealServers servers, bool dispatch = true)
    {
        var settings = servers.HubSettings(dispatcherEnabled: dispatch);
        settings["ShareHub:Bus"] = "InMemory";
        return settings;
    }

    [Fact]
    public async Task SignalsDispatchesAndAcknowledgements_OnPostgres_JoinOneGaplessChainWithEfCoreWrites_ThatVerifies()
    {
        await using var servers = await RealServers.CreateAsync();
        var partners = new PartnerRecorder();
        await using var hub = new HubFactory(Settings(servers), HubFactory.WithPartners(partners, Signals.Riec, Signals.Fiod));
        var client = hub.ClientFor(Signals.Gemeente);

        // Group-committed (concurrent submissions: several per transaction), interleaved with writes that go through
        // EF Core and the chain interceptor: a refused case reference and an unauthenticated call.
        var submitting = Enumerable.Range(0, 40).Select(_ => client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod))).ToList();
        using (var refused = await client.SubmitAsync(Signals.KvkSignal(Signals.Riec) with { CaseReference = "RIEC-0000-404" }))
        {
            Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        }

        using (var anonymous = await hub.CreateClient().GetAsync("/api/v1/signals/00000000-0000-0000-0000-000000000000"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }

        var accepted = await Task.WhenAll(submitting);
        var deliveries = accepted.Select(a => a.Decisions.Single(d => d.Permitted)).ToList();
        Assert.True(await PartnerRecorder.WaitUntilAsync(
            () => hub.WithDbAsync(db => db.Acknowledgements.CountAsync()).GetAwaiter().GetResult() == deliveries.Count
                && hub.WithDbAsync(db => db.Outbox.CountAsync(o => o.DispatchedAt == null)).GetAwaiter().GetResult() == 0,
            Patience), "not every delivery was dispatched and acknowledged");

        // Each permitted delivery: its decision (the entry the answer named, the outbox row refers to), one dispatch, one
        // acknowledgement — and the riec copy it was permitted as.
        var entries = await hub.WithDbAsync(db => db.AuditEntries.AsNoTracking().OrderBy(a => a.Sequence).ToListAsync());
        var outbox = await hub.WithDbAsync(db => db.Outbox.AsNoTracking().ToDictionaryAsync(o => o.DeliveryId));
        foreach (var delivery in deliveries)
        {
            var row = outbox[delivery.DeliveryId!.Value];
            Assert.Equal(delivery.AuditEntryId, row.AuditEntryId);
            Assert.Equal((Signals.Riec, 1), (row.Recipient, row.Attempts));
            var decision = entries.Single(e => e.Id == delivery.AuditEntryId);
            Assert.Equal((AuditKinds.Decision, "permit", (Guid?)row.DeliveryId), (decision.Kind, decision.Outcome, decision.DeliveryId));
            Assert.Single(entries, e => e.Kind == AuditKinds.Dispatched && e.DeliveryId == row.DeliveryId);
            Assert.Single(entries, e => e.Kind == AuditKinds.Acknowledgement && e.Outcome == "acknowledged" && e.DeliveryId == row.DeliveryId);
        }

        Assert.Contains(entries, e => e.Kind == AuditKinds.CaseReferenceRefused);
        Assert.Equal(Enumerable.Range(1, entries.Count).Select(i => (long)i), entries.Select(e => e.Sequence));
        Assert.Equal(entries.Select(e => e.Id).Order(), entries.Select(e => e.Id)); // keys grow with the chain (audit list pages by afterId)
        var verification = await Fg(hub).VerifyAsync();
        Assert.True(verification.Valid, verification.Problem);
        Assert.True(verification.Entries >= entries.Count);

        // What the hub answers about a signal comes from the rows as stored.
        var status = await client.GetFromJsonAsync<SignalStatusResponse>($"/api/v1/signals/{accepted[0].SignalId}", Signals.Json);
        Assert.Equal("acknowledged", status!.Recipients.Single(r => r.Recipient == Signals.Riec).DeliveryState);
        Assert.Equal("refused", status.Recipients.Single(r => r.Recipient == Signals.Fiod).DeliveryState);
    }

    [Fact]
    public async Task TwoInstancesWritingInTurn_OnPostgres_EachNoticesTheHeadTheOtherMoved_AndTheChainStaysOne()
    {
        await using var servers = await RealServers.CreateAsync();
        await using var first = new HubFactory(Settings(servers, dispatch: false));
        await using var second = new HubFactory(Settings(servers, dispatch: false));
        var clients = new[] { first.ClientFor(Signals.Gemeente), second.ClientFor(Signals.Gemeente) };

        // In turn: every group is written after the other instance moved the head past what this one last wrote, so
        // each must find that out in the database (and write again after the head as it is), never link to a stale one.
        var accepted = new List<SubmitSignalResponse>();
        for (var i = 0; i < 12; i++)
        {
            accepted.Add(await clients[i % 2].SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod)));
        }

        // Then both at once: their groups queue on the head's row lock.
        accepted.AddRange(await Task.WhenAll(Enumerable.Range(0, 40).Select(i => clients[i % 2].SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec)))));

        var entries = await first.WithDbAsync(db => db.AuditEntries.AsNoTracking().OrderBy(a => a.Sequence).ToListAsync());
        Assert.Equal(Enumerable.Range(1, entries.Count).Select(i => (long)i), entries.Select(e => e.Sequence));
        Assert.Equal(entries.Select(e => e.Id).Order(), entries.Select(e => e.Id));
        Assert.Equal(entries.Count, await first.WithDbAsync(db => db.Set<Audit.AuditChainHead>().Select(h => h.Sequence).SingleAsync()));

        // Each answer names the decision entry as stored, and the outbox row refers to that same entry.
        var outbox = await first.WithDbAsync(db => db.Outbox.AsNoTracking().ToDictionaryAsync(o => o.DeliveryId));
        foreach (var decision in accepted.Select(a => a.Decisions.Single(d => d.Permitted)))
        {
            var entry = entries.Single(e => e.Id == decision.AuditEntryId);
            Assert.Equal((AuditKinds.Decision, decision.DeliveryId), (entry.Kind, entry.DeliveryId));
            Assert.Equal(entry.Id, outbox[decision.DeliveryId!.Value].AuditEntryId);
        }

        var verification = await Fg(first).VerifyAsync();
        Assert.True(verification.Valid, verification.Problem);
    }

    [Fact]
    public async Task ChainHeadRowDeletedByHand_OnPostgres_IsPutBackByTheNextGroup_WhereTheChainEnds()
    {
        await using var servers = await RealServers.CreateAsync();
        await using var hub = new HubFactory(Settings(servers, dispatch: false));
        var client = hub.ClientFor(Signals.Gemeente);
        await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec)); // the writer now knows the head
        await servers.ScalarAsync<int>("DELETE FROM audit_chain_head; SELECT 0");

        await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));

        var last = await hub.WithDbAsync(db => db.AuditEntries.AsNoTracking().OrderBy(a => a.Sequence).LastAsync());
        var head = await hub.WithDbAsync(db => db.Set<Audit.AuditChainHead>().AsNoTracking().SingleAsync());
        Assert.Equal(last.Sequence, head.Sequence);
        Assert.Equal(last.Hash, head.Hash);
        var verification = await Fg(hub).VerifyAsync();
        Assert.True(verification.Valid, verification.Problem);
    }

    [Fact]
    public async Task StoredSignal_OnPostgres_HoldsEveryValueOfTheSubmission()
    {
        await using var servers = await RealServers.CreateAsync();
        await using var hub = new HubFactory(Settings(servers, dispatch: false));
        var client = hub.ClientFor(Signals.Gemeente);
        client.DefaultRequestHeaders.Add("Idempotency-Key", "stored-1");
        var request = Signals.KvkSignal(Signals.Riec) with { Payload = Signals.Payload("""{"naam":"Holding Zuidas B.V.","adres":"Zuidplein 1"}""") };

        var accepted = await client.SubmitAcceptedAsync(request);

        var signal = await hub.WithDbAsync(db => db.Signals.AsNoTracking().SingleAsync(s => s.Id == accepted.SignalId));
        Assert.Equal((Signals.Gemeente, "kvk", "12345678", "kvk-ubo", "signaalweging"), (signal.Provider, signal.SubjectType, signal.SubjectId, signal.Category, signal.Purpose));
        Assert.Equal(("stored-1", accepted.PolicyVersion), (signal.IdempotencyKey, signal.PolicyVersion));
        Assert.False(string.IsNullOrEmpty(signal.RequestHash));
        Assert.StartsWith("psn:", signal.SubjectPseudonym, StringComparison.Ordinal);
        Assert.Equal("Zuidplein 1", System.Text.Json.JsonDocument.Parse(signal.PayloadJson).RootElement.GetProperty("adres").GetString());
        Assert.True(signal.RetainUntil > signal.SubmittedAt);
        Assert.Null(signal.PayloadPurgedAt);

        var row = await hub.WithDbAsync(db => db.Outbox.AsNoTracking().Include(o => o.AuditEntry).SingleAsync());
        Assert.Equal((accepted.Decisions[0].DeliveryId, (Guid?)signal.Id, Signals.Riec, OutboxMessageTypes.Signal), (row.DeliveryId, row.SignalId, row.Recipient, row.MessageType));
        Assert.Equal((0, (DateTimeOffset?)null, signal.SubmittedAt), (row.Attempts, row.DispatchedAt, row.CreatedAt));
        var message = System.Text.Json.JsonSerializer.Deserialize<DeliverSignal>(row.MessageJson)!;
        Assert.Equal((row.DeliveryId, signal.Id, Signals.Riec), (message.DeliveryId, message.SignalId, message.Recipient));
        Assert.Equal((signal.Id, signal.SubjectPseudonym, Signals.Riec), (row.AuditEntry!.SignalId, row.AuditEntry.SubjectPseudonym, row.AuditEntry.Recipient));
        Assert.Equal(32, row.AuditEntry.Hash.Length);
        Assert.NotNull(row.AuditEntry.ProcessingActivityId);

        // The same key again: the stored answer, nothing stored twice.
        var again = await client.SubmitAcceptedAsync(request);
        Assert.Equal(accepted.SignalId, again.SignalId);
        Assert.Equal(1, await hub.WithDbAsync(db => db.Signals.CountAsync()));
    }

    [Fact]
    public async Task GroupWrites_OnPostgres_ArePlannedOncePerConnection_NotAgainForEachGroup()
    {
        await using var servers = await RealServers.CreateAsync();
        await using var hub = new HubFactory(Settings(servers, dispatch: false));
        var write = hub.Services.GetRequiredService<PostgresGroupWrite>();
        await using var scope = hub.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<HubDbContext>();
        // One session for every group: prepared statements, and what the server's plan cache did with them, belong to it.
        await db.Database.OpenConnectionAsync();

        // Groups of one signal, as at low load: the outbox row looks up its decision entry's key, and each group marks
        // the previous group's row dispatched. PostgreSQL's plan cache plans at least the first five executions of each
        // statement anew; the group write tells it to use the one generic plan from the first.
        var at = hub.Services.GetRequiredService<TimeProvider>().GetUtcNow();
        var written = new List<OutboxMessage>();
        for (var i = 0; i < 8; i++)
        {
            var signal = new Signal
            {
                Id = Guid.CreateVersion7(),
                Provider = Signals.Gemeente,
                SubmittedBy = "dev:" + Signals.Gemeente,
                SubjectType = "kvk",
                SubjectId = "12345678",
                SubjectPseudonym = $"pseudonym-{i}",
                Category = "ondermijning",
                Purpose = "riec-casus",
                PayloadJson = "{}",
                SubmittedAt = at,
                PolicyVersion = "test",
            };
            var decision = new AuditEntry
            {
                Kind = AuditKinds.Decision,
                RecordedAt = at,
                ActorOrganisation = Signals.Gemeente,
                Actor = "dev:" + Signals.Gemeente,
                SignalId = signal.Id,
                Recipient = Signals.Riec,
                Outcome = "permit",
                ReasonCode = "SH-P0000",
                Explanation = "test",
            };
            var row = new OutboxMessage { DeliveryId = Guid.CreateVersion7(), SignalId = signal.Id, Recipient = Signals.Riec, AuditEntry = decision, MessageJson = "{}", CreatedAt = at };
            var rows = new GroupRows();
            rows.Signals.Add(signal);
            rows.AuditEntries.Add(decision);
            rows.Outbox.Add(row);
            if (written.Count > 0)
            {
                written[^1].Attempts = 1;
                rows.Dispatched.Add((written[^1], at));
            }

            await write.SaveAsync(db, rows);
            written.Add(row);
        }

        var plans = new Dictionary<string, (long Generic, long Custom)>();
        await using (var command = db.Database.GetDbConnection().CreateCommand())
        {
            command.CommandText = "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements";
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                plans[reader.GetString(0)] = (reader.GetInt64(1), reader.GetInt64(2));
            }
        }

        var outboxInsert = Assert.Single(plans, p => p.Key.StartsWith("INSERT INTO \"outbox\"", StringComparison.Ordinal));
        var marks = Assert.Single(plans, p => p.Key.StartsWith("UPDATE outbox", StringComparison.Ordinal));
        Assert.Equal((8L, 0L), outboxInsert.Value); // each execution ran the generic plan; none was planned for itself
        Assert.Equal((7L, 0L), marks.Value);

        // And the groups were written: every row has its decision entry's key, all but the last are marked dispatched.
        var stored = await db.Outbox.AsNoTracking().Where(o => o.Recipient == Signals.Riec).OrderBy(o => o.Id).ToListAsync();
        Assert.Equal(written.Select(w => (w.Id, w.AuditEntryId)), stored.Select(o => (o.Id, o.AuditEntryId)));
        Assert.All(written, w => Assert.NotEqual(0, w.AuditEntryId));
        Assert.Equal([.. Enumerable.Repeat(true, 7), false], stored.Select(o => o.DispatchedAt is not null));
    }

    [Fact]
    public async Task GroupCommitMetrics_ThatThrow_OnPostgres_DoNotWriteACommittedGroupAgain()
    {
        await using var servers = await RealServers.CreateAsync();
        await using var hub = new HubFactory(Settings(servers, dispatch: false));
        await Component.ObservabilityTests.SubmitWithThrowingGroupCommitMetricsAsync(hub);
    }

    [Fact]
    public async Task ConcurrentAcknowledgementsOfTheSameDeliveries_OnPostgres_AllSucceed_AndRecordEachOnce()
    {
        await using var servers = await RealServers.CreateAsync();
        await using var hub = new HubFactory(Settings(servers, dispatch: false));
        var deliveries = new List<Guid>();
        for (var i = 0; i < 6; i++)
        {
            deliveries.Add((await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec))).Decisions.Single().DeliveryId!.Value);
        }

        var riec = hub.ClientFor(Signals.Riec);
        var offset = new DateTimeOffset(2026, 11, 30, 14, 0, 0, TimeSpan.FromHours(1));
        // Eight requests race for the same six deliveries: groups that lose on the unique key are rolled back and their
        // units written one by one, where the duplicates are answered as already acknowledged.
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(async i =>
        {
            using var response = await riec.PostAsJsonAsync(HubApi.AcknowledgementsPath, new AcknowledgeDeliveriesRequest(
                [.. deliveries.Skip(i % 6).Concat(deliveries.Take(i % 6)).Select(d => new DeliveryAcknowledgementItem(d, offset))]));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return (await response.Content.ReadFromJsonAsync<AcknowledgeDeliveriesResponse>(Signals.Json))!;
        }));

        foreach (var delivery in deliveries)
        {
            var outcomes = answers.Select(a => a.Results.Single(r => r.DeliveryId == delivery).Outcome).ToList();
            Assert.Equal(1, outcomes.Count(o => o == AcknowledgementOutcome.Acknowledged));
            Assert.Equal(7, outcomes.Count(o => o == AcknowledgementOutcome.AlreadyAcknowledged));
        }

        var rows = await hub.WithDbAsync(db => db.Acknowledgements.AsNoTracking().ToListAsync());
        Assert.Equal(deliveries.Order(), rows.Select(r => r.DeliveryId).Order());
        Assert.All(rows, r => Assert.Equal(offset, r.AcknowledgedAt)); // the same moment, whatever offset it came with
        Assert.Equal(6, await hub.WithDbAsync(db => db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.Acknowledgement && a.Outcome == "acknowledged")));
        var verification = await Fg(hub).VerifyAsync();
        Assert.True(verification.Valid, verification.Problem);
    }

    [Fact]
    public async Task ConcurrentRetriesWithOneIdempotencyKey_OnPostgres_StoreOneSignal_AndAnswerAlike()
    {
        await using var servers = await RealServers.CreateAsync();
        await using var hub = new HubFactory(Settings(servers, dispatch: false));
        var client = hub.ClientFor(Signals.Gemeente);
        client.DefaultRequestHeaders.Add("Idempotency-Key", "retry-race");

        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod))));

        Assert.Single(answers.Select(a => a.SignalId).Distinct());
        Assert.All(answers, a => Assert.Equal(answers[0].Decisions.Select(d => (d.Recipient, d.Permitted, d.DeliveryId)), a.Decisions.Select(d => (d.Recipient, d.Permitted, d.DeliveryId))));
        Assert.Equal((1, 1, 2), await hub.WithDbAsync(async db => (await db.Signals.CountAsync(), await db.Outbox.CountAsync(), await db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.Decision))));
    }

    [Fact]
    public async Task Metrics_OnPostgres_CountWhatTheGroupCommitStored()
    {
        await using var servers = await RealServers.CreateAsync();
        await using var hub = new HubFactory(Settings(servers, dispatch: false));
        var meters = hub.Services.GetRequiredService<IMeterFactory>();
        var measured = new ConcurrentQueue<(string Name, long Value, string? Outcome)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == HubTelemetry.SourceName && ReferenceEquals(instrument.Meter.Scope, meters))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) =>
        {
            string? outcome = null;
            foreach (var tag in tags)
            {
                outcome = tag.Key == "outcome" ? tag.Value as string : outcome;
            }

            measured.Enqueue((i.Name, v, outcome));
        });
        listener.Start();

        await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod))));

        Assert.Equal(5, measured.Where(m => m.Name == "sharehub.signals.submitted").Sum(m => m.Value));
        Assert.Equal(5, measured.Count(m => m.Name == "sharehub.decisions" && m.Outcome == "permit"));
        Assert.Equal(5, measured.Count(m => m.Name == "sharehub.decisions" && m.Outcome == "deny"));
    }
}
