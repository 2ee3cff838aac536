namespace ShareHub.Broker.Data;

/// <summary>A submitted signal (signaal). The payload is the provider's original; recipients get their own view.</summary>
public sealed class Signal
{
    /// <summary>Signal id.</summary>
    public Guid Id { get; set; }

    /// <summary>Organisation code of the submitter, from its authenticated identity.</summary>
    public required string Provider { get; set; }

    /// <summary>Who submitted on behalf of <see cref="Provider"/> (client or user name).</summary>
    public required string SubmittedBy { get; set; }

    /// <summary>bsn, kvk or address.</summary>
    public required string SubjectType { get; set; }

    /// <summary>The subject identifier as submitted. Payload-class data: subject to retention.</summary>
    public required string SubjectId { get; set; }

    /// <summary>Keyed pseudonym of the subject; what the audit trail refers to.</summary>
    public required string SubjectPseudonym { get; set; }

    /// <summary>Data category code.</summary>
    public required string Category { get; set; }

    /// <summary>Purpose (doel) code.</summary>
    public required string Purpose { get; set; }

    /// <summary>Case (casus) reference, if any.</summary>
    public string? CaseReference { get; set; }

    /// <summary>Payload JSON as submitted.</summary>
    public required string PayloadJson { get; set; }

    /// <summary>When the hub accepted it.</summary>
    public DateTimeOffset SubmittedAt { get; set; }

    /// <summary>Content hash of the policy set that decided.</summary>
    public required string PolicyVersion { get; set; }

    /// <summary>
    /// The submitter's <c>Idempotency-Key</c>, if it sent one: a retry with the same key returns this signal instead
    /// of storing a second one. Unique per provider.
    /// </summary>
    public string? IdempotencyKey { get; set; }

    /// <summary>SHA-256 of the submitted request, to refuse a key reused for a different request.</summary>
    public string? RequestHash { get; set; }

    /// <summary>
    /// When the payload and the submitted identifier must be deleted: the latest retention deadline of its permitted
    /// deliveries, or a short grace period when every recipient was refused (see docs/audit.md, retention).
    /// </summary>
    public DateTimeOffset? RetainUntil { get; set; }

    /// <summary>When the retention purge deleted the payload and the submitted identifier; null while kept.</summary>
    public DateTimeOffset? PayloadPurgedAt { get; set; }
}

/// <summary>
/// An append-only audit entry. One per (signal, recipient) decision — permits and denials alike — and one per
/// acknowledgement. Never refers to a raw BSN: only the subject pseudonym.
/// </summary>
public sealed class AuditEntry
{
    /// <summary>Monotonic id assigned by the database.</summary>
    public long Id { get; set; }

    /// <summary>What happened: see <see cref="AuditKinds"/>.</summary>
    public required string Kind { get; set; }

    /// <summary>When the hub recorded it.</summary>
    public DateTimeOffset RecordedAt { get; set; }

    /// <summary>Organisation that acted (the provider for a decision, the recipient for an acknowledgement).</summary>
    public required string ActorOrganisation { get; set; }

    /// <summary>Client or user that acted.</summary>
    public required string Actor { get; set; }

    /// <summary>Signal concerned, if any.</summary>
    public Guid? SignalId { get; set; }

    /// <summary>Delivery concerned, if any.</summary>
    public Guid? DeliveryId { get; set; }

    /// <summary>Providing organisation.</summary>
    public string? Provider { get; set; }

    /// <summary>Receiving organisation.</summary>
    public string? Recipient { get; set; }

    /// <summary>Data category code.</summary>
    public string? Category { get; set; }

    /// <summary>Purpose code.</summary>
    public string? Purpose { get; set; }

    /// <summary>Case reference.</summary>
    public string? CaseReference { get; set; }

    /// <summary>Identifier type of the data subject (bsn, kvk, address).</summary>
    public string? SubjectType { get; set; }

    /// <summary>Keyed pseudonym of the data subject.</summary>
    public string? SubjectPseudonym { get; set; }

    /// <summary>Outcome: permit, deny, acknowledged, rejected, activated…</summary>
    public required string Outcome { get; set; }

    /// <summary>Stable reason code (SH-…).</summary>
    public required string ReasonCode { get; set; }

    /// <summary>Human explanation.</summary>
    public required string Explanation { get; set; }

    /// <summary>Policy rule id, if a rule decided.</summary>
    public string? RuleId { get; set; }

    /// <summary>Legal ground citation, if permitted.</summary>
    public string? LegalGround { get; set; }

    /// <summary>Obligations applied to the recipient's copy (human list).</summary>
    public string? Obligations { get; set; }

    /// <summary>Content hash of the policy set in force.</summary>
    public string? PolicyVersion { get; set; }

    /// <summary>W3C trace id of the request that caused it.</summary>
    public string? TraceId { get; set; }

    /// <summary>Position in the hash chain (1, 2, 3, …), assigned in the writing transaction: sequence order = commit order.</summary>
    public long Sequence { get; set; }

    /// <summary>SHA-256(hash of entry <see cref="Sequence"/> − 1 ‖ canonical bytes of this entry); see docs/audit.md.</summary>
    public byte[] Hash { get; set; } = [];

    /// <summary>W3C span id of this entry (Logius "Logboek dataverwerkingen" <c>span_id</c>).</summary>
    public string? SpanId { get; set; }

    /// <summary>Span id of the operation that caused it (Logius <c>parent_span_id</c>).</summary>
    public string? ParentSpanId { get; set; }

    /// <summary>The calling organisation's W3C <c>traceparent</c>, if it sent one (Logius <c>foreign_operation</c>).</summary>
    public string? ForeignOperation { get; set; }

