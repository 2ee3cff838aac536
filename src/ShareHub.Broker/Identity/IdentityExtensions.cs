using System.Globalization;
using System.Security.Cryptography;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Validation.AspNetCore;
using ShareHub.Broker.Api;
using ShareHub.Broker.Configuration;
using ShareHub.Broker.Data;
using ShareHub.Broker.Policies;
using ShareHub.Broker.Security;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace ShareHub.Broker.Identity;

/// <summary>
/// Wiring of the hub's identity: the OpenIddict authorization server (client credentials, private_key_jwt), token
/// validation on every API call, authorisation policies (organisation + role + scope), failed-authentication audit,
/// per-client rate limiting and security headers.
/// </summary>
public static class IdentityExtensions
{
    /// <summary>Authorisation policy: may acknowledge the caller's own deliveries.</summary>
    public const string DeliveriesPolicy = HubScopes.DeliveriesRead;

    /// <summary>Authorisation policy: an analyst with the <c>cases:manage</c> scope.</summary>
    public const string CasesPolicy = HubScopes.CasesManage;

    /// <summary>Registers the authorization server, token validation, authentication schemes and policies.</summary>
    public static WebApplicationBuilder AddHubIdentity(this WebApplicationBuilder builder, ShareHubOptions settings)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(settings);
        var services = builder.Services;
        var identity = builder.Configuration.GetSection(IdentityOptions.Section).Get<IdentityOptions>() ?? new IdentityOptions();
        services.AddOptions<IdentityOptions>().Bind(builder.Configuration.GetSection(IdentityOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<IdentityOptions>, IdentityOptionsValidator>();
        services.AddScoped<PartnerClientRegistry>();
        services.AddSingleton<TokenEntryMemory>();
        var development = builder.Environment.IsDevelopment();

        services.AddOpenIddict()
            .AddCore(core => core.UseEntityFrameworkCore().UseDbContext<HubDbContext>())
            .AddServer(server =>
            {
                server.SetTokenEndpointUris(TokenEndpoint.Path.TrimStart('/'));
                // RFC 6749 §4.4: partner systems are confidential clients using the client credentials grant.
                server.AllowClientCredentialsFlow();
                server.RegisterScopes([.. HubScopes.All]);
                server.SetAccessTokenLifetime(identity.AccessTokenLifetime);
                if (identity.Issuer is not null)
                {
                    server.SetIssuer(identity.Issuer);
                }

                // Access tokens are signed JWTs (RFC 9068 style), not encrypted: the hub validates them locally and
                // partners need not read them. OpenIddict still demands an encryption key; it would only protect token
                // types this hub never issues (codes, refresh tokens), so it is an ephemeral AES-256 key-wrap key
                // (A256KW, RFC 7518 §4.4) — not OpenIddict's default 4096-bit RSA key, which costs seconds of CPU at
                // every start for nothing.
                server.DisableAccessTokenEncryption();
                server.AddEphemeralEncryptionKey(SecurityAlgorithms.Aes256KW);
                if (identity.SigningKeysPath is { Length: > 0 } keys && Directory.Exists(keys))
                {
                    foreach (var key in SigningKeys.Load(keys))
                    {
                        server.AddSigningKey(key);
                    }
                }
                else if (development)
                {
                    // Development only, with no key directory: an ephemeral key of this host, gone when it stops. ES256
                    // on P-256 (RFC 7518 §3.4; about as strong as 3072-bit RSA, NIST SP 800-57) rather than OpenIddict's
                    // default ephemeral 4096-bit RSA key: made in a millisecond instead of seconds of CPU at every start.
                    // Outside Development the keys come from ShareHub:Identity:SigningKeysPath (RSA, RS256).
                    server.AddSigningKey(new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)));
                }

                server.AddEventHandler<OpenIddictServerEvents.ApplyTokenResponseContext>(handler =>
                    handler.UseScopedHandler<TokenFailureAuditHandler>().SetOrder(int.MinValue + 100_000));

                var aspNetCore = server.UseAspNetCore().EnableTokenEndpointPassthrough();
                if (development)
                {
                    // Plain HTTP only in Development (the in-process test server, the demo on 127.0.0.1).
                    aspNetCore.DisableTransportSecurityRequirement();
                }
            })
            .AddValidation(validation =>
            {
                // Issuer, signature (the server's keys), lifetime and audience are checked on every call.
                validation.UseLocalServer();
                validation.AddAudiences(identity.Audience);
                // Revocation: a revoked client's token entries are gone, so its tokens fail the token entry check. The
                // hub's own check replaces OpenIddict's two entry handlers and trusts a valid entry for a few seconds
                // (TokenEntryCheck; trade-off in docs/security.md) instead of reading it on every call.
                validation.EnableTokenEntryValidation();
                validation.RemoveEventHandler(OpenIddict.Validation.OpenIddictValidationHandlers.Protection.RestoreTokenEntryProperties.Descriptor);
                validation.RemoveEventHandler(OpenIddict.Validation.OpenIddictValidationHandlers.Protection.ValidateTokenEntry.Descriptor);
                validation.AddEventHandler(TokenEntryCheck.Descriptor);
                validation.UseAspNetCore();
            });

