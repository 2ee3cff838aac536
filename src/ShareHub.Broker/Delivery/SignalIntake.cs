using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Data;
using ShareHub.Broker.Policies;
using ShareHub.Broker.Security;
using ShareHub.Contracts;
using ShareHub.Policies;

namespace ShareHub.Broker.Delivery;

/// <summary>
/// Takes a validated signal, decides every intended recipient against one policy snapshot, and stores — in ONE
/// database transaction — the signal, one audit entry per (signal, recipient) decision, and one outbox row per
/// permitted delivery. Nothing is published here: the <see cref="OutboxDispatcher"/> publishes only committed rows —
/// handed to it right after the commit — so a crash before commit leaves nothing delivered and a crash after commit
/// loses nothing. The transaction is shared with concurrent submissions (group commit, <see cref="GroupCommitWriter"/>).
/// </summary>
public sealed class SignalIntake(PolicyStore policies, PartnershipKey key, TimeProvider time, GroupCommitWriter writer, OutboxDispatcher dispatcher, HubDbContext db, Cases.CaseWorkflow cases, IOptions<RetentionOptions> retention)
{
    /// <summary>Decides and stores a signal. The request must have passed validation.</summary>
    /// <param name="provider">The caller's organisation (from its identity, never from the body).</param>
    /// <param name="actor">The calling client or user, for the audit trail.</param>
    /// <param name="request">The validated request.</param>
    /// <param name="caseOfSignal">The open case the request names (resolved by <see cref="Cases.CaseWorkflow.ForSignalAsync"/>), or null.</param>
    /// <param name="idempotency">The submitter's idempotency key and the request hash, if it sent a key.</param>
    /// <param name="cancellationToken">Cancels before commit only.</param>
    public async Task<SubmitSignalResponse> SubmitAsync(string provider, string actor, SubmitSignalRequest request, Case? caseOfSignal, (string Key, string RequestHash)? idempotency, CancellationToken cancellationToken)
    {
        var staged = Stage(provider, actor, request, caseOfSignal, idempotency);
        await CommitAsync([staged], cancellationToken).ConfigureAwait(false);
        return Response(staged.Signal, staged.AuditEntries);
    }

    /// <summary>
    /// Stores staged signals as one unit — signals, audit entries and outbox rows commit together or not at all — and
    /// hands the committed deliveries to the dispatcher. Throws what the write threw (e.g. a concurrent retry's
    /// Idempotency-Key collision, <see cref="Microsoft.EntityFrameworkCore.DbUpdateException"/>).
    /// </summary>
    /// <param name="signals">From <see cref="Stage"/>.</param>
    /// <param name="cancellationToken">Cancels only while the unit still waits for the writer.</param>
    public Task CommitAsync(IReadOnlyList<StagedSignal> signals, CancellationToken cancellationToken) =>
        writer.CommitAsync(new IntakeUnit(signals, dispatcher), cancellationToken);

