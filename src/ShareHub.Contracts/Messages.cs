namespace ShareHub.Contracts;

// MassTransit message contracts. Commands are imperative, events are past tense (STYLE.md §9).
// Every field a recipient sees has already passed the policy's obligations (pseudonymised BSN,
// stripped fields): the broker applies them before the message is written to the outbox.

/// <summary>
/// Command sent by the hub to one recipient's own delivery queue: "take delivery of this signal".
/// </summary>
/// <param name="DeliveryId">Unique per (signal, recipient); recipients deduplicate on it.</param>
/// <param name="SignalId">The submitted signal.</param>
/// <param name="Provider">Organisation code of the submitting partner (from its authenticated identity).</param>
/// <param name="Recipient">Organisation code of the recipient (the queue owner).</param>
/// <param name="Category">Data category (gegevenscategorie).</param>
/// <param name="Purpose">Purpose (doelbinding) the data may be used for.</param>
/// <param name="CaseReference">Case (casus) reference, when the signal belongs to one.</param>
/// <param name="SubjectType">One of <see cref="SubjectTypes"/>; <c>pseudonym</c> when the BSN was pseudonymised.</param>
/// <param name="SubjectId">The subject identifier as this recipient may see it.</param>
/// <param name="PayloadJson">The payload as this recipient may see it (JSON text).</param>
/// <param name="LegalGround">Citation of the legal ground (grondslag) the delivery rests on.</param>
/// <param name="RuleId">Policy rule that permitted the delivery.</param>
/// <param name="PolicyVersion">Content hash of the policy set that decided.</param>
/// <param name="AuditEntryId">The audit entry committed before this delivery was published.</param>
/// <param name="RetainUntil">Moment the recipient must delete the data, if the policy set a retention period.</param>
/// <param name="SubmittedAt">When the hub accepted the signal.</param>
public sealed record DeliverSignal(
    Guid DeliveryId,
    Guid SignalId,
    string Provider,
    string Recipient,
    string Category,
    string Purpose,
    string? CaseReference,
    string SubjectType,
    string SubjectId,
    string PayloadJson,
    string LegalGround,
    string RuleId,
    string PolicyVersion,
    long AuditEntryId,
    DateTimeOffset? RetainUntil,
    DateTimeOffset SubmittedAt);

/// <summary>
/// Command sent by the hub to one recipient's own delivery queue: "take delivery of these signals". When the dispatcher
/// has several committed signal deliveries for the same recipient at hand, it publishes them together in one message
/// (up to <c>ShareHub:Dispatcher:BundleSize</c> deliveries and about 64 KiB), so a busy hub pays one publish, one
/// confirm and one consume per bundle instead of per delivery. Each delivery is exactly the <see cref="DeliverSignal"/>
/// it would have been on its own, audited before the bundle was published; recipients process, deduplicate and
/// acknowledge each one by its <see cref="DeliverSignal.DeliveryId"/>. A bundle only ever holds deliveries addressed to
/// its <paramref name="Recipient"/>.
/// </summary>
/// <param name="Recipient">Organisation code of the recipient (the queue owner), the recipient of every delivery.</param>
/// <param name="Deliveries">The deliveries, at least two.</param>
public sealed record DeliverSignalBundle(string Recipient, IReadOnlyList<DeliverSignal> Deliveries);

/// <summary>Event sent by a recipient to the hub once it has processed a delivery.</summary>
/// <param name="DeliveryId">The delivery processed.</param>
/// <param name="Recipient">Organisation code of the acknowledging recipient.</param>
/// <param name="AcknowledgedAt">When the recipient processed it (recipient's clock).</param>
public sealed record DeliveryAcknowledged(Guid DeliveryId, string Recipient, DateTimeOffset AcknowledgedAt);

/// <summary>Queue names on the bus. One delivery queue per recipient organisation.</summary>
public static class QueueNames
{
    /// <summary>Queue where the hub receives <see cref="DeliveryAcknowledged"/> events.</summary>
    public const string Acknowledgements = "sharehub.acknowledgements";

    /// <summary>The delivery queue of one recipient organisation.</summary>
    public static string Deliveries(string organisation) => $"sharehub.deliveries.{organisation}";
}

/// <summary>
/// Command sent by the hub to one participant's own delivery queue: "take note of this case event". Only participants
/// of the case receive it, after a policy decision and an audit entry like any signal. It never carries signal content:
/// a case event names the case, its phase and — for a task — what is asked; a hit/no-hit question additionally carries
/// the subject the partner must look up, which is itself a processing decided by the policy (purpose bevraging).
/// </summary>
/// <param name="DeliveryId">Unique per (event, recipient); acknowledge it like a signal delivery.</param>
/// <param name="Recipient">Organisation code of the recipient (the queue owner).</param>
/// <param name="CaseReference">The case.</param>
/// <param name="Kind">What happened: one of <see cref="CaseEventKinds"/>.</param>
/// <param name="Phase">The case's phase after the event.</param>
/// <param name="Participants">The case's participants after the event.</param>
/// <param name="Category">Data category of the event (for a task or question: the category concerned).</param>
/// <param name="Purpose">Purpose of the event.</param>
/// <param name="Text">A sentence describing the event or task (no personal data).</param>
/// <param name="QuestionId">For <see cref="CaseEventKinds.HitNoHitAsked"/>: the question to answer.</param>
/// <param name="SubjectType">For a question: bsn, kvk, address or pseudonym.</param>
/// <param name="SubjectId">For a question: the identifier to look up in the recipient's own systems (obligations applied).</param>
/// <param name="SubjectPseudonym">For a question: the keyed pseudonym the answer must quote.</param>
/// <param name="LegalGround">Citation of the legal ground the delivery rests on.</param>
/// <param name="RuleId">Policy rule that permitted it.</param>
/// <param name="PolicyVersion">Content hash of the policy set that decided.</param>
/// <param name="AuditEntryId">The audit entry committed before this delivery was published.</param>
/// <param name="RetainUntil">Moment the recipient must delete the event, if the policy set a retention period.</param>
/// <param name="OccurredAt">When the hub recorded the event.</param>
public sealed record DeliverCaseEvent(
    Guid DeliveryId,
    string Recipient,
    string CaseReference,
    string Kind,
    string Phase,
    IReadOnlyList<string> Participants,
    string Category,
    string Purpose,
    string Text,
    Guid? QuestionId,
    string? SubjectType,
    string? SubjectId,
    string? SubjectPseudonym,
    string LegalGround,
    string RuleId,
    string PolicyVersion,
    long AuditEntryId,
    DateTimeOffset? RetainUntil,
    DateTimeOffset OccurredAt);
