namespace ShareHub.Contracts;

/// <summary>Outcome of recomputing the audit hash chain and checking the signed checkpoints.</summary>
/// <param name="Valid">True when every entry, the chain head and every checkpoint check out.</param>
/// <param name="Entries">Entries read (in sequence order) before the check stopped.</param>
/// <param name="Checkpoints">Signed checkpoints stored.</param>
/// <param name="CheckpointsVerified">Checkpoints whose signature and head hash were confirmed.</param>
/// <param name="FirstBadSequence">Sequence of the first entry that fails (changed, missing, reordered), if any.</param>
/// <param name="FirstBadEntryId">Database id of the row found at that position, if any.</param>
/// <param name="Problem">What is wrong, in words; null when valid.</param>
/// <param name="HeadHash">Hex chain hash of the last entry read.</param>
/// <param name="LastCheckpointSequence">Entries covered by the latest checkpoint.</param>
/// <param name="LastCheckpointAt">When the latest checkpoint was signed.</param>
/// <param name="KeyId">Id of the hub key the checkpoints were checked with.</param>
/// <param name="Milliseconds">How long the verification took.</param>
public sealed record AuditVerificationDto(
    bool Valid,
    long Entries,
    int Checkpoints,
    int CheckpointsVerified,
    long? FirstBadSequence,
    long? FirstBadEntryId,
    string? Problem,
    string HeadHash,
    long? LastCheckpointSequence,
    DateTimeOffset? LastCheckpointAt,
    string KeyId,
    long Milliseconds);

/// <summary>One page of an audit search.</summary>
/// <param name="Entries">Matching entries in sequence order.</param>
/// <param name="NextAfterSequence">Pass as <c>afterSequence</c> for the next page; null on the last page.</param>
public sealed record AuditSearchResponse(IReadOnlyList<AuditRecordDto> Entries, long? NextAfterSequence);

/// <summary>An audit entry with its chain position and Logius "Logboek dataverwerkingen" fields.</summary>
/// <param name="Sequence">Position in the hash chain.</param>
/// <param name="Id">Database id.</param>
/// <param name="Kind">What happened (signal.decision, delivery.dispatched, …).</param>
/// <param name="RecordedAt">When (start_time = end_time: the hub records instants).</param>
/// <param name="ActorOrganisation">Organisation that acted.</param>
/// <param name="Actor">Client or user that acted.</param>
/// <param name="SignalId">Signal concerned.</param>
/// <param name="DeliveryId">Delivery concerned.</param>
/// <param name="Provider">Providing organisation.</param>
/// <param name="Recipient">Receiving organisation.</param>
/// <param name="Category">Data category.</param>
/// <param name="Purpose">Purpose.</param>
/// <param name="CaseReference">Case reference.</param>
/// <param name="SubjectType">Data subject identifier type (dpl.core.data_subject_id_type).</param>
/// <param name="SubjectPseudonym">Pseudonymised data subject id (dpl.core.data_subject_id).</param>
/// <param name="Outcome">permit, deny, dispatched, acknowledged, purged, …</param>
/// <param name="StatusCode">Logius status_code: OK or ERROR.</param>
/// <param name="ReasonCode">Stable reason code.</param>
/// <param name="Explanation">Explanation in words.</param>
/// <param name="RuleId">Policy rule.</param>
/// <param name="LegalGround">Legal ground citation.</param>
/// <param name="Obligations">Obligations applied.</param>
/// <param name="PolicyVersion">Policy set version.</param>
/// <param name="ProcessingActivityId">dpl.core.processing_activity_id.</param>
/// <param name="TraceId">trace_id.</param>
/// <param name="SpanId">span_id.</param>
/// <param name="ParentSpanId">parent_span_id.</param>
/// <param name="ForeignOperation">foreign_operation (the caller's traceparent).</param>
/// <param name="Hash">Hex chain hash.</param>
public sealed record AuditRecordDto(
    long Sequence,
    long Id,
    string Kind,
    DateTimeOffset RecordedAt,
    string ActorOrganisation,
    string Actor,
    Guid? SignalId,
    Guid? DeliveryId,
    string? Provider,
    string? Recipient,
    string? Category,
    string? Purpose,
    string? CaseReference,
    string? SubjectType,
    string? SubjectPseudonym,
    string Outcome,
    string StatusCode,
    string ReasonCode,
    string Explanation,
    string? RuleId,
    string? LegalGround,
    string? Obligations,
    string? PolicyVersion,
    string? ProcessingActivityId,
    string? TraceId,
    string? SpanId,
    string? ParentSpanId,
    string? ForeignOperation,
    string Hash);

