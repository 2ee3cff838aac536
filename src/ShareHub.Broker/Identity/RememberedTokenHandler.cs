using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Validation.AspNetCore;

namespace ShareHub.Broker.Identity;

/// <summary>
/// The hub's bearer scheme: OpenIddict's validation, remembered for a few seconds. A partner system presents the same
/// access token on every call for its whole lifetime (5 minutes); OpenIddict parses it, checks its signature, issuer,
/// audience and lifetime (RFC 9068 §4) and builds its claims anew each time — the most expensive step of an API call
/// at load. This scheme asks OpenIddict once and then, for the same token, answers with a copy of that result until
/// the earlier of <see cref="IdentityOptions.TokenEntryCacheSeconds"/> later and the token's own expiry.
/// </summary>
/// <remarks>
/// Nothing is trusted longer than before: the token entry (revocation) was already trusted for that period
/// (<see cref="TokenEntryCheck"/>), and a token is immutable, so its signature, issuer and audience cannot change in it;
/// its expiry caps the period. A revocation through this process forgets the remembered tokens with the entries
/// (<see cref="TokenEntryMemory.Forget()"/>), and <c>TokenEntryCacheSeconds = 0</c> switches both off. Only the
/// <c>Authorization: Bearer</c> header is remembered (RFC 6750 §2.1), keyed by its SHA-256, never by the token itself.
/// A refused token is never remembered: it goes through OpenIddict every time, and challenges and refusals are
/// OpenIddict's (<c>WWW-Authenticate</c> with the error, RFC 6750 §3).
/// </remarks>
internal sealed class RememberedTokenHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    TokenEntryMemory memory,
    TimeProvider time) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    /// <summary>The scheme's name: the hub's default scheme in <c>Tokens</c> mode.</summary>
    public const string SchemeName = "ShareHub.Bearer";

    private static string Validation => OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme;

    /// <inheritdoc />
    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization;
        var key = header.Count == 1 && header[0] is { } value && value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(value)))
            : null;
        if (key is not null && memory.TryRecall(key, time.GetUtcNow(), out var remembered))
        {
            // A copy: whatever a request does to its principal stays in that request.
            return AuthenticateResult.Success(new AuthenticationTicket(remembered.Principal.Clone(), remembered.Properties.Clone(), remembered.AuthenticationScheme));
        }

        var result = await Context.AuthenticateAsync(Validation).ConfigureAwait(false);
        if (key is not null && result.Succeeded && (result.Principal.GetExpirationDate() ?? result.Properties.ExpiresUtc) is { } expires)
        {
            memory.Remember(key, new AuthenticationTicket(result.Principal.Clone(), result.Properties.Clone(), result.Ticket.AuthenticationScheme), time.GetUtcNow(), expires);
        }

        return result;
    }

    /// <inheritdoc />
    protected override Task HandleChallengeAsync(AuthenticationProperties properties) => Context.ChallengeAsync(Validation, properties);

    /// <inheritdoc />
    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) => Context.ForbidAsync(Validation, properties);
}