    /// <summary>
    /// Decides a signal and builds its rows — signal, decision audit entries, outbox rows — without storing them.
    /// The request must have passed validation.
    /// </summary>
    /// <param name="provider">The caller's organisation (from its identity, never from the body).</param>
    /// <param name="actor">The calling client or user, for the audit trail.</param>
    /// <param name="request">The validated request.</param>
    /// <param name="caseOfSignal">The open case the request names (resolved by <see cref="Cases.CaseWorkflow.ForSignalAsync"/>), or null.</param>
    /// <param name="idempotency">The submitter's idempotency key and the request hash, if it sent a key.</param>
    public StagedSignal Stage(string provider, string actor, SubmitSignalRequest request, Case? caseOfSignal, (string Key, string RequestHash)? idempotency)
    {
        ArgumentNullException.ThrowIfNull(request);
        var policy = policies.Current; // one snapshot for all recipients of this signal
        var now = time.GetUtcNow();
        var subjectType = request.Subject!.Type!;
        var subjectId = request.Subject.Id!;
        var payloadJson = request.Payload!.Value.GetRawText();
        var traceId = Activity.Current?.TraceId.ToHexString();
        var subjectPseudonym = ObligationApplier.Pseudonymise(subjectType, subjectId, key.Key);

        var signal = new Signal
        {
            Id = Guid.CreateVersion7(now),
            Provider = provider,
            SubmittedBy = actor,
            SubjectType = subjectType,
            SubjectId = subjectId,
            SubjectPseudonym = subjectPseudonym,
            Category = request.Category!,
            Purpose = request.Purpose!,
            CaseReference = request.CaseReference,
            PayloadJson = payloadJson,
            SubmittedAt = now,
            PolicyVersion = policy.Version,
            IdempotencyKey = idempotency?.Key,
            RequestHash = idempotency?.RequestHash,
        };
        var staged = new StagedSignal(signal);

        // The policy sees the case as it is now: its phase and participants (phase rules, recipient-in-case).
        var caseContext = caseOfSignal is null ? null : Cases.CaseWorkflow.ContextOf(caseOfSignal);

        var decided = new List<(string Recipient, Decision Decision, AuditEntry Audit, Guid? DeliveryId)>();

        foreach (var recipient in request.Recipients!)
        {
            var decision = policy.Decide(new DecisionRequest(provider, recipient, signal.Category, signal.Purpose, caseContext), now);
            var audit = new AuditEntry
            {
                Kind = AuditKinds.Decision,
                RecordedAt = now,
                ActorOrganisation = provider,
                Actor = actor,
                SignalId = signal.Id,
                Provider = provider,
                Recipient = recipient,
                Category = signal.Category,
                Purpose = signal.Purpose,
                CaseReference = signal.CaseReference,
                SubjectType = subjectType,
                SubjectPseudonym = subjectPseudonym,
                Outcome = decision.IsPermitted ? "permit" : "deny",
                ReasonCode = decision.ReasonCode,
                Explanation = decision.Explanation,
                RuleId = decision.RuleId,
                LegalGround = decision.LegalGround?.Citation,
                PolicyVersion = policy.Version,
                TraceId = traceId,
            };
            staged.AuditEntries.Add(audit);

            Guid? deliveryId = null;
            if (decision.IsPermitted)
            {
                deliveryId = Guid.CreateVersion7(now);
                audit.DeliveryId = deliveryId;
                var message = BuildDelivery(deliveryId.Value, signal, recipient, decision, request.Payload.Value, now, out var applied);
                audit.Obligations = applied.Count == 0 ? null : string.Join("; ", applied);
                staged.Outbox.Add(new OutboxMessage
                {
                    DeliveryId = deliveryId.Value,
                    SignalId = signal.Id,
                    Recipient = recipient,
                    AuditEntry = audit,
                    MessageJson = JsonSerializer.Serialize(message),
                    Built = message,
                    CreatedAt = now,
                });
            }

            decided.Add((recipient, decision, audit, deliveryId));
        }

        // Retention (docs/audit.md): the payload is kept until the last permitted delivery's retention ends; when every
        // recipient was refused nothing was shared, so it is kept only for a short grace period.
        var permits = decided.Where(d => d.DeliveryId is not null).ToList();
        if (caseOfSignal is not null && permits.Count > 0)
        {
            // Shared within a case: linked to it, so its retention clock starts only when the case is closed. A signal
            // nobody was permitted to receive is not linked and keeps its short grace period.
            staged.CaseLink = new CaseSignal { CaseId = caseOfSignal.Id, SignalId = signal.Id };
        }

        signal.RetainUntil = permits.Count == 0
            ? now + TimeSpan.FromMinutes(retention.Value.RefusedSignalRetentionMinutes)
            : permits.Max(d => now + (d.Decision.Obligations.Retention ?? TimeSpan.FromDays(retention.Value.DefaultRetentionDays)));

        return staged;
    }

    /// <summary>The 202 answer for a stored signal, from its decision audit entries (in recipient order).</summary>
    public static SubmitSignalResponse Response(Signal signal, IEnumerable<AuditEntry> decisions)
    {
        ArgumentNullException.ThrowIfNull(signal);
        return new SubmitSignalResponse(signal.Id, signal.PolicyVersion,
            [.. decisions.Select(d => new RecipientDecisionDto(d.Recipient!, d.Outcome == "permit", d.ReasonCode, d.Explanation, d.RuleId, d.LegalGround, d.DeliveryId, d.Id))]);
    }

    /// <summary>
    /// The open case a validated request names, in which <paramref name="provider"/> takes part, or null when it names
    /// none. A case that does not exist, is closed, or in which the provider takes no part refuses the signal before
    /// anything is stored; the refusal is audited and returned.
    /// </summary>
    public async Task<(Case? Case, Cases.CaseRefusal? Refusal)> ResolveCaseAsync(string provider, string actor, SubmitSignalRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.CaseReference is not { } reference)
        {
            return (null, null);
        }

        var (caseOfSignal, refusal) = await cases.ForSignalAsync(provider, reference, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
        {
            await RecordCaseRefusalAsync(provider, actor, request, refusal, cancellationToken).ConfigureAwait(false);
        }

        return (caseOfSignal, refusal);
    }

