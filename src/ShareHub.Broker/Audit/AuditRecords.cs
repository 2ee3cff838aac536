using ShareHub.Broker.Data;

namespace ShareHub.Broker.Audit;

/// <summary>Audit entries that follow a decision: they repeat its who/what/about-whom so each line stands alone (Logius: one line per data subject).</summary>
internal static class AuditRecords
{
    /// <summary>The dispatcher published <paramref name="row"/> to the recipient's own queue.</summary>
    public static AuditEntry Dispatched(OutboxMessage row, DateTimeOffset now)
    {
        var decision = row.AuditEntry;
        return new AuditEntry
        {
            Kind = AuditKinds.Dispatched,
            RecordedAt = now,
            ActorOrganisation = AuditTrail.HubOrganisation,
            Actor = "outbox-dispatcher",
            SignalId = row.SignalId,
            DeliveryId = row.DeliveryId,
            Provider = decision?.Provider,
            Recipient = row.Recipient,
            Category = decision?.Category,
            Purpose = decision?.Purpose,
            CaseReference = decision?.CaseReference,
            SubjectType = decision?.SubjectType,
            SubjectPseudonym = decision?.SubjectPseudonym,
            Outcome = "dispatched",
            ReasonCode = ErrorCodes.Dispatched,
            Explanation = $"Delivery {row.DeliveryId} was published to the queue of '{row.Recipient}' (attempt {row.Attempts}).",
            RuleId = decision?.RuleId,
            LegalGround = decision?.LegalGround,
            PolicyVersion = decision?.PolicyVersion,
            TraceId = decision?.TraceId,
            ParentSpanId = decision?.SpanId,
        };
    }

    /// <summary><paramref name="recipient"/> acknowledged receipt of <paramref name="delivery"/>.</summary>
    public static AuditEntry Acknowledged(AcknowledgedDelivery delivery, string recipient, DateTimeOffset now) => new()
    {
        Kind = AuditKinds.Acknowledgement,
        RecordedAt = now,
        ActorOrganisation = recipient,
        Actor = $"bus:{recipient}",
        SignalId = delivery.SignalId,
        DeliveryId = delivery.DeliveryId,
        Provider = delivery.Provider,
        Recipient = recipient,
        Category = delivery.Category,
        Purpose = delivery.Purpose,
        CaseReference = delivery.CaseReference,
        SubjectType = delivery.SubjectType,
        SubjectPseudonym = delivery.SubjectPseudonym,
        Outcome = "acknowledged",
        ReasonCode = ErrorCodes.Acknowledged,
        Explanation = $"'{recipient}' acknowledged receipt of delivery {delivery.DeliveryId}.",
        RuleId = delivery.RuleId,
        LegalGround = delivery.LegalGround,
        PolicyVersion = delivery.PolicyVersion,
        TraceId = delivery.TraceId,
    };

    /// <summary>The retention purge deleted <paramref name="signal"/>'s payload, submitted identifier and <paramref name="copies"/> recipient copies.</summary>
    public static AuditEntry Purged(Signal signal, int copies, string actorOrganisation, string actor, DateTimeOffset now) => new()
    {
        Kind = AuditKinds.RetentionPurged,
        RecordedAt = now,
        ActorOrganisation = actorOrganisation,
        Actor = actor,
        SignalId = signal.Id,
        Provider = signal.Provider,
        Category = signal.Category,
        Purpose = signal.Purpose,
        CaseReference = signal.CaseReference,
        SubjectType = signal.SubjectType,
        SubjectPseudonym = signal.SubjectPseudonym,
        Outcome = "purged",
        ReasonCode = ErrorCodes.RetentionPurged,
        Explanation = copies == 0
            ? $"Retention of signal {signal.Id} ended {signal.RetainUntil:yyyy-MM-dd HH:mm:ss}Z (no recipient was permitted): payload and submitted identifier deleted; audit metadata kept."
            : $"Retention of signal {signal.Id} ended {signal.RetainUntil:yyyy-MM-dd HH:mm:ss}Z: payload, submitted identifier and {copies} recipient copy(ies) deleted; audit metadata kept.",
        PolicyVersion = signal.PolicyVersion,
    };
}

/// <summary>
/// What an acknowledgement entry needs of a delivery: the outbox row's recipient and signal, and what its decision entry
/// says about the exchange. Read as these columns only — not the message or the whole decision entry.
/// </summary>
/// <param name="DeliveryId">The delivery.</param>
/// <param name="Recipient">The organisation it was addressed to.</param>
/// <param name="SignalId">The signal delivered; null for a case event.</param>
/// <param name="Provider">The decision's providing organisation.</param>
/// <param name="Category">The decision's data category.</param>
/// <param name="Purpose">The decision's purpose (doelbinding).</param>
/// <param name="CaseReference">The decision's case reference.</param>
/// <param name="SubjectType">The decision's subject type.</param>
/// <param name="SubjectPseudonym">The decision's subject pseudonym.</param>
/// <param name="RuleId">The rule that permitted the delivery.</param>
/// <param name="LegalGround">The rule's legal ground (grondslag).</param>
/// <param name="PolicyVersion">The policy version decided under.</param>
/// <param name="TraceId">The submitting request's trace.</param>
internal sealed record AcknowledgedDelivery(
    Guid DeliveryId,
    string Recipient,
    Guid? SignalId,
    string? Provider,
    string? Category,
    string? Purpose,
    string? CaseReference,
    string? SubjectType,
    string? SubjectPseudonym,
    string? RuleId,
    string? LegalGround,
    string? PolicyVersion,
    string? TraceId);
