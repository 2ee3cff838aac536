using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using MassTransit;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ShareHub.Broker.Data;
using ShareHub.Broker.Identity;
using ShareHub.Partner;

namespace ShareHub.Broker.Tests.Infrastructure;

/// <summary>
/// Hosts the real broker (Program.cs, real middleware, real EF Core provider, real MassTransit transport) in the test
/// process. Only configuration differs between tests; nothing inside the broker is replaced — authentication included:
/// clients get real access tokens from the hub's own authorization server (client credentials + private_key_jwt).
/// </summary>
public sealed class HubFactory(IReadOnlyDictionary<string, string?> settings, Action<IServiceCollection>? services = null, string environment = "Development")
    : WebApplicationFactory<Program>
{
    /// <summary>A fixed, test-only partnership key (base64 of 32 bytes).</summary>
    public const string TestPartnershipKey = BrokerProcess.TestPartnershipKey;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment(environment);
        builder.UseSetting("ShareHub:PartnershipKey", TestPartnershipKey);
        if (environment == "Production")
        {
            // Production refuses to start without real keys and a public issuer: give it test ones.
            builder.UseSetting("ShareHub:Identity:Issuer", "https://sharehub.test/");
            builder.UseSetting("ShareHub:Identity:SigningKeysPath", ProductionTestKeys.Value);
            builder.UseSetting("ShareHub:Audit:SigningKeyPath", Path.Combine(ProductionTestKeys.Value, "audit-checkpoints.pem"));
        }
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }

        if (services is not null)
        {
            builder.ConfigureServices(services);
        }
    }

    private readonly ConcurrentDictionary<string, Lazy<Task<HubTokenClient>>> _tokenClients = new();

    /// <summary>A token signing key directory for tests that run the hub in the Production environment.</summary>
    private static readonly Lazy<string> ProductionTestKeys = new(() =>
    {
        var directory = Path.Combine(Path.GetTempPath(), "sharehub-test-signing-keys-" + Environment.ProcessId);
        Directory.CreateDirectory(directory);
        using var rsa = RSA.Create(2048);
        File.WriteAllText(Path.Combine(directory, "signing-test.pem"), rsa.ExportPkcs8PrivateKeyPem());
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        File.WriteAllText(Path.Combine(directory, "audit-checkpoints.pem"), ecdsa.ExportPkcs8PrivateKeyPem());
        return directory;
    });

    /// <summary>
    /// A client carrying a real access token for a partner client of <paramref name="organisation"/> with
    /// <paramref name="roles"/> (comma separated; default partner-system). The client is registered with a fresh RSA
    /// public key on first use; the token comes from the running hub's token endpoint (private_key_jwt, RFC 7523).
    /// </summary>
    public HttpClient ClientFor(string organisation, string? roles = null)
    {
        var tokens = TokenClientFor(organisation, roles);
        var token = tokens.GetAccessTokenAsync().GetAwaiter().GetResult();
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>The token client of the test client of <paramref name="organisation"/> with <paramref name="roles"/>.</summary>
    public HubTokenClient TokenClientFor(string organisation, string? roles = null, IReadOnlyList<string>? scopes = null)
    {
        var roleList = (roles ?? HubScopes.PartnerSystemRole).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var clientId = $"test-{organisation}-{string.Join('+', roleList)}" + (scopes is null ? string.Empty : "-" + string.Join('+', scopes));
        return _tokenClients.GetOrAdd(clientId, id => new Lazy<Task<HubTokenClient>>(() => RegisterTestClientAsync(id, organisation, roleList, scopes)))
            .Value.GetAwaiter().GetResult();
    }

    /// <summary>
    /// Registers a client with a new key pair and returns its token client (the key never leaves the test). Its
    /// requests pass through <paramref name="handlers"/>, when given (e.g. to count them at the HTTP boundary).
    /// </summary>
    public async Task<HubTokenClient> RegisterTestClientAsync(string clientId, string organisation, IReadOnlyList<string> roles, IReadOnlyList<string>? scopes = null, IReadOnlyList<string>? requestedScopes = null, params DelegatingHandler[] handlers)
    {
        // P-256 (ES256 client assertions): a fresh key per client in a millisecond, where a 2048-bit RSA key costs up to
        // half a second. RSA client keys are covered by the tests that run the broker as a process (ProcessIdentity).
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using (var scope = Services.CreateScope())
        {
            await scope.ServiceProvider.GetRequiredService<PartnerClientRegistry>()
                .RegisterAsync(new PartnerClientRegistration(clientId, organisation, roles, scopes, key.ExportSubjectPublicKeyInfoPem()), "test-setup");
        }

        var http = handlers.Length == 0 ? CreateClient() : CreateDefaultClient(handlers); // the in-process test server, or Kestrel when a test asked for it
        return new HubTokenClient(http, new HubClientCredentials
        {
            HubUri = http.BaseAddress!,
            ClientId = clientId,
            PrivateKeyPem = key.ExportPkcs8PrivateKeyPem(),
            Scopes = requestedScopes ?? scopes ?? [],
        }, Services.GetRequiredService<TimeProvider>());
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        foreach (var client in _tokenClients.Values.Where(c => c.IsValueCreated && c.Value.IsCompletedSuccessfully))
        {
            client.Value.Result.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>Runs <paramref name="action"/> against the hub's database in a fresh scope.</summary>
    public async Task<T> WithDbAsync<T>(Func<HubDbContext, Task<T>> action)
    {
        using var scope = Services.CreateScope();
        return await action(scope.ServiceProvider.GetRequiredService<HubDbContext>());
    }

    /// <summary>Registers in-process partners on the hub's own bus (in-memory transport).</summary>
    public static Action<IServiceCollection> WithPartners(PartnerRecorder recorder, params string[] organisations) => services =>
    {
        foreach (var organisation in organisations)
        {
            services.AddSingleton(new BusEndpointContribution((context, cfg) => recorder.ConfigureEndpoint(cfg, organisation)));
        }
    };
}