    /// <summary>Versioned URI of the processing activity in the art. 30 register (Logius <c>dpl.core.processing_activity_id</c>).</summary>
    public string? ProcessingActivityId { get; set; }
}

/// <summary>Audit entry kinds.</summary>
public static class AuditKinds
{
    /// <summary>A policy decision for one (signal, recipient) pair.</summary>
    public const string Decision = "signal.decision";

    /// <summary>A recipient acknowledged a delivery.</summary>
    public const string Acknowledgement = "delivery.acknowledged";

    /// <summary>A policy set was activated.</summary>
    public const string PolicyActivated = "policy.activated";

    /// <summary>A changed policy set was rejected and the active one kept.</summary>
    public const string PolicyRejected = "policy.rejected";

    /// <summary>The dispatcher published a permitted delivery to the recipient's queue.</summary>
    public const string Dispatched = "delivery.dispatched";

    /// <summary>A caller failed authentication (401) or authorisation (403).</summary>
    public const string AuthenticationFailed = Identity.IdentityAuditKinds.AuthenticationFailed;

    /// <summary>Somebody read the audit trail (search, export, art. 15 report, web page).</summary>
    public const string AuditAccessed = "audit.accessed";

    /// <summary>Somebody verified the hash chain and checkpoints.</summary>
    public const string AuditVerified = "audit.verified";

    /// <summary>The retention purge deleted a signal's payload and submitted identifier.</summary>
    public const string RetentionPurged = "retention.purged";

    /// <summary>An analyst opened a case (with its weighing decision).</summary>
    public const string CaseOpened = "case.opened";

    /// <summary>A case moved to another phase (closing included).</summary>
    public const string CasePhaseChanged = "case.phase-changed";

    /// <summary>An organisation joined or left a case.</summary>
    public const string CaseParticipantChanged = "case.participant-changed";

    /// <summary>A policy decision for one (case event, participant) pair, questions and tasks included.</summary>
    public const string CaseEventDecision = "case.event-decision";

    /// <summary>A participant answered a hit/no-hit question (or the answer was refused).</summary>
    public const string HitNoHitAnswered = "case.answer";

    /// <summary>A signal was refused because its case reference names no open case the provider takes part in.</summary>
    public const string CaseReferenceRefused = "case.reference-refused";
}

/// <summary>
/// Transactional outbox row: one per permitted delivery, written in the same transaction as the signal and its
/// audit entries, published by the dispatcher only after that transaction committed.
/// </summary>
public sealed class OutboxMessage
{
    /// <summary>Sequence in which deliveries were queued.</summary>
    public long Id { get; set; }

    /// <summary>Delivery id; also the MassTransit MessageId, so recipients can deduplicate.</summary>
    public Guid DeliveryId { get; set; }

    /// <summary>Signal delivered; null for a case event or question (<see cref="CaseId"/>).</summary>
    public Guid? SignalId { get; set; }

    /// <summary>Case whose event or question this row carries; null for a signal delivery.</summary>
    public Guid? CaseId { get; set; }

    /// <summary>
    /// Contract of <see cref="MessageJson"/>: <see cref="OutboxMessageTypes.Signal"/> or <see cref="OutboxMessageTypes.CaseEvent"/>.
    /// </summary>
    public string MessageType { get; set; } = OutboxMessageTypes.Signal;

    /// <summary>Recipient organisation: the message goes to its own queue only.</summary>
    public required string Recipient { get; set; }

    /// <summary>The audit entry recording the decision that permitted this delivery.</summary>
    public long AuditEntryId { get; set; }

    /// <summary>Navigation to <see cref="AuditEntryId"/>.</summary>
    public AuditEntry? AuditEntry { get; set; }

    /// <summary>The message as the recipient will receive it (obligations already applied), JSON.</summary>
    public required string MessageJson { get; set; }

    /// <summary>When the row was written.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>
    /// The signal delivery that <see cref="MessageJson"/> was serialised from, on rows the intake built in this process;
    /// null on rows read from the database. Not stored (EF Core maps public properties only): the dispatcher publishes
    /// it as it is instead of parsing the JSON back.
    /// </summary>
    internal Contracts.DeliverSignal? Built { get; init; }

    /// <summary>When the bus confirmed the publish; null while pending.</summary>
    public DateTimeOffset? DispatchedAt { get; set; }

    /// <summary>Number of publish attempts.</summary>
    public int Attempts { get; set; }

    /// <summary>Last publish error, for operators.</summary>
    public string? LastError { get; set; }
}

/// <summary>The contracts an outbox row can carry.</summary>
public static class OutboxMessageTypes
{
    /// <summary><see cref="Contracts.DeliverSignal"/>.</summary>
    public const string Signal = nameof(Contracts.DeliverSignal);

    /// <summary><see cref="Contracts.DeliverCaseEvent"/>.</summary>
    public const string CaseEvent = nameof(Contracts.DeliverCaseEvent);
}

/// <summary>A recipient's acknowledgement of a delivery. At most one per delivery.</summary>
public sealed class Acknowledgement
{
    /// <summary>Delivery acknowledged (primary key: duplicates are absorbed).</summary>
    public Guid DeliveryId { get; set; }

    /// <summary>Recipient organisation.</summary>
    public required string Recipient { get; set; }

    /// <summary>When the recipient says it processed the delivery.</summary>
    public DateTimeOffset AcknowledgedAt { get; set; }

    /// <summary>When the hub recorded the acknowledgement.</summary>
    public DateTimeOffset ReceivedAt { get; set; }
}
