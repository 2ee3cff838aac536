using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Data;
using ShareHub.Broker.Security;
using ShareHub.Contracts;

namespace ShareHub.Broker.Api;

/// <summary>The audit API for privacy officers: <c>GET /api/v1/audit</c>.</summary>
public static class AuditApi
{
    /// <summary>Maps the audit endpoints.</summary>
    public static IEndpointRouteBuilder MapAuditApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/audit", ListAsync).RequireAuthorization(HubClaims.AuditPolicy);
        return app;
    }

    /// <summary>
    /// Audit entries in recording order. A partner's privacy officer sees only entries where their organisation is
    /// provider, recipient or actor; the partnership's privacy officer sees all.
    /// </summary>
    internal static async Task<Ok<IReadOnlyList<AuditEntryDto>>> ListAsync(
        ClaimsPrincipal user,
        HubDbContext db,
        Guid? signalId,
        long? afterId,
        int? limit,
        CancellationToken cancellationToken)
    {
        var query = db.AuditEntries.AsNoTracking().AsQueryable();
        if (!user.IsInRole(HubClaims.PartnershipPrivacyOfficerRole))
        {
            var organisation = user.GetOrganisation();
            query = query.Where(a => a.Provider == organisation || a.Recipient == organisation || a.ActorOrganisation == organisation);
        }

        if (signalId is not null)
        {
            query = query.Where(a => a.SignalId == signalId);
        }

        if (afterId is not null)
        {
            query = query.Where(a => a.Id > afterId);
        }

        var take = Math.Clamp(limit ?? 100, 1, 1000);
        var entries = await query.OrderBy(a => a.Id).Take(take)
            .Select(a => new AuditEntryDto(a.Id, a.Kind, a.RecordedAt, a.ActorOrganisation, a.Actor, a.SignalId, a.DeliveryId, a.Provider, a.Recipient,
                a.Category, a.Purpose, a.CaseReference, a.SubjectType, a.SubjectPseudonym, a.Outcome, a.ReasonCode, a.Explanation, a.RuleId,
                a.LegalGround, a.Obligations, a.PolicyVersion, a.TraceId))
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok<IReadOnlyList<AuditEntryDto>>(entries);
    }
}
