using MassTransit;
using Microsoft.Extensions.Logging;
using ShareHub.Contracts;

namespace ShareHub.Partner;

/// <summary>
/// The partner-side handling of one delivery, whatever carried it: checks it is addressed to this partner, and hands
/// each delivery id to the <see cref="IDeliveryHandler"/> once (as far as the <see cref="IDeliveryInbox"/> can tell).
/// </summary>
public sealed class DeliveryProcessor(string organisation, IDeliveryHandler handler, IDeliveryInbox inbox, ILogger logger)
{
    /// <summary>This partner's organisation code.</summary>
    public string Organisation => organisation;

    /// <summary>Processes a delivery; throws when it is addressed to someone else or the handler fails.</summary>
    public async Task ProcessAsync(DeliverSignal delivery, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(delivery);
        if (!string.Equals(delivery.Recipient, organisation, StringComparison.Ordinal))
        {
            // Never process data addressed to someone else.
            throw new MisaddressedDeliveryException($"Delivery {delivery.DeliveryId} is addressed to '{delivery.Recipient}', not to '{organisation}'.");
        }

        if (!await inbox.TryBeginAsync(delivery.DeliveryId, cancellationToken).ConfigureAwait(false))
        {
            logger.LogInformation("Delivery {DeliveryId} was already processed; redelivery absorbed", delivery.DeliveryId);
            return;
        }

        var processed = false;
        try
        {
            await handler.HandleAsync(delivery, cancellationToken).ConfigureAwait(false);
            await inbox.CompleteAsync(delivery.DeliveryId, cancellationToken).ConfigureAwait(false);
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
}

/// <summary>A delivery reached a partner it is not addressed to; it is never processed.</summary>
public sealed class MisaddressedDeliveryException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MisaddressedDeliveryException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public MisaddressedDeliveryException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public MisaddressedDeliveryException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// MassTransit consumer for partners on the hub's own in-memory bus (the demo): processes the delivery and sends the
/// acknowledgement on that bus. Partners on RabbitMQ use <see cref="RabbitMqDeliveryListener"/>, which needs no write
/// permission and acknowledges over HTTP with an access token.
/// </summary>
public sealed class DeliveryConsumer(DeliveryProcessor processor, TimeProvider time) : IConsumer<DeliverSignal>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<DeliverSignal> context)
    {
        await processor.ProcessAsync(context.Message, context.CancellationToken).ConfigureAwait(false);

        // Acknowledged also for an absorbed duplicate, in case the earlier acknowledgement was lost; the hub records
        // acknowledgements once.
        await context.Send(
            new Uri($"queue:{QueueNames.Acknowledgements}"),
            new DeliveryAcknowledged(context.Message.DeliveryId, processor.Organisation, time.GetUtcNow())).ConfigureAwait(false);
    }
}
