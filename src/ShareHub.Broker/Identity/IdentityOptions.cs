using Microsoft.Extensions.Options;

namespace ShareHub.Broker.Identity;

/// <summary>
/// Options of the hub's authorization server (<c>ShareHub:Identity</c>; environment <c>ShareHub__Identity__…</c>).
/// </summary>
public sealed class IdentityOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "ShareHub:Identity";

    /// <summary>
    /// The issuer (<c>iss</c>) of access tokens, e.g. <c>https://hub.example.nl/</c>. Required outside Development;
    /// in Development the issuer is taken from the request (so the in-process test server works).
    /// </summary>
    public Uri? Issuer { get; set; }

    /// <summary>The audience (<c>aud</c>) every access token is issued for and validated against.</summary>
    public string Audience { get; set; } = HubScopes.ApiAudience;

    /// <summary>
    /// Lifetime of access tokens. Short on purpose: a revoked client's last token stops working within it at the
    /// latest (revocation also deletes the client's token entries, which stops them at once; see docs/security.md).
    /// </summary>
    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Directory of the hub's RSA signing keys (<c>*.pem</c>, PKCS#8 or PKCS#1). The key whose file name sorts last
    /// signs; the others stay published for validation until they are removed (key rotation:
    /// <c>sharehub keys rotate</c>). Required outside Development; in Development an ephemeral key is used.
    /// </summary>
    public string? SigningKeysPath { get; set; }

    /// <summary>
    /// DEVELOPMENT FALLBACK: allow clients registered with a shared secret (<c>client_secret_post/basic</c>).
    /// Partners authenticate with private_key_jwt (RFC 7523); refused with a secret-bearing client in Production.
    /// </summary>
    public bool AllowClientSecrets { get; set; }

    /// <summary>
    /// How long a positive token entry check (the token's entry exists and is valid: not revoked) is trusted before the
    /// database is read again (<c>Identity/TokenEntryCheck.cs</c>). Bounds how long a client revoked through another
    /// process (CLI, another broker instance) can use a token it already holds; a revocation through the hub itself
    /// takes effect at once. 0 reads the entry on every call. Default 5 s.
    /// </summary>
    public int TokenEntryCacheSeconds { get; set; } = 5;

    /// <summary>Requests per client (or per remote address before authentication) per minute; 429 beyond.</summary>
    public int PermitsPerMinute { get; set; } = 600;

    /// <summary>Clients registered (or updated) at start-up: demo and test partners, or an installation's fixed set.</summary>
    public List<ClientSeed> Clients { get; set; } = [];

    /// <summary>A client registered at start-up from configuration.</summary>
    public sealed class ClientSeed
    {
        /// <summary>OAuth client id.</summary>
        public string ClientId { get; set; } = string.Empty;

        /// <summary>Organisation code in the policy set; it becomes the token's <c>sharehub_org</c> claim.</summary>
        public string Organisation { get; set; } = string.Empty;

        /// <summary>Roles (analyst, partner-system, privacy-officer, policy-admin, partnership-privacy-officer).</summary>
        public List<string> Roles { get; set; } = [];

        /// <summary>Scopes the client may request; empty means the defaults of its roles.</summary>
        public List<string> Scopes { get; set; } = [];

        /// <summary>Path of the partner's public key (PEM) for private_key_jwt.</summary>
        public string? PublicKeyFile { get; set; }

        /// <summary>The partner's public key as PEM text (alternative to <see cref="PublicKeyFile"/>).</summary>
        public string? PublicKeyPem { get; set; }

        /// <summary>DEVELOPMENT FALLBACK: a client secret (needs <see cref="AllowClientSecrets"/>).</summary>
        public string? Secret { get; set; }
    }
}

/// <summary>Refuses to start the authorization server with unsafe or incomplete settings (STYLE.md §5).</summary>
internal sealed class IdentityOptionsValidator(IHostEnvironment environment) : IValidateOptions<IdentityOptions>
{
    public ValidateOptionsResult Validate(string? name, IdentityOptions options)
    {
        var failures = new List<string>();
        if (options.AccessTokenLifetime < TimeSpan.FromSeconds(1) || options.AccessTokenLifetime > TimeSpan.FromMinutes(60))
        {
            failures.Add("ShareHub:Identity:AccessTokenLifetime must be between 1 second and 60 minutes (default 5 minutes).");
        }

        if (string.IsNullOrWhiteSpace(options.Audience))
        {
            failures.Add("ShareHub:Identity:Audience is empty.");
        }

        if (options.PermitsPerMinute < 1)
        {
            failures.Add("ShareHub:Identity:PermitsPerMinute must be at least 1.");
        }

        if (options.TokenEntryCacheSeconds is < 0 or > 60)
        {
            // Longer would stretch how long a token revoked elsewhere keeps working (docs/security.md).
            failures.Add("ShareHub:Identity:TokenEntryCacheSeconds must be between 0 (read the token entry on every call) and 60.");
        }

        if (!environment.IsDevelopment())
        {
            if (string.IsNullOrWhiteSpace(options.SigningKeysPath))
            {
                failures.Add("ShareHub:Identity:SigningKeysPath is missing: create one with 'sharehub keys rotate --dir <path>' (ephemeral keys are for Development only).");
            }
            else if (!Directory.Exists(options.SigningKeysPath) || Directory.GetFiles(options.SigningKeysPath, "signing-*.pem").Length == 0)
            {
                failures.Add($"ShareHub:Identity:SigningKeysPath '{options.SigningKeysPath}' holds no signing-*.pem key: create one with 'sharehub keys rotate --dir {options.SigningKeysPath}'.");
            }

            if (options.Issuer is null)
            {
                failures.Add("ShareHub:Identity:Issuer is missing: set the hub's public https:// address.");
            }
            else if (environment.IsProduction() && options.Issuer.Scheme != Uri.UriSchemeHttps)
            {
                failures.Add("ShareHub:Identity:Issuer must be an https:// address in Production.");
            }
        }

        if (environment.IsProduction() && (options.AllowClientSecrets || options.Clients.Any(c => c.Secret is not null)))
        {
            failures.Add("Client secrets are a development fallback and are refused in Production: register the partner's public key (private_key_jwt, RFC 7523).");
        }

        foreach (var client in options.Clients)
        {
            if (string.IsNullOrWhiteSpace(client.ClientId) || string.IsNullOrWhiteSpace(client.Organisation))
            {
                failures.Add("Every ShareHub:Identity:Clients entry needs a ClientId and an Organisation.");
            }
            else if (client.PublicKeyFile is null && client.PublicKeyPem is null && client.Secret is null)
            {
                failures.Add($"Client '{client.ClientId}' has no public key (PublicKeyFile/PublicKeyPem) and no development secret.");
            }
            else if (client.Secret is not null && !options.AllowClientSecrets)
            {
                failures.Add($"Client '{client.ClientId}' has a secret but ShareHub:Identity:AllowClientSecrets is false.");
            }

            foreach (var role in client.Roles.Where(r => !HubScopes.Roles.Contains(r)))
            {
                failures.Add($"Client '{client.ClientId}' has unknown role '{role}' (known: {string.Join(", ", HubScopes.Roles)}).");
            }

            foreach (var scope in client.Scopes.Where(s => !HubScopes.All.Contains(s)))
            {
                failures.Add($"Client '{client.ClientId}' has unknown scope '{scope}' (known: {string.Join(", ", HubScopes.All)}).");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
