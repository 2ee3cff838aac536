using System.Diagnostics;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Data;
using ShareHub.Broker.Delivery;
using ShareHub.Broker.Policies;
using ShareHub.Broker.Security;
using ShareHub.Contracts;
using ShareHub.Policies;

namespace ShareHub.Broker.Cases;

/// <summary>A case command the hub will not carry out: becomes an RFC 9457 ProblemDetails with a stable code.</summary>
/// <param name="Status">HTTP status.</param>
/// <param name="Code">Stable code (<see cref="ErrorCodes"/> or a policy reason code).</param>
/// <param name="Title">Short title.</param>
/// <param name="Detail">What is wrong, in a sentence.</param>
public sealed record CaseRefusal(int Status, string Code, string Title, string Detail);

/// <summary>The outcome of a case command: a value either way (STYLE §8).</summary>
/// <typeparam name="T">The response on success.</typeparam>
/// <param name="Value">The response, or null when refused.</param>
/// <param name="Refusal">Why it was refused, or null.</param>
public readonly record struct CaseOutcome<T>(T? Value, CaseRefusal? Refusal)
    where T : class
{
    /// <summary>Success.</summary>
    public static implicit operator CaseOutcome<T>(T value) => new(value, null);

    /// <summary>Refusal.</summary>
    public static implicit operator CaseOutcome<T>(CaseRefusal refusal) => new(null, refusal);
}

/// <summary>
/// The RIEC case workflow (issue #9): open a case from signals with a documented weighing decision, move it through
/// the phases signaal → bevraging → weging → casusoverleg → interventie → afgesloten, change participants, ask
/// hit/no-hit questions, request information, assign interventions, close it. Every change is one transaction of
/// case rows + audit entries + outbox rows, exactly like <see cref="SignalIntake"/>: each participant's copy of a case
/// event is decided by the policy set (with the case's real phase and participants) and audited before the
/// <see cref="OutboxDispatcher"/> may publish it; organisations outside the case are never addressed, and the
/// policy's <c>recipient-in-case</c> condition refuses them a second time.
/// </summary>
public sealed class CaseWorkflow(HubDbContext db, PolicyStore policies, PartnershipKey key, TimeProvider time, OutboxDispatcher dispatcher, IOptions<RetentionOptions> retention)
{
    /// <summary>Category of case events about the case itself (policies/partnership.yaml).</summary>
    public const string CaseCategory = "casusgegevens";

    /// <summary>Purpose of case events (policies/partnership.yaml).</summary>
    public const string CoordinationPurpose = "casuscoordinatie";

    /// <summary>Purpose of hit/no-hit questions and answers.</summary>
    public const string QuestionPurpose = "bevraging";

    /// <summary>The policy role of the organisation that runs cases (the RIEC bureau).</summary>
    public const string OwnerRole = "riec";

    /// <summary>Loads a case with participants and signals, or null.</summary>
    public Task<Case?> FindAsync(string reference, CancellationToken cancellationToken) =>
        db.Cases.Include(c => c.Participants).Include(c => c.Signals).AsSplitQuery()
            .SingleOrDefaultAsync(c => c.Reference == reference, cancellationToken);

    /// <summary>What the policy engine sees of a case.</summary>
    public static CaseContext ContextOf(Case c) => new(c.Reference, c.Phase, [.. c.Participants.Select(p => p.Organisation)]);

    /// <summary>The API view of a case.</summary>
    public static CaseDto ToDto(Case c) => new(c.Reference, c.Owner, c.Phase, c.Weighing,
        [.. c.Participants.Select(p => p.Organisation).Order(StringComparer.Ordinal)], [.. c.Signals.Select(s => s.SignalId).Order()], c.OpenedAt, c.ClosedAt);

