namespace ShareHub.Contracts;

/// <summary>
/// Body of <c>POST /api/v1/cases</c>: an analyst of the RIEC bureau opens a case (casus) from one or more signals.
/// The owner is the caller's organisation, never the body.
/// </summary>
/// <param name="Reference">The case reference (casusnummer), e.g. <c>RIEC-2026-017</c>; unique in the hub.</param>
/// <param name="Weighing">
/// The documented weighing decision (weging): why sharing within this case is necessary and proportionate. Required;
/// shown in the audit trail, so it must not contain personal data beyond what the case needs.
/// </param>
/// <param name="SignalIds">Signals the case is opened from: each must have been submitted by or delivered to the owner.</param>
/// <param name="Participants">Organisations taking part (deelnemers), besides the owner.</param>
public sealed record OpenCaseRequest(string? Reference, string? Weighing, IReadOnlyList<Guid>? SignalIds, IReadOnlyList<string>? Participants);

/// <summary>Body of <c>POST /api/v1/cases/{reference}/phase</c>: moves a case forward (never back).</summary>
/// <param name="Phase">The new phase, later than the current one (see the RIEC process order); <c>afgesloten</c> closes the case.</param>
/// <param name="Reason">Why the case moves on (recorded in the audit trail).</param>
public sealed record ChangeCasePhaseRequest(string? Phase, string? Reason);

/// <summary>Body of <c>POST /api/v1/cases/{reference}/participants</c> and <c>DELETE …/participants/{organisation}</c>.</summary>
/// <param name="Organisation">Organisation code of a participant of the partnership.</param>
/// <param name="Reason">Why the organisation joins or leaves the case.</param>
public sealed record CaseParticipantRequest(string? Organisation, string? Reason);

/// <summary>
/// Body of <c>POST /api/v1/cases/{reference}/requests</c> (information requested) and <c>…/interventions</c>
/// (intervention assigned): a task for one participant. The text describes the task, never the data itself.
/// </summary>
/// <param name="Organisation">The participant asked to provide information or to intervene.</param>
/// <param name="Category">For a request: the data category asked for. For an intervention: the category it concerns.</param>
/// <param name="Purpose">For a request: the purpose the data will be used for. For an intervention: its purpose (e.g. <c>bestuurlijke-interventie</c>).</param>
/// <param name="Text">What is asked, in a sentence (no personal data).</param>
public sealed record CaseTaskRequest(string? Organisation, string? Category, string? Purpose, string? Text);

/// <summary>Body of <c>POST /api/v1/cases/{reference}/questions</c>: a hit/no-hit question (bevraging) to every participant.</summary>
/// <param name="Subject">Whom the question is about (bsn, kvk or address).</param>
/// <param name="Category">Data category of the question; by default <c>bsn</c> for a BSN, <c>kvk-ubo</c> for a KvK number, <c>identiteit</c> for an address.</param>
public sealed record AskHitNoHitRequest(SubjectDto? Subject, string? Category);

/// <summary>
/// Body of <c>POST /api/v1/questions/{id}/answer</c>: a partner's answer to a hit/no-hit question. Only the bit, keyed
/// by the subject pseudonym from the question; the answering organisation is the caller's token, never the body.
/// </summary>
/// <param name="SubjectPseudonym">The <c>psn:</c> pseudonym the question carried (proves which subject is answered).</param>
/// <param name="Hit">True when the organisation holds information on the subject.</param>
public sealed record AnswerHitNoHitRequest(string? SubjectPseudonym, bool? Hit);

/// <summary>The decision for one recipient of a case event or question.</summary>
/// <param name="Recipient">Organisation code.</param>
/// <param name="Permitted">Whether the event was queued for it.</param>
/// <param name="ReasonCode">Stable decision code.</param>
/// <param name="RuleId">Rule that decided, if any.</param>
/// <param name="DeliveryId">Delivery id when permitted.</param>
public sealed record CaseEventDecisionDto(string Recipient, bool Permitted, string ReasonCode, string? RuleId, Guid? DeliveryId);

