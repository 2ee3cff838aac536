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
/// The token entry checks <see cref="TokenEntryCheck"/> may rely on for a while: token id → trusted until.
/// One per process.
/// </summary>
public sealed class TokenEntryMemory(Microsoft.Extensions.Options.IOptions<IdentityOptions> options)
{
    /// <summary>Entries remembered at most; past it the memory starts afresh (tokens live minutes, not hours).</summary>
    private const int Capacity = 10_000;

    private readonly ConcurrentDictionary<string, DateTimeOffset> _trustedUntil = new(StringComparer.Ordinal);
    private readonly TimeSpan _period = TimeSpan.FromSeconds(options.Value.TokenEntryCacheSeconds);

    /// <summary>Forgets every remembered check: the next call of each token reads its entry again.</summary>
    public void Forget() => _trustedUntil.Clear();

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
}
