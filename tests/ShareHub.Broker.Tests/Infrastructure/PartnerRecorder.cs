using System.Collections.Concurrent;
using MassTransit;
using ShareHub.Contracts;
using ShareHub.Partner;

namespace ShareHub.Broker.Tests.Infrastructure;

/// <summary>
/// Partner systems for tests: real <see cref="PartnerBus"/> endpoints and <see cref="DeliveryConsumer"/>s whose handler
/// records what each organisation received. <see cref="Received"/> counts every message taken off a queue (including
/// redeliveries); <see cref="Handled"/> counts what reached the partner's handler (after deduplication).
/// </summary>
public sealed class PartnerRecorder
{
    private readonly ConcurrentDictionary<string, InMemoryDeliveryInbox> _inboxes = new();

    /// <summary>Every delivery that reached a partner handler, with the organisation whose queue it came from.</summary>
    public ConcurrentQueue<(string Organisation, DeliverSignal Delivery)> Handled { get; } = new();

    /// <summary>Every case event that reached a partner handler, with the organisation whose queue it came from.</summary>
    public ConcurrentQueue<(string Organisation, DeliverCaseEvent Event)> CaseEvents { get; } = new();

    /// <summary>The case events <paramref name="organisation"/> handled, in arrival order.</summary>
    public IReadOnlyList<DeliverCaseEvent> CaseEventsOf(string organisation) => [.. CaseEvents.Where(e => e.Organisation == organisation).Select(e => e.Event)];

    /// <summary>Every delivery id consumed from any partner queue, redeliveries included.</summary>
    public ConcurrentQueue<(string Organisation, Guid DeliveryId)> Received { get; } = new();

    /// <summary>Optional check run inside the handler at the moment of consumption.</summary>
    public Func<DeliverSignal, Task>? OnHandle { get; set; }

    /// <summary>Configures <paramref name="organisation"/>'s delivery endpoint on a bus.</summary>
    public void ConfigureEndpoint(IReceiveConfigurator cfg, string organisation)
    {
        var inbox = _inboxes.GetOrAdd(organisation, _ => new InMemoryDeliveryInbox());
        PartnerBus.ConfigureDeliveryEndpoint(cfg,
            new PartnerOptions { Organisation = organisation, RetryIntervals = [TimeSpan.FromMilliseconds(50)] },
            new RecordingHandler(this, organisation),
            new CountingInbox(this, organisation, inbox),
            TimeProvider.System);
    }

    /// <summary>The recording handler of <paramref name="organisation"/> (for partners outside the hub's bus).</summary>
    public IDeliveryHandler HandlerFor(string organisation) => new RecordingHandler(this, organisation);

    /// <summary>The counting inbox of <paramref name="organisation"/>.</summary>
    public IDeliveryInbox InboxFor(string organisation) =>
        new CountingInbox(this, organisation, _inboxes.GetOrAdd(organisation, _ => new InMemoryDeliveryInbox()));

    /// <summary>Waits until <paramref name="condition"/> holds or the timeout passes.</summary>
    public static async Task<bool> WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (!condition())
        {
            if (cts.IsCancellationRequested)
            {
                return false;
            }

            await Task.Delay(25);
        }

        return true;
    }

    /// <summary>Waits until an async condition holds or the timeout passes.</summary>
    public static async Task<bool> WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (!await condition())
        {
            if (cts.IsCancellationRequested)
            {
                return false;
            }

            await Task.Delay(50);
        }

        return true;
    }

    private sealed class RecordingHandler(PartnerRecorder recorder, string organisation) : IDeliveryHandler
    {
        public async Task HandleAsync(DeliverSignal delivery, CancellationToken cancellationToken)
        {
            if (recorder.OnHandle is { } check)
            {
                await check(delivery);
            }

            recorder.Handled.Enqueue((organisation, delivery));
        }

        public Task HandleCaseEventAsync(DeliverCaseEvent caseEvent, CancellationToken cancellationToken)
        {
            recorder.CaseEvents.Enqueue((organisation, caseEvent));
            return Task.CompletedTask;
        }
    }

    /// <summary>Sees every message (TryBegin is called for each consumed delivery) before deduplication.</summary>
    private sealed class CountingInbox(PartnerRecorder recorder, string organisation, InMemoryDeliveryInbox inner) : IDeliveryInbox
    {
        public ValueTask<bool> TryBeginAsync(Guid deliveryId, CancellationToken cancellationToken)
        {
            recorder.Received.Enqueue((organisation, deliveryId));
            return inner.TryBeginAsync(deliveryId, cancellationToken);
        }

        public ValueTask CompleteAsync(Guid deliveryId, CancellationToken cancellationToken) => inner.CompleteAsync(deliveryId, cancellationToken);

        public ValueTask AbandonAsync(Guid deliveryId, CancellationToken cancellationToken) => inner.AbandonAsync(deliveryId, cancellationToken);
    }
}
