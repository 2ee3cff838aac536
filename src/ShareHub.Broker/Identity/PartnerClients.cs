using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using ShareHub.Broker.Data;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace ShareHub.Broker.Identity;

/// <summary>A partner client to register: who it is, what it may do, and how it proves it.</summary>
/// <param name="ClientId">OAuth client id.</param>
/// <param name="Organisation">Organisation code in the policy set; becomes the token's organisation claim.</param>
/// <param name="Roles">Roles carried in its tokens.</param>
/// <param name="Scopes">Scopes it may request; null or empty means the defaults of its roles.</param>
/// <param name="PublicKeyPem">The partner's RSA or EC public key (PEM) for private_key_jwt (RFC 7523).</param>
/// <param name="Secret">DEVELOPMENT FALLBACK: a client secret instead of a key.</param>
public sealed record PartnerClientRegistration(
    string ClientId,
    string Organisation,
    IReadOnlyList<string> Roles,
    IReadOnlyList<string>? Scopes,
    string? PublicKeyPem,
    string? Secret = null);

/// <summary>What the hub knows of a registered client.</summary>
/// <param name="ClientId">OAuth client id.</param>
/// <param name="Organisation">Organisation code.</param>
/// <param name="Roles">Roles.</param>
/// <param name="Scopes">Scopes it may request.</param>
public sealed record PartnerClientInfo(string ClientId, string Organisation, IReadOnlyList<string> Roles, IReadOnlyList<string> Scopes);

