using MassTransit;
using ShareHub.Contracts;

namespace ShareHub.Broker.Observability;

/// <summary>
/// Records <c>sharehub.delivery.lag</c> when the bus has confirmed a <see cref="DeliverSignal"/> send: the time from
/// the hub accepting the signal (<see cref="DeliverSignal.SubmittedAt"/>) to the publish, outbox wait included.
/// A MassTransit send observer, so the dispatcher itself carries no metrics code.
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
        }

        return Task.CompletedTask;
    }

    public Task SendFault<T>(SendContext<T> context, Exception exception)
        where T : class => Task.CompletedTask;
}
