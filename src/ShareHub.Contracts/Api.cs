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

/// <summary>
/// Body of <c>POST /api/v1/signals/batch</c>: several signals from one provider, stored in one transaction. Each is
/// validated and decided on its own; invalid ones are refused without holding up the others.
/// </summary>
/// <param name="Signals">1 to <see cref="MaxSignals"/> signals, each as for <c>POST /api/v1/signals</c>.</param>
public sealed record SubmitSignalBatchRequest(IReadOnlyList<SubmitSignalRequest>? Signals)
{
    /// <summary>Signals per batch, at most (the request body limit applies as well).</summary>
    public const int MaxSignals = 100;
}

/// <summary>
/// A refused batch item as RFC 9457 problem details (the same members as a single submission's 400 answer).
/// </summary>
/// <param name="Type">Problem type URI with the stable code (<c>urn:sharehub:error:SH-…</c>).</param>
/// <param name="Title">Short summary.</param>
/// <param name="Status">HTTP status the item would have had on its own (400).</param>
/// <param name="Detail">What happened to the item.</param>
/// <param name="Code">Stable code, e.g. <c>SH-V0001</c>.</param>
/// <param name="Errors">Messages per failed field.</param>
/// <param name="Codes">Stable codes per failed field.</param>
public sealed record SignalProblem(
    string Type,
    string Title,
    int Status,
    string Detail,
    string Code,
    IReadOnlyDictionary<string, string[]>? Errors,
    IReadOnlyDictionary<string, string[]>? Codes);

/// <summary>The outcome of one batch item, in request order.</summary>
/// <param name="Index">Position of the item in the request (0-based).</param>
/// <param name="Status">202 when stored and decided, otherwise the item's error status (400).</param>
/// <param name="Accepted">The decisions, as <c>POST /api/v1/signals</c> answers them, when accepted.</param>
/// <param name="Problem">Why the item was refused; nothing of it was stored.</param>
public sealed record SignalBatchItemResult(int Index, int Status, SubmitSignalResponse? Accepted, SignalProblem? Problem);

/// <summary>Response of <c>POST /api/v1/signals/batch</c>.</summary>
/// <param name="Accepted">Items stored and decided (committed together).</param>
/// <param name="Refused">Items refused as invalid (nothing of them stored).</param>
/// <param name="Results">One result per item, in request order.</param>
public sealed record SubmitSignalBatchResponse(int Accepted, int Refused, IReadOnlyList<SignalBatchItemResult> Results);
