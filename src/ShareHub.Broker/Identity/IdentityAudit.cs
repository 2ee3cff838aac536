using System.Diagnostics;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Identity;

/// <summary>Audit entry kinds written by the identity component (the audit trail chains every entry centrally).</summary>
public static class IdentityAuditKinds
{
    /// <summary>A partner client was registered or its registration (key, roles, scopes) changed.</summary>
    public const string ClientRegistered = "identity.client-registered";

    /// <summary>A partner client was revoked: it can obtain no token and its issued tokens stop working.</summary>
    public const string ClientRevoked = "identity.client-revoked";

    /// <summary>The hub's token signing key was rotated.</summary>
    public const string KeyRotated = "identity.key-rotated";

    /// <summary>A token request or a bearer token was refused.</summary>
    public const string AuthenticationFailed = "identity.authentication-failed";
}

/// <summary>Stable codes of the identity component (STYLE.md §7): in audit entries, problem responses and docs/security.md.</summary>
public static class IdentityCodes
{
    /// <summary>A client was registered or updated.</summary>
    public const string ClientRegistered = "SH-I0001";

    /// <summary>A client was revoked.</summary>
    public const string ClientRevoked = "SH-I0002";

    /// <summary>The signing key was rotated.</summary>
    public const string KeyRotated = "SH-I0003";

    /// <summary>The token endpoint refused a request (unknown client, bad assertion or secret, scope not allowed…).</summary>
    public const string TokenRequestRefused = "SH-I0401";

    /// <summary>An API call carried a bearer token that failed validation (signature, issuer, audience, lifetime, revoked).</summary>
    public const string BearerTokenRefused = "SH-I0402";

    /// <summary>Too many requests from one client: rate limited.</summary>
    public const string RateLimited = "SH-A0429";

    /// <summary>An acknowledgement for a delivery that is not the caller's.</summary>
    public const string NotYourDelivery = "SH-D0404";
}

/// <summary>Builds identity audit entries.</summary>
internal static class IdentityAudit
{
    /// <summary>
    /// The pseudo-organisation that stands for the hub's operator in the audit trail: registrations, revocations and
    /// key rotations are the operator's acts (the client's organisation is named in the explanation).
    /// </summary>
    public const string HubOrganisation = "sharehub";

    public static AuditEntry Entry(
        string kind, string outcome, string code, string actorOrganisation, string actor, string explanation, DateTimeOffset now) => new()
    {
        Kind = kind,
        RecordedAt = now,
        ActorOrganisation = Truncate(actorOrganisation, 64),
        Actor = Truncate(actor, 128),
        Outcome = outcome,
        ReasonCode = code,
        Explanation = Truncate(explanation, 2000),
        TraceId = Activity.Current?.TraceId.ToHexString(),
    };

    /// <summary>Untrusted values (claimed client ids, error texts) are stored shortened only.</summary>
    public static string Truncate(string? text, int length) =>
        string.IsNullOrEmpty(text) ? "unknown" : text.Length <= length ? text : text[..(length - 1)] + "…";
}
