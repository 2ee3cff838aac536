using MassTransit;
using ShareHub.Contracts;

namespace ShareHub.Broker.Observability;

/// <summary>
/// Records, when the bus has confirmed a <see cref="DeliverSignal"/> send (or a <see cref="DeliverSignalBundle"/>'s):
/// <c>sharehub.delivery.lag</c> for each delivery, the time from the hub accepting the signal
/// (<see cref="DeliverSignal.SubmittedAt"/>) to the publish, outbox wait included; and
/// <c>sharehub.delivery.bundle_size</c>, the deliveries the message carried. A MassTransit send observer, so the
/// dispatcher itself carries no metrics code.
/// </summary>
internal sealed class DeliveryLagObserver(HubMetrics metrics, TimeProvider time) : ISendObserver
{
    public Task PreSend<T>(SendContext<T> context)
        where T : class => Task.CompletedTask;

    public Task PostSend<T>(SendContext<T> context)
        where T : class
    {
        if (context.Message is DeliverSignal delivery)
        {
            metrics.DeliveryLag(time.GetUtcNow() - delivery.SubmittedAt, delivery.Recipient);
            metrics.DeliveriesPublished(1, delivery.Recipient);
        }
        else if (context.Message is DeliverSignalBundle bundle)
        {
            var now = time.GetUtcNow();
            foreach (var bundled in bundle.Deliveries)
            {
                metrics.DeliveryLag(now - bundled.SubmittedAt, bundled.Recipient);
            }

            metrics.DeliveriesPublished(bundle.Deliveries.Count, bundle.Recipient);
        }

        return Task.CompletedTask;
    }

    public Task SendFault<T>(SendContext<T> context, Exception exception)
        where T : class => Task.CompletedTask;
}
