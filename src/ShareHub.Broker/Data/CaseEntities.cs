namespace ShareHub.Broker.Data;

/// <summary>
/// A case (casus) of the RIEC process, owned by the organisation that opened it. Its <see cref="Phase"/> and
/// participants are what the policy engine sees as the <c>CaseContext</c> of every exchange that names the case.
/// </summary>
public sealed class Case
{
    /// <summary>Case id.</summary>
    public Guid Id { get; set; }

    /// <summary>Case reference (casusnummer); unique.</summary>
    public required string Reference { get; set; }

    /// <summary>Organisation that opened the case (the RIEC bureau); always a participant.</summary>
    public required string Owner { get; set; }

    /// <summary>Analyst who opened it.</summary>
    public required string OpenedBy { get; set; }

    /// <summary>Current phase: one of <c>CasePhases.All</c>.</summary>
    public required string Phase { get; set; }

    /// <summary>The documented weighing decision: why sharing is necessary and proportionate.</summary>
    public required string Weighing { get; set; }

    /// <summary>When it was opened.</summary>
    public DateTimeOffset OpenedAt { get; set; }

    /// <summary>When the phase last changed.</summary>
    public DateTimeOffset PhaseChangedAt { get; set; }

    /// <summary>When it was closed (phase afgesloten): the retention clock of its signals starts here. Null while open.</summary>
    public DateTimeOffset? ClosedAt { get; set; }

    /// <summary>
    /// When the participants' copies of the case's events (questions included) must be deleted: closure plus the
    /// longest retention the closing decisions carried. Null while open.
    /// </summary>
    public DateTimeOffset? RetainUntil { get; set; }

    /// <summary>When the retention purge deleted those copies; null while kept.</summary>
    public DateTimeOffset? EventsPurgedAt { get; set; }

    /// <summary>
    /// Optimistic concurrency token, raised by every command on the case: of two analysts changing the case at once,
    /// the second commit fails instead of silently deciding on a phase or participant list that no longer holds.
    /// </summary>
    public int Revision { get; set; }

    /// <summary>Participants, owner included.</summary>
    public List<CaseParticipant> Participants { get; set; } = [];

    /// <summary>Signals linked to the case.</summary>
    public List<CaseSignal> Signals { get; set; } = [];
}

/// <summary>An organisation taking part in a case.</summary>
public sealed class CaseParticipant
{
    /// <summary>The case.</summary>
    public Guid CaseId { get; set; }

    /// <summary>Organisation code.</summary>
    public required string Organisation { get; set; }

    /// <summary>When it joined.</summary>
    public DateTimeOffset AddedAt { get; set; }
}

/// <summary>A signal linked to a case: opened from it, or submitted with the case reference.</summary>
public sealed class CaseSignal
{
    /// <summary>The case.</summary>
    public Guid CaseId { get; set; }

    /// <summary>The signal.</summary>
    public Guid SignalId { get; set; }
}

/// <summary>A hit/no-hit question (bevraging) about one subject, put to the participants of a case.</summary>
public sealed class HitNoHitQuestion
{
    /// <summary>Question id.</summary>
    public Guid Id { get; set; }

    /// <summary>The case.</summary>
    public Guid CaseId { get; set; }

    /// <summary>Organisation that asked (the case owner).</summary>
    public required string AskedBy { get; set; }

    /// <summary>bsn, kvk or address.</summary>
    public required string SubjectType { get; set; }

    /// <summary>Keyed pseudonym of the subject; answers must quote it. The identifier itself is not stored here.</summary>
    public required string SubjectPseudonym { get; set; }

    /// <summary>Data category of the question.</summary>
    public required string Category { get; set; }

    /// <summary>When it was asked.</summary>
    public DateTimeOffset AskedAt { get; set; }

    /// <summary>One row per participant asked.</summary>
    public List<HitNoHitAnswer> Answers { get; set; } = [];
}

/// <summary>One participant's state for a question: the bit and nothing else.</summary>
public sealed class HitNoHitAnswer
{
    /// <summary>The question.</summary>
    public Guid QuestionId { get; set; }

    /// <summary>The organisation asked.</summary>
    public required string Organisation { get; set; }

    /// <summary>pending, refused (the policy did not permit asking), hit or no-hit.</summary>
    public required string State { get; set; }

    /// <summary>The delivery that carried the question; null when refused.</summary>
    public Guid? DeliveryId { get; set; }

    /// <summary>When the answer arrived.</summary>
    public DateTimeOffset? AnsweredAt { get; set; }
}

/// <summary>The states of a <see cref="HitNoHitAnswer"/>.</summary>
public static class HitNoHitStates
{
    /// <summary>Asked, not yet answered.</summary>
    public const string Pending = "pending";

    /// <summary>Not asked: the policy did not permit it.</summary>
    public const string Refused = "refused";

    /// <summary>The organisation holds information on the subject.</summary>
    public const string Hit = "hit";

    /// <summary>The organisation holds no information on the subject.</summary>
    public const string NoHit = "no-hit";
}
