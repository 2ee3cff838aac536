using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.Net.Http.Headers;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Identity;

/// <summary>
/// Audits every API call whose credentials were refused: a request that presented an <c>Authorization</c> header and
/// is nevertheless challenged (bad signature, wrong issuer or audience, expired, revoked) gets an
/// <c>identity.authentication-failed</c> entry. The answer itself stays the framework's: 401 with an RFC 6750
/// <c>WWW-Authenticate: Bearer error="invalid_token"</c> header and a ProblemDetails body (RFC 9457).
/// </summary>
internal sealed class AuditingAuthorizationResultHandler(TimeProvider time, ILogger<AuditingAuthorizationResultHandler> logger) : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Challenged && context.Request.Headers.ContainsKey(HeaderNames.Authorization))
        {
            // The authentication middleware keeps only successful results; ask the scheme again for the reason.
            var failure = await context.AuthenticateAsync().ConfigureAwait(false);
            var reason = failure?.Properties?.Items.TryGetValue(".error_description", out var description) == true ? description
                : failure?.Failure?.Message ?? "the credentials were not accepted";
            logger.LogWarning("Bearer token refused on {Method} {Path}: {Reason}", context.Request.Method, context.Request.Path, reason);
            var db = context.RequestServices.GetRequiredService<HubDbContext>();
            db.AuditEntries.Add(IdentityAudit.Entry(
                IdentityAuditKinds.AuthenticationFailed, "failed", IdentityCodes.BearerTokenRefused, "unknown",
                $"address:{context.Connection.RemoteIpAddress?.ToString() ?? "local"}",
                $"{context.Request.Method} {IdentityAudit.Truncate(context.Request.Path.Value, 200)} refused: {IdentityAudit.Truncate(reason, 300)}",
                time.GetUtcNow()));
            await db.SaveChangesAsync(context.RequestAborted).ConfigureAwait(false);
        }

        await _default.HandleAsync(next, context, policy, authorizeResult).ConfigureAwait(false);
    }
}
