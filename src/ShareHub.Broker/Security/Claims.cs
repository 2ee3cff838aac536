using System.Security.Claims;

namespace ShareHub.Broker.Security;

/// <summary>Claim types, roles and authorisation policy names used by the broker.</summary>
public static class HubClaims
{
    /// <summary>The caller's organisation code. The provider of a signal is always this claim, never the body.</summary>
    public const string Organisation = "sharehub_org";

    /// <summary>Role of a privacy officer (functionaris gegevensbescherming).</summary>
    public const string PrivacyOfficerRole = "privacy-officer";

    /// <summary>Role of the partnership's own FG, who sees the whole audit trail.</summary>
    public const string PartnershipPrivacyOfficerRole = "partnership-privacy-officer";

    /// <summary>Authorisation policy: may submit signals.</summary>
    public const string SubmitPolicy = "signals:submit";

    /// <summary>Authorisation policy: may read audit entries.</summary>
    public const string AuditPolicy = "audit:read";

    /// <summary>The caller's organisation code, or null when the principal carries none.</summary>
    public static string? GetOrganisation(this ClaimsPrincipal user) => user.FindFirstValue(Organisation);

    /// <summary>A name for the acting client or user, for the audit trail.</summary>
    public static string GetActor(this ClaimsPrincipal user) =>
        user.FindFirstValue(ClaimTypes.NameIdentifier) ?? user.Identity?.Name ?? user.GetOrganisation() ?? "unknown";
}
