using System.Security.Claims;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Data;
using ShareHub.Broker.Security;
using ShareHub.Contracts;
using ShareHub.Policies;

namespace ShareHub.Broker.Audit;

/// <summary>What a privacy officer searches for. All filters are optional and combine with AND.</summary>
/// <param name="SubjectType">bsn, kvk, address or pseudonym; with <paramref name="Subject"/>.</param>
/// <param name="Subject">The identifier as the FG knows it (a BSN is pseudonymised server-side) or a <c>psn:</c> pseudonym.</param>
/// <param name="Organisation">Provider, recipient or actor.</param>
/// <param name="From">Recorded at or after.</param>
/// <param name="To">Recorded before.</param>
/// <param name="Category">Data category.</param>
/// <param name="Purpose">Purpose.</param>
/// <param name="Outcome">permit, deny, dispatched, acknowledged, …</param>
/// <param name="Kind">Entry kind.</param>
/// <param name="SignalId">Signal.</param>
/// <param name="AfterSequence">Paging: entries after this sequence.</param>
/// <param name="Limit">Page size.</param>
/// <param name="CaseReference">Case (casus) reference.</param>
public sealed record AuditFilter(
    string? SubjectType = null,
    string? Subject = null,
    string? Organisation = null,
    DateTimeOffset? From = null,
    DateTimeOffset? To = null,
    string? Category = null,
    string? Purpose = null,
    string? Outcome = null,
    string? Kind = null,
    Guid? SignalId = null,
    long? AfterSequence = null,
    int Limit = 100,
    string? CaseReference = null);

/// <summary>Whose entries a reader may see: <c>null</c> organisation = the whole partnership.</summary>
/// <param name="Organisation">The partner organisation the reader is limited to, or null for the partnership FG.</param>
public sealed record AuditScope(string? Organisation)
{
    /// <summary>The partnership FG's scope: everything (BGS art. 1.1: one contact point for all joint controllers).</summary>
    public static AuditScope Partnership { get; } = new((string?)null);

    /// <summary>
    /// A partner privacy officer sees entries where their organisation is provider, recipient or actor; the
    /// partnership privacy officer sees all.
    /// </summary>
    public static AuditScope For(ClaimsPrincipal user)
    {
        ArgumentNullException.ThrowIfNull(user);
        return user.IsInRole(HubClaims.PartnershipPrivacyOfficerRole) ? Partnership : new AuditScope(user.GetOrganisation() ?? "\0none");
    }

    /// <summary>How the scope is described in reports.</summary>
    public string Describe() => Organisation ?? "partnership";
}

/// <summary>Searches, exports and the AVG art. 15 report over the audit trail.</summary>
public sealed class AuditQuery(HubDbContext db, PartnershipKey key, TimeProvider time)
{
    /// <summary>Largest page an API call returns.</summary>
    public const int MaxPage = 1000;

    /// <summary>
    /// Turns the identifier an FG was given into the pseudonym the audit trail holds. Returns false (with a stable
    /// code) for an invalid BSN or KvK number. A <c>psn:</c> value is taken as a pseudonym already.
    /// </summary>
    public bool TryResolveSubject(string? type, string? subject, out string? subjectType, out string? pseudonym, out string? errorCode)
    {
        subjectType = null;
        pseudonym = null;
        errorCode = null;
        if (string.IsNullOrWhiteSpace(subject))
        {
            return true;
        }

        subject = subject.Trim();
        type = string.IsNullOrWhiteSpace(type) ? SubjectTypes.Bsn : type.Trim().ToLowerInvariant();
        if (subject.StartsWith(ObligationApplier.PseudonymPrefix, StringComparison.Ordinal))
        {
            pseudonym = subject;
            subjectType = type == SubjectTypes.Pseudonym ? null : type;
            return true;
        }

        if (!SubjectTypes.IsValidId(type, subject))
        {
            errorCode = ErrorCodes.AuditInvalidSubject;
            return false;
        }

        subjectType = type;
        pseudonym = ObligationApplier.Pseudonymise(type, subject, key.Key);
        return true;
    }

    /// <summary>The entries matching <paramref name="filter"/> within <paramref name="scope"/>, in sequence order.</summary>
    public IQueryable<AuditEntry> Query(AuditScope scope, AuditFilter filter, string? subjectPseudonym)
    {
        ArgumentNullException.ThrowIfNull(scope);
        ArgumentNullException.ThrowIfNull(filter);
        var query = db.AuditEntries.AsNoTracking();
        if (scope.Organisation is { } own)
        {
            query = query.Where(a => a.Provider == own || a.Recipient == own || a.ActorOrganisation == own);
        }

        if (subjectPseudonym is not null)
        {
            query = query.Where(a => a.SubjectPseudonym == subjectPseudonym);
        }

        if (!string.IsNullOrWhiteSpace(filter.Organisation))
        {
            var organisation = filter.Organisation.Trim();
            query = query.Where(a => a.Provider == organisation || a.Recipient == organisation || a.ActorOrganisation == organisation);
        }

        if (filter.From is { } from)
        {
            query = query.Where(a => a.RecordedAt >= from);
        }

        if (filter.To is { } to)
        {
            query = query.Where(a => a.RecordedAt < to);
        }

        if (!string.IsNullOrWhiteSpace(filter.Category))
        {
            query = query.Where(a => a.Category == filter.Category);
        }

        if (!string.IsNullOrWhiteSpace(filter.Purpose))
        {
            query = query.Where(a => a.Purpose == filter.Purpose);
        }

        if (!string.IsNullOrWhiteSpace(filter.Outcome))
        {
            query = query.Where(a => a.Outcome == filter.Outcome);
        }

        if (!string.IsNullOrWhiteSpace(filter.Kind))
        {
            query = query.Where(a => a.Kind == filter.Kind);
        }

        if (filter.SignalId is { } signal)
        {
            query = query.Where(a => a.SignalId == signal);
        }

        if (!string.IsNullOrWhiteSpace(filter.CaseReference))
        {
            query = query.Where(a => a.CaseReference == filter.CaseReference);
        }

        if (filter.AfterSequence is { } after)
        {
            query = query.Where(a => a.Sequence > after);
        }

        return query.OrderBy(a => a.Sequence);
    }

