using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;

namespace ShareHub.Broker.Tests.Component;

/// <summary>The exchange path on the embedded default: HTTP → policy → one transaction → outbox → partner queue.</summary>
public sealed class SubmitSignalTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Submit_PermittedAndDeniedRecipients_DeliversOnlyToThePermittedOne()
    {
        await using var hub = new ComponentHub();
        var client = hub.ClientFor(Signals.Gemeente);

        var response = await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod));

        var riec = Assert.Single(response.Decisions, d => d.Recipient == Signals.Riec);
        var fiod = Assert.Single(response.Decisions, d => d.Recipient == Signals.Fiod);
        Assert.True(riec.Permitted);
        Assert.NotNull(riec.DeliveryId);
        Assert.NotNull(riec.LegalGround);
        Assert.False(fiod.Permitted);
        Assert.Null(fiod.DeliveryId);
        Assert.StartsWith("SH-P", fiod.ReasonCode, StringComparison.Ordinal);
        Assert.Contains("fiod", fiod.Explanation, StringComparison.Ordinal);

        Assert.True(await PartnerRecorder.WaitUntilAsync(() => !hub.Partners.Handled.IsEmpty, Patience));
        await Task.Delay(300); // give a wrongly routed message time to show up
        var (organisation, delivery) = Assert.Single(hub.Partners.Handled);
        Assert.Equal(Signals.Riec, organisation);
        Assert.Equal(riec.DeliveryId, delivery.DeliveryId);
        Assert.Equal(response.SignalId, delivery.SignalId);
        Assert.Equal(Signals.Gemeente, delivery.Provider);
        Assert.Equal(riec.AuditEntryId, delivery.AuditEntryId);
    }

    [Fact]
    public async Task Submit_StoresSignalAuditPerDecisionAndOutboxPerPermit_InOneGo()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        var response = await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod));

        var (signals, decisions, outbox) = await hub.Factory.WithDbAsync(async db => (
            await db.Signals.CountAsync(),
            await db.AuditEntries.Where(a => a.Kind == AuditKinds.Decision).OrderBy(a => a.Id).ToListAsync(),
            await db.Outbox.ToListAsync()));

        Assert.Equal(1, signals);
        Assert.Equal(2, decisions.Count);
        Assert.Equal(["permit", "deny"], decisions.Select(d => d.Outcome));
        Assert.All(decisions, d => Assert.Equal(response.PolicyVersion, d.PolicyVersion));
        var row = Assert.Single(outbox);
        Assert.Equal(Signals.Riec, row.Recipient);
        Assert.Equal(decisions[0].Id, row.AuditEntryId);
        Assert.Null(row.DispatchedAt);
    }

    [Fact]
    public async Task Submit_ProviderIsTheCaller_NotAnythingInTheBody()
    {
        await using var hub = new ComponentHub();
        // A body that tries to claim another provider: the extra member is ignored, the caller decides.
        var json = JsonSerializer.Serialize(Signals.KvkSignal(), Signals.Json).Replace("{\"subject\"", "{\"provider\":\"belastingdienst\",\"subject\"", StringComparison.Ordinal);
        using var content = new StringContent(json, Encoding.UTF8, "application/json");

        using var response = await hub.ClientFor(Signals.Gemeente).PostAsync("/api/v1/signals", content);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var provider = await hub.Factory.WithDbAsync(db => db.Signals.Select(s => s.Provider).SingleAsync());
        Assert.Equal(Signals.Gemeente, provider);
    }

    [Fact]
    public async Task Submit_WithObligations_RecipientsCopyHasNoBsnAndNoStrippedFields_NeitherOnTheQueueNorInTheOutbox()
    {
        await using var hub = new ComponentHub();
        // RIEC-SIG-01 (gemeente → riec, signaalweging): pseudonymise BSN, strip melder.naam and melder.telefoon.
        var request = new SubmitSignalRequest(new SubjectDto("bsn", Signals.ValidBsn), "identiteit", "signaalweging", null, [Signals.Riec],
            Signals.Payload("""{ "naam": "J. Jansen", "bsn": "111222333", "melder": { "naam": "A. de Vries", "telefoon": "020-1234567", "afdeling": "Toezicht" } }"""));

        var response = await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(request);

        Assert.True(await PartnerRecorder.WaitUntilAsync(() => !hub.Partners.Handled.IsEmpty, Patience));
        var (_, delivery) = Assert.Single(hub.Partners.Handled);
        var outboxCopy = await hub.Factory.WithDbAsync(db => db.Outbox.Select(o => o.MessageJson).SingleAsync());
        foreach (var copy in new[] { JsonSerializer.Serialize(delivery), outboxCopy })
        {
            Assert.DoesNotContain(Signals.ValidBsn, copy, StringComparison.Ordinal);
            Assert.DoesNotContain("A. de Vries", copy, StringComparison.Ordinal);
            Assert.DoesNotContain("020-1234567", copy, StringComparison.Ordinal);
            Assert.Contains("Toezicht", copy, StringComparison.Ordinal); // only the named fields are stripped
        }

        // What reached the queue is exactly the stored copy (the dispatcher sends the message the JSON was made from).
        Assert.Equal(JsonSerializer.Deserialize<DeliverSignal>(outboxCopy)! with { AuditEntryId = delivery.AuditEntryId }, delivery);
        Assert.Equal(SubjectTypes.Pseudonym, delivery.SubjectType);
        Assert.StartsWith("psn:", delivery.SubjectId, StringComparison.Ordinal);
        var obligations = await hub.Factory.WithDbAsync(db => db.AuditEntries
            .Where(a => a.SignalId == response.SignalId && a.Kind == AuditKinds.Decision).Select(a => a.Obligations).SingleAsync());
        Assert.Contains("melder.naam", obligations, StringComparison.Ordinal);

        // The audit trail never holds the raw identifier.
        var auditText = await hub.Factory.WithDbAsync(async db => JsonSerializer.Serialize(await db.AuditEntries.ToListAsync()));
        Assert.DoesNotContain(Signals.ValidBsn, auditText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Acknowledgement_IsRecordedOnce_AndAudited()
    {
        await using var hub = new ComponentHub();
        var response = await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));
        var deliveryId = response.Decisions.Single().DeliveryId!.Value;

        Assert.True(await PartnerRecorder.WaitUntilAsync(
            () => hub.Factory.WithDbAsync(db => db.Acknowledgements.AnyAsync(a => a.DeliveryId == deliveryId)), Patience));

        // The partner (or the network) sends the same acknowledgement again: it is absorbed.
        var bus = (MassTransit.IBus)hub.Factory.Services.GetService(typeof(MassTransit.IBus))!;
        var endpoint = await bus.GetSendEndpoint(new Uri($"queue:{QueueNames.Acknowledgements}"));
        await endpoint.Send(new DeliveryAcknowledged(deliveryId, Signals.Riec, DateTimeOffset.UnixEpoch));
        await endpoint.Send(new DeliveryAcknowledged(deliveryId, Signals.Fiod, DateTimeOffset.UnixEpoch)); // not its recipient

        Assert.True(await PartnerRecorder.WaitUntilAsync(
            () => hub.Factory.WithDbAsync(db => db.AuditEntries.AnyAsync(a => a.Outcome == "rejected")), Patience));
        await Task.Delay(300);
        var (acks, ackAudits) = await hub.Factory.WithDbAsync(async db => (
            await db.Acknowledgements.CountAsync(),
            await db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.Acknowledgement && a.Outcome == "acknowledged")));
        Assert.Equal(1, acks);
        Assert.Equal(1, ackAudits);
    }

    [Fact]
    public async Task GetSignal_ShowsDeliveryProgressToItsProvider_AndNothingToOthers()
    {
        await using var hub = new ComponentHub();
        var response = await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod));

        SignalStatusResponse? status = null;
        Assert.True(await PartnerRecorder.WaitUntilAsync(async () =>
        {
            status = await hub.ClientFor(Signals.Gemeente).GetFromJsonAsync<SignalStatusResponse>($"/api/v1/signals/{response.SignalId}", Signals.Json);
            return status!.Recipients.Any(r => r.DeliveryState == "acknowledged");
        }, Patience));
        Assert.Equal("acknowledged", status!.Recipients.Single(r => r.Recipient == Signals.Riec).DeliveryState);
        Assert.Equal("refused", status.Recipients.Single(r => r.Recipient == Signals.Fiod).DeliveryState);

        using var other = await hub.ClientFor(Signals.Fiod).GetAsync($"/api/v1/signals/{response.SignalId}");
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
        Assert.Equal("application/problem+json", other.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task DispatcherDown_AfterCommit_DeliveryWaitsInOutbox_AndANewInstanceDeliversIt()
    {
        await using var first = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        await first.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));
        await Task.Delay(300);
        Assert.Empty(first.Partners.Received);
        var pending = await first.Factory.WithDbAsync(db => db.Outbox.CountAsync(o => o.DispatchedAt == null));
        Assert.Equal(1, pending);

        // Second broker instance on the same database file, with its dispatcher on.
        await using var second = new ComponentHub(new() { ["ShareHub:ConnectionString"] = $"Data Source={first.DatabaseFile}" });
        _ = second.Factory.Server; // start it
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => !second.Partners.Handled.IsEmpty, Patience));
        Assert.Single(second.Partners.Handled);
    }

    [Fact]
    public async Task Submit_RetriedWithTheSameIdempotencyKey_StoresOneSignal_AndAnswersTheSame()
    {
        await using var hub = new ComponentHub();
        var client = hub.ClientFor(Signals.Gemeente);
        client.DefaultRequestHeaders.Add("Idempotency-Key", "retry-1");

        var first = await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod));
        var again = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod))));

        Assert.All(again, a => Assert.Equal(first.SignalId, a.SignalId));
        Assert.All(again, a => Assert.Equal(first.Decisions.Select(d => (d.Recipient, d.Permitted, d.DeliveryId)), a.Decisions.Select(d => (d.Recipient, d.Permitted, d.DeliveryId))));
        var (signals, outbox) = await hub.Factory.WithDbAsync(async db => (await db.Signals.CountAsync(), await db.Outbox.CountAsync()));
        Assert.Equal(1, signals);
        Assert.Equal(1, outbox);

        // The same key from another organisation is another signal: keys are per provider.
        var other = hub.ClientFor(Signals.Politie);
        other.DefaultRequestHeaders.Add("Idempotency-Key", "retry-1");
        var politie = await other.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec) with { Category = "politiegegevens" });
        Assert.NotEqual(first.SignalId, politie.SignalId);
    }

    [Fact]
    public async Task Submit_IdempotencyKeyReusedForADifferentSignal_Is422_AndNothingMoreStored()
    {
        await using var hub = new ComponentHub();
        var client = hub.ClientFor(Signals.Gemeente);
        client.DefaultRequestHeaders.Add("Idempotency-Key", "retry-2");
        await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));

        using var response = await client.SubmitAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Contains("SH-V0006", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(1, await hub.Factory.WithDbAsync(db => db.Signals.CountAsync()));
    }
}
