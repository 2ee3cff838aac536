using System.Data.Common;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using ShareHub.Broker.Data;
using ShareHub.Broker.Delivery;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;

namespace ShareHub.Broker.Tests.Component;

/// <summary>
/// Acknowledgements of deliveries this instance published are recorded without reading the delivery back
/// (<see cref="PublishedDeliveries"/>), with the same audit entry, and everything else still goes through the lookup:
/// duplicates, deliveries claimed by another organisation, deliveries forgotten beyond the bound.
/// </summary>
public sealed class PublishedDeliveriesTests
{
    private static readonly Dictionary<string, string?> NoDispatch = new() { ["ShareHub:Dispatcher:Enabled"] = "false" };

    [Fact]
    public async Task DeliveredAndAcknowledgedOnTheBus_IsTakenOut_WithTheEntryTheLookupGives()
    {
        var lookups = new OutboxLookups();
        await using var hub = new ComponentHub(services: s =>
        {
            s.AddSingleton(lookups);
            s.ConfigureDbContext<HubDbContext>((sp, o) => o.AddInterceptors(sp.GetRequiredService<OutboxLookups>()));
        });
        var delivery = await SubmitAsync(hub);

        // The dispatcher publishes it, the in-process partner acknowledges it on the bus.
        Assert.True(await PartnerRecorder.WaitUntilAsync(
            () => hub.Factory.WithDbAsync(db => db.Acknowledgements.AnyAsync(a => a.DeliveryId == delivery)), TimeSpan.FromSeconds(20)));

        Assert.Equal(0, lookups.Count);
        Assert.Equal(0, hub.Factory.Services.GetRequiredService<PublishedDeliveries>().Count);
        await AssertEntryRepeatsTheDecisionAsync(hub, delivery);

        // A second acknowledgement is not taken from memory: it is looked up, and found recorded.
        var again = await AcknowledgeAsync(hub, Signals.Riec, delivery);
        Assert.Equal(AcknowledgementOutcome.AlreadyAcknowledged, again);
        Assert.Equal(1, lookups.Count);
    }

    [Fact]
    public async Task AnotherOrganisationsClaim_TakesItOut_IsRejectedWithoutNamingTheRecipient_AndTheRecipientIsLookedUp()
    {
        var lookups = new OutboxLookups();
        await using var hub = new ComponentHub(NoDispatch, services: s =>
        {
            s.AddSingleton(lookups);
            s.ConfigureDbContext<HubDbContext>((sp, o) => o.AddInterceptors(sp.GetRequiredService<OutboxLookups>()));
        });
        var delivery = await SubmitAsync(hub);
        await PublishAsync(hub, delivery); // as the dispatcher does before it publishes

        var foreign = await AcknowledgeAsync(hub, Signals.Fiod, delivery);
        var own = await AcknowledgeAsync(hub, Signals.Riec, delivery);

        Assert.Equal((AcknowledgementOutcome.NotFound, AcknowledgementOutcome.Acknowledged), (foreign, own));
        Assert.Equal(1, lookups.Count); // the foreign claim took it out of memory: the recipient's was looked up
        var rejected = await hub.Factory.WithDbAsync(db => db.AuditEntries.SingleAsync(a => a.Kind == AuditKinds.Acknowledgement && a.Outcome == "rejected"));
        Assert.Equal((Signals.Fiod, delivery), (rejected.ActorOrganisation, rejected.DeliveryId!.Value));
        Assert.DoesNotContain(Signals.Riec, rejected.Explanation, StringComparison.Ordinal);
        await AssertEntryRepeatsTheDecisionAsync(hub, delivery);
    }