        var scheme = settings.Authentication.Mode switch
        {
            // OpenIddict's validation, remembered for the token entry period (RememberedTokenHandler; docs/security.md).
            AuthenticationMode.Tokens => RememberedTokenHandler.SchemeName,
            _ => DevelopmentAuthenticationHandler.SchemeName,
        };
        var authentication = services.AddAuthentication(scheme);
        if (settings.Authentication.Mode == AuthenticationMode.Tokens)
        {
            authentication.AddScheme<AuthenticationSchemeOptions, RememberedTokenHandler>(RememberedTokenHandler.SchemeName, null);
        }
        else if (settings.Authentication.Mode == AuthenticationMode.Development)
        {
            authentication.AddScheme<AuthenticationSchemeOptions, DevelopmentAuthenticationHandler>(DevelopmentAuthenticationHandler.SchemeName, null);
        }
        else if (settings.Authentication.Mode == AuthenticationMode.None)
        {
            // No scheme authenticates anybody: every protected call is answered 401.
            authentication.AddScheme<AuthenticationSchemeOptions, NoAuthenticationHandler>(DevelopmentAuthenticationHandler.SchemeName, null);
        }

        // OpenIddict's server sees only requests outside the hub's API (UseHubAuthentication).
        services.AddServerRequestScope();

        services.AddAuthorizationBuilder()
            .AddPolicy(HubClaims.SubmitPolicy, p => p.RequireAuthenticatedUser().RequireClaim(HubClaims.Organisation)
                .RequireAssertion(c => c.User.HasScope(HubScopes.SignalsSubmit)))
            .AddPolicy(CasesPolicy, p => p.RequireAuthenticatedUser().RequireClaim(HubClaims.Organisation)
                .RequireRole(HubScopes.AnalystRole)
                .RequireAssertion(c => c.User.HasScope(HubScopes.CasesManage)))
            .AddPolicy(DeliveriesPolicy, p => p.RequireAuthenticatedUser().RequireClaim(HubClaims.Organisation)
                .RequireAssertion(c => c.User.HasScope(HubScopes.DeliveriesRead)))
            .AddPolicy(HubClaims.AuditPolicy, p => p.RequireAuthenticatedUser().RequireClaim(HubClaims.Organisation)
                .RequireRole(HubClaims.PrivacyOfficerRole, HubClaims.PartnershipPrivacyOfficerRole)
                .RequireAssertion(c => c.User.HasScope(HubScopes.AuditRead)));
        // Refused bearer tokens are audited by Audit/AuditingAuthorizationResultHandler (code SH-I0402).