/// <summary>The outcome of a case command: the case as it is now and who was told.</summary>
/// <param name="Case">The case after the command.</param>
/// <param name="Event">The event kind published (see <see cref="CaseEventKinds"/>).</param>
/// <param name="Decisions">One decision per participant the event was addressed to.</param>
public sealed record CaseCommandResponse(CaseDto Case, string Event, IReadOnlyList<CaseEventDecisionDto> Decisions);

/// <summary>A case as its owner sees it.</summary>
/// <param name="Reference">Case reference.</param>
/// <param name="Owner">Organisation that opened it (the RIEC bureau).</param>
/// <param name="Phase">Current phase (see <c>CasePhases</c> in the policy engine).</param>
/// <param name="Weighing">The documented weighing decision.</param>
/// <param name="Participants">Participating organisations, owner included.</param>
/// <param name="SignalIds">Signals linked to the case.</param>
/// <param name="OpenedAt">When it was opened.</param>
/// <param name="ClosedAt">When it was closed; null while open.</param>
public sealed record CaseDto(
    string Reference,
    string Owner,
    string Phase,
    string Weighing,
    IReadOnlyList<string> Participants,
    IReadOnlyList<Guid> SignalIds,
    DateTimeOffset OpenedAt,
    DateTimeOffset? ClosedAt);

/// <summary>
/// A hit/no-hit question as the RIEC sees it: one state per participant asked — <c>hit</c>, <c>no-hit</c>,
/// <c>pending</c> or <c>refused</c> (the policy did not permit asking it). Nothing else: no content, no reasons.
/// </summary>
/// <param name="QuestionId">Question id.</param>
/// <param name="CaseReference">The case.</param>
/// <param name="SubjectType">bsn, kvk or address.</param>
/// <param name="SubjectPseudonym">Keyed pseudonym of the subject.</param>
/// <param name="Answers">Organisation code → hit, no-hit, pending or refused.</param>
public sealed record HitNoHitQuestionDto(Guid QuestionId, string CaseReference, string SubjectType, string SubjectPseudonym, IReadOnlyDictionary<string, string> Answers);

/// <summary>The privacy officer's view of one case: the case and every audit entry that refers to it.</summary>
/// <param name="Case">The case (null when the reference is known only from the audit trail).</param>
/// <param name="Scope">partnership, or the officer's organisation.</param>
/// <param name="SignalsRetainedUntil">Per linked signal: when its payload is deleted (null while the case is open), or when it was.</param>
/// <param name="Entries">Audit entries of the case, in chain order.</param>
public sealed record CaseHistoryDto(CaseDto? Case, string Scope, IReadOnlyDictionary<Guid, DateTimeOffset?> SignalsRetainedUntil, IReadOnlyList<AuditRecordDto> Entries);

/// <summary>What happened in a case; the <see cref="DeliverCaseEvent.Kind"/> values.</summary>
public static class CaseEventKinds
{
    /// <summary>A case was opened with the recipient as participant.</summary>
    public const string Opened = "case.opened";

    /// <summary>The case moved to another phase.</summary>
    public const string PhaseChanged = "case.phase-changed";

    /// <summary>An organisation joined the case.</summary>
    public const string ParticipantAdded = "case.participant-added";

    /// <summary>An organisation left the case.</summary>
    public const string ParticipantRemoved = "case.participant-removed";

    /// <summary>The recipient is asked to provide information (a follow-up request; the data itself follows as a signal).</summary>
    public const string InformationRequested = "case.information-requested";

    /// <summary>The recipient is assigned an intervention.</summary>
    public const string InterventionAssigned = "case.intervention-assigned";

    /// <summary>The case was closed; the retention clock of its data started.</summary>
    public const string Closed = "case.closed";

    /// <summary>A hit/no-hit question: does the recipient hold information on the subject? Answer over HTTP.</summary>
    public const string HitNoHitAsked = "case.question";
}
