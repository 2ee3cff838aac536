using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using ShareHub.Broker.Configuration;
using ShareHub.Broker.Policies;
using ShareHub.Contracts;

namespace ShareHub.Broker.Identity;

/// <summary>
/// The hub owns the bus topology: partners' RabbitMQ users may not configure anything, so the hub declares, at
/// start, each participant's delivery exchange and queue (bound together) and its error queue, to which the broker
/// dead-letters a delivery the partner rejects. A partner only consumes (read permission on its own queue).
/// </summary>
public static class DeliveryTopology
{
    /// <summary>The error (dead-letter) exchange and queue of a partner's delivery queue.</summary>
    public static string ErrorQueue(string organisation) => QueueNames.Deliveries(organisation) + "_error";

    /// <summary>Declares the delivery topology of every participant (RabbitMQ only; idempotent).</summary>
    public static async Task DeclareDeliveryTopologyAsync(this WebApplication app, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(app);
        var settings = app.Services.GetRequiredService<IOptions<ShareHubOptions>>().Value;
        if (settings.Bus != BusTransport.RabbitMq)
        {
            return;
        }

        var participants = app.Services.GetRequiredService<PolicyStore>().Current.Participants.Select(p => p.Code);
        await DeclareAsync(new Uri(settings.RabbitMqUri), participants, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Declares the delivery and error exchanges and queues of <paramref name="organisations"/>.</summary>
    public static async Task DeclareAsync(Uri rabbitMq, IEnumerable<string> organisations, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(organisations);
        var factory = new ConnectionFactory { Uri = rabbitMq, ClientProvidedName = "sharehub-hub-topology" };
        await using var connection = await factory.CreateConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        foreach (var organisation in organisations)
        {
            var queue = QueueNames.Deliveries(organisation);
            var error = ErrorQueue(organisation);
            await channel.ExchangeDeclareAsync(error, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken).ConfigureAwait(false);
            await channel.QueueDeclareAsync(error, durable: true, exclusive: false, autoDelete: false, cancellationToken: cancellationToken).ConfigureAwait(false);
            await channel.QueueBindAsync(error, error, string.Empty, cancellationToken: cancellationToken).ConfigureAwait(false);

            // Same exchange settings MassTransit uses when the dispatcher sends to exchange:<queue> (fanout, durable).
            await channel.ExchangeDeclareAsync(queue, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken).ConfigureAwait(false);
            await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false,
                arguments: new Dictionary<string, object?> { ["x-dead-letter-exchange"] = error }, cancellationToken: cancellationToken).ConfigureAwait(false);
            await channel.QueueBindAsync(queue, queue, string.Empty, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }
}