        services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(http =>
                RateLimitPartition.GetFixedWindowLimiter(PartitionKey(http), _ => new FixedWindowRateLimiterOptions
                {
                    PermitLimit = identity.PermitsPerMinute,
                    Window = TimeSpan.FromMinutes(1),
                    QueueLimit = 0,
                }));
            limiter.OnRejected = WriteRateLimitedAsync;
        });
        return builder;
    }

    /// <summary>
    /// The rate limiter's partition: the authenticated client (so one partner cannot starve the others), or the remote
    /// address for unauthenticated calls such as token requests.
    /// </summary>
    internal static string PartitionKey(HttpContext http) =>
        http.User.FindFirst(Claims.Subject)?.Value is { } client ? "client:" + client
        : http.User.GetOrganisation() is { } organisation ? "org:" + organisation
        : "addr:" + (http.Connection.RemoteIpAddress?.ToString() ?? "local");

    private static async ValueTask WriteRateLimitedAsync(OnRejectedContext context, CancellationToken cancellationToken)
    {
        var http = context.HttpContext;
        if (context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter))
        {
            http.Response.Headers.RetryAfter = ((int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }

        await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(Problems.For(http, StatusCodes.Status429TooManyRequests,
            IdentityCodes.RateLimited, "Too many requests", "This client sent more requests than the hub allows per minute; retry later.")).ConfigureAwait(false);
    }

    /// <summary>
    /// Security headers on every response, HSTS and HTTPS redirection outside Development, then per-client rate
    /// limiting. Call between authentication and authorisation.
    /// </summary>
    public static WebApplication UseHubSecurityHeaders(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        if (!app.Environment.IsDevelopment())
        {
            app.UseHsts();
            app.UseHttpsRedirection();
        }

        app.Use((http, next) =>
        {
            var headers = http.Response.Headers;
            headers.XContentTypeOptions = "nosniff";
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "no-referrer";
            headers["Cross-Origin-Resource-Policy"] = "same-origin";
            if (ServerRequestScope.IsApi(http.Request.Path) || http.Request.Path.StartsWithSegments("/connect", StringComparison.OrdinalIgnoreCase))
            {
                // JSON APIs: nothing may be rendered, framed or cached (RFC 6749 §5.1 asks no-store of token responses).
                headers.ContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'";
                headers.CacheControl = "no-store";
            }

            return next(http);
        });
        return app;
    }

    /// <summary>Maps the token endpoint.</summary>
    public static IEndpointRouteBuilder MapIdentityEndpoints(this IEndpointRouteBuilder app) => app.MapTokenEndpoint();

    /// <summary>
    /// Registers the clients named in <c>ShareHub:Identity:Clients</c> (new or changed ones only; each change is
    /// audited). Runs after the database and the policy set are ready: a client of a non-participant stops the hub.
    /// </summary>
    public static async Task InitialiseIdentityAsync(this WebApplication app, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(app);
        var identity = app.Services.GetRequiredService<IOptions<IdentityOptions>>().Value;
        if (identity.Clients.Count == 0)
        {
            return;
        }

        var policies = app.Services.GetRequiredService<PolicyStore>();
        foreach (var seed in identity.Clients)
        {
            if (!policies.Current.IsParticipant(seed.Organisation))
            {
                throw new InvalidOperationException($"ShareHub:Identity:Clients: client '{seed.ClientId}' names organisation '{seed.Organisation}', which is not a participant of the policy set.");
            }

            var pem = seed.PublicKeyPem ?? (seed.PublicKeyFile is { } file ? await File.ReadAllTextAsync(file, cancellationToken).ConfigureAwait(false) : null);
            var registration = new PartnerClientRegistration(seed.ClientId, seed.Organisation, seed.Roles, seed.Scopes, pem, seed.Secret);
            for (var attempt = 1; ; attempt++)
            {
                // Replicas starting at once against one database seed the same clients: the loser of the race hits
                // OpenIddict's "client id already exists" validation, the unique index or a concurrency token, and looks
                // again in a fresh scope, where it finds the winner's identical registration and changes nothing. A
                // registration that is invalid in itself fails the same way three times and stops the hub.
                using var scope = app.Services.CreateScope();
                var registry = scope.ServiceProvider.GetRequiredService<PartnerClientRegistry>();
                try
                {
                    await registry.RegisterIfChangedAsync(registration, "configuration", cancellationToken).ConfigureAwait(false);
                    break;
                }
                catch (Exception ex) when (attempt < 3 && ex is DbUpdateException or OpenIddictExceptions.ConcurrencyException or OpenIddictExceptions.ValidationException)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt), cancellationToken).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>Adds the OpenIddict entities (applications, authorizations, scopes, tokens) to the hub's database.</summary>
    public static DbContextOptionsBuilder UseHubIdentityStore(this DbContextOptionsBuilder options) => options.UseOpenIddict();
}
