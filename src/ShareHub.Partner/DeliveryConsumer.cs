using MassTransit;
using Microsoft.Extensions.Logging;
using ShareHub.Contracts;

namespace ShareHub.Partner;

/// <summary>
/// Consumes deliveries from this partner's own queue: checks they are addressed to this partner, hands each delivery
/// id to the <see cref="IDeliveryHandler"/> once, and acknowledges it to the hub (also for an absorbed duplicate, in
/// case the earlier acknowledgement was lost; the hub records acknowledgements once).
/// </summary>
public sealed class DeliveryConsumer(
    string organisation,
    IDeliveryHandler handler,
    IDeliveryInbox inbox,
    TimeProvider time,
    ILogger<DeliveryConsumer> logger) : IConsumer<DeliverSignal>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<DeliverSignal> context)
    {
        var delivery = context.Message;
        if (!string.Equals(delivery.Recipient, organisation, StringComparison.Ordinal))
        {
            // Never process data addressed to someone else; the exception sends it to the error queue for operators.
            throw new InvalidOperationException($"Delivery {delivery.DeliveryId} is addressed to '{delivery.Recipient}', not to '{organisation}'.");
        }

        if (await inbox.TryBeginAsync(delivery.DeliveryId, context.CancellationToken).ConfigureAwait(false))
        {
            var processed = false;
            try
            {
                await handler.HandleAsync(delivery, context.CancellationToken).ConfigureAwait(false);
                await inbox.CompleteAsync(delivery.DeliveryId, context.CancellationToken).ConfigureAwait(false);
                processed = true;
            }
            finally
            {
                if (!processed)
                {
                    // Release the claim so the retry (or a replay from the error queue) can process it.
                    await inbox.AbandonAsync(delivery.DeliveryId, CancellationToken.None).ConfigureAwait(false);
                }
            }
        }
        else
        {
            logger.LogInformation("Delivery {DeliveryId} was already processed; redelivery absorbed", delivery.DeliveryId);
        }

        await context.Send(
            new Uri($"queue:{QueueNames.Acknowledgements}"),
            new DeliveryAcknowledged(delivery.DeliveryId, organisation, time.GetUtcNow())).ConfigureAwait(false);
    }
}
