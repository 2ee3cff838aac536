using System.Security.Claims;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using ShareHub.Broker.Data;
using ShareHub.Broker.Security;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace ShareHub.Broker.Identity;

/// <summary>
/// The token endpoint (<c>POST /connect/token</c>). OpenIddict has already authenticated the client — with a
/// private_key_jwt client assertion (RFC 7523 §2.2) or, as a development fallback, a secret — and checked the grant
/// type and the requested scopes against the client's permissions before this handler runs.
/// </summary>
internal static class TokenEndpoint
{
    public const string Path = "/connect/token";

    public static IEndpointRouteBuilder MapTokenEndpoint(this IEndpointRouteBuilder app)
    {
        app.MapPost(Path, IssueAsync).AllowAnonymous();
        return app;
    }

    private static async Task<IResult> IssueAsync(
        HttpContext http,
        IOpenIddictApplicationManager applications,
        PartnerClientRegistry clients,
        IOptions<IdentityOptions> options,
        HubDbContext db,
        TimeProvider time)
    {
        var request = http.GetOpenIddictServerRequest()
            ?? throw new InvalidOperationException("The OpenIddict server request cannot be retrieved.");

        // RFC 6749 §4.4: the client credentials grant is the only grant this hub issues tokens for.
        if (!request.IsClientCredentialsGrantType())
        {
            return Refuse(Errors.UnsupportedGrantType, "Only the client_credentials grant is supported.");
        }

        var application = await applications.FindByClientIdAsync(request.ClientId!, http.RequestAborted).ConfigureAwait(false);
        if (application is null)
        {
            return Refuse(Errors.InvalidClient, "The client is not registered.");
        }

        // RFC 7523 §3 (7): a client assertion is good for one token request. OpenIddict validated its signature, issuer,
        // audience and lifetime; the hub also remembers its jti until it expires and refuses a replay.
        if (request.ClientAssertion is { Length: > 0 } assertion
            && !await ClientAssertionReplay.TryUseAsync(db, request.ClientId!, assertion, time.GetUtcNow(), http.RequestAborted).ConfigureAwait(false))
        {
            return Refuse(Errors.InvalidClient, "The client assertion was already used or carries no jti (RFC 7523 §3).");
        }

        var client = await clients.DescribeAsync(application, http.RequestAborted).ConfigureAwait(false);
        if (string.IsNullOrEmpty(client.Organisation))
        {
            return Refuse(Errors.InvalidClient, "The client is not bound to an organisation.");
        }

        // Scopes: what was asked (OpenIddict checked each against the client's permissions), or everything the client
        // may have when it asked for nothing.
        var requested = request.GetScopes();
        if (requested.Except(client.Scopes, StringComparer.Ordinal).Any())
        {
            // RFC 6749 §5.2: a scope the client is not registered for.
            return Refuse(Errors.InvalidScope, "The client may not request one or more of these scopes.");
        }

        var scopes = requested.IsEmpty ? client.Scopes : [.. requested];

        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, client.ClientId)
            .SetClaim(Claims.Name, client.ClientId)
            .SetClaim(HubClaims.Organisation, client.Organisation)
            .SetClaims(Claims.Role, [.. client.Roles]);
        identity.SetScopes(scopes);
        identity.SetAudiences(options.Value.Audience);
        identity.SetDestinations(_ => [Destinations.AccessToken]);
        return Results.SignIn(new ClaimsPrincipal(identity), authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    private static IResult Refuse(string error, string description) => Results.Forbid(
        new AuthenticationProperties(new Dictionary<string, string?>
        {
            [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
            [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
        }),
        [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);
}

/// <summary>
/// Audits every refused token request (unknown client, bad or replayed assertion, wrong secret, scope not permitted):
/// runs when OpenIddict writes an error response of the token endpoint.
/// </summary>
internal sealed class TokenFailureAuditHandler(HubDbContext db, TimeProvider time, ILogger<TokenFailureAuditHandler> logger)
    : IOpenIddictServerHandler<OpenIddictServerEvents.ApplyTokenResponseContext>
{
    public async ValueTask HandleAsync(OpenIddictServerEvents.ApplyTokenResponseContext context)
    {
        if (string.IsNullOrEmpty(context.Response.Error))
        {
            return;
        }

        // The client id is what the caller claimed: it is not authenticated, so it is recorded as a claim only.
        var claimed = context.Request?.ClientId;
        logger.LogWarning("Token request refused: {Error} for claimed client {ClientId}", context.Response.Error, claimed);
        db.AuditEntries.Add(IdentityAudit.Entry(
            IdentityAuditKinds.AuthenticationFailed, "failed", IdentityCodes.TokenRequestRefused, "unknown",
            $"claimed-client:{IdentityAudit.Truncate(claimed, 100)}",
            $"Token request refused ({context.Response.Error}): {IdentityAudit.Truncate(context.Response.ErrorDescription, 300)}",
            time.GetUtcNow()));
        await db.SaveChangesAsync(context.CancellationToken).ConfigureAwait(false);
    }
}
