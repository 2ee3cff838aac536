using ShareHub.Broker.Security;

namespace ShareHub.Broker.Identity;

/// <summary>OAuth scopes, roles and the token audience of the hub's API.</summary>
public static class HubScopes
{
    /// <summary>The audience (<c>aud</c>) of access tokens for the hub's API.</summary>
    public const string ApiAudience = "sharehub-api";

    /// <summary>Submit signals and read their status.</summary>
    public const string SignalsSubmit = "signals:submit";

    /// <summary>Acknowledge deliveries addressed to the caller's organisation.</summary>
    public const string DeliveriesRead = "deliveries:read";

    /// <summary>Read the audit trail (scoped to the organisation, or everything for the partnership's FG).</summary>
    public const string AuditRead = "audit:read";

    /// <summary>Administer the policy set.</summary>
    public const string PolicyAdmin = "policy:admin";

    /// <summary>Open, advance and close cases, ask hit/no-hit questions, read the bits (RIEC analysts).</summary>
    public const string CasesManage = "cases:manage";

    /// <summary>Every scope the authorization server knows.</summary>
    public static readonly IReadOnlyList<string> All = [SignalsSubmit, DeliveriesRead, AuditRead, PolicyAdmin, CasesManage];

    /// <summary>A person working on cases for an organisation: submits signals and manages cases.</summary>
    public const string AnalystRole = "analyst";

    /// <summary>A partner's system: submits signals and takes deliveries.</summary>
    public const string PartnerSystemRole = "partner-system";

    /// <summary>Administers the policy set.</summary>
    public const string PolicyAdminRole = "policy-admin";

    /// <summary>Every role the authorization server knows.</summary>
    public static readonly IReadOnlyList<string> Roles =
        [AnalystRole, PartnerSystemRole, HubClaims.PrivacyOfficerRole, PolicyAdminRole, HubClaims.PartnershipPrivacyOfficerRole];

    /// <summary>The scopes a role may request unless a registration names them explicitly (least privilege).</summary>
    public static IEnumerable<string> DefaultScopes(IEnumerable<string> roles) => roles.SelectMany(role => role switch
    {
        AnalystRole => [SignalsSubmit, CasesManage],
        PartnerSystemRole => [SignalsSubmit, DeliveriesRead],
        HubClaims.PrivacyOfficerRole or HubClaims.PartnershipPrivacyOfficerRole => [AuditRead],
        PolicyAdminRole => [PolicyAdmin],
        _ => Array.Empty<string>(),
    }).Distinct(StringComparer.Ordinal);
}
