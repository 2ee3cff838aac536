using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using RabbitMQ.Client;
using ShareHub.Broker.Identity;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;
using ShareHub.Partner;

namespace ShareHub.Broker.Tests.Integration;

/// <summary>
/// Several deliveries to one recipient in one message (<see cref="DeliverSignalBundle"/>) on a real RabbitMQ: a bundle
/// sits only in its recipient's queue and holds only that recipient's deliveries; the Partner SDK handles, deduplicates
/// and acknowledges each delivery on its own; a bundle with a delivery that keeps failing goes to the error queue whole
/// once the others are recorded, and a replay hands only the failed one to the handler again.
/// </summary>
[Collection(RealServersCollection.Name)]
public sealed class DeliveryBundleTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task SweptBacklog_IsOneBundlePerRecipient_InThatRecipientsQueueOnly_CaseEventsAlone_AndEachDeliveryIsHandledAndAcknowledgedOnce()
    {
        await using var servers = await RealServers.CreateAsync();

        // An instance that commits but never publishes (as if it crashed after its commits): a case with the gemeente
        // and the politie in phase weging, where the gemeente's signals naming the case may go to every participant.
        var permitted = new List<RecipientDecisionDto>();
        await using (var crashed = new HubFactory(servers.HubSettings(dispatcherEnabled: false)))
        {
            var gemeente = crashed.ClientFor(Signals.Gemeente);
            var first = await gemeente.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));
            permitted.AddRange(first.Decisions.Where(d => d.Permitted));
            var riec = crashed.ClientFor(Signals.Riec, "analyst");
            await PostCreatedAsync(riec, "/api/v1/cases", new OpenCaseRequest(Case,
                "Aanwijzingen van ondermijning; delen is noodzakelijk en beperkt tot gemeente en politie.", [first.SignalId], [Signals.Gemeente, Signals.Politie]));
            await PostCreatedAsync(riec, $"/api/v1/cases/{Case}/phase", new ChangeCasePhaseRequest("weging", "wegen"));
            var signal = Signals.KvkSignal(Signals.Riec, Signals.Politie) with { Purpose = "casusanalyse", CaseReference = Case };
            using var response = await gemeente.PostAsJsonAsync("/api/v1/signals/batch", new SubmitSignalBatchRequest([.. Enumerable.Repeat(signal, 6)]), Signals.Json);
            var batch = (await response.Content.ReadFromJsonAsync<SubmitSignalBatchResponse>(Signals.Json))!;
            Assert.Equal(6, batch.Accepted);
            permitted.AddRange(batch.Results.SelectMany(r => r.Accepted!.Decisions).Where(d => d.Permitted));
        }

        var expected = permitted.GroupBy(d => d.Recipient).ToDictionary(g => g.Key, g => g.Select(d => d.DeliveryId!.Value).Order().ToList());
        Assert.Equal(7, expected[Signals.Riec].Count);
        Assert.Equal(6, expected[Signals.Politie].Count);
        var outbox = (int)await servers.ScalarAsync<long>("SELECT count(*) FROM outbox");

        // Another instance sweeps the backlog as one claimed batch: one bundle per recipient, case events alone.
        await using var hub = await SweepingHubAsync(servers, outbox);

        // Read as the broker's operator would, then put back.
        var queued = await PeekAsync(servers, Signals.Riec, Signals.Politie, Signals.Gemeente);
        foreach (var organisation in new[] { Signals.Riec, Signals.Politie })
        {
            var bundle = Assert.IsType<DeliverSignalBundle>(Assert.Single(queued[organisation], m => m is not DeliverCaseEvent));
            Assert.Equal(organisation, bundle.Recipient);
            Assert.All(bundle.Deliveries, d => Assert.Equal(organisation, d.Recipient));
            Assert.Equal(expected[organisation], bundle.Deliveries.Select(d => d.DeliveryId).Order());
            // Each delivery names the audit entry committed for it, as a lone delivery does.
            foreach (var delivery in bundle.Deliveries)
            {
                Assert.Equal(1, await servers.ScalarAsync<long>(
                    "SELECT count(*) FROM audit_entries WHERE \"Id\" = @id AND \"DeliveryId\" = @delivery AND \"Recipient\" = @recipient AND \"Outcome\" = 'permit'",
                    ("id", delivery.AuditEntryId), ("delivery", delivery.DeliveryId), ("recipient", organisation)));
            }
        }

        Assert.All(queued[Signals.Gemeente], m => Assert.Equal(Signals.Gemeente, Assert.IsType<DeliverCaseEvent>(m).Recipient));
        Assert.All(queued[Signals.Politie].OfType<DeliverCaseEvent>(), e => Assert.Equal(Signals.Politie, e.Recipient));
        Assert.Equal(outbox, queued.Values.Sum(messages => messages.Sum(m => m is DeliverSignalBundle b ? b.Deliveries.Count : 1)));

        var recorder = new PartnerRecorder();
        await using var partners = await PartnerBusHost.StartAsync(servers, hub, recorder, Signals.Riec, Signals.Politie, Signals.Gemeente);
        Assert.True(await PartnerRecorder.WaitUntilAsync(async () =>
            await servers.ScalarAsync<long>("SELECT count(*) FROM acknowledgements") == outbox, Patience));
        Assert.True(await PartnerRecorder.WaitUntilAsync(async () => QueuedMessages(await servers.QueueDepthsAsync()) == 0, Patience));

        var handled = recorder.Handled.ToList();
        Assert.Equal(expected.Values.SelectMany(ids => ids).Order(), handled.Select(h => h.Delivery.DeliveryId).Order()); // each once
        Assert.All(handled, h => Assert.Equal(h.Organisation, h.Delivery.Recipient));
        Assert.Equal(outbox, await servers.ScalarAsync<long>("SELECT count(*) FROM audit_entries WHERE \"Kind\" = 'delivery.dispatched'"));
    }

    [Fact]
    public async Task BundleWithADeliveryThatKeepsFailing_GoesWholeToTheErrorQueue_AfterTheOthersAreAcknowledged_AndReplayHandsOnlyThatOneToTheHandler()
    {
        await using var servers = await RealServers.CreateAsync();
        var riec = await CommitWithoutPublishingAsync(servers, [.. Enumerable.Repeat(Signals.KvkSignal(Signals.Riec), 5)]);
        await using var hub = await SweepingHubAsync(servers, riec.Count);
        Assert.Equal(1, (await servers.QueueDepthsAsync())[QueueNames.Deliveries(Signals.Riec)]); // one bundle of five

        var failing = riec[2];
        var broken = true;
        var recorder = new PartnerRecorder();
        recorder.OnHandle = delivery => broken && delivery.DeliveryId == failing ? throw new InvalidOperationException("case system refuses this one") : Task.CompletedTask;
        await using var partners = await PartnerBusHost.StartAsync(servers, hub, recorder, Signals.Riec);

        // The four others are handled and recorded at the hub; then the bundle is parked in the error queue.
        Assert.True(await PartnerRecorder.WaitUntilAsync(async () => await ErrorQueue.CountAsync(servers.RabbitMqUri, Signals.Riec) == 1, Patience));
        Assert.Equal(riec.Where(id => id != failing).Order(), recorder.Handled.Select(h => h.Delivery.DeliveryId).Order());
        Assert.Equal(riec.Where(id => id != failing).Order(), await servers.GuidsAsync("SELECT \"DeliveryId\" FROM acknowledgements ORDER BY \"DeliveryId\""));
        Assert.Equal(0, (await servers.QueueDepthsAsync())[QueueNames.Deliveries(Signals.Riec)]);

        // The partner fixes its system and replays: only the failed delivery reaches the handler; the others are
        // absorbed by the inbox and their acknowledgements are taken again without a second record.
        broken = false;
        Assert.Equal(1, await ErrorQueue.ReplayAsync(servers.RabbitMqUri, Signals.Riec));
        Assert.True(await PartnerRecorder.WaitUntilAsync(async () =>
            await servers.ScalarAsync<long>("SELECT count(*) FROM acknowledgements") == riec.Count
            && (await servers.QueueDepthsAsync())[QueueNames.Deliveries(Signals.Riec)] == 0, Patience));
        Assert.Equal(riec.Order(), recorder.Handled.Select(h => h.Delivery.DeliveryId).Order());
        // The four others came twice (the bundle, then its replay) and were handled once.
        Assert.All(riec.Where(id => id != failing), id => Assert.Equal(2, recorder.Received.Count(r => r.DeliveryId == id)));
        Assert.Equal(0u, await ErrorQueue.CountAsync(servers.RabbitMqUri, Signals.Riec));
        Assert.Equal(riec.Count, await servers.ScalarAsync<long>("SELECT count(*) FROM audit_entries WHERE \"Outcome\" = 'acknowledged'"));
    }

    [Fact]
    public async Task BundlesAddressedElsewhereOrEmpty_AreDeadLettered_AndOnlyTheListenersOwnDeliveriesAreHandled()
    {
        await using var servers = await RealServers.CreateAsync();
        await DeliveryTopology.DeclareAsync(servers.RabbitMqUri, [Signals.Riec, Signals.Fiod]);
        var account = (await PartnerAccounts.ProvisionAsync(servers, Signals.Riec)).Single();
        var own = Delivery(Signals.Riec);
        var foreign = Delivery(Signals.Fiod);

        // Put on riec's queue by hand (the hub never builds these): a bundle addressed to fiod, a bundle for riec with
        // one of fiod's deliveries in it, and a bundle with nothing in it.
        await PublishAsync(servers, Signals.Riec,
            new DeliverSignalBundle(Signals.Fiod, [foreign, Delivery(Signals.Fiod)]),
            new DeliverSignalBundle(Signals.Riec, [own, foreign]),
            new DeliverSignalBundle(Signals.Riec, []));

        var recorder = new PartnerRecorder();
        var acknowledged = new ConcurrentQueue<Guid>();
        var processor = new DeliveryProcessor(Signals.Riec, recorder.HandlerFor(Signals.Riec), recorder.InboxFor(Signals.Riec), NullLogger.Instance);
        await using var listener = new RabbitMqDeliveryListener(
            new PartnerOptions { Organisation = Signals.Riec, RabbitMqUri = PartnerAccounts.UriFor(servers, account), RetryIntervals = [TimeSpan.FromMilliseconds(20)] },
            processor,
            (id, _) =>
            {
                acknowledged.Enqueue(id);
                return Task.CompletedTask;
            },
            TimeProvider.System,
            NullLogger.Instance);
        await listener.StartAsync();

        Assert.True(await PartnerRecorder.WaitUntilAsync(async () => await ErrorQueue.CountAsync(servers.RabbitMqUri, Signals.Riec) == 3, Patience));
        Assert.Equal([own.DeliveryId], recorder.Handled.Select(h => h.Delivery.DeliveryId));
        Assert.Equal([own.DeliveryId], acknowledged);
        Assert.Equal(0, (await servers.QueueDepthsAsync())[QueueNames.Deliveries(Signals.Riec)]);
    }

    private const string Case = "RIEC-2026-0961";

    private static async Task PostCreatedAsync(HttpClient client, string path, object body)
    {
        using var response = await client.PostAsJsonAsync(path, body, Signals.Json);
        Assert.True(response.IsSuccessStatusCode, $"{path} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
    }

    /// <summary>
    /// Commits one batch to riec on an instance whose dispatcher is off (as if it crashed after the commit); returns
    /// the delivery ids.
    /// </summary>
    private static async Task<List<Guid>> CommitWithoutPublishingAsync(RealServers servers, SubmitSignalRequest[] signals)
    {
        await using var crashed = new HubFactory(servers.HubSettings(dispatcherEnabled: false));
        using var response = await crashed.ClientFor(Signals.Gemeente).PostAsJsonAsync("/api/v1/signals/batch", new SubmitSignalBatchRequest(signals), Signals.Json);
        var batch = (await response.Content.ReadFromJsonAsync<SubmitSignalBatchResponse>(Signals.Json))!;
        Assert.Equal(signals.Length, batch.Accepted);
        return [.. batch.Results.SelectMany(r => r.Accepted!.Decisions).Where(d => d.Permitted).Select(d => d.DeliveryId!.Value)];
    }

    /// <summary>
    /// An instance that sweeps rows older than a second, started once every pending row is (so its first claim takes
    /// them all), waited for until it has published all of them.
    /// </summary>
    private static async Task<HubFactory> SweepingHubAsync(RealServers servers, int pending)
    {
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var settings = servers.HubSettings();
        settings["ShareHub:Dispatcher:SweepAfterSeconds"] = "1";
        var hub = new HubFactory(settings);
        _ = hub.Server;
        Assert.True(await PartnerRecorder.WaitUntilAsync(async () =>
            await servers.ScalarAsync<long>("SELECT count(*) FROM outbox WHERE \"DispatchedAt\" IS NOT NULL") == pending, Patience));
        return hub;
    }

    /// <summary>Reads every message of the organisations' queues with the administrator's account and leaves them there.</summary>
    private static async Task<Dictionary<string, List<object>>> PeekAsync(RealServers servers, params string[] organisations)
    {
        var messages = new Dictionary<string, List<object>>(StringComparer.Ordinal);
        await using var connection = await new ConnectionFactory { Uri = servers.RabbitMqUri }.CreateConnectionAsync();
        await using (var channel = await connection.CreateChannelAsync())
        {
            foreach (var organisation in organisations)
            {
                var read = messages[organisation] = [];
                while (await channel.BasicGetAsync(QueueNames.Deliveries(organisation), autoAck: false) is { } message)
                {
                    read.Add(Read(message.Body.ToArray()));
                }
            }

            // Closing the channel returns every unacknowledged message to its queue.
            await channel.CloseAsync();
        }

        return messages;
    }

    /// <summary>The message in a MassTransit JSON envelope, as its <c>messageType</c> names it.</summary>
    private static object Read(byte[] body)
    {
        using var envelope = JsonDocument.Parse(body);
        var types = envelope.RootElement.GetProperty("messageType").EnumerateArray().Select(t => t.GetString()).ToList();
        var message = envelope.RootElement.GetProperty("message");
        return types.Contains("urn:message:ShareHub.Contracts:DeliverSignalBundle") ? message.Deserialize<DeliverSignalBundle>(Signals.Json)!
            : types.Contains("urn:message:ShareHub.Contracts:DeliverCaseEvent") ? message.Deserialize<DeliverCaseEvent>(Signals.Json)!
            : message.Deserialize<DeliverSignal>(Signals.Json)!;
    }

    private static int QueuedMessages(Dictionary<string, int> depths) => depths.Where(d => d.Key.StartsWith("sharehub.deliveries.", StringComparison.Ordinal)).Sum(d => d.Value);

    private static DeliverSignal Delivery(string recipient) => new(
        Guid.NewGuid(), Guid.NewGuid(), Signals.Gemeente, recipient, "kvk-ubo", "signaalweging", null, "kvk", "12345678", "{}",
        "test", "TEST-01", "test", 1, null, TimeProvider.System.GetUtcNow());

    /// <summary>Publishes hand-made bundles in MassTransit's envelope to an organisation's queue (its exchange).</summary>
    private static async Task PublishAsync(RealServers servers, string organisation, params DeliverSignalBundle[] bundles)
    {
        await using var connection = await new ConnectionFactory { Uri = servers.RabbitMqUri }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
        foreach (var bundle in bundles)
        {
            var envelope = JsonSerializer.SerializeToUtf8Bytes(new
            {
                messageId = Guid.NewGuid(),
                messageType = new[] { "urn:message:ShareHub.Contracts:DeliverSignalBundle" },
                message = bundle,
            }, Signals.Json);
            await channel.BasicPublishAsync(QueueNames.Deliveries(organisation), string.Empty, mandatory: true,
                new BasicProperties { Persistent = true, ContentType = "application/vnd.masstransit+json" }, envelope);
        }
    }
}