    /// <summary>Opens a case owned by <paramref name="owner"/> and tells its participants.</summary>
    public async Task<CaseOutcome<CaseCommandResponse>> OpenAsync(string owner, string actor, OpenCaseRequest request, CancellationToken cancellationToken)
    {
        var policy = policies.Current;
        if (policy.FindParticipant(owner)?.Role != OwnerRole)
        {
            return new CaseRefusal(StatusCodes.Status403Forbidden, ErrorCodes.NotCaseOwner, "Not a case owner",
                $"Only the RIEC bureau (a participant with role '{OwnerRole}') opens cases; '{owner}' is not one.");
        }

        if (request.Reference is null || !CaseReferences.IsValid(request.Reference))
        {
            return Invalid("A case reference is 1–64 characters: letters, digits and . _ - (starting with a letter or digit).");
        }

        if (string.IsNullOrWhiteSpace(request.Weighing) || request.Weighing.Trim().Length < 20 || request.Weighing.Length > 2000)
        {
            return Invalid("A documented weighing decision is required: why sharing in this case is necessary and proportionate (20–2000 characters).");
        }

        var participants = (request.Participants ?? []).Where(p => p != owner).Distinct(StringComparer.Ordinal).ToList();
        if (participants.FirstOrDefault(p => !policy.IsParticipant(p)) is { } stranger)
        {
            return Invalid($"'{Shorten(stranger)}' is not a participant of the partnership.");
        }

        var signalIds = (request.SignalIds ?? []).Distinct().ToList();
        if (signalIds.Count == 0)
        {
            return Invalid("A case is opened from at least one signal (signalIds).");
        }

        // The owner may open a case only from signals it submitted or that were delivered to it (permitted decisions).
        var visible = await db.Signals.AsNoTracking()
            .Where(s => signalIds.Contains(s.Id))
            .Where(s => s.Provider == owner || db.AuditEntries.Any(a => a.SignalId == s.Id && a.Kind == AuditKinds.Decision && a.Recipient == owner && a.Outcome == "permit"))
            .Select(s => new { s.Id, s.SubjectType, s.SubjectPseudonym })
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        if (visible.Count != signalIds.Count)
        {
            return new CaseRefusal(StatusCodes.Status422UnprocessableEntity, ErrorCodes.SignalNotVisible, "Signal not visible",
                "Every signal a case is opened from must have been submitted by or delivered to your organisation.");
        }

        if (await db.Cases.AnyAsync(c => c.Reference == request.Reference, cancellationToken).ConfigureAwait(false))
        {
            return new CaseRefusal(StatusCodes.Status409Conflict, ErrorCodes.CaseExists, "Case exists", $"A case {request.Reference} exists already.");
        }

        var now = time.GetUtcNow();
        var c = new Case
        {
            Id = Guid.CreateVersion7(now),
            Reference = request.Reference,
            Owner = owner,
            OpenedBy = actor,
            Phase = CasePhases.Signaal,
            Weighing = request.Weighing.Trim(),
            OpenedAt = now,
            PhaseChangedAt = now,
        };
        c.Participants.AddRange(participants.Prepend(owner).Select(p => new CaseParticipant { Organisation = p, AddedAt = now }));
        c.Signals.AddRange(signalIds.Select(id => new CaseSignal { SignalId = id }));
        db.Cases.Add(c);

        var subject = visible[0];
        return await RecordAndPublishAsync(c, actor, CaseEntry(c, AuditKinds.CaseOpened, actor, "opened", now,
            $"Case {c.Reference} opened in phase {c.Phase} from {signalIds.Count} signal(s) with participants {string.Join(", ", c.Participants.Select(p => p.Organisation))}. Weighing: {c.Weighing}",
            subject.SubjectType, subject.SubjectPseudonym), CaseEventKinds.Opened, $"Case {c.Reference} was opened; you take part.", now, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Moves a case forward; <c>afgesloten</c> closes it and starts the retention clock of its data.</summary>
    public async Task<CaseOutcome<CaseCommandResponse>> ChangePhaseAsync(string caller, string actor, string reference, ChangeCasePhaseRequest request, CancellationToken cancellationToken)
    {
        var (c, refusal) = await OwnedOpenCaseAsync(caller, reference, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
        {
            return refusal;
        }

        if (!CasePhases.IsKnown(request.Phase))
        {
            return Invalid($"Phase must be one of: {string.Join(", ", CasePhases.All)}.");
        }

        if (string.IsNullOrWhiteSpace(request.Reason) || request.Reason.Length > 1000)
        {
            return Invalid("A phase change needs a reason (1–1000 characters).");
        }

        var from = c!.Phase;
        if (Order(request.Phase!) <= Order(from))
        {
            return new CaseRefusal(StatusCodes.Status409Conflict, ErrorCodes.PhaseNotForward, "Phase does not move forward",
                $"Case {c.Reference} is in phase {from}; a case moves forward only ({string.Join(" → ", CasePhases.All)}).");
        }

        var now = time.GetUtcNow();
        c.Phase = request.Phase!;
        c.PhaseChangedAt = now;
        var closing = c.Phase == CasePhases.Afgesloten;
        db.AuditEntries.Add(CaseEntry(c, AuditKinds.CasePhaseChanged, actor, closing ? "closed" : "phase-changed", now,
            $"Case {c.Reference} moved from {from} to {c.Phase}: {request.Reason.Trim()}"));
        var kind = closing ? CaseEventKinds.Closed : CaseEventKinds.PhaseChanged;
        var decisions = Publish(c, actor, kind, Recipients(c),
            closing ? $"Case {c.Reference} was closed; the retention of its data now runs." : $"Case {c.Reference} moved from {from} to {c.Phase}.", now);
        if (closing)
        {
            await StartRetentionAsync(c, decisions, now, cancellationToken).ConfigureAwait(false);
        }

        return await CommitAsync(c, kind, decisions, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Adds a participant; every participant (the new one included) is told.</summary>
    public async Task<CaseOutcome<CaseCommandResponse>> AddParticipantAsync(string caller, string actor, string reference, CaseParticipantRequest request, CancellationToken cancellationToken)
    {
        var (c, refusal) = await OwnedOpenCaseAsync(caller, reference, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
        {
            return refusal;
        }

        if (request.Organisation is not { } organisation || !policies.Current.IsParticipant(organisation))
        {
            return Invalid($"'{Shorten(request.Organisation)}' is not a participant of the partnership.");
        }

        if (c!.Participants.Any(p => p.Organisation == organisation))
        {
            return Invalid($"'{organisation}' takes part in case {c.Reference} already.");
        }

        var now = time.GetUtcNow();
        c.Participants.Add(new CaseParticipant { Organisation = organisation, AddedAt = now });
        return await RecordAndPublishAsync(c, actor, CaseEntry(c, AuditKinds.CaseParticipantChanged, actor, "joined", now,
            $"'{organisation}' joined case {c.Reference} in phase {c.Phase}: {Reason(request.Reason)}", recipient: organisation),
            CaseEventKinds.ParticipantAdded, $"'{organisation}' joined case {c.Reference}.", now, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes a participant; the remaining participants are told (the leaver is no longer told anything).</summary>
    public async Task<CaseOutcome<CaseCommandResponse>> RemoveParticipantAsync(string caller, string actor, string reference, string organisation, string? reason, CancellationToken cancellationToken)
    {
        var (c, refusal) = await OwnedOpenCaseAsync(caller, reference, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
        {
            return refusal;
        }

        var participant = c!.Participants.SingleOrDefault(p => p.Organisation == organisation);
        if (participant is null || organisation == c.Owner)
        {
            return Invalid($"'{Shorten(organisation)}' is not a participant of case {c.Reference} that can leave it (the owner cannot).");
        }

        var now = time.GetUtcNow();
        c.Participants.Remove(participant);
        return await RecordAndPublishAsync(c, actor, CaseEntry(c, AuditKinds.CaseParticipantChanged, actor, "left", now,
            $"'{organisation}' left case {c.Reference} in phase {c.Phase}: {Reason(reason)}", recipient: organisation),
            CaseEventKinds.ParticipantRemoved, $"'{organisation}' left case {c.Reference}.", now, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Asks a participant for information. The request passes only if the follow-up exchange it asks for — the
    /// participant sharing <see cref="CaseTaskRequest.Category"/> for <see cref="CaseTaskRequest.Purpose"/> with the
    /// owner, in this case, now — is permitted by the policy; otherwise it is refused, audited, and nobody is told.
    /// The data itself follows as a signal with the case reference, decided again on arrival.
    /// </summary>
    public async Task<CaseOutcome<CaseCommandResponse>> RequestInformationAsync(string caller, string actor, string reference, CaseTaskRequest request, CancellationToken cancellationToken)
    {
        var (c, refusal) = await OwnedOpenCaseAsync(caller, reference, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
        {
            return refusal;
        }

        if (ValidateTask(c!, request) is { } invalid)
        {
            return invalid;
        }

        var now = time.GetUtcNow();
        var policy = policies.Current;
        var followUp = policy.Decide(new DecisionRequest(request.Organisation!, c!.Owner, request.Category!, request.Purpose!, ContextOf(c)), now);
        if (!followUp.IsPermitted)
        {
            var entry = DecisionEntry(c, actor, request.Organisation!, request.Category!, request.Purpose!, followUp, policy.Version, now, null, null);
            entry.Explanation = $"Information request to '{request.Organisation}' refused: the follow-up exchange ({request.Organisation} → {c.Owner}, {request.Category}/{request.Purpose}) is {followUp.Explanation}";
            db.AuditEntries.Add(entry);
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            return new CaseCommandResponse(ToDto(c), CaseEventKinds.InformationRequested,
                [new CaseEventDecisionDto(request.Organisation!, false, followUp.ReasonCode, followUp.RuleId, null)]);
        }

        var decisions = Publish(c, actor, CaseEventKinds.InformationRequested, [request.Organisation!],
            $"Please provide {request.Category} for {request.Purpose} in case {c.Reference} (rule {followUp.RuleId}): {request.Text!.Trim()}", now);
        return await CommitAsync(c, CaseEventKinds.InformationRequested, decisions, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Assigns an intervention to a participant; only in phase interventie (each partner carries out its own).</summary>
    public async Task<CaseOutcome<CaseCommandResponse>> AssignInterventionAsync(string caller, string actor, string reference, CaseTaskRequest request, CancellationToken cancellationToken)
    {
        var (c, refusal) = await OwnedOpenCaseAsync(caller, reference, cancellationToken, (CasePhases.Interventie, "Interventions are assigned")).ConfigureAwait(false);
        if (refusal is not null)
        {
            return refusal;
        }

        if (ValidateTask(c!, request) is { } invalid)
        {
            return invalid;
        }

        var now = time.GetUtcNow();
        var decisions = Publish(c!, actor, CaseEventKinds.InterventionAssigned, [request.Organisation!],
            $"Intervention for {request.Purpose} ({request.Category}) in case {c!.Reference}: {request.Text!.Trim()}", now);
        return await CommitAsync(c, CaseEventKinds.InterventionAssigned, decisions, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Asks every participant (but the owner) whether it holds information on a subject (bevraging, hit/no-hit). Each
    /// copy is decided by the policy (purpose bevraging, in phase bevraging) and audited; a participant receives the
    /// question id, the case reference and the subject it must look up — nothing about the other participants asked,
    /// no content. The hub keeps only the subject's pseudonym.
    /// </summary>
    public async Task<CaseOutcome<HitNoHitQuestionDto>> AskAsync(string caller, string actor, string reference, AskHitNoHitRequest request, CancellationToken cancellationToken)
    {
        var (c, refusal) = await OwnedOpenCaseAsync(caller, reference, cancellationToken, (CasePhases.Bevraging, "Hit/no-hit questions are asked")).ConfigureAwait(false);
        if (refusal is not null)
        {
            return refusal;
        }

        if (request.Subject is not { Type: { } type, Id: { } id } || !SubjectTypes.IsValidId(type, id))
        {
            return Invalid("A subject is required: a BSN passing the elfproef, an 8-digit KvK number or an address of at most 200 characters.");
        }

        var category = request.Category ?? type switch
        {
            SubjectTypes.Bsn => "bsn",
            SubjectTypes.Kvk => "kvk-ubo",
            _ => "identiteit",
        };
        if (!policies.Current.IsKnownCategory(category))
        {
            return Invalid($"Category '{Shorten(category)}' is not defined in the policy set.");
        }

        var now = time.GetUtcNow();
        var question = new HitNoHitQuestion
        {
            Id = Guid.CreateVersion7(now),
            CaseId = c!.Id,
            AskedBy = c.Owner,
            SubjectType = type,
            SubjectPseudonym = ObligationApplier.Pseudonymise(type, id, key.Key),
            Category = category,
            AskedAt = now,
        };
        db.HitNoHitQuestions.Add(question);
        var decisions = Publish(c, actor, CaseEventKinds.HitNoHitAsked, Recipients(c),
            $"Does your organisation hold information on this subject? Answer hit or no-hit only (question {question.Id}).", now,
            new QuestionCopy(question, id));
        foreach (var d in decisions)
        {
            question.Answers.Add(new HitNoHitAnswer
            {
                Organisation = d.Recipient,
                State = d.Permitted ? HitNoHitStates.Pending : HitNoHitStates.Refused,
                DeliveryId = d.DeliveryId,
            });
        }

        c.Revision++; // asked in the phase this command saw (CasesApi answers SH-C0012 if it moved meanwhile)
        await SaveAndPublishAsync(cancellationToken).ConfigureAwait(false);
        return ToDto(c, question);
    }

    /// <summary>The bits of a question, for the case owner only.</summary>
    public async Task<CaseOutcome<HitNoHitQuestionDto>> QuestionAsync(string caller, string reference, Guid questionId, CancellationToken cancellationToken)
    {
        var c = await FindAsync(reference, cancellationToken).ConfigureAwait(false);
        var question = c is null ? null : await db.HitNoHitQuestions.AsNoTracking().Include(q => q.Answers)
            .SingleOrDefaultAsync(q => q.Id == questionId && q.CaseId == c.Id, cancellationToken).ConfigureAwait(false);
        if (c is null || question is null || c.Owner != caller)
        {
            // Only the owner sees the bits; to anybody else the question does not exist.
            return NotFound($"No question {questionId} in a case of '{caller}' with reference {Shorten(reference)}.");
        }

        return ToDto(c, question);
    }

    /// <summary>
    /// Records a participant's answer: the bit, keyed by the question's subject pseudonym. The answer is itself a
    /// disclosure (the participant tells the owner it knows the subject), so it is decided by the policy — purpose
    /// bevraging, while the case is in phase bevraging — and audited with the answering organisation as actor.
    /// An answer is final: the same bit again is absorbed, the other bit is refused.
    /// </summary>
    public async Task<CaseRefusal?> AnswerAsync(string organisation, string actor, Guid questionId, AnswerHitNoHitRequest request, CancellationToken cancellationToken)
    {
        var answer = await db.HitNoHitAnswers.SingleOrDefaultAsync(a => a.QuestionId == questionId && a.Organisation == organisation, cancellationToken).ConfigureAwait(false);
        if (answer is null || answer.State == HitNoHitStates.Refused)
        {
            // The same answer for "no such question" and "not asked": a partner learns nothing about other questions.
            return new CaseRefusal(StatusCodes.Status404NotFound, ErrorCodes.NotFound, "Not found", $"No question {questionId} addressed to '{organisation}'.");
        }

        if (request.Hit is not { } hit)
        {
            return Invalid("The answer is hit (true) or no-hit (false), nothing else.");
        }

        var question = await db.HitNoHitQuestions.AsNoTracking().SingleAsync(q => q.Id == questionId, cancellationToken).ConfigureAwait(false);
        if (!string.Equals(request.SubjectPseudonym, question.SubjectPseudonym, StringComparison.Ordinal))
        {
            return new CaseRefusal(StatusCodes.Status422UnprocessableEntity, ErrorCodes.AnswerSubjectMismatch, "Subject mismatch",
                "The answer must quote the subject pseudonym of the question it answers.");
        }

        var state = hit ? HitNoHitStates.Hit : HitNoHitStates.NoHit;
        if (answer.State != HitNoHitStates.Pending)
        {
            return answer.State == state ? null : new CaseRefusal(StatusCodes.Status409Conflict, ErrorCodes.AlreadyAnswered, "Already answered",
                $"Question {questionId} was answered already; an answer is final.");
        }

        var c = await db.Cases.Include(x => x.Participants).SingleAsync(x => x.Id == question.CaseId, cancellationToken).ConfigureAwait(false);
        if (c.ClosedAt is not null)
        {
            return Closed(c);
        }

        var now = time.GetUtcNow();
        var policy = policies.Current;
        var decision = policy.Decide(new DecisionRequest(organisation, c.Owner, question.Category, QuestionPurpose, ContextOf(c)), now);
        var entry = new AuditEntry
        {
            Kind = AuditKinds.HitNoHitAnswered,
            RecordedAt = now,
            ActorOrganisation = organisation,
            Actor = actor,
            DeliveryId = answer.DeliveryId,
            Provider = organisation,
            Recipient = c.Owner,
            Category = question.Category,
            Purpose = QuestionPurpose,
            CaseReference = c.Reference,
            SubjectType = question.SubjectType,
            SubjectPseudonym = question.SubjectPseudonym,
            Outcome = decision.IsPermitted ? state : "deny",
            ReasonCode = decision.IsPermitted ? ErrorCodes.CaseRecorded : decision.ReasonCode,
            Explanation = decision.IsPermitted
                ? $"'{organisation}' answered question {questionId} of case {c.Reference}: {state}."
                : $"The answer of '{organisation}' to question {questionId} was not recorded: {decision.Explanation}",
            RuleId = decision.RuleId,
            LegalGround = decision.LegalGround?.Citation,
            PolicyVersion = policy.Version,
            TraceId = Activity.Current?.TraceId.ToHexString(),
        };
        db.AuditEntries.Add(entry);
        if (decision.IsPermitted)
        {
            answer.State = state;
            answer.AnsweredAt = now;
        }

        try
        {
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (DbUpdateConcurrencyException)
        {
            // Another answer of the same organisation committed first (State is a concurrency token): this one, and
            // its audit entry, were not stored. The same bit again is a repeat; a different bit, a second answer.
            db.ChangeTracker.Clear();
            var stored = await db.HitNoHitAnswers.AsNoTracking().SingleAsync(a => a.QuestionId == questionId && a.Organisation == organisation, cancellationToken).ConfigureAwait(false);
            return stored.State == state ? null : new CaseRefusal(StatusCodes.Status409Conflict, ErrorCodes.AlreadyAnswered, "Already answered",
                $"Question {questionId} was answered already; an answer is final.");
        }

        return decision.IsPermitted ? null : new CaseRefusal(StatusCodes.Status403Forbidden, decision.ReasonCode, "Answer refused by policy", decision.Explanation);
    }

    /// <summary>
    /// Resolves the case a signal names: it must exist, be open, and have the provider as participant. Anything else
    /// is refused with one answer (<see cref="ErrorCodes.UnknownCase"/>), so a provider cannot probe which cases exist;
    /// a closed case the provider takes part in is refused as closed.
    /// </summary>
    public async Task<(Case? Case, CaseRefusal? Refusal)> ForSignalAsync(string provider, string reference, CancellationToken cancellationToken)
    {
        var c = await FindAsync(reference, cancellationToken).ConfigureAwait(false);
        if (c is null || c.Participants.All(p => p.Organisation != provider))
        {
            return (null, new CaseRefusal(StatusCodes.Status422UnprocessableEntity, ErrorCodes.UnknownCase, "Unknown case",
                $"There is no case {Shorten(reference)} in which '{provider}' takes part; nothing was stored."));
        }

        return c.ClosedAt is null ? (c, null) : (null, Closed(c));
    }

    // ------------------------------------------------------------------------------------------------------------

    private sealed record QuestionCopy(HitNoHitQuestion Question, string SubjectId);

    /// <summary>
    /// Decides and queues one case event for each recipient (one audit entry each, permitted copies into the outbox).
    /// Nothing is saved here: the caller commits case rows, audit entries and outbox rows in one transaction.
    /// </summary>
    private List<CaseEventDecisionDto> Publish(Case c, string actor, string kind, IEnumerable<string> recipients, string text, DateTimeOffset now, QuestionCopy? question = null)
    {
        var policy = policies.Current;
        var context = ContextOf(c);
        var category = question?.Question.Category ?? CaseCategory;
        var purpose = question is null ? CoordinationPurpose : QuestionPurpose;
        var participants = question is null ? context.Participants.Order(StringComparer.Ordinal).ToList() : []; // a question names nobody else
        var decisions = new List<CaseEventDecisionDto>();
        foreach (var recipient in recipients)
        {
            var decision = policy.Decide(new DecisionRequest(c.Owner, recipient, category, purpose, context), now);
            Guid? deliveryId = decision.IsPermitted ? Guid.CreateVersion7(now) : null;
            var audit = DecisionEntry(c, actor, recipient, category, purpose, decision, policy.Version, now, deliveryId, question?.Question);
            audit.Explanation = $"{kind}: {decision.Explanation}";
            db.AuditEntries.Add(audit);
            if (deliveryId is { } id)
            {
                string? subjectType = null, subjectId = null;
                if (question is not null)
                {
                    // Obligations of the question rule apply to the identifier the recipient sees (e.g. a pseudonymised BSN).
                    var applied = ObligationApplier.Apply(decision.Obligations, question.Question.SubjectType, question.SubjectId, null, key.Key);
                    var pseudonymised = decision.Obligations.PseudonymiseBsn && question.Question.SubjectType == SubjectTypes.Bsn;
                    subjectType = pseudonymised ? SubjectTypes.Pseudonym : question.Question.SubjectType;
                    subjectId = applied.SubjectId;
                    audit.Obligations = applied.Applied.Count == 0 ? null : string.Join("; ", applied.Applied);
                }

                var message = new DeliverCaseEvent(id, recipient, c.Reference, kind, c.Phase, participants, category, purpose, text,
                    question?.Question.Id, subjectType, subjectId, question?.Question.SubjectPseudonym,
                    decision.LegalGround?.Citation ?? string.Empty, decision.RuleId ?? string.Empty, decision.PolicyVersion, AuditEntryId: 0,
                    decision.Obligations.Retention is { } r ? now + r : null, now);
                db.Outbox.Add(new OutboxMessage
                {
                    DeliveryId = id,
                    CaseId = c.Id,
                    MessageType = OutboxMessageTypes.CaseEvent,
                    Recipient = recipient,
                    AuditEntry = audit,
                    MessageJson = JsonSerializer.Serialize(message),
                    CreatedAt = now,
                });
            }

            decisions.Add(new CaseEventDecisionDto(recipient, decision.IsPermitted, decision.ReasonCode, decision.RuleId, deliveryId));
        }

        return decisions;
    }

    private static AuditEntry DecisionEntry(Case c, string actor, string recipient, string category, string purpose, Decision decision, string policyVersion, DateTimeOffset now, Guid? deliveryId, HitNoHitQuestion? question) => new()
    {
        Kind = AuditKinds.CaseEventDecision,
        RecordedAt = now,
        ActorOrganisation = c.Owner,
        Actor = actor,
        DeliveryId = deliveryId,
        Provider = c.Owner,
        Recipient = recipient,
        Category = category,
        Purpose = purpose,
        CaseReference = c.Reference,
        SubjectType = question?.SubjectType,
        SubjectPseudonym = question?.SubjectPseudonym,
        Outcome = decision.IsPermitted ? "permit" : "deny",
        ReasonCode = decision.ReasonCode,
        Explanation = decision.Explanation,
        RuleId = decision.RuleId,
        LegalGround = decision.LegalGround?.Citation,
        PolicyVersion = policyVersion,
        TraceId = Activity.Current?.TraceId.ToHexString(),
    };

    private static AuditEntry CaseEntry(Case c, string kind, string actor, string outcome, DateTimeOffset now, string explanation, string? subjectType = null, string? subjectPseudonym = null, string? recipient = null) => new()
    {
        Kind = kind,
        RecordedAt = now,
        ActorOrganisation = c.Owner,
        Actor = actor,
        Provider = c.Owner,
        Recipient = recipient,
        Category = CaseCategory,
        Purpose = CoordinationPurpose,
        CaseReference = c.Reference,
        SubjectType = subjectType,
        SubjectPseudonym = subjectPseudonym,
        Outcome = outcome,
        ReasonCode = ErrorCodes.CaseRecorded,
        Explanation = explanation,
        TraceId = Activity.Current?.TraceId.ToHexString(),
    };

    /// <summary>
    /// Closing starts the retention clock (docs/audit.md): each linked signal keeps its own retention period, now
    /// counted from closure instead of submission; the participants' copies of the case events are kept for the longest
    /// retention the closing decisions carry.
    /// </summary>
    private async Task StartRetentionAsync(Case c, List<CaseEventDecisionDto> closing, DateTimeOffset now, CancellationToken cancellationToken)
    {
        c.ClosedAt = now;
        var ids = c.Signals.Select(s => s.SignalId).ToList();
        var signals = await db.Signals.Where(s => ids.Contains(s.Id) && s.PayloadPurgedAt == null).ToListAsync(cancellationToken).ConfigureAwait(false);
        foreach (var signal in signals)
        {
            var period = (signal.RetainUntil ?? signal.SubmittedAt) - signal.SubmittedAt;
            signal.RetainUntil = now + period;
        }

        var policy = policies.Current;
        var longest = closing.Where(d => d.Permitted)
            .Select(d => policy.Decide(new DecisionRequest(c.Owner, d.Recipient, CaseCategory, CoordinationPurpose, ContextOf(c)), now).Obligations.Retention)
            .Max() ?? TimeSpan.FromDays(retention.Value.DefaultRetentionDays);
        c.RetainUntil = now + longest;
    }

    /// <summary>Records a change of the case and tells every participant (but the owner), in one transaction.</summary>
    private Task<CaseCommandResponse> RecordAndPublishAsync(Case c, string actor, AuditEntry change, string kind, string text, DateTimeOffset now, CancellationToken cancellationToken)
    {
        db.AuditEntries.Add(change);
        return CommitAsync(c, kind, Publish(c, actor, kind, Recipients(c), text, now), cancellationToken);
    }

    private async Task<CaseCommandResponse> CommitAsync(Case c, string kind, List<CaseEventDecisionDto> decisions, CancellationToken cancellationToken)
    {
        c.Revision++; // the case as this command saw it, or nothing (CasesApi answers SH-C0012)
        await SaveAndPublishAsync(cancellationToken).ConfigureAwait(false);
        return new CaseCommandResponse(ToDto(c), kind, decisions);
    }

    private async Task SaveAndPublishAsync(CancellationToken cancellationToken)
    {
        var deliveries = db.ChangeTracker.Entries<OutboxMessage>().Where(e => e.State == EntityState.Added).Select(e => e.Entity).ToList();
        // One SaveChanges = one transaction: case rows + audit entries + outbox rows commit together or not at all; the
        // committed deliveries are then published at once.
        await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        dispatcher.Enqueue(deliveries);
    }

    /// <summary>
    /// The owner's open case, or why not: 404 when the caller takes no part, 403 for a participant, 409 when closed or
    /// (with <paramref name="inPhase"/>) when the command belongs to another phase.
    /// </summary>
    private async Task<(Case? Case, CaseRefusal? Refusal)> OwnedOpenCaseAsync(string caller, string reference, CancellationToken cancellationToken, (string Phase, string What)? inPhase = null)
    {
        var c = await FindAsync(reference, cancellationToken).ConfigureAwait(false);
        if (c is null || c.Participants.All(p => p.Organisation != caller))
        {
            return (null, NotFound($"No case {Shorten(reference)} in which '{caller}' takes part."));
        }

        if (c.Owner != caller)
        {
            return (null, new CaseRefusal(StatusCodes.Status403Forbidden, ErrorCodes.NotCaseOwner, "Not the case owner", $"Only '{c.Owner}' changes case {c.Reference}."));
        }

        if (c.ClosedAt is not null)
        {
            return (null, Closed(c));
        }

        return inPhase is { } required && c.Phase != required.Phase
            ? (null, new CaseRefusal(StatusCodes.Status409Conflict, ErrorCodes.WrongCasePhase, "Wrong phase", $"{required.What} in phase {required.Phase}; case {c.Reference} is in phase {c.Phase}."))
            : (c, null);
    }

    private CaseRefusal? ValidateTask(Case c, CaseTaskRequest request)
    {
        var policy = policies.Current;
        if (request.Organisation is null || c.Participants.All(p => p.Organisation != request.Organisation) || request.Organisation == c.Owner)
        {
            return Invalid($"'{Shorten(request.Organisation)}' is not a participant of case {c.Reference}.");
        }

        if (request.Category is null || !policy.IsKnownCategory(request.Category) || request.Purpose is null || !policy.IsKnownPurpose(request.Purpose))
        {
            return Invalid("A task names a category and a purpose defined in the policy set.");
        }

        return string.IsNullOrWhiteSpace(request.Text) || request.Text.Length > 1000 ? Invalid("A task is described in 1–1000 characters (no personal data).") : null;
    }

    private static IEnumerable<string> Recipients(Case c) => c.Participants.Select(p => p.Organisation).Where(o => o != c.Owner).Order(StringComparer.Ordinal);

    private static HitNoHitQuestionDto ToDto(Case c, HitNoHitQuestion q) => new(q.Id, c.Reference, q.SubjectType, q.SubjectPseudonym,
        q.Answers.OrderBy(a => a.Organisation, StringComparer.Ordinal).ToDictionary(a => a.Organisation, a => a.State, StringComparer.Ordinal));

    private static int Order(string phase) => CasePhases.All.ToList().IndexOf(phase);

    private static string Reason(string? reason) => string.IsNullOrWhiteSpace(reason) ? "no reason given" : reason.Trim()[..Math.Min(reason.Trim().Length, 1000)];

    private static CaseRefusal Invalid(string detail) => new(StatusCodes.Status400BadRequest, ErrorCodes.InvalidCaseCommand, "Invalid case command", detail);

    private static CaseRefusal NotFound(string detail) => new(StatusCodes.Status404NotFound, ErrorCodes.NotFound, "Not found", detail);

    private static CaseRefusal Closed(Case c) => new(StatusCodes.Status409Conflict, ErrorCodes.CaseClosed, "Case closed", $"Case {c.Reference} was closed on {c.ClosedAt:yyyy-MM-dd}; nothing more is exchanged in it.");

    private static string Shorten(string? text) => text is null ? "(none)" : text.Length <= 40 ? text : text[..40] + "…";
}
