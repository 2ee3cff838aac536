using System.Text.Json;

namespace ShareHub.Contracts;

/// <summary>The subject (betrokkene) a signal is about.</summary>
/// <param name="Type">One of <see cref="SubjectTypes.Submittable"/>: bsn, kvk or address.</param>
/// <param name="Id">BSN (nine digits, elfproef), KvK number (eight digits) or address text.</param>
public sealed record SubjectDto(string? Type, string? Id);

/// <summary>Body of <c>POST /api/v1/signals</c>. The provider is never in the body: it is the caller.</summary>
/// <param name="Subject">Whom the signal is about.</param>
/// <param name="Category">Data category code from the policy set.</param>
/// <param name="Purpose">Purpose (doel) code from the policy set.</param>
/// <param name="CaseReference">Optional case (casus) reference.</param>
/// <param name="Recipients">Organisation codes the submitter intends to share with.</param>
/// <param name="Payload">The signal's content (a JSON object).</param>
public sealed record SubmitSignalRequest(
    SubjectDto? Subject,
    string? Category,
    string? Purpose,
    string? CaseReference,
    IReadOnlyList<string>? Recipients,
    JsonElement? Payload);

/// <summary>The decision for one intended recipient.</summary>
/// <param name="Recipient">Organisation code.</param>
/// <param name="Permitted">Whether a delivery was queued.</param>
/// <param name="ReasonCode">Stable code (SH-P…) explaining the decision.</param>
/// <param name="Explanation">Human sentence explaining the decision.</param>
/// <param name="RuleId">Rule that decided, or null when no rule applied.</param>
/// <param name="LegalGround">Citation of the legal ground when permitted.</param>
/// <param name="DeliveryId">Delivery id when permitted; the delivery follows asynchronously.</param>
/// <param name="AuditEntryId">The audit entry recorded for this decision.</param>
public sealed record RecipientDecisionDto(
    string Recipient,
    bool Permitted,
    string ReasonCode,
    string Explanation,
    string? RuleId,
    string? LegalGround,
    Guid? DeliveryId,
    long AuditEntryId);

/// <summary>202 response: the signal was stored and each recipient was decided.</summary>
/// <param name="SignalId">The stored signal.</param>
/// <param name="PolicyVersion">Content hash of the policy set that decided.</param>
/// <param name="Decisions">One decision per intended recipient.</param>
public sealed record SubmitSignalResponse(Guid SignalId, string PolicyVersion, IReadOnlyList<RecipientDecisionDto> Decisions);

/// <summary>Status of one recipient of a signal, as the submitter may see it.</summary>
/// <param name="Recipient">Organisation code.</param>
/// <param name="Permitted">Whether the policy permitted the delivery.</param>
/// <param name="ReasonCode">Stable decision code.</param>
/// <param name="Explanation">Human sentence explaining the decision.</param>
/// <param name="RuleId">Rule that decided, if any.</param>
/// <param name="LegalGround">Legal ground citation, if permitted.</param>
/// <param name="Obligations">Obligations applied to the recipient's copy, if any.</param>
/// <param name="DeliveryState">refused, queued (in the outbox), dispatched (on the recipient's queue) or acknowledged.</param>
/// <param name="DispatchedAt">When the bus confirmed the delivery.</param>
/// <param name="AcknowledgedAt">When the recipient acknowledged it.</param>
public sealed record RecipientStatusDto(
    string Recipient,
    bool Permitted,
    string ReasonCode,
    string Explanation,
    string? RuleId,
    string? LegalGround,
    string? Obligations,
    string DeliveryState,
    DateTimeOffset? DispatchedAt,
    DateTimeOffset? AcknowledgedAt);

/// <summary>Response of <c>GET /api/v1/signals/{id}</c>: the signal's decisions and delivery progress.</summary>
/// <param name="SignalId">Signal id.</param>
/// <param name="Provider">Submitting organisation.</param>
/// <param name="Category">Data category.</param>
/// <param name="Purpose">Purpose.</param>
/// <param name="CaseReference">Case reference, if any.</param>
/// <param name="SubmittedAt">When the hub accepted it.</param>
/// <param name="PolicyVersion">Policy set version that decided.</param>
/// <param name="Recipients">Per recipient status.</param>
public sealed record SignalStatusResponse(
    Guid SignalId,
    string Provider,
    string Category,
    string Purpose,
    string? CaseReference,
    DateTimeOffset SubmittedAt,
    string PolicyVersion,
    IReadOnlyList<RecipientStatusDto> Recipients);

/// <summary>One audit entry as served to a privacy officer. Refers to the subject only by pseudonym.</summary>
/// <param name="Id">Sequence id.</param>
/// <param name="Kind">signal.decision, delivery.acknowledged, policy.activated, …</param>
/// <param name="RecordedAt">When it was recorded.</param>
/// <param name="ActorOrganisation">Organisation that acted.</param>
/// <param name="Actor">Client or user that acted.</param>
/// <param name="SignalId">Signal concerned.</param>
/// <param name="DeliveryId">Delivery concerned.</param>
/// <param name="Provider">Providing organisation.</param>
/// <param name="Recipient">Receiving organisation.</param>
/// <param name="Category">Data category.</param>
/// <param name="Purpose">Purpose.</param>
/// <param name="CaseReference">Case reference.</param>
/// <param name="SubjectType">Identifier type of the data subject.</param>
/// <param name="SubjectPseudonym">Keyed pseudonym of the data subject.</param>
/// <param name="Outcome">permit, deny, acknowledged, …</param>
/// <param name="ReasonCode">Stable reason code.</param>
/// <param name="Explanation">Human explanation.</param>
/// <param name="RuleId">Policy rule id.</param>
/// <param name="LegalGround">Legal ground citation.</param>
/// <param name="Obligations">Obligations applied.</param>
/// <param name="PolicyVersion">Policy set version.</param>
/// <param name="TraceId">W3C trace id.</param>
public sealed record AuditEntryDto(
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
    string ReasonCode,
    string Explanation,
    string? RuleId,
    string? LegalGround,
    string? Obligations,
    string? PolicyVersion,
    string? TraceId);