    /// <summary>
    /// Audits a signal refused because of its case reference (unknown case, provider not taking part, case closed).
    /// Nothing else is stored: the payload and the identifier are not kept, only the subject's pseudonym.
    /// </summary>
    private async Task RecordCaseRefusalAsync(string provider, string actor, SubmitSignalRequest request, Cases.CaseRefusal refusal, CancellationToken cancellationToken)
    {
        db.AuditEntries.Add(new AuditEntry
        {
            Kind = AuditKinds.CaseReferenceRefused,
            RecordedAt = time.GetUtcNow(),
            ActorOrganisation = provider,
            Actor = actor,
            Provider = provider,
            Category = request.Category,
            Purpose = request.Purpose,
            CaseReference = request.CaseReference,
            SubjectType = request.Subject!.Type,
            SubjectPseudonym = ObligationApplier.Pseudonymise(request.Subject.Type!, request.Subject.Id!, key.Key),
            Outcome = "rejected",
            ReasonCode = refusal.Code,
            Explanation = refusal.Detail,
            PolicyVersion = policies.Current.Version,
            TraceId = Activity.Current?.TraceId.ToHexString(),
        });
        await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The recipient's copy: obligations (pseudonymised BSN, stripped fields) are applied here, before the message is
    /// stored in the outbox, so data a recipient must not see never reaches its queue.
    /// </summary>
    private DeliverSignal BuildDelivery(Guid deliveryId, Signal signal, string recipient, Decision decision, JsonElement payload, DateTimeOffset now, out IReadOnlyList<string> applied)
    {
        var result = ObligationApplier.Apply(decision.Obligations, signal.SubjectType, signal.SubjectId, JsonNode.Parse(JsonMarshal.GetRawUtf8Value(payload)), key.Key);
        applied = result.Applied;
        var pseudonymised = decision.Obligations.PseudonymiseBsn && signal.SubjectType == SubjectTypes.Bsn;

        return new DeliverSignal(
            deliveryId,
            signal.Id,
            signal.Provider,
            recipient,
            signal.Category,
            signal.Purpose,
            signal.CaseReference,
            pseudonymised ? SubjectTypes.Pseudonym : signal.SubjectType,
            result.SubjectId,
            result.Payload?.ToJsonString() ?? "{}",
            decision.LegalGround?.Citation ?? string.Empty,
            decision.RuleId ?? string.Empty,
            decision.PolicyVersion,
            AuditEntryId: 0, // assigned by the database on commit; the dispatcher fills it in
            decision.Obligations.Retention is { } retention ? now + retention : null,
            now);
    }
}

/// <summary>
/// A decided signal ready to be stored: the signal, one audit entry per recipient decision and one outbox row per
/// permitted delivery (each row refers to its decision's entry).
/// </summary>
public sealed class StagedSignal(Signal signal)
{
    /// <summary>The signal row.</summary>
    public Signal Signal { get; } = signal;

    /// <summary>The decision entries, in recipient order.</summary>
    public List<AuditEntry> AuditEntries { get; } = [];

    /// <summary>The outbox rows of the permitted deliveries.</summary>
    public List<OutboxMessage> Outbox { get; } = [];

    /// <summary>The signal's link to the open case it was shared in (its retention starts at closure), or null.</summary>
    public CaseSignal? CaseLink { get; set; }
}

/// <summary>One request's staged signals; once committed, their deliveries go to the dispatcher.</summary>
internal sealed class IntakeUnit(IReadOnlyList<StagedSignal> signals, OutboxDispatcher dispatcher) : WriteUnit
{
    internal override string Kind => "signals";

    internal override int Rows => signals.Count;

    internal override IEnumerable<AuditEntry> AuditEntries => signals.SelectMany(s => s.AuditEntries);

    internal override void AddTo(GroupRows rows)
    {
        foreach (var signal in signals)
        {
            rows.Signals.Add(signal.Signal);
            rows.AuditEntries.AddRange(signal.AuditEntries);
            rows.Outbox.AddRange(signal.Outbox);
            if (signal.CaseLink is { } link)
            {
                rows.CaseSignals.Add(link);
            }
        }
    }

    internal override void ForgetStoreKeys()
    {
        base.ForgetStoreKeys();
        foreach (var signal in signals)
        {
            signal.Outbox.ForEach(o => (o.Id, o.AuditEntryId) = (0, 0));
        }
    }

    internal override void Committed() => dispatcher.Enqueue(signals.SelectMany(s => s.Outbox));
}
