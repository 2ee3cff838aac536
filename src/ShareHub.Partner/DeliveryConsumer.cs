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
    public Task ProcessAsync(DeliverSignal delivery, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(delivery);
        return ProcessAsync(delivery.DeliveryId, delivery.Recipient, ct => handler.HandleAsync(delivery, ct), cancellationToken);
    }

    /// <summary>Processes a case event; throws when it is addressed to someone else or the handler fails.</summary>
    public Task ProcessAsync(DeliverCaseEvent caseEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(caseEvent);
        return ProcessAsync(caseEvent.DeliveryId, caseEvent.Recipient, ct => handler.HandleCaseEventAsync(caseEvent, ct), cancellationToken);
    }

    /// <summary>
    /// The deliveries of a bundle addressed to this partner; throws, without opening it, for a bundle addressed to
    /// someone else (each delivery's recipient is checked again when it is processed).
    /// </summary>
    internal IReadOnlyList<DeliverSignal> Open(DeliverSignalBundle bundle) =>
        string.Equals(bundle.Recipient, organisation, StringComparison.Ordinal)
            ? bundle.Deliveries
            : throw new MisaddressedDeliveryException($"A bundle addressed to '{bundle.Recipient}' reached '{organisation}'.");

    private async Task ProcessAsync(Guid deliveryId, string recipient, Func<CancellationToken, Task> handle, CancellationToken cancellationToken)
    {
        if (!string.Equals(recipient, organisation, StringComparison.Ordinal))
        {
            // Never process data addressed to someone else.
            throw new MisaddressedDeliveryException($"Delivery {deliveryId} is addressed to '{recipient}', not to '{organisation}'.");
        }

        if (!await inbox.TryBeginAsync(deliveryId, cancellationToken).ConfigureAwait(false))
        {
            logger.LogInformation("Delivery {DeliveryId} was already processed; redelivery absorbed", deliveryId);
            return;
        }

        var processed = false;
        try
        {
            await handle(cancellationToken).ConfigureAwait(false);
            await inbox.CompleteAsync(deliveryId, cancellationToken).ConfigureAwait(false);
            processed = true;
        }
        finally
        {
            if (!processed)
            {
                // Release the claim so the retry (or a replay from the error queue) can process it.
                await inbox.AbandonAsync(deliveryId, CancellationToken.None).ConfigureAwait(false);
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
        await AcknowledgeAsync(context, context.Message.DeliveryId, processor.Organisation, time).ConfigureAwait(false);
    }

    /// <summary>
    /// Acknowledges on the hub's bus — also for an absorbed duplicate, in case the earlier acknowledgement was lost;
    /// the hub records acknowledgements once.
    /// </summary>
    internal static Task AcknowledgeAsync(ConsumeContext context, Guid deliveryId, string organisation, TimeProvider time) =>
        context.Send(new Uri($"queue:{QueueNames.Acknowledgements}"), new DeliveryAcknowledged(deliveryId, organisation, time.GetUtcNow()));
}

/// <summary>The in-memory-bus consumer of case events (see <see cref="DeliveryConsumer"/>).</summary>
public sealed class CaseEventConsumer(DeliveryProcessor processor, TimeProvider time) : IConsumer<DeliverCaseEvent>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<DeliverCaseEvent> context)
    {
        await processor.ProcessAsync(context.Message, context.CancellationToken).ConfigureAwait(false);
        await DeliveryConsumer.AcknowledgeAsync(context, context.Message.DeliveryId, processor.Organisation, time).ConfigureAwait(false);
    }
}

/// <summary>
/// The in-memory-bus consumer of bundled signal deliveries (see <see cref="DeliveryConsumer"/>): each delivery is
/// processed and acknowledged on its own. A failure fails the whole message, so MassTransit retries it; the inbox
/// absorbs the deliveries already processed.
/// </summary>
public sealed class SignalBundleConsumer(DeliveryProcessor processor, TimeProvider time) : IConsumer<DeliverSignalBundle>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<DeliverSignalBundle> context)
    {
        foreach (var delivery in processor.Open(context.Message))
        {
            await processor.ProcessAsync(delivery, context.CancellationToken).ConfigureAwait(false);
            await DeliveryConsumer.AcknowledgeAsync(context, delivery.DeliveryId, processor.Organisation, time).ConfigureAwait(false);
        }
    }
}
