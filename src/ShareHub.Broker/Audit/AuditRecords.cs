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

    /// <summary><paramref name="recipient"/> acknowledged receipt of <paramref name="delivery"/> (whose decision entry is loaded).</summary>
    public static AuditEntry Acknowledged(OutboxMessage delivery, string recipient, DateTimeOffset now)
    {
        var decision = delivery.AuditEntry!;
        return new AuditEntry
        {
            Kind = AuditKinds.Acknowledgement,
            RecordedAt = now,
            ActorOrganisation = recipient,
            Actor = $"bus:{recipient}",
            SignalId = delivery.SignalId,
            DeliveryId = delivery.DeliveryId,
            Provider = decision.Provider,
            Recipient = recipient,
            Category = decision.Category,
            Purpose = decision.Purpose,
            CaseReference = decision.CaseReference,
            SubjectType = decision.SubjectType,
            SubjectPseudonym = decision.SubjectPseudonym,
            Outcome = "acknowledged",
            ReasonCode = ErrorCodes.Acknowledged,
            Explanation = $"'{recipient}' acknowledged receipt of delivery {delivery.DeliveryId}.",
            RuleId = decision.RuleId,
            LegalGround = decision.LegalGround,
            PolicyVersion = decision.PolicyVersion,
            TraceId = decision.TraceId,
        };
    }

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
