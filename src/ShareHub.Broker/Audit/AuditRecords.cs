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
}
