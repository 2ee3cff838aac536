using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;

namespace ShareHub.Broker.Tests.Component;

/// <summary>
/// <c>POST /api/v1/signals/batch</c> and the intake's group commit: many signals in one transaction, one bad item
/// never failing the others, and concurrent single submissions sharing transactions without mixing up their answers.
/// </summary>
public sealed class BatchSubmitTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Batch_ValidAndInvalidItems_StoresTheValidOnes_AndRefusesEachInvalidOneWithItsProblem()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        var client = hub.ClientFor(Signals.Gemeente);
        var invalid = Signals.KvkSignal() with { Subject = new SubjectDto("bsn", Signals.InvalidBsn) };

        var (status, batch) = await SubmitBatchAsync(client, [Signals.KvkSignal(Signals.Riec, Signals.Fiod), invalid, Signals.KvkSignal(Signals.Riec)]);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal((2, 1), (batch.Accepted, batch.Refused));
        Assert.Equal([0, 1, 2], batch.Results.Select(r => r.Index));
        Assert.Equal([202, 400, 202], batch.Results.Select(r => r.Status));
        var refused = batch.Results[1].Problem!;
        Assert.Equal("SH-V0001", refused.Code);
        Assert.Contains("SH-V0102", refused.Codes!.SelectMany(c => c.Value));
        Assert.Null(batch.Results[1].Accepted);

        var first = batch.Results[0].Accepted!;
        Assert.Equal([true, false], first.Decisions.Select(d => d.Permitted));
        var (signals, decisions, outbox) = await hub.Factory.WithDbAsync(async db => (
            await db.Signals.Select(s => s.Id).ToListAsync(),
            await db.AuditEntries.Where(a => a.Kind == AuditKinds.Decision).ToListAsync(),
            await db.Outbox.ToListAsync()));
        Assert.Equal(new[] { first.SignalId, batch.Results[2].Accepted!.SignalId }.Order(), signals.Order());
        Assert.Equal(3, decisions.Count);
        Assert.Equal(2, outbox.Count);
        // Every answer names the audit entry that was really stored for it.
        Assert.All(batch.Results.Where(r => r.Accepted is not null).SelectMany(r => r.Accepted!.Decisions),
            d => Assert.Contains(decisions, a => a.Id == d.AuditEntryId && a.Recipient == d.Recipient && a.DeliveryId == d.DeliveryId));
    }

    [Fact]
    public async Task Batch_Accepted_IsDeliveredAndTheAuditChainVerifies()
    {
        await using var hub = new ComponentHub();
        var (status, batch) = await SubmitBatchAsync(hub.ClientFor(Signals.Gemeente), [.. Enumerable.Range(0, 5).Select(_ => Signals.KvkSignal(Signals.Riec))]);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(5, batch.Accepted);
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => hub.Partners.Handled.Count >= 5, Patience));
        Assert.True((await AuditTestKit.Fg(hub.Factory).VerifyAsync()).Valid);
    }

    [Fact]
    public async Task Batch_BeyondTheHandOverQueue_IsDeliveredAtOnce_EachDeliveryOnce()
    {
        // A queue of 2 for 40 deliveries: 38 overflow and are read back by key. The sweep would only take them after
        // 300 s, so what arrives within the patience came through the first path.
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:HandOverCapacity"] = "2", ["ShareHub:Dispatcher:SweepAfterSeconds"] = "300" });
        var (_, batch) = await SubmitBatchAsync(hub.ClientFor(Signals.Gemeente), [.. Enumerable.Range(0, 40).Select(_ => Signals.KvkSignal(Signals.Riec))]);
        var deliveries = batch.Results.Select(r => r.Accepted!.Decisions.Single().DeliveryId!.Value).ToHashSet();

        Assert.True(await PartnerRecorder.WaitUntilAsync(() => hub.Partners.Handled.Count >= 40, Patience), $"delivered {hub.Partners.Handled.Count} of 40");
        await Task.Delay(300); // a second publish of any of them would arrive now
        Assert.True(deliveries.SetEquals(hub.Partners.Received.Select(r => r.DeliveryId)));
        Assert.Equal(40, hub.Partners.Received.Count);
        Assert.Equal(40, await hub.Factory.WithDbAsync(db => db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.Dispatched)));
        Assert.Equal(0, await hub.Factory.WithDbAsync(db => db.Outbox.CountAsync(o => o.DispatchedAt == null)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(SubmitSignalBatchRequest.MaxSignals + 1)]
    public async Task Batch_EmptyOrTooLarge_Is400_AndNothingStored(int count)
    {
        await using var hub = new ComponentHub();
        var (status, body) = await PostAsync(hub.ClientFor(Signals.Gemeente), [.. Enumerable.Range(0, count).Select(_ => Signals.KvkSignal(Signals.Riec))]);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains(count == 0 ? "SH-V0002" : "SH-V0007", body, StringComparison.Ordinal);
        Assert.Equal(0, await hub.Factory.WithDbAsync(db => db.Signals.CountAsync()));
    }

    [Fact]
    public async Task Batch_RetriedWithTheSameIdempotencyKey_StoresOnce_AndAnswersTheSame_ButAnotherBatchIs422()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        var client = hub.ClientFor(Signals.Gemeente);
        client.DefaultRequestHeaders.Add("Idempotency-Key", "batch-1");
        SubmitSignalRequest[] items = [Signals.KvkSignal(Signals.Riec), Signals.KvkSignal() with { Category = "onbekend" }, Signals.KvkSignal(Signals.Fiod)];

        var (_, first) = await SubmitBatchAsync(client, items);
        var (status, again) = await SubmitBatchAsync(client, items);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(first.Results.Select(r => (r.Status, r.Accepted?.SignalId)), again.Results.Select(r => (r.Status, r.Accepted?.SignalId)));
        Assert.Equal(first.Results[0].Accepted!.Decisions.Select(d => d.AuditEntryId), again.Results[0].Accepted!.Decisions.Select(d => d.AuditEntryId));
        Assert.Equal(2, await hub.Factory.WithDbAsync(db => db.Signals.CountAsync()));

        var (reusedStatus, reused) = await PostAsync(client, [Signals.KvkSignal(Signals.Riec, Signals.Fiod)]);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, reusedStatus);
        Assert.Contains("SH-V0006", reused, StringComparison.Ordinal);
        Assert.Equal(2, await hub.Factory.WithDbAsync(db => db.Signals.CountAsync()));
    }

    [Fact]
    public async Task ConcurrentSubmissions_ShareTransactions_ButEachAnswerIsItsOwn_AndTheChainVerifies()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        var client = hub.ClientFor(Signals.Gemeente);

        // 40 requests at once; every tenth reuses one idempotency key, so group transactions fail and are split.
        var answers = await Task.WhenAll(Enumerable.Range(0, 40).Select(async i =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/signals")
            {
                Content = JsonContent.Create(Signals.KvkSignal(Signals.Riec) with { Payload = Signals.Payload($$"""{ "n": {{i}} }""") }, options: Signals.Json),
            };
            if (i % 10 == 0)
            {
                request.Headers.Add("Idempotency-Key", "shared");
            }

            using var response = await client.SendAsync(request);
            return (i, response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        }));

        var accepted = answers.Where(a => a.StatusCode == HttpStatusCode.Accepted).ToList();
        // 36 without a key, the first of the keyed ones; the other three keyed ones differ from it: 422.
        Assert.Equal(37, accepted.Count);
        Assert.Equal(3, answers.Count(a => a.StatusCode == HttpStatusCode.UnprocessableEntity));
        var stored = await hub.Factory.WithDbAsync(db => db.Signals.ToDictionaryAsync(s => s.Id, s => s.PayloadJson));
        Assert.Equal(37, stored.Count);
        foreach (var (i, _, body) in accepted)
        {
            var response = JsonSerializer.Deserialize<SubmitSignalResponse>(body, Signals.Json)!;
            // The answer is this request's own signal.
            Assert.Equal(i, JsonDocument.Parse(stored[response.SignalId]).RootElement.GetProperty("n").GetInt32());
        }

        Assert.True((await AuditTestKit.Fg(hub.Factory).VerifyAsync()).Valid);
    }

    private static async Task<(HttpStatusCode Status, SubmitSignalBatchResponse Body)> SubmitBatchAsync(HttpClient client, SubmitSignalRequest[] items)
    {
        var (status, body) = await PostAsync(client, items);
        Assert.True(status == HttpStatusCode.OK, $"expected 200, got {(int)status}: {body}");
        return (status, JsonSerializer.Deserialize<SubmitSignalBatchResponse>(body, Signals.Json)!);
    }

    private static async Task<(HttpStatusCode Status, string Body)> PostAsync(HttpClient client, SubmitSignalRequest[] items)
    {
        using var response = await client.PostAsJsonAsync("/api/v1/signals/batch", new SubmitSignalBatchRequest(items), Signals.Json);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}
