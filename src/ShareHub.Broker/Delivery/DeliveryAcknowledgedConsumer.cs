using MassTransit;
using ShareHub.Broker.Data;
using ShareHub.Contracts;

namespace ShareHub.Broker.Delivery;

/// <summary>
/// Records recipients' acknowledgements sent on the bus (by <c>POST /api/v1/deliveries/{id}/acknowledgement</c>), once
/// per delivery: a redelivered acknowledgement is absorbed. An acknowledgement for an unknown delivery, or from an
/// organisation that was not its recipient, is audited as rejected and not recorded. Acknowledgements are consumed in
/// batches (MassTransit <see cref="Batch{T}"/>) and recorded by <see cref="AcknowledgementRecorder"/>: one query for
/// the deliveries and their earlier acknowledgements and ONE transaction — one chain-head lock, shared with concurrent
/// writes (<see cref="GroupCommitWriter"/>) — for all their audit entries. The queue's messages are acknowledged to RabbitMQ only after that commit, so a crash loses nothing (the
/// batch is redelivered and its duplicates absorbed).
/// </summary>
public sealed class DeliveryAcknowledgedConsumer(HubDbContext db, GroupCommitWriter writer, PublishedDeliveries published, TimeProvider time, ILogger<DeliveryAcknowledgedConsumer> logger) : IConsumer<Batch<DeliveryAcknowledged>>
{
    // The bus is the hub's own (partners cannot publish): a rejection may name the delivery's real recipient.
    private readonly AcknowledgementRecorder _recorder = new(db, writer, published, time, logger, namesOtherRecipient: true);

    /// <inheritdoc />
    public Task Consume(ConsumeContext<Batch<DeliveryAcknowledged>> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        // A storage failure other than a concurrent duplicate is thrown: retry, then the error queue.
        return _recorder.RecordAsync(
            [.. context.Message.Select(m => new AcknowledgementClaim(m.Message.DeliveryId, m.Message.Recipient, $"bus:{m.Message.Recipient}", m.Message.AcknowledgedAt))],
            context.CancellationToken);
    }
}

/// <summary>Endpoint and retry settings for <see cref="DeliveryAcknowledgedConsumer"/> (STYLE.md §9).</summary>
public sealed class DeliveryAcknowledgedConsumerDefinition : ConsumerDefinition<DeliveryAcknowledgedConsumer>
{
    /// <summary>Messages per batch, at most.</summary>
    internal const int BatchLimit = 100;

    /// <summary>Listens on the hub's acknowledgement queue, prefetching enough for two full batches.</summary>
    public DeliveryAcknowledgedConsumerDefinition()
    {
        EndpointName = QueueNames.Acknowledgements;
        Endpoint(e => e.PrefetchCount = 2 * BatchLimit);
    }

    /// <inheritdoc />
    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<DeliveryAcknowledgedConsumer> consumerConfigurator, IRegistrationContext context)
    {
        ArgumentNullException.ThrowIfNull(endpointConfigurator);
        ArgumentNullException.ThrowIfNull(consumerConfigurator);
        // A database hiccup must not drop an acknowledgement: retry, then the message lands in the _error queue.
        endpointConfigurator.UseMessageRetry(r => r.Intervals(100, 500, 2000, 5000, 10000));
        // Whatever arrived within 10 ms (up to BatchLimit) is recorded in one transaction; one batch at a time, as
        // batches would serialise on the audit chain-head lock anyway.
        consumerConfigurator.Options<BatchOptions>(o => o.SetMessageLimit(BatchLimit).SetTimeLimit(TimeSpan.FromMilliseconds(10)).SetConcurrencyLimit(1));
    }
}
