using System.Collections.Concurrent;
using System.Security.Cryptography;
using ShareHub.Partner;

namespace ShareHub.Broker.Tests.Infrastructure;

/// <summary>
/// Real identities for broker PROCESSES (fault, multi-instance and benchmark runs): one shared signing key directory
/// and one fixed issuer, so every instance issues and accepts the same tokens (as replicas behind one address do), and
/// one partner-system client per organisation, seeded through <c>ShareHub:Identity:Clients</c> with the public half of
/// a key pair that never leaves the test. Tokens come from the running process's own token endpoint
/// (client credentials + private_key_jwt, RFC 7523).
/// </summary>
public sealed class ProcessIdentity : IDisposable
{
    /// <summary>The issuer every instance announces (they stand for one hub).</summary>
    public static readonly Uri Issuer = new("http://sharehub.test/");

    private readonly string _keys = Path.Combine(Path.GetTempPath(), "sharehub-keys-" + Guid.NewGuid().ToString("N"));
    private readonly Dictionary<string, RSA> _clientKeys;
    private readonly ConcurrentDictionary<(string, Uri), HubTokenClient> _tokenClients = new();

    public ProcessIdentity(params string[] organisations)
    {
        Directory.CreateDirectory(_keys);
        using (var signing = RSA.Create(2048))
        {
            File.WriteAllText(Path.Combine(_keys, "signing-test.pem"), signing.ExportPkcs8PrivateKeyPem());
        }

        _clientKeys = organisations.ToDictionary(o => o, _ => RSA.Create(2048));
    }

    /// <summary>Broker settings that configure this identity (merge into the process settings).</summary>
    public Dictionary<string, string?> Settings()
    {
        var settings = new Dictionary<string, string?>
        {
            ["ShareHub:Authentication:Mode"] = "Tokens",
            ["ShareHub:Identity:Issuer"] = Issuer.ToString(),
            ["ShareHub:Identity:SigningKeysPath"] = _keys,
            // Reliability and load runs send thousands of signals from one client: lift the per-client rate limit.
            ["ShareHub:Identity:PermitsPerMinute"] = "10000000",
        };
        var i = 0;
        foreach (var (organisation, key) in _clientKeys)
        {
            settings[$"ShareHub:Identity:Clients:{i}:ClientId"] = ClientId(organisation);
            settings[$"ShareHub:Identity:Clients:{i}:Organisation"] = organisation;
            settings[$"ShareHub:Identity:Clients:{i}:Roles:0"] = "partner-system";
            settings[$"ShareHub:Identity:Clients:{i}:PublicKeyPem"] = key.ExportSubjectPublicKeyInfoPem();
            i++;
        }

        return settings;
    }

    /// <summary>The token client of <paramref name="organisation"/> against the broker at <paramref name="hub"/>.</summary>
    public HubTokenClient TokenClient(string organisation, Uri hub) => _tokenClients.GetOrAdd((organisation, hub), key =>
        new HubTokenClient(new HttpClient { BaseAddress = hub, Timeout = TimeSpan.FromSeconds(30) }, new HubClientCredentials
        {
            HubUri = hub,
            Issuer = Issuer,
            ClientId = ClientId(organisation),
            PrivateKeyPem = _clientKeys[organisation].ExportPkcs8PrivateKeyPem(),
        }));

    /// <summary>An HTTP client of <paramref name="organisation"/> carrying a fresh access token for <paramref name="hub"/>.</summary>
    public async Task<HttpClient> ClientForAsync(string organisation, Uri hub)
    {
        var token = await TokenClient(organisation, hub).GetAccessTokenAsync();
        var client = new HttpClient { BaseAddress = hub, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    private static string ClientId(string organisation) => $"process-{organisation}";

    public void Dispose()
    {
        foreach (var client in _tokenClients.Values)
        {
            client.Dispose();
        }

        foreach (var key in _clientKeys.Values)
        {
            key.Dispose();
        }

        try
        {
            Directory.Delete(_keys, recursive: true);
        }
        catch (IOException)
        {
            // left for the temp cleaner
        }
    }
}
