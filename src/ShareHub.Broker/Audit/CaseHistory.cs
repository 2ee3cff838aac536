using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Cases;
using ShareHub.Broker.Data;
using ShareHub.Contracts;

namespace ShareHub.Broker.Audit;

/// <summary>
/// A case's full exchange history for a privacy officer (issue #9 §4): the case, when each linked signal's payload is
/// (or was) deleted, and every audit entry naming the case — opening with its weighing decision, phase and participant
/// changes, each event, question and task decision, dispatches, acknowledgements, answers, signals and purges. Reads
/// are audited like every other read of the trail.
/// </summary>
public sealed class CaseHistory(HubDbContext db, AuditQuery query, AuditTrail trail)
{
    /// <summary>Reads the history within <paramref name="scope"/>; null when the case is unknown or wholly outside it.</summary>
    public async Task<CaseHistoryDto?> ReadAsync(AuditScope scope, string organisation, string actor, string reference, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scope);
        var c = await db.Cases.AsNoTracking().Include(x => x.Participants).Include(x => x.Signals).AsSplitQuery()
            .SingleOrDefaultAsync(x => x.Reference == reference, cancellationToken).ConfigureAwait(false);
        var entries = await query.Query(scope, new AuditFilter(CaseReference: reference), null).ToListAsync(cancellationToken).ConfigureAwait(false);
        var visibleCase = c is not null && (scope.Organisation is null || c.Participants.Any(p => p.Organisation == scope.Organisation)) ? c : null;
        if (visibleCase is null && entries.Count == 0)
        {
            return null;
        }

        var retained = new Dictionary<Guid, DateTimeOffset?>();
        if (visibleCase is not null)
        {
            var ids = visibleCase.Signals.Select(s => s.SignalId).ToList();
            var signals = await db.Signals.AsNoTracking().Where(s => ids.Contains(s.Id))
                .Select(s => new { s.Id, s.RetainUntil, s.PayloadPurgedAt }).ToListAsync(cancellationToken).ConfigureAwait(false);
            foreach (var s in signals)
            {
                // While the case is open the clock does not run (docs/audit.md): no deadline yet.
                retained[s.Id] = s.PayloadPurgedAt ?? (visibleCase.ClosedAt is null ? null : s.RetainUntil);
            }
        }

        await trail.RecordAccessAsync(organisation, actor, AuditKinds.AuditAccessed, "read", ErrorCodes.AuditRead,
            $"Case history of {reference} read ({scope.Describe()}): {entries.Count} entr{(entries.Count == 1 ? "y" : "ies")}.",
            entries.Select(e => (e.SubjectType, e.SubjectPseudonym)), cancellationToken).ConfigureAwait(false);
        return new CaseHistoryDto(visibleCase is null ? null : CaseWorkflow.ToDto(visibleCase), scope.Describe(), retained, [.. entries.Select(AuditQuery.ToRecord)]);
    }
}
