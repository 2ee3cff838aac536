using MassTransit;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Data;
using ShareHub.Contracts;

namespace ShareHub.Broker.Delivery;

/// <summary>
/// Records recipients' acknowledgements, once per delivery: a redelivered acknowledgement is absorbed. An
/// acknowledgement for an unknown delivery, or from an organisation that was not its recipient, is audited as
/// rejected and not recorded. Acknowledgements are consumed in batches (MassTransit <see cref="Batch{T}"/>): one
/// query for the deliveries, one for earlier acknowledgements and ONE transaction — one chain-head lock — for all
/// their audit entries. The queue's messages are acknowledged to RabbitMQ only after that commit, so a crash loses
/// nothing (the batch is redelivered and its duplicates absorbed).
/// </summary>
public sealed class DeliveryAcknowledgedConsumer(HubDbContext db, TimeProvider time, ILogger<DeliveryAcknowledgedConsumer> logger) : IConsumer<Batch<DeliveryAcknowledged>>
{
    /// <inheritdoc />
    public Task Consume(ConsumeContext<Batch<DeliveryAcknowledged>> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return RecordAsync([.. context.Message.Select(m => m.Message)], context.CancellationToken);
    }

    private async Task RecordAsync(IReadOnlyList<DeliveryAcknowledged> acks, CancellationToken cancellationToken)
    {
        var ids = acks.Select(a => a.DeliveryId).Distinct().ToList();
        var deliveries = await db.Outbox.AsNoTracking()
            .Include(o => o.AuditEntry)
            .Where(o => ids.Contains(o.DeliveryId))
            .ToDictionaryAsync(o => o.DeliveryId, cancellationToken)
            .ConfigureAwait(false);
        var recorded = (await db.Acknowledgements.AsNoTracking().Where(a => ids.Contains(a.DeliveryId)).Select(a => a.DeliveryId)
            .ToListAsync(cancellationToken).ConfigureAwait(false)).ToHashSet();
        var now = time.GetUtcNow();

        foreach (var ack in acks)
        {
            deliveries.TryGetValue(ack.DeliveryId, out var delivery);
            if (delivery is null || delivery.Recipient != ack.Recipient)
            {
                db.AuditEntries.Add(new AuditEntry
                {
                    Kind = AuditKinds.Acknowledgement,
                    RecordedAt = now,
                    ActorOrganisation = ack.Recipient,
                    Actor = $"bus:{ack.Recipient}",
                    DeliveryId = ack.DeliveryId,
                    Recipient = ack.Recipient,
                    Outcome = "rejected",
                    ReasonCode = ErrorCodes.AcknowledgementRejected,
                    Explanation = delivery is null
                        ? $"'{ack.Recipient}' acknowledged delivery {ack.DeliveryId}, which the hub never queued."
                        : $"'{ack.Recipient}' acknowledged delivery {ack.DeliveryId}, which was addressed to '{delivery.Recipient}'.",
                });
                continue;
            }

            if (!recorded.Add(ack.DeliveryId))
            {
                logger.LogDebug("Duplicate acknowledgement of {DeliveryId} absorbed", ack.DeliveryId);
                continue;
            }

            db.Acknowledgements.Add(new Acknowledgement
            {
                DeliveryId = ack.DeliveryId,
                Recipient = ack.Recipient,
                AcknowledgedAt = ack.AcknowledgedAt,
                ReceivedAt = now,
            });
            db.AuditEntries.Add(AuditRecords.Acknowledged(delivery, ack.Recipient, now));
        }

        if (!db.ChangeTracker.HasChanges())
        {
            return;
        }

        try
        {
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (DbUpdateException) when (acks.Count > 1)
        {
            // A concurrent redelivery (another instance) recorded one of them first and spoiled the batch's
            // transaction, which rolled back: record each on its own, so the others are not held up.
            db.ChangeTracker.Clear();
            foreach (var ack in acks)
            {
                await RecordAsync([ack], cancellationToken).ConfigureAwait(false);
            }
        }
        catch (DbUpdateException)
        {
            if (!await IsAlreadyAcknowledgedAsync(acks[0].DeliveryId).ConfigureAwait(false))
            {
                throw; // a real storage failure: retry, then the error queue
            }

            // A concurrent redelivery won the race: the acknowledgement is recorded exactly once.
            logger.LogDebug("Concurrent duplicate acknowledgement of {DeliveryId} absorbed", acks[0].DeliveryId);
        }
    }

    private async Task<bool> IsAlreadyAcknowledgedAsync(Guid deliveryId)
    {
        db.ChangeTracker.Clear();
        return await db.Acknowledgements.AnyAsync(a => a.DeliveryId == deliveryId).ConfigureAwait(false);
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
