using System.Security.Claims;
using ShareHub.Broker.Data;
using ShareHub.Broker.Security;

namespace ShareHub.Broker.Audit;

/// <summary>
/// Writes the hub's own audit entries: authentication failures and reads of the audit trail. (Exchange entries are
/// written by their components; all of them are chained by <see cref="AuditChainInterceptor"/>.)
/// </summary>
/// <remarks>The identity component calls <see cref="RecordAuthenticationFailureAsync"/> for failed client assertions.</remarks>
public sealed class AuditTrail(HubDbContext db, TimeProvider time)
{
    /// <summary>Organisation recorded for the hub itself (policy switches, purge, unauthenticated callers).</summary>
    public const string HubOrganisation = "sharehub";

    /// <summary>
    /// Records a failed authentication or authorisation: who tried (as far as known), what, and why. One entry, no data
    /// subject. Saved at once, in its own transaction.
    /// </summary>
    /// <param name="organisation">The organisation the caller claimed or was authenticated as; null when unknown.</param>
    /// <param name="actor">Client or user, as far as known.</param>
    /// <param name="reasonCode">Stable code, e.g. <see cref="ErrorCodes.Unauthenticated"/> or <see cref="ErrorCodes.Forbidden"/>.</param>
    /// <param name="explanation">What was attempted and why it failed (no secrets, no tokens).</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    public async Task RecordAuthenticationFailureAsync(string? organisation, string? actor, string reasonCode, string explanation, CancellationToken cancellationToken)
    {
        db.AuditEntries.Add(new AuditEntry
        {
            Kind = AuditKinds.AuthenticationFailed,
            RecordedAt = time.GetUtcNow(),
            ActorOrganisation = Shorten(organisation, 64) ?? "unauthenticated",
            Actor = Shorten(actor, 128) ?? "anonymous",
            Outcome = reasonCode == ErrorCodes.Forbidden ? "forbidden" : "unauthenticated",
            ReasonCode = reasonCode,
            Explanation = Shorten(explanation, 1000)!,
        });
        await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Records a read of the audit trail: one entry per data subject whose entries were shown (Logius: one line per
    /// data subject, no sampling), or one entry without a subject when none was.
    /// </summary>
    public async Task RecordAccessAsync(ClaimsPrincipal user, string kind, string outcome, string reasonCode, string explanation,
        IEnumerable<(string? SubjectType, string? SubjectPseudonym)> subjects, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(user);
        await RecordAccessAsync(user.GetOrganisation() ?? HubOrganisation, user.GetActor(), kind, outcome, reasonCode, explanation, subjects, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>As <see cref="RecordAccessAsync(ClaimsPrincipal, string, string, string, string, IEnumerable{ValueTuple{string, string}}, CancellationToken)"/>, for the CLI.</summary>
    public async Task RecordAccessAsync(string organisation, string actor, string kind, string outcome, string reasonCode, string explanation,
        IEnumerable<(string? SubjectType, string? SubjectPseudonym)> subjects, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(subjects);
        var now = time.GetUtcNow();
        var distinct = subjects.Where(s => s.SubjectPseudonym is not null).Distinct().ToList();
        if (distinct.Count == 0)
        {
            distinct.Add((null, null));
        }

        foreach (var (type, pseudonym) in distinct)
        {
            db.AuditEntries.Add(new AuditEntry
            {
                Kind = kind,
                RecordedAt = now,
                ActorOrganisation = organisation,
                Actor = actor,
                SubjectType = type,
                SubjectPseudonym = pseudonym,
                Outcome = outcome,
                ReasonCode = reasonCode,
                Explanation = Shorten(explanation, 1000)!,
            });
        }

        await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
    }

    private static string? Shorten(string? value, int max) => value is null ? null : value.Length <= max ? value : value[..max];
}
