using MassTransit;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Data;
using ShareHub.Contracts;

namespace ShareHub.Broker.Delivery;

/// <summary>
/// Records a recipient's acknowledgement, once per delivery: a redelivered acknowledgement is absorbed.
/// An acknowledgement for an unknown delivery, or from an organisation that was not its recipient, is audited as
/// rejected and not recorded.
/// </summary>
public sealed class DeliveryAcknowledgedConsumer(HubDbContext db, TimeProvider time, ILogger<DeliveryAcknowledgedConsumer> logger) : IConsumer<DeliveryAcknowledged>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<DeliveryAcknowledged> context)
    {
        var ack = context.Message;
        var delivery = await db.Outbox.AsNoTracking()
            .Include(o => o.AuditEntry)
            .SingleOrDefaultAsync(o => o.DeliveryId == ack.DeliveryId, context.CancellationToken)
            .ConfigureAwait(false);
        var now = time.GetUtcNow();

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
            await db.SaveChangesAsync(context.CancellationToken).ConfigureAwait(false);
            return;
        }

        if (await db.Acknowledgements.AnyAsync(a => a.DeliveryId == ack.DeliveryId, context.CancellationToken).ConfigureAwait(false))
        {
            logger.LogDebug("Duplicate acknowledgement of {DeliveryId} absorbed", ack.DeliveryId);
            return;
        }

        var decision = delivery.AuditEntry!;
        db.Acknowledgements.Add(new Acknowledgement
        {
            DeliveryId = ack.DeliveryId,
            Recipient = ack.Recipient,
            AcknowledgedAt = ack.AcknowledgedAt,
            ReceivedAt = now,
        });
        db.AuditEntries.Add(new AuditEntry
        {
            Kind = AuditKinds.Acknowledgement,
            RecordedAt = now,
            ActorOrganisation = ack.Recipient,
            Actor = $"bus:{ack.Recipient}",
            SignalId = delivery.SignalId,
            DeliveryId = ack.DeliveryId,
            Provider = decision.Provider,
            Recipient = ack.Recipient,
            Category = decision.Category,
            Purpose = decision.Purpose,
            CaseReference = decision.CaseReference,
            SubjectType = decision.SubjectType,
            SubjectPseudonym = decision.SubjectPseudonym,
            Outcome = "acknowledged",
            ReasonCode = ErrorCodes.Acknowledged,
            Explanation = $"'{ack.Recipient}' acknowledged receipt of delivery {ack.DeliveryId}.",
            RuleId = decision.RuleId,
            LegalGround = decision.LegalGround,
            PolicyVersion = decision.PolicyVersion,
            TraceId = decision.TraceId,
        });

        try
        {
            await db.SaveChangesAsync(context.CancellationToken).ConfigureAwait(false);
        }
        catch (DbUpdateException)
        {
            if (!await IsAlreadyAcknowledgedAsync(ack.DeliveryId).ConfigureAwait(false))
            {
                throw; // a real storage failure: retry, then the error queue
            }

            // A concurrent redelivery won the race: the acknowledgement is recorded exactly once.
            logger.LogDebug("Concurrent duplicate acknowledgement of {DeliveryId} absorbed", ack.DeliveryId);
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
    /// <summary>Listens on the hub's acknowledgement queue.</summary>
    public DeliveryAcknowledgedConsumerDefinition() => EndpointName = QueueNames.Acknowledgements;

    /// <inheritdoc />
    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<DeliveryAcknowledgedConsumer> consumerConfigurator, IRegistrationContext context)
    {
        // A database hiccup must not drop an acknowledgement: retry, then the message lands in the _error queue.
        endpointConfigurator.UseMessageRetry(r => r.Intervals(100, 500, 2000, 5000, 10000));
    }
}