    [Fact]
    public async Task PublishedAgainAfterItWasAcknowledged_ASecondAcknowledgement_IsAbsorbedByThePrimaryKey()
    {
        await using var hub = new ComponentHub(NoDispatch);
        var delivery = await SubmitAsync(hub);
        await PublishAsync(hub, delivery);
        Assert.Equal(AcknowledgementOutcome.Acknowledged, await AcknowledgeAsync(hub, Signals.Riec, delivery));

        // The sweep published it again (its mark was lost): in memory it looks unacknowledged, so the recorder inserts
        // and the acknowledgements' primary key refuses the second row.
        await PublishAsync(hub, delivery);
        var other = await SubmitAsync(hub);
        await PublishAsync(hub, other);
        var outcomes = await AcknowledgeManyAsync(hub, Signals.Riec, delivery, other);

        Assert.Equal([AcknowledgementOutcome.AlreadyAcknowledged, AcknowledgementOutcome.Acknowledged], outcomes);
        var (rows, entries) = await hub.Factory.WithDbAsync(async db => (
            await db.Acknowledgements.CountAsync(),
            await db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.Acknowledgement && a.Outcome == "acknowledged")));
        Assert.Equal((2, 2), (rows, entries));
    }

    [Fact]
    public void KeepsAtMostItsCapacity_ForgettingTheOldest_AndGivesEachDeliveryOnce()
    {
        var published = new PublishedDeliveries();
        var rows = Enumerable.Range(0, PublishedDeliveries.Capacity + 10).Select(_ => Row(Guid.NewGuid())).ToList();
        var withoutDecision = new OutboxMessage { DeliveryId = Guid.NewGuid(), Recipient = Signals.Riec, MessageJson = "{}" };

        published.Add([.. rows, withoutDecision]);

        Assert.Equal(PublishedDeliveries.Capacity, published.Count);
        Assert.All(rows.Take(10), row => Assert.False(published.TryTake(row.DeliveryId, out _)));
        Assert.False(published.TryTake(withoutDecision.DeliveryId, out _)); // nothing to repeat: left to the lookup
        Assert.True(published.TryTake(rows[^1].DeliveryId, out var last));
        Assert.Equal((rows[^1].DeliveryId, Signals.Riec, "psn:subject", "rule-1"), (last.DeliveryId, last.Recipient, last.SubjectPseudonym, last.RuleId));
        Assert.False(published.TryTake(rows[^1].DeliveryId, out _));
    }

    private static OutboxMessage Row(Guid deliveryId) => new()
    {
        DeliveryId = deliveryId,
        Recipient = Signals.Riec,
        MessageJson = "{}",
        AuditEntry = new AuditEntry
        {
            Kind = AuditKinds.Decision,
            ActorOrganisation = Signals.Gemeente,
            Actor = "test",
            Outcome = "permit",
            ReasonCode = "SH-P0000",
            Explanation = "permitted",
            SubjectPseudonym = "psn:subject",
            RuleId = "rule-1",
        },
    };

    /// <summary>The acknowledged entry repeats what the delivery's decision entry says (the lookup's columns).</summary>
    private static async Task AssertEntryRepeatsTheDecisionAsync(ComponentHub hub, Guid delivery)
    {
        var (decision, acknowledged) = await hub.Factory.WithDbAsync(async db => (
            await db.AuditEntries.SingleAsync(a => a.Kind == AuditKinds.Decision && a.DeliveryId == delivery),
            await db.AuditEntries.SingleAsync(a => a.Kind == AuditKinds.Acknowledgement && a.Outcome == "acknowledged" && a.DeliveryId == delivery)));
        Assert.Equal(
            (decision.SignalId, decision.Provider, decision.Recipient, decision.Category, decision.Purpose, decision.CaseReference, decision.SubjectType,
                decision.SubjectPseudonym, decision.RuleId, decision.LegalGround, decision.PolicyVersion, decision.TraceId),
            (acknowledged.SignalId, acknowledged.Provider, acknowledged.Recipient, acknowledged.Category, acknowledged.Purpose, acknowledged.CaseReference,
                acknowledged.SubjectType, acknowledged.SubjectPseudonym, acknowledged.RuleId, acknowledged.LegalGround, acknowledged.PolicyVersion, acknowledged.TraceId));
        Assert.NotNull(decision.SubjectPseudonym);
        Assert.NotNull(decision.LegalGround);
    }

    /// <summary>A permitted signal gemeente → riec; returns its delivery.</summary>
    private static async Task<Guid> SubmitAsync(ComponentHub hub) =>
        (await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec))).Decisions.Single().DeliveryId!.Value;

    /// <summary>Hands the committed row to <see cref="PublishedDeliveries"/> as the dispatcher does before publishing it.</summary>
    private static async Task PublishAsync(ComponentHub hub, Guid delivery)
    {
        var row = await hub.Factory.WithDbAsync(db => db.Outbox.AsNoTracking().Include(o => o.AuditEntry).SingleAsync(o => o.DeliveryId == delivery));
        hub.Factory.Services.GetRequiredService<PublishedDeliveries>().Add([row]);
    }

    private static async Task<AcknowledgementOutcome> AcknowledgeAsync(ComponentHub hub, string organisation, Guid delivery) =>
        (await AcknowledgeManyAsync(hub, organisation, delivery)).Single();

    private static async Task<List<AcknowledgementOutcome>> AcknowledgeManyAsync(ComponentHub hub, string organisation, params Guid[] deliveries)
    {
        using var response = await hub.ClientFor(organisation).PostAsJsonAsync(HubApi.AcknowledgementsPath,
            new AcknowledgeDeliveriesRequest([.. deliveries.Select(d => new DeliveryAcknowledgementItem(d, null))]));
        response.EnsureSuccessStatusCode();
        var answer = await response.Content.ReadFromJsonAsync<AcknowledgeDeliveriesResponse>(Signals.Json);
        return [.. answer!.Results.Select(r => r.Outcome)];
    }

    /// <summary>Counts the recorder's lookups: queries of the outbox joined with the acknowledgements.</summary>
    private sealed class OutboxLookups : DbCommandInterceptor
    {
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            if (command.CommandText.Contains("FROM \"outbox\"", StringComparison.Ordinal) && command.CommandText.Contains("\"acknowledgements\"", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _count);
            }

            return ValueTask.FromResult(result);
        }
    }
}
