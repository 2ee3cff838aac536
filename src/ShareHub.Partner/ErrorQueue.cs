using RabbitMQ.Client;
using ShareHub.Contracts;

namespace ShareHub.Partner;

/// <summary>
/// Operator tools for a partner's error queue. A delivery whose handler kept failing is moved by MassTransit to
/// <c>sharehub.deliveries.&lt;code&gt;_error</c> (with the exception in its <c>MT-Fault-*</c> headers) — nothing is
/// dropped. Once the cause is fixed, <see cref="ReplayAsync"/> moves the messages back to the delivery queue; the
/// partner's inbox still deduplicates by delivery id.
/// </summary>
public static class ErrorQueue
{
    /// <summary>The error queue of an organisation's delivery queue.</summary>
    public static string NameFor(string organisation) => QueueNames.Deliveries(organisation) + "_error";

    /// <summary>Number of messages waiting in the organisation's error queue.</summary>
    public static async Task<uint> CountAsync(Uri rabbitMq, string organisation, CancellationToken cancellationToken = default)
    {
        var factory = new ConnectionFactory { Uri = rabbitMq };
        await using var connection = await factory.CreateConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        try
        {
            return await channel.MessageCountAsync(NameFor(organisation), cancellationToken).ConfigureAwait(false);
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == NotFound)
        {
            return 0; // MassTransit creates the error queue on the first fault: none yet means no failed delivery
        }
    }

    /// <summary>AMQP 0-9-1 reply code 404 (not-found).</summary>
    private const ushort NotFound = 404;

    /// <summary>
    /// Moves every message from the error queue back to the delivery queue: each is republished with its original
    /// body and properties, waits for the broker's publisher confirm, and only then is removed from the error queue
    /// (a crash in between duplicates, never loses). Returns the number of messages moved.
    /// </summary>
    public static async Task<int> ReplayAsync(Uri rabbitMq, string organisation, CancellationToken cancellationToken = default)
    {
        var queue = QueueNames.Deliveries(organisation);
        var factory = new ConnectionFactory { Uri = rabbitMq };
        await using var connection = await factory.CreateConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var channel = await connection.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true),
            cancellationToken).ConfigureAwait(false);

        if (await CountAsync(rabbitMq, organisation, cancellationToken).ConfigureAwait(false) == 0)
        {
            return 0;
        }

        var moved = 0;
        while (await channel.BasicGetAsync(NameFor(organisation), autoAck: false, cancellationToken).ConfigureAwait(false) is { } message)
        {
            var properties = new BasicProperties(message.BasicProperties);
            // MassTransit binds an exchange named after the queue to it: publishing there delivers to the queue.
            await channel.BasicPublishAsync(queue, routingKey: string.Empty, mandatory: true, properties, message.Body, cancellationToken).ConfigureAwait(false);
            await channel.BasicAckAsync(message.DeliveryTag, multiple: false, cancellationToken).ConfigureAwait(false);
            moved++;
        }

        return moved;
    }
}
