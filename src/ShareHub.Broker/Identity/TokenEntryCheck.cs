using System.Collections.Concurrent;
using OpenIddict.Abstractions;
using OpenIddict.Validation;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Validation.OpenIddictValidationEvents;
using static OpenIddict.Validation.OpenIddictValidationHandlers.Protection;

namespace ShareHub.Broker.Identity;

/// <summary>
/// Token entry validation (revocation) with a short memory: replaces OpenIddict's <c>RestoreTokenEntryProperties</c>
/// and <c>ValidateTokenEntry</c>, which read the access token's entry from the database on every API call. This check
/// reads it once and then trusts a positive answer for <see cref="IdentityOptions.TokenEntryCacheSeconds"/> seconds;
/// a missing or non-valid entry is refused as before (and never remembered). Every other check — signature, issuer,
/// audience, lifetime (RFC 9068 §4) — still runs on every call.
/// </summary>
/// <remarks>
/// The trade-off (docs/security.md): a client revoked through another process — the CLI, another broker instance —
/// can use a token it already holds for at most the cache period after the revocation. A revocation through this
/// process (<see cref="PartnerClientRegistry.RevokeAsync"/>) forgets the cache, so it takes effect at once here. With
/// <c>TokenEntryCacheSeconds = 0</c> every call reads the entry, as OpenIddict does by default.
/// </remarks>
internal sealed class TokenEntryCheck(IOpenIddictTokenManager manager, TokenEntryMemory memory, TimeProvider time) : IOpenIddictValidationHandler<ValidateTokenContext>
{
    /// <summary>Runs where OpenIddict's own token entry handlers ran (scoped: the token manager is).</summary>
    public static OpenIddictValidationHandlerDescriptor Descriptor { get; } =
        OpenIddictValidationHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseScopedHandler<TokenEntryCheck>()
            .SetOrder(RestoreTokenEntryProperties.Descriptor.Order)
            .SetType(OpenIddictValidationHandlerType.Custom)
            .Build();

    /// <inheritdoc />
    public async ValueTask HandleAsync(ValidateTokenContext context)
    {
        ArgumentNullException.ThrowIfNull(context);

        // No token id: the token has no backing entry (as in OpenIddict's handler, nothing to check here).
        if (context.Principal?.GetTokenId() is not { Length: > 0 } id)
        {
            return;
        }

        var now = time.GetUtcNow();
        if (memory.IsTrusted(id, now))
        {
            context.TokenId = id;
            return;
        }

        var token = await manager.FindByIdAsync(id, context.CancellationToken).ConfigureAwait(false);

        // Refused: no entry (revoked: the client's entries were deleted), not valid (revoked/redeemed), or an entry
        // with a reference id whose payload is presented as a plain token (OpenIddict refuses that as well).
        if (token is null
            || !await manager.HasStatusAsync(token, Statuses.Valid, context.CancellationToken).ConfigureAwait(false)
            || !string.IsNullOrEmpty(await manager.GetReferenceIdAsync(token, context.CancellationToken).ConfigureAwait(false)))
        {
            memory.Forget(id);
            context.Reject(error: Errors.InvalidToken, description: "The access token is no longer valid.");
            return;
        }

        context.TokenId = id;
        memory.Trust(id, now);
    }
}

/// <summary>
/// What this process may rely on for a while (<see cref="IdentityOptions.TokenEntryCacheSeconds"/>): token entry checks
/// (<see cref="TokenEntryCheck"/>: token id → trusted until) and whole validations of presented tokens
/// (<see cref="RememberedTokenHandler"/>: SHA-256 of the header → result, until the period ends or the token expires).
/// One per process.
/// </summary>
public sealed class TokenEntryMemory(Microsoft.Extensions.Options.IOptions<IdentityOptions> options)
{
    /// <summary>Entries remembered at most, of each kind; past it the memory starts afresh (tokens live minutes, not hours).</summary>
    private const int Capacity = 10_000;

    private readonly ConcurrentDictionary<string, DateTimeOffset> _trustedUntil = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (Microsoft.AspNetCore.Authentication.AuthenticationTicket Ticket, DateTimeOffset Until)> _validated = new(StringComparer.Ordinal);
    private readonly TimeSpan _period = TimeSpan.FromSeconds(options.Value.TokenEntryCacheSeconds);

    /// <summary>Forgets every remembered check and validation: the next call of each token is checked in full.</summary>
    public void Forget()
    {
        _trustedUntil.Clear();
        _validated.Clear();
    }

    internal void Forget(string tokenId) => _trustedUntil.TryRemove(tokenId, out _);

    internal bool IsTrusted(string tokenId, DateTimeOffset now) => _trustedUntil.TryGetValue(tokenId, out var until) && now < until;

    internal void Trust(string tokenId, DateTimeOffset now)
    {
        if (_period <= TimeSpan.Zero)
        {
            return;
        }

        if (_trustedUntil.Count >= Capacity)
        {
            _trustedUntil.Clear();
        }

        _trustedUntil[tokenId] = now + _period;
    }

    /// <summary>The remembered validation of the presented header <paramref name="key"/>, if it still holds at <paramref name="now"/>.</summary>
    internal bool TryRecall(string key, DateTimeOffset now, out Microsoft.AspNetCore.Authentication.AuthenticationTicket ticket)
    {
        if (_validated.TryGetValue(key, out var remembered) && now < remembered.Until)
        {
            ticket = remembered.Ticket;
            return true;
        }

        ticket = null!;
        return false;
    }

    /// <summary>Remembers a successful validation until the period ends or the token expires, whichever is first.</summary>
    internal void Remember(string key, Microsoft.AspNetCore.Authentication.AuthenticationTicket ticket, DateTimeOffset now, DateTimeOffset expires)
    {
        var until = now + _period < expires ? now + _period : expires;
        if (until <= now)
        {
            return;
        }

        if (_validated.Count >= Capacity)
        {
            _validated.Clear();
        }

        _validated[key] = (ticket, until);
    }
}