/// <summary>
/// AVG art. 15 report for one data subject: to which organisations the hub disclosed which categories about them,
/// when, for which purpose and on which legal ground — and which intended disclosures were refused.
/// </summary>
/// <param name="SubjectType">Identifier type searched for.</param>
/// <param name="SubjectPseudonym">The subject's pseudonym (the hub never stores the BSN in the audit trail).</param>
/// <param name="GeneratedAt">When the report was made.</param>
/// <param name="Scope">"partnership" (all joint controllers, BGS art. 1.1) or the organisation it was limited to.</param>
/// <param name="Disclosures">Permitted deliveries, oldest first.</param>
/// <param name="Refusals">Intended deliveries the policy refused (nothing was sent).</param>
public sealed record Art15ReportDto(
    string SubjectType,
    string SubjectPseudonym,
    DateTimeOffset GeneratedAt,
    string Scope,
    IReadOnlyList<Art15DisclosureDto> Disclosures,
    IReadOnlyList<Art15RefusalDto> Refusals);

/// <summary>One disclosure: the provider shared a category with a recipient.</summary>
/// <param name="SignalId">Signal.</param>
/// <param name="DeliveryId">Delivery.</param>
/// <param name="Provider">Who provided the data.</param>
/// <param name="Recipient">Who received it.</param>
/// <param name="Category">Data category.</param>
/// <param name="Purpose">Purpose it may be used for.</param>
/// <param name="LegalGround">Legal ground citation.</param>
/// <param name="RuleId">Policy rule that permitted it.</param>
/// <param name="CaseReference">Case, if any.</param>
/// <param name="DecidedAt">When the hub decided (and stored the recipient's copy).</param>
/// <param name="DispatchedAt">When it was put on the recipient's queue.</param>
/// <param name="AcknowledgedAt">When the recipient's acknowledgement was recorded.</param>
/// <param name="PurgedAt">When the hub deleted its copies at the end of the retention period.</param>
public sealed record Art15DisclosureDto(
    Guid? SignalId,
    Guid? DeliveryId,
    string? Provider,
    string? Recipient,
    string? Category,
    string? Purpose,
    string? LegalGround,
    string? RuleId,
    string? CaseReference,
    DateTimeOffset DecidedAt,
    DateTimeOffset? DispatchedAt,
    DateTimeOffset? AcknowledgedAt,
    DateTimeOffset? PurgedAt);

/// <summary>One refused disclosure.</summary>
/// <param name="SignalId">Signal.</param>
/// <param name="Provider">Who wanted to share.</param>
/// <param name="Recipient">With whom.</param>
/// <param name="Category">Data category.</param>
/// <param name="Purpose">Purpose.</param>
/// <param name="ReasonCode">Why it was refused (stable code).</param>
/// <param name="DecidedAt">When.</param>
public sealed record Art15RefusalDto(Guid? SignalId, string? Provider, string? Recipient, string? Category, string? Purpose, string ReasonCode, DateTimeOffset DecidedAt);

/// <summary>Result of a retention purge run.</summary>
/// <param name="SignalsPurged">Signals whose payload and submitted identifier were deleted.</param>
/// <param name="OutboxCopiesPurged">Recipient copies (outbox messages) deleted with them, and copies of closed cases' events.</param>
/// <param name="WaitingForDispatch">Signals past retention still waiting for a delivery to be published (purged later).</param>
public sealed record RetentionPurgeResultDto(int SignalsPurged, int OutboxCopiesPurged, int WaitingForDispatch);

/// <summary>A signed checkpoint of the audit chain.</summary>
/// <param name="Sequence">Entries covered.</param>
/// <param name="HeadHash">Hex chain hash of entry <paramref name="Sequence"/>.</param>
/// <param name="CreatedAt">When it was signed.</param>
/// <param name="KeyId">Signing key id.</param>
/// <param name="Signature">Base64 ECDSA P-256 signature (IEEE P1363).</param>
public sealed record AuditCheckpointDto(long Sequence, string HeadHash, DateTimeOffset CreatedAt, string KeyId, string Signature);