/// <summary>
/// Registers and revokes partner clients in OpenIddict's application store, auditing each change in the same
/// database transaction (the audit row is added to the context before the store saves).
/// </summary>
public sealed class PartnerClientRegistry(
    IOpenIddictApplicationManager applications,
    HubDbContext db,
    TimeProvider time,
    Microsoft.Extensions.Options.IOptions<IdentityOptions> options,
    TokenEntryMemory? tokenEntries = null)
{
    internal const string OrganisationProperty = "sharehub_org";
    internal const string RolesProperty = "sharehub_roles";

    /// <summary>Registers a client, or replaces the registration of an existing client id. Audited.</summary>
    public async Task RegisterAsync(PartnerClientRegistration registration, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registration);
        if (registration.PublicKeyPem is null && registration.Secret is null)
        {
            throw new ArgumentException($"Client '{registration.ClientId}' needs a public key (private_key_jwt) or a development secret.", nameof(registration));
        }

        if (registration.Secret is not null && !options.Value.AllowClientSecrets)
        {
            throw new ArgumentException($"Client '{registration.ClientId}' has a client secret, but secrets are a development fallback that ShareHub:Identity:AllowClientSecrets does not allow: register the partner's public key.", nameof(registration));
        }

        // Least privilege: explicit scopes may narrow what the roles allow, never widen it.
        var allowed = HubScopes.DefaultScopes(registration.Roles).ToList();
        var scopes = registration.Scopes is { Count: > 0 } explicitScopes ? explicitScopes.Distinct(StringComparer.Ordinal).ToList() : allowed;
        if (scopes.Except(allowed, StringComparer.Ordinal).ToList() is { Count: > 0 } excess)
        {
            throw new ArgumentException($"Client '{registration.ClientId}': scopes [{string.Join(", ", excess)}] are not allowed for roles [{string.Join(", ", registration.Roles)}].", nameof(registration));
        }
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = registration.ClientId,
            DisplayName = $"{registration.Organisation} ({string.Join(", ", registration.Roles)})",
            ClientType = ClientTypes.Confidential,
            ClientSecret = registration.Secret,
            Permissions = { Permissions.Endpoints.Token, Permissions.GrantTypes.ClientCredentials },
            Properties =
            {
                [OrganisationProperty] = JsonSerializer.SerializeToElement(registration.Organisation),
                [RolesProperty] = JsonSerializer.SerializeToElement(registration.Roles),
            },
        };
        foreach (var scope in scopes)
        {
            descriptor.Permissions.Add(Permissions.Prefixes.Scope + scope);
        }

        string keyNote = "a client secret (development fallback)";
        if (registration.PublicKeyPem is not null)
        {
            var jwk = PublicJsonWebKey(registration.PublicKeyPem);
            descriptor.JsonWebKeySet = new JsonWebKeySet { Keys = { jwk } };
            keyNote = $"public key {jwk.Kid}";
        }

        var existing = await applications.FindByClientIdAsync(registration.ClientId, cancellationToken).ConfigureAwait(false);
        db.AuditEntries.Add(IdentityAudit.Entry(
            IdentityAuditKinds.ClientRegistered, existing is null ? "registered" : "updated", IdentityCodes.ClientRegistered,
            IdentityAudit.HubOrganisation, actor,
            $"Client '{registration.ClientId}' of '{registration.Organisation}' {(existing is null ? "registered" : "re-registered")} with roles [{string.Join(", ", registration.Roles)}], scopes [{string.Join(", ", scopes)}] and {keyNote}.",
            time.GetUtcNow()));

        // The store saves the context, so the audit entry above commits together with the registration.
        if (existing is null)
        {
            await applications.CreateAsync(descriptor, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await applications.UpdateAsync(existing, descriptor, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Registers a client unless an identical registration (organisation, roles, scopes, key) exists; for start-up
    /// seeding, so a restart does not audit a change that did not happen. Returns whether anything changed.
    /// </summary>
    public async Task<bool> RegisterIfChangedAsync(PartnerClientRegistration registration, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registration);
        var application = await applications.FindByClientIdAsync(registration.ClientId, cancellationToken).ConfigureAwait(false);
        if (application is not null)
        {
            var current = await DescribeAsync(application, cancellationToken).ConfigureAwait(false);
            var scopes = registration.Scopes is { Count: > 0 } s ? s : HubScopes.DefaultScopes(registration.Roles).ToList();
            var keys = await applications.GetJsonWebKeySetAsync(application, cancellationToken).ConfigureAwait(false);
            var sameKey = registration.PublicKeyPem is null
                ? keys is null || keys.Keys.Count == 0
                : keys?.Keys.Count == 1 && keys.Keys[0].Kid == PublicJsonWebKey(registration.PublicKeyPem).Kid;
            if (current.Organisation == registration.Organisation && sameKey
                && current.Roles.Order(StringComparer.Ordinal).SequenceEqual(registration.Roles.Order(StringComparer.Ordinal))
                && current.Scopes.Order(StringComparer.Ordinal).SequenceEqual(scopes.Order(StringComparer.Ordinal)))
            {
                return false;
            }
        }

        await RegisterAsync(registration, actor, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// Revokes a client: it can no longer obtain tokens, and deleting the application deletes its token entries, so
    /// tokens it already holds are refused by token entry validation — at once by this process, within
    /// <see cref="IdentityOptions.TokenEntryCacheSeconds"/> by other broker processes. Audited. False when unknown.
    /// </summary>
    public async Task<bool> RevokeAsync(string clientId, string actor, string? reason = null, CancellationToken cancellationToken = default)
    {
        var application = await applications.FindByClientIdAsync(clientId, cancellationToken).ConfigureAwait(false);
        if (application is null)
        {
            return false;
        }

        var info = await DescribeAsync(application, cancellationToken).ConfigureAwait(false);
        db.AuditEntries.Add(IdentityAudit.Entry(
            IdentityAuditKinds.ClientRevoked, "revoked", IdentityCodes.ClientRevoked, IdentityAudit.HubOrganisation, actor,
            $"Client '{clientId}' of '{info.Organisation}' revoked{(reason is null ? string.Empty : ": " + reason)}.",
            time.GetUtcNow()));
        await applications.DeleteAsync(application, cancellationToken).ConfigureAwait(false);
        // This process stops trusting its remembered token entry checks at once; other processes within
        // ShareHub:Identity:TokenEntryCacheSeconds (docs/security.md).
        tokenEntries?.Forget();
        return true;
    }

    /// <summary>The registration of a client, or null.</summary>
    public async Task<PartnerClientInfo?> FindAsync(string clientId, CancellationToken cancellationToken = default)
    {
        var application = await applications.FindByClientIdAsync(clientId, cancellationToken).ConfigureAwait(false);
        return application is null ? null : await DescribeAsync(application, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Every registered client.</summary>
    public async Task<IReadOnlyList<PartnerClientInfo>> ListAsync(CancellationToken cancellationToken = default)
    {
        var result = new List<PartnerClientInfo>();
        await foreach (var application in applications.ListAsync(count: null, offset: null, cancellationToken).ConfigureAwait(false))
        {
            result.Add(await DescribeAsync(application, cancellationToken).ConfigureAwait(false));
        }

        return result;
    }

    internal async Task<PartnerClientInfo> DescribeAsync(object application, CancellationToken cancellationToken)
    {
        var properties = await applications.GetPropertiesAsync(application, cancellationToken).ConfigureAwait(false);
        var permissions = await applications.GetPermissionsAsync(application, cancellationToken).ConfigureAwait(false);
        var organisation = properties.TryGetValue(OrganisationProperty, out var org) ? org.GetString() ?? string.Empty : string.Empty;
        var roles = properties.TryGetValue(RolesProperty, out var r) ? r.Deserialize<List<string>>() ?? [] : [];
        var scopes = permissions.Where(p => p.StartsWith(Permissions.Prefixes.Scope, StringComparison.Ordinal))
            .Select(p => p[Permissions.Prefixes.Scope.Length..]).ToList();
        var clientId = await applications.GetClientIdAsync(application, cancellationToken).ConfigureAwait(false) ?? string.Empty;
        return new PartnerClientInfo(clientId, organisation, roles, scopes);
    }

    /// <summary>
    /// Converts a PEM public key (a private key's public half is taken) to a signing JWK: RSA of at least 2048 bits
    /// (RS256, RFC 7518 §3.3) or EC on P-256 (ES256, §3.4), what the partner SDK signs with. A "PUBLIC KEY" or
    /// "PRIVATE KEY" label does not say which algorithm, so RSA is tried first. Anything else is an
    /// <see cref="ArgumentException"/>.
    /// </summary>
    public static JsonWebKey PublicJsonWebKey(string pem)
    {
        JsonWebKey jwk;
        using var rsa = RSA.Create();
        using var ec = ECDsa.Create();
        if (TryImport(rsa, pem))
        {
            if (rsa.KeySize < 2048)
            {
                throw new ArgumentException($"The client's RSA key has {rsa.KeySize} bits; RS256 needs at least 2048 (RFC 7518 §3.3).", nameof(pem));
            }

            jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(rsa.ExportParameters(includePrivateParameters: false)));
        }
        else if (TryImport(ec, pem))
        {
            var parameters = ec.ExportParameters(includePrivateParameters: false);
            if (parameters.Curve.Oid.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
            {
                throw new ArgumentException($"The client's EC key is on curve {parameters.Curve.Oid.FriendlyName ?? parameters.Curve.Oid.Value}; ES256 needs P-256 (RFC 7518 §3.4).", nameof(pem));
            }

            using var publicHalf = ECDsa.Create(parameters);
            jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(publicHalf));
        }
        else
        {
            throw new ArgumentException("The client key is not an RSA or EC key in PEM form.", nameof(pem));
        }

        jwk.Use = JsonWebKeyUseNames.Sig;
        jwk.Kid = Base64UrlEncoder.Encode(jwk.ComputeJwkThumbprint());
        return jwk;
    }

    private static bool TryImport(AsymmetricAlgorithm key, string pem)
    {
        try
        {
            key.ImportFromPem(pem);
            return true;
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            return false;
        }
    }
}