    /// <summary>One page of entries.</summary>
    public async Task<List<AuditEntry>> SearchAsync(AuditScope scope, AuditFilter filter, string? subjectPseudonym, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return await Query(scope, filter, subjectPseudonym).Take(Math.Clamp(filter.Limit, 1, MaxPage)).ToListAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// AVG art. 15(1)(c) report: the recipients to whom data about the subject were disclosed (category, purpose,
    /// legal ground, when), and the intended disclosures the policy refused.
    /// </summary>
    public async Task<Art15ReportDto> Art15Async(AuditScope scope, string? subjectType, string subjectPseudonym, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scope);
        var entries = await Query(scope, new AuditFilter(), subjectPseudonym).ToListAsync(cancellationToken).ConfigureAwait(false);
        var byDelivery = entries.Where(e => e.DeliveryId is not null && e.Kind != AuditKinds.Decision)
            .ToLookup(e => e.DeliveryId!.Value);
        var purged = entries.Where(e => e.Kind == AuditKinds.RetentionPurged && e.SignalId is not null)
            .GroupBy(e => e.SignalId!.Value).ToDictionary(g => g.Key, g => g.Min(e => e.RecordedAt));

        // Disclosures: permitted signal deliveries, hit/no-hit questions about the subject (the participant learnt the
        // RIEC asks about it) and answers (the RIEC learnt whether the participant knows it) — issue #9.
        static bool IsDecision(AuditEntry e) => e.Kind is AuditKinds.Decision or AuditKinds.CaseEventDecision;
        static bool IsAnswer(AuditEntry e) => e.Kind == AuditKinds.HitNoHitAnswered && e.Outcome is "hit" or "no-hit";
        var disclosures = entries
            .Where(e => (IsDecision(e) && e.Outcome == "permit") || IsAnswer(e))
            .Select(e => new Art15DisclosureDto(
                e.SignalId, e.DeliveryId, e.Provider, e.Recipient, e.Category, e.Purpose, e.LegalGround, e.RuleId, e.CaseReference, e.RecordedAt,
                IsAnswer(e) ? e.RecordedAt : byDelivery[e.DeliveryId ?? Guid.Empty].Where(d => d.Kind == AuditKinds.Dispatched).Select(d => (DateTimeOffset?)d.RecordedAt).FirstOrDefault(),
                IsAnswer(e) ? null : byDelivery[e.DeliveryId ?? Guid.Empty].Where(d => d.Kind == AuditKinds.Acknowledgement && d.Outcome == "acknowledged").Select(d => (DateTimeOffset?)d.RecordedAt).FirstOrDefault(),
                e.SignalId is { } s && purged.TryGetValue(s, out var at) ? at : null))
            .ToList();
        var refusals = entries
            .Where(e => (IsDecision(e) && e.Outcome != "permit") || (e.Kind == AuditKinds.HitNoHitAnswered && e.Outcome == "deny"))
            .Select(e => new Art15RefusalDto(e.SignalId, e.Provider, e.Recipient, e.Category, e.Purpose, e.ReasonCode, e.RecordedAt))
            .ToList();
        var type = subjectType ?? entries.Select(e => e.SubjectType).FirstOrDefault(t => t is not null) ?? "unknown";
        return new Art15ReportDto(type, subjectPseudonym, time.GetUtcNow(), scope.Describe(), disclosures, refusals);
    }

    /// <summary>Logius status_code: ERROR when the requested processing did not take place.</summary>
    public static string StatusCode(string outcome) => outcome switch
    {
        "deny" or "rejected" or "unauthenticated" or "forbidden" or "failed" => "ERROR",
        _ => "OK",
    };

    /// <summary>The API view of an entry.</summary>
    public static AuditRecordDto ToRecord(AuditEntry a)
    {
        ArgumentNullException.ThrowIfNull(a);
        return new(a.Sequence, a.Id, a.Kind, a.RecordedAt, a.ActorOrganisation, a.Actor, a.SignalId, a.DeliveryId, a.Provider, a.Recipient,
            a.Category, a.Purpose, a.CaseReference, a.SubjectType, a.SubjectPseudonym, a.Outcome, StatusCode(a.Outcome), a.ReasonCode,
            a.Explanation, a.RuleId, a.LegalGround, a.Obligations, a.PolicyVersion, a.ProcessingActivityId, a.TraceId, a.SpanId,
            a.ParentSpanId, a.ForeignOperation, Convert.ToHexStringLower(a.Hash));
    }
}
