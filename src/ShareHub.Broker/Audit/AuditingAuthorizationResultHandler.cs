using System.Data.Common;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Security;

namespace ShareHub.Broker.Audit;

/// <summary>
/// Audits every authentication failure (401: no or invalid credentials, including a scheme's
/// <c>AuthenticateResult.Fail</c>) and authorisation failure (403: authenticated but lacking the role) before the
/// default handler answers. Independent of the authentication scheme, so it keeps working when OpenIddict replaces
/// the development scheme.
/// </summary>
internal sealed class AuditingAuthorizationResultHandler(ILogger<AuditingAuthorizationResultHandler> logger) : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Challenged || authorizeResult.Forbidden)
        {
            var authenticated = context.User.Identity?.IsAuthenticated == true;
            // The default scheme's result (handlers cache it per request): carries AuthenticateResult.Fail's reason.
            var result = authenticated ? null : await context.AuthenticateAsync().ConfigureAwait(false);
            // OpenIddict puts the precise reason (expired, wrong audience, bad signature…) in the error description.
            var failure = result?.Properties?.Items.TryGetValue(".error_description", out var description) == true
                ? description
                : result?.Failure?.Message;
            var presented = context.Request.Headers.ContainsKey(Microsoft.Net.Http.Headers.HeaderNames.Authorization);
            var code = authorizeResult.Forbidden && authenticated ? ErrorCodes.Forbidden
                : presented ? Identity.IdentityCodes.BearerTokenRefused // a token was presented and refused (RFC 6750 §3.1)
                : ErrorCodes.Unauthenticated;
            var path = context.Request.Path.ToString();
            var reason = code == ErrorCodes.Forbidden
                ? "authenticated, but lacks the role or claim the endpoint requires"
                : presented ? $"credentials were refused: {failure ?? "the token was not accepted"}"
                : failure is null ? "no credentials were presented" : $"credentials were refused: {failure}";
            try
            {
                var trail = context.RequestServices.GetRequiredService<AuditTrail>();
                await trail.RecordAuthenticationFailureAsync(
                    authenticated ? context.User.GetOrganisation() : null,
                    authenticated ? context.User.GetActor() : null,
                    code,
                    $"{context.Request.Method} {(path.Length > 200 ? path[..200] : path)}: {reason}.",
                    context.RequestAborted).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is DbException or DbUpdateException or TimeoutException or OperationCanceledException)
            {
                // The refusal stands whether or not it could be recorded; the storage problem is logged.
                logger.LogError(ex, "Could not audit a {Code} refusal of {Path}", code, path);
            }
        }

        await _default.HandleAsync(next, context, policy, authorizeResult).ConfigureAwait(false);
    }
}
