using Microsoft.Extensions.Logging.Abstractions;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Partner;
using Xunit.Abstractions;

namespace ShareHub.Broker.Tests.Integration;

/// <summary>
/// The Partner SDK's <see cref="RabbitMqDeliveryListener"/> on a real RabbitMQ: a handled delivery waiting for the hub's
/// acknowledgement holds its place in the prefetch window, not a handler call, and is acked on the queue only after
/// the hub recorded it.
/// </summary>
[Collection(RealServersCollection.Name)]
public sealed class PartnerListenerTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task AcknowledgementsHeldByTheHub_DoNotHoldHandlerCalls_AndNothingIsAckedOnTheQueueBeforeTheHubRecordedIt()
    {
        await using var servers = await RealServers.CreateAsync();
        // One message per delivery, so the queue's depth counts deliveries (bundles: DeliveryBundleTests).
        var settings = servers.HubSettings();
        settings["ShareHub:Dispatcher:BundleSize"] = "1";
        await using var hub = new HubFactory(settings);
        _ = hub.Server; // the hub declares the partners' queues at start
        var account = (await PartnerAccounts.ProvisionAsync(servers, Signals.Riec)).Single();
        var options = new PartnerOptions
        {
            Organisation = Signals.Riec,
            RabbitMqUri = PartnerAccounts.UriFor(servers, account),
            RetryIntervals = [TimeSpan.FromMilliseconds(50)],
            HandlerConcurrency = 1,
            PrefetchCount = 8,
        };

        var recorder = new PartnerRecorder();
        int inHandler = 0, mostInHandler = 0;
        recorder.OnHandle = async _ =>
        {
            var now = Interlocked.Increment(ref inHandler);
            InterlockedMax(ref mostInHandler, now);
            await Task.Delay(20);
            Interlocked.Decrement(ref inHandler);
        };
        var processor = new DeliveryProcessor(Signals.Riec, recorder.HandlerFor(Signals.Riec), recorder.InboxFor(Signals.Riec), NullLogger.Instance);

        // The hub "holds" every acknowledgement until the gate opens; then it is recorded for real.
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var toHub = RabbitMqDeliveryListener.HttpAcknowledgement(hub.TokenClientFor(Signals.Riec), TimeProvider.System);
        var held = 0;
        Func<Guid, CancellationToken, Task> acknowledge = async (id, ct) =>
        {
            Interlocked.Increment(ref held);
            await gate.Task.WaitAsync(ct);
            await toHub(id, ct);
        };

        var client = hub.ClientFor(Signals.Gemeente);
        const int signals = 4;
        for (var i = 0; i < signals; i++)
        {
            await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));
        }

        var first = new RabbitMqDeliveryListener(options, processor, acknowledge, TimeProvider.System, NullLogger.Instance);
        await first.StartAsync();

        // One handler call at a time, yet all four handled while the hub holds the first acknowledgement.
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => recorder.Handled.Count == signals && Volatile.Read(ref held) == signals, Patience),
            $"handled {recorder.Handled.Count}, acknowledgements under way {held}");
        Assert.Equal(1, mostInHandler);
        Assert.Equal(0, await servers.ScalarAsync<long>("SELECT count(*) FROM acknowledgements"));
        Assert.Equal(signals, (await servers.QueueDepthsAsync())[PartnerAccounts.Queue(Signals.Riec)]); // none acked on the queue

        // Stopping while the hub still holds them: the listener does not wait for the hub, and nothing is lost — the
        // deliveries go back to the queue.
        await first.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(await PartnerRecorder.WaitUntilAsync(async () => (await servers.QueueDepthsAsync())[PartnerAccounts.Queue(Signals.Riec)] == signals, Patience));
        Assert.Equal(0, await servers.ScalarAsync<long>("SELECT count(*) FROM acknowledgements"));

        // The next start gets them again; the inbox absorbs the redeliveries, and each is acknowledged once the hub takes it.
        gate.SetResult();
        await using var second = new RabbitMqDeliveryListener(options, processor, acknowledge, TimeProvider.System, NullLogger.Instance);
        await second.StartAsync();
        Assert.True(await PartnerRecorder.WaitUntilAsync(async () =>
            (await servers.QueueDepthsAsync())[PartnerAccounts.Queue(Signals.Riec)] == 0
            && await servers.ScalarAsync<long>("SELECT count(*) FROM acknowledgements") == signals, Patience));
        Assert.Equal(signals, recorder.Handled.Count);
        Assert.Equal(2 * signals, recorder.Received.Count);
        output.WriteLine($"PARTNER-LISTENER: handler concurrency 1 | handled while the hub held every acknowledgement {signals} | requeued on stop {signals} | acknowledged after restart {signals}");
    }

    private static void InterlockedMax(ref int target, int value)
    {
        var current = Volatile.Read(ref target);
        while (value > current && Interlocked.CompareExchange(ref target, value, current) is var seen && seen != current)
        {
            current = seen;
        }
    }
}
