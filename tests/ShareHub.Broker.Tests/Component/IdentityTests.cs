using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ShareHub.Broker.Data;
using ShareHub.Broker.Identity;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;
using ShareHub.Partner;

namespace ShareHub.Broker.Tests.Component;

/// <summary>
/// Authentication and authorisation with real tokens from the hub's own authorization server: every refusal is a
/// 401/403 ProblemDetails, stores nothing, and failed authentications are audited.
/// </summary>
public sealed class IdentityTests
{
    [Fact]
    public async Task Submit_WithExpiredToken_Is401ProblemDetails_NothingStored_AndAudited()
    {
        var clock = new FakeTimeProvider(TimeProvider.System.GetUtcNow());
        await using var hub = new ComponentHub(services: s => s.AddSingleton<TimeProvider>(clock));
        var client = hub.ClientFor(Signals.Gemeente);

        clock.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(1)); // the access token lifetime is 5 minutes
        using var response = await client.SubmitAsync(Signals.KvkSignal());

        await AssertRefusedAsync(hub, response, HttpStatusCode.Unauthorized);
        Assert.Contains("invalid_token", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal); // RFC 6750 §3.1
        await AssertAuthenticationFailureAuditedAsync(hub, IdentityCodes.BearerTokenRefused);
    }

    [Fact]
    public async Task Submit_WithTokenIssuedForAnotherAudience_Is401()
    {
        // Two hubs share the signing key and the database: the other one issues tokens for another audience.
        var keys = Directory.CreateTempSubdirectory("sharehub-keys-");
        using (var rsa = RSA.Create(2048))
        {
            await File.WriteAllTextAsync(Path.Combine(keys.FullName, "signing-test.pem"), rsa.ExportPkcs8PrivateKeyPem());
        }

        await using var hub = new ComponentHub(new() { ["ShareHub:Identity:SigningKeysPath"] = keys.FullName });
        await using var other = new ComponentHub(new()
        {
            ["ShareHub:Identity:SigningKeysPath"] = keys.FullName,
            ["ShareHub:Identity:Audience"] = "some-other-api",
            ["ShareHub:ConnectionString"] = $"Data Source={hub.DatabaseFile}",
        });
        var token = await other.Factory.TokenClientFor(Signals.Gemeente).GetAccessTokenAsync();
        using var sameKeyClient = hub.ClientFor(Signals.Gemeente); // the key works for the right audience
        await sameKeyClient.SubmitAcceptedAsync(Signals.KvkSignal());
        var signals = await hub.Factory.WithDbAsync(db => db.Signals.CountAsync());

        using var client = WithBearer(hub, token);
        using var response = await client.SubmitAsync(Signals.KvkSignal());

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        await ReadProblemAsync(response, "SH-A0401");
        Assert.Equal(signals, await hub.Factory.WithDbAsync(db => db.Signals.CountAsync()));
        var audit = await hub.Factory.WithDbAsync(db => db.AuditEntries.Where(a => a.Kind == IdentityAuditKinds.AuthenticationFailed).ToListAsync());
        Assert.True(audit.Any(a => a.Explanation.Contains("audience", StringComparison.OrdinalIgnoreCase)), string.Join(" | ", audit.Select(a => a.Explanation)));
        keys.Delete(recursive: true);
    }

    [Fact]
    public async Task Submit_WithTamperedSignature_OrAnotherHubsToken_Is401_AndNothingStored()
    {
        await using var hub = new ComponentHub();
        await using var stranger = new ComponentHub();
        var token = await hub.Factory.TokenClientFor(Signals.Gemeente).GetAccessTokenAsync();
        var parts = token.Split('.');
        var signature = parts[2].ToCharArray();
        signature[10] = signature[10] == 'A' ? 'B' : 'A';
        var tampered = $"{parts[0]}.{parts[1]}.{new string(signature)}";
        var foreign = await stranger.Factory.TokenClientFor(Signals.Gemeente).GetAccessTokenAsync();

        foreach (var bad in new[] { tampered, foreign, "not-a-jwt" })
        {
            using var client = WithBearer(hub, bad);
            using var response = await client.SubmitAsync(Signals.KvkSignal());
            await AssertRefusedAsync(hub, response, HttpStatusCode.Unauthorized);
        }

        await AssertAuthenticationFailureAuditedAsync(hub, IdentityCodes.BearerTokenRefused);
    }

    [Fact]
    public async Task RevokedClient_IsRefusedAtOnce_AndCannotObtainANewToken_BothAudited()
    {
        await using var hub = new ComponentHub();
        var tokens = hub.Factory.TokenClientFor(Signals.Gemeente);
        using var client = WithBearer(hub, await tokens.GetAccessTokenAsync());
        await client.SubmitAcceptedAsync(Signals.KvkSignal());

        using (var scope = hub.Factory.Services.CreateScope())
        {
            Assert.True(await scope.ServiceProvider.GetRequiredService<PartnerClientRegistry>().RevokeAsync("test-gemeente-amsterdam-partner-system", "test-operator", "key compromised"));
        }

        using var after = await client.SubmitAsync(Signals.KvkSignal());
        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
        await ReadProblemAsync(after, "SH-A0401");
        var refused = await Assert.ThrowsAsync<HubTokenException>(() => tokens.RequestTokenAsync());
        Assert.Contains("invalid_client", refused.Message, StringComparison.Ordinal);

        Assert.Equal(1, await hub.Factory.WithDbAsync(db => db.Signals.CountAsync()));
        var audit = await hub.Factory.WithDbAsync(db => db.AuditEntries.AsNoTracking().ToListAsync());
        Assert.Contains(audit, a => a.Kind == IdentityAuditKinds.ClientRevoked && a.Explanation.Contains("key compromised", StringComparison.Ordinal));
        Assert.Contains(audit, a => a.Kind == IdentityAuditKinds.AuthenticationFailed && a.ReasonCode == IdentityCodes.TokenRequestRefused);
        Assert.Contains(audit, a => a.Kind == IdentityAuditKinds.AuthenticationFailed && a.ReasonCode == IdentityCodes.BearerTokenRefused);
    }

    [Fact]
    public async Task TokenEntryDeletedBehindTheHubsBack_IsTrustedAtMostTheCachePeriod_ThenRefused()
    {
        // What a revocation through another process (the CLI, another broker instance) looks like to this hub: the
        // token's entry disappears from the database without this process being told.
        var clock = new FakeTimeProvider(TimeProvider.System.GetUtcNow());
        await using var hub = new ComponentHub(services: s => s.AddSingleton<TimeProvider>(clock));
        var tokens = hub.Factory.TokenClientFor(Signals.Gemeente);
        using var client = WithBearer(hub, await tokens.GetAccessTokenAsync());
        await client.SubmitAcceptedAsync(Signals.KvkSignal());

        await hub.Factory.WithDbAsync(db => db.Database.ExecuteSqlRawAsync("DELETE FROM OpenIddictTokens"));
        clock.Advance(TimeSpan.FromSeconds(new IdentityOptions().TokenEntryCacheSeconds) + TimeSpan.FromMilliseconds(1));

        using var after = await client.SubmitAsync(Signals.KvkSignal());
        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
        Assert.Equal(1, await hub.Factory.WithDbAsync(db => db.Signals.CountAsync()));
    }

    [Fact]
    public async Task RememberedToken_PastItsOwnExpiry_IsRefused_ThoughTheCachePeriodIsLonger()
    {
        // A validated token is remembered for the cache period (here 60 s) but never beyond its own expiry (10 s).
        var clock = new FakeTimeProvider(TimeProvider.System.GetUtcNow());
        await using var hub = new ComponentHub(
            new() { ["ShareHub:Identity:TokenEntryCacheSeconds"] = "60", ["ShareHub:Identity:AccessTokenLifetime"] = "00:00:10" },
            services: s => s.AddSingleton<TimeProvider>(clock));
        using var client = WithBearer(hub, await hub.Factory.TokenClientFor(Signals.Gemeente).GetAccessTokenAsync());
        await client.SubmitAcceptedAsync(Signals.KvkSignal());
        clock.Advance(TimeSpan.FromSeconds(5));
        await client.SubmitAcceptedAsync(Signals.KvkSignal()); // remembered, and still valid

        clock.Advance(TimeSpan.FromSeconds(6));
        using var after = await client.SubmitAsync(Signals.KvkSignal());

        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
        Assert.Contains("invalid_token", after.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal); // OpenIddict's challenge, RFC 6750 §3.1
        Assert.Equal(2, await hub.Factory.WithDbAsync(db => db.Signals.CountAsync()));
        await AssertAuthenticationFailureAuditedAsync(hub, IdentityCodes.BearerTokenRefused);
    }

    [Fact]
    public async Task RememberedToken_IsOnlyThatToken_AnAlteredCopyIsRefused()
    {
        await using var hub = new ComponentHub();
        var token = await hub.Factory.TokenClientFor(Signals.Gemeente).GetAccessTokenAsync();
        using var client = WithBearer(hub, token);
        await client.SubmitAcceptedAsync(Signals.KvkSignal()); // validated and remembered

        // The same token with its last signature character changed: not the remembered header, so OpenIddict checks it.
        var altered = token[..^1] + (token[^1] == 'A' ? 'B' : 'A');
        using var forged = WithBearer(hub, altered);
        using var response = await forged.SubmitAsync(Signals.KvkSignal());

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal(1, await hub.Factory.WithDbAsync(db => db.Signals.CountAsync()));
    }

    [Fact]
    public async Task TokenEntryCache_Off_ReadsTheEntryOnEveryCall()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Identity:TokenEntryCacheSeconds"] = "0" });
        var tokens = hub.Factory.TokenClientFor(Signals.Gemeente);
        using var client = WithBearer(hub, await tokens.GetAccessTokenAsync());
        await client.SubmitAcceptedAsync(Signals.KvkSignal());

        await hub.Factory.WithDbAsync(db => db.Database.ExecuteSqlRawAsync("DELETE FROM OpenIddictTokens"));

        using var after = await client.SubmitAsync(Signals.KvkSignal());
        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
    }

    [Fact]
    public async Task TokenRequest_SignedWithAnotherKey_IsRefused_AndAudited()
    {
        await using var hub = new ComponentHub();
        _ = hub.Factory.TokenClientFor(Signals.Fiod); // registers the client with its own key
        using var thief = RSA.Create(2048);
        using var forged = new HubTokenClient(hub.Factory.CreateClient(), new HubClientCredentials
        {
            HubUri = hub.Factory.Server.BaseAddress,
            ClientId = "test-fiod-partner-system",
            PrivateKeyPem = thief.ExportPkcs8PrivateKeyPem(),
        });

        var refused = await Assert.ThrowsAsync<HubTokenException>(() => forged.RequestTokenAsync());

        Assert.Contains("invalid_client", refused.Message, StringComparison.Ordinal);
        await AssertAuthenticationFailureAuditedAsync(hub, IdentityCodes.TokenRequestRefused);
    }

    [Fact]
    public async Task ClientSecret_IsRefusedUnlessTheDevelopmentFallbackIsOn()
    {
        await using var hub = new ComponentHub();
        using var scope = hub.Factory.Services.CreateScope();
        var registry = scope.ServiceProvider.GetRequiredService<PartnerClientRegistry>();

        await Assert.ThrowsAsync<ArgumentException>(() =>
            registry.RegisterAsync(new PartnerClientRegistration("secret-client", Signals.Fiod, [HubScopes.PartnerSystemRole], null, null, "s3cret"), "test"));
    }

    public static TheoryData<string> ClientKeyFormats => ["rsa-pkcs1", "rsa-pkcs8", "ec-sec1", "ec-pkcs8"];

    [Theory]
    [MemberData(nameof(ClientKeyFormats))]
    public async Task ClientKey_RsaOrEc_InEachPemForm_RegistersAndObtainsATokenThatSubmits(string format)
    {
        await using var hub = new ComponentHub();
        using AsymmetricAlgorithm key = format.StartsWith("rsa", StringComparison.Ordinal) ? RSA.Create(2048) : ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var (publicPem, privatePem) = (format, key) switch
        {
            ("rsa-pkcs1", RSA rsa) => (rsa.ExportRSAPublicKeyPem(), rsa.ExportRSAPrivateKeyPem()), // "RSA PUBLIC/PRIVATE KEY"
            ("ec-sec1", ECDsa ec) => (ec.ExportSubjectPublicKeyInfoPem(), ec.ExportECPrivateKeyPem()), // "EC PRIVATE KEY"
            _ => (key.ExportSubjectPublicKeyInfoPem(), key.ExportPkcs8PrivateKeyPem()), // "PUBLIC KEY" / "PRIVATE KEY": no algorithm in the label
        };
        using (var scope = hub.Factory.Services.CreateScope())
        {
            await scope.ServiceProvider.GetRequiredService<PartnerClientRegistry>().RegisterAsync(
                new PartnerClientRegistration($"key-{format}", Signals.Gemeente, [HubScopes.PartnerSystemRole], null, publicPem), "test");
        }

        var http = hub.Factory.CreateClient();
        using var tokens = new HubTokenClient(http, new HubClientCredentials { HubUri = http.BaseAddress!, ClientId = $"key-{format}", PrivateKeyPem = privatePem });
        using var client = WithBearer(hub, await tokens.GetAccessTokenAsync());

        await client.SubmitAcceptedAsync(Signals.KvkSignal());
    }

    public static TheoryData<string, string> UnusableClientKeys
    {
        get
        {
            using var small = RSA.Create(1024);
            using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
            return new()
            {
                { "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "not an RSA or EC key" },
                { "no PEM at all", "not an RSA or EC key" },
                { small.ExportSubjectPublicKeyInfoPem(), "1024 bits" },
                { p384.ExportSubjectPublicKeyInfoPem(), "needs P-256" },
            };
        }
    }

    [Theory]
    [MemberData(nameof(UnusableClientKeys))]
    public async Task ClientKey_NoKey_ShortRsa_OrAnotherCurve_IsRefusedAtRegistrationWithAClearError(string pem, string reason)
    {
        await using var hub = new ComponentHub();
        using var scope = hub.Factory.Services.CreateScope();
        var registry = scope.ServiceProvider.GetRequiredService<PartnerClientRegistry>();

        var refused = await Assert.ThrowsAsync<ArgumentException>(() =>
            registry.RegisterAsync(new PartnerClientRegistration("bad-key", Signals.Fiod, [HubScopes.PartnerSystemRole], null, pem), "test"));

        Assert.Contains(reason, refused.Message, StringComparison.Ordinal);
        Assert.Null(await scope.ServiceProvider.GetRequiredService<OpenIddict.Abstractions.IOpenIddictApplicationManager>().FindByClientIdAsync("bad-key"));
    }

    [Fact]
    public void PartnerSdk_PrivateKeyThatIsNoKey_IsAClearArgumentError()
    {
        var credentials = new HubClientCredentials { ClientId = "bad-key", PrivateKeyPem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----" };

        using var http = new HttpClient();
        var refused = Assert.Throws<ArgumentException>(() => new HubTokenClient(http, credentials));

        Assert.Contains("not an RSA or EC private key", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("partner-system", "deliveries:read")] // a token without signals:submit
    [InlineData("privacy-officer", null)] // a privacy officer's client may read audit, not submit
    public async Task Submit_WithoutTheSubmitScope_Is403ProblemDetails_AndNothingStored(string roles, string? scope)
    {
        await using var hub = new ComponentHub();
        var tokens = hub.Factory.TokenClientFor(Signals.Gemeente, roles, scope is null ? null : [scope]);
        using var client = WithBearer(hub, await tokens.GetAccessTokenAsync());

        using var response = await client.SubmitAsync(Signals.KvkSignal());

        await AssertRefusedAsync(hub, response, HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task TokenRequest_ForAScopeTheClientMayNotHave_IsRefused()
    {
        await using var hub = new ComponentHub();
        using var analyst = await hub.Factory.RegisterTestClientAsync("analyst-asking-for-audit", Signals.Gemeente, [HubScopes.AnalystRole], requestedScopes: [HubScopes.AuditRead]);

        var refused = await Assert.ThrowsAsync<HubTokenException>(() => analyst.RequestTokenAsync());

        Assert.Equal(400, refused.Status);
        Assert.Contains("scope", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Submit_NamingAnotherOrganisationInHeadersOrBody_StillSubmitsAsTheTokensOrganisation()
    {
        await using var hub = new ComponentHub();
        using var client = hub.ClientFor(Signals.Gemeente, HubScopes.AnalystRole);
        client.DefaultRequestHeaders.Add("X-ShareHub-Dev-Organisation", Signals.Belastingdienst); // no such scheme in Tokens mode

        var accepted = await client.SubmitAcceptedAsync(Signals.KvkSignal());

        var provider = await hub.Factory.WithDbAsync(db => db.Signals.Where(s => s.Id == accepted.SignalId).Select(s => s.Provider).SingleAsync());
        Assert.Equal(Signals.Gemeente, provider);
        using var asBelastingdienst = await hub.ClientFor(Signals.Belastingdienst).GetAsync($"/api/v1/signals/{accepted.SignalId}");
        Assert.Equal(HttpStatusCode.NotFound, asBelastingdienst.StatusCode);
    }

    [Fact]
    public async Task AuditApi_RequiresThePrivacyOfficerRoleAndTheAuditScope()
    {
        await using var hub = new ComponentHub();
        await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod));

        using var analyst = await hub.ClientFor(Signals.Fiod, HubScopes.AnalystRole).GetAsync("/api/v1/audit");
        using var officer = await hub.ClientFor(Signals.Fiod, "privacy-officer").GetAsync("/api/v1/audit");
        using var fg = await hub.ClientFor(Signals.Riec, "partnership-privacy-officer").GetAsync("/api/v1/audit?limit=1000");

        Assert.Equal(HttpStatusCode.Forbidden, analyst.StatusCode);
        var mine = (await officer.Content.ReadFromJsonAsync<List<AuditEntryDto>>(Signals.Json))!;
        Assert.NotEmpty(mine);
        Assert.All(mine, e => Assert.True(e.Provider == Signals.Fiod || e.Recipient == Signals.Fiod || e.ActorOrganisation == Signals.Fiod));
        var all = (await fg.Content.ReadFromJsonAsync<List<AuditEntryDto>>(Signals.Json))!;
        Assert.Contains(all, e => e.Recipient == Signals.Riec);
        Assert.Contains(all, e => e.Kind == IdentityAuditKinds.ClientRegistered);
        Assert.DoesNotContain(mine, e => e.Kind == IdentityAuditKinds.ClientRegistered);
    }

    [Fact]
    public async Task Acknowledgement_OverHttp_OnlyForTheCallersOwnDelivery()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        var accepted = await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));
        var delivery = accepted.Decisions.Single().DeliveryId!.Value;
        var body = new AcknowledgeDeliveryRequest(null);

        using var byFiod = await hub.ClientFor(Signals.Fiod).PostAsJsonAsync(HubApi.AcknowledgementPath(delivery), body);
        using var unknown = await hub.ClientFor(Signals.Riec).PostAsJsonAsync(HubApi.AcknowledgementPath(Guid.NewGuid()), body);
        using var analyst = await hub.ClientFor(Signals.Riec, HubScopes.AnalystRole).PostAsJsonAsync(HubApi.AcknowledgementPath(delivery), body);
        using var byRiec = await hub.ClientFor(Signals.Riec).PostAsJsonAsync(HubApi.AcknowledgementPath(delivery), body);

        Assert.Equal(HttpStatusCode.NotFound, byFiod.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, analyst.StatusCode); // no deliveries:read scope
        Assert.Equal(HttpStatusCode.Accepted, byRiec.StatusCode);
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => hub.Factory.WithDbAsync(db => db.Acknowledgements.AnyAsync()), TimeSpan.FromSeconds(30)));
        var ack = await hub.Factory.WithDbAsync(db => db.Acknowledgements.SingleAsync());
        Assert.Equal(Signals.Riec, ack.Recipient);
        var rejected = await hub.Factory.WithDbAsync(db => db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.Acknowledgement && a.Outcome == "rejected"));
        Assert.Equal(2, rejected);
    }

    [Fact]
    public async Task RateLimit_PerClient_Is429ProblemDetails()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Identity:PermitsPerMinute"] = "3" });
        using var client = hub.ClientFor(Signals.Gemeente);
        var id = Guid.NewGuid();

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++)
        {
            using var response = await client.GetAsync($"/api/v1/signals/{id}");
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                await ReadProblemAsync(response, IdentityCodes.RateLimited);
            }
        }

        Assert.Equal([HttpStatusCode.NotFound, HttpStatusCode.NotFound, HttpStatusCode.NotFound, HttpStatusCode.TooManyRequests], statuses);
        using var other = await hub.ClientFor(Signals.Fiod).GetAsync($"/api/v1/signals/{id}");
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode); // another client has its own budget
    }

    [Theory]
    [InlineData("/api/v1/signals/")]
    [InlineData("/API/v1/signals/")] // routing ignores case, so the API's headers do too
    public async Task ApiResponses_CarrySecurityHeaders(string signals)
    {
        await using var hub = new ComponentHub();

        using var response = await hub.ClientFor(Signals.Gemeente).GetAsync($"{signals}{Guid.NewGuid()}");

        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
        Assert.Contains("frame-ancestors 'none'", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.True(response.Headers.CacheControl?.NoStore);
    }

    [Fact]
    public async Task OpenIddictServer_SeesTheTokenEndpoint_NotTheApi()
    {
        // Which requests OpenIddict's server processed: it leaves its transaction on the request's features.
        var seen = new System.Collections.Concurrent.ConcurrentQueue<(string Path, bool Server, bool Validation)>();
        await using var hub = new ComponentHub(services: s => s.AddSingleton<Microsoft.AspNetCore.Hosting.IStartupFilter>(new RecordingFilter(seen)));
        var client = hub.ClientFor(Signals.Gemeente);

        await client.SubmitAcceptedAsync(Signals.KvkSignal());
        using var wrongCase = await client.PostAsJsonAsync("/API/v1/signals", Signals.KvkSignal());

        Assert.Equal(HttpStatusCode.Accepted, wrongCase.StatusCode); // routing ignores case, and so does the scope
        Assert.Contains(seen, r => r.Path == TokenEndpoint.Path && r.Server);
        var api = seen.Where(r => r.Path.StartsWith("/api/", StringComparison.OrdinalIgnoreCase)).ToList();
        Assert.Equal(2, api.Count);
        Assert.All(api, r => Assert.False(r.Server, $"{r.Path} went through OpenIddict's server"));
        Assert.All(api, r => Assert.True(r.Validation, $"{r.Path} did not go through OpenIddict's validation"));
    }

    [Theory]
    [InlineData("connect/token", false)]
    [InlineData("/connect/token", false)]
    [InlineData("apis/token", false)]
    [InlineData("api/token", true)]
    [InlineData("/API/v1/token", true)]
    [InlineData("https://hub.example/api/token", true)]
    [InlineData("https://hub.example/connect/token", false)]
    public void OpenIddictServerEndpoint_UnderTheApi_IsFound(string endpoint, bool underApi)
    {
        var options = new OpenIddict.Server.OpenIddictServerOptions();
        options.JsonWebKeySetEndpointUris.Add(new Uri(endpoint, UriKind.RelativeOrAbsolute));

        Assert.Equal(underApi, ServerRequestScope.EndpointsUnderApi(options).Any());
    }

    [Fact]
    public async Task OpenIddictServerEndpoint_UnderTheApi_StopsTheHub()
    {
        await using var hub = new ComponentHub(services: s => s.PostConfigure<OpenIddict.Server.OpenIddictServerOptions>(
            o => o.JsonWebKeySetEndpointUris.Add(new Uri("api/v1/jwks", UriKind.Relative))));

        var error = Assert.ThrowsAny<Exception>(() => hub.Factory.CreateClient());

        Assert.Contains("under /api", error.ToString(), StringComparison.Ordinal);
    }

    private sealed class RecordingFilter(System.Collections.Concurrent.ConcurrentQueue<(string, bool, bool)> seen) : Microsoft.AspNetCore.Hosting.IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (http, inner) =>
            {
                await inner(http);
                seen.Enqueue((http.Request.Path.Value ?? "",
                    http.Features.Get<OpenIddict.Server.AspNetCore.OpenIddictServerAspNetCoreFeature>() is not null,
                    http.Features.Get<OpenIddict.Validation.AspNetCore.OpenIddictValidationAspNetCoreFeature>() is not null));
            });
            next(app);
        };
    }

    private static HttpClient WithBearer(ComponentHub hub, string token)
    {
        var client = hub.Factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    private static async Task AssertRefusedAsync(ComponentHub hub, HttpResponseMessage response, HttpStatusCode status)
    {
        Assert.Equal(status, response.StatusCode);
        await ReadProblemAsync(response, status == HttpStatusCode.Unauthorized ? "SH-A0401" : "SH-A0403");
        var (signals, outbox) = await hub.Factory.WithDbAsync(async db => (await db.Signals.CountAsync(), await db.Outbox.CountAsync()));
        Assert.Equal(0, signals);
        Assert.Equal(0, outbox);
    }

    private static async Task<JsonElement> ReadProblemAsync(HttpResponseMessage response, string code)
    {
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
        Assert.Equal($"urn:sharehub:error:{code}", problem.GetProperty("type").GetString());
        return problem;
    }

    private static async Task AssertAuthenticationFailureAuditedAsync(ComponentHub hub, string code)
    {
        var failures = await hub.Factory.WithDbAsync(db => db.AuditEntries.CountAsync(a => a.Kind == IdentityAuditKinds.AuthenticationFailed && a.ReasonCode == code));
        Assert.True(failures > 0, $"expected an {IdentityAuditKinds.AuthenticationFailed} audit entry with {code}");
    }
}
