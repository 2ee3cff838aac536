using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ShareHub.Partner;

/// <summary>How a partner client authenticates to the hub's token endpoint.</summary>
public sealed class HubClientCredentials
{
    /// <summary>The hub's base address, e.g. <c>https://hub.example.nl/</c>.</summary>
    public Uri HubUri { get; set; } = new("https://127.0.0.1:5443/");

    /// <summary>The client id the hub registered for you.</summary>
    public string ClientId { get; set; } = string.Empty;

    /// <summary>
    /// Your private key (PEM, RSA or EC P-256). It never leaves your system: the hub holds only the public half and
    /// you prove possession with a signed client assertion (private_key_jwt, RFC 7523).
    /// </summary>
    public string? PrivateKeyPem { get; set; }

    /// <summary>DEVELOPMENT FALLBACK: a client secret instead of a key.</summary>
    public string? ClientSecret { get; set; }

    /// <summary>
    /// The hub's issuer identifier, the audience of client assertions (OpenIddict 7 accepts only its issuer there, as
    /// draft-ietf-oauth-rfc7523bis recommends). Defaults to <see cref="HubUri"/>.
    /// </summary>
    public Uri? Issuer { get; set; }

    /// <summary>Scopes to ask for; empty asks for everything the client may have.</summary>
    public IReadOnlyList<string> Scopes { get; set; } = [];
}

/// <summary>
/// Obtains access tokens from the hub with the OAuth 2.0 client credentials grant (RFC 6749 §4.4), authenticating
/// with a private_key_jwt client assertion (RFC 7523 §2.2), and caches each token until shortly before it expires.
/// </summary>
public sealed class HubTokenClient : IDisposable
{
    private const string AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    private static readonly TimeSpan RenewBefore = TimeSpan.FromSeconds(30);

    private readonly HttpClient _http;
    private readonly HubClientCredentials _credentials;
    private readonly TimeProvider _time;
    private readonly AsymmetricAlgorithm? _key;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private (string Token, DateTimeOffset RenewAt)? _cached;

    /// <summary>Creates a token client that sends its requests with <paramref name="http"/>.</summary>
    public HubTokenClient(HttpClient http, HubClientCredentials credentials, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        ArgumentException.ThrowIfNullOrWhiteSpace(credentials.ClientId);
        _http = http;
        _credentials = credentials;
        _time = time ?? TimeProvider.System;
        if (credentials.PrivateKeyPem is { } pem)
        {
            _key = LoadKey(pem);
        }
        else if (credentials.ClientSecret is null)
        {
            throw new ArgumentException("A private key (private_key_jwt) or a development client secret is required.", nameof(credentials));
        }
    }

    /// <summary>The token endpoint's address.</summary>
    public Uri TokenEndpoint => new(_credentials.HubUri, "connect/token");

    /// <summary>A valid access token (cached, renewed 30 s before expiry).</summary>
    public async Task<string> GetAccessTokenAsync(CancellationToken cancellationToken = default)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_cached is { } cached && _time.GetUtcNow() < cached.RenewAt)
            {
                return cached.Token;
            }

            var response = await RequestTokenAsync(cancellationToken).ConfigureAwait(false);
            _cached = (response.AccessToken, _time.GetUtcNow() + TimeSpan.FromSeconds(response.ExpiresIn) - RenewBefore);
            return response.AccessToken;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Forgets the cached token (e.g. after a 401), so the next call asks for a new one.</summary>
    public void Invalidate() => _cached = null;

    /// <summary>Asks the token endpoint for a new token; throws <see cref="HubTokenException"/> when refused.</summary>
    public async Task<TokenResponse> RequestTokenAsync(CancellationToken cancellationToken = default)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = _credentials.ClientId };
        if (_credentials.Scopes.Count > 0)
        {
            form["scope"] = string.Join(' ', _credentials.Scopes);
        }

        if (_key is not null)
        {
            form["client_assertion_type"] = AssertionType;
            form["client_assertion"] = CreateClientAssertion();
        }
        else
        {
            form["client_secret"] = _credentials.ClientSecret!;
        }

        using var content = new FormUrlEncodedContent(form);
        using var response = await _http.PostAsync(TokenEndpoint, content, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new HubTokenException((int)response.StatusCode, body);
        }

        return JsonSerializer.Deserialize<TokenResponse>(body)
            ?? throw new HubTokenException((int)response.StatusCode, "The token endpoint returned no token.");
    }

    /// <summary>
    /// The client assertion (RFC 7523 §3): issuer and subject are the client id, the audience is the hub's issuer,
    /// a unique <c>jti</c> (the server refuses a replay) and a lifetime of one minute.
    /// </summary>
    public string CreateClientAssertion()
    {
        var key = _key ?? throw new InvalidOperationException("No private key is configured.");
        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        var algorithm = key is ECDsa ? "ES256" : "RS256";
        // Explicit typing (draft-ietf-oauth-rfc7523bis): an assertion cannot be confused with another kind of JWT;
        // OpenIddict 7 requires it.
        var header = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object> { ["alg"] = algorithm, ["typ"] = "client-authentication+jwt" });
        var payload = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["iss"] = _credentials.ClientId,
            ["sub"] = _credentials.ClientId,
            ["aud"] = (_credentials.Issuer ?? _credentials.HubUri).AbsoluteUri,
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["iat"] = now,
            ["nbf"] = now,
            ["exp"] = now + 60,
        });
        var signingInput = Base64Url(header) + "." + Base64Url(payload);
        var data = Encoding.ASCII.GetBytes(signingInput);
        var signature = key switch
        {
            ECDsa ec => ec.SignData(data, HashAlgorithmName.SHA256),
            RSA rsa => rsa.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
            _ => throw new NotSupportedException("Only RSA and EC keys are supported."),
        };
        return signingInput + "." + Base64Url(signature);
    }

    /// <summary>Sends <paramref name="request"/> with a bearer token; on 401 renews the token once and retries.</summary>
    public async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        for (var attempt = 0; ; attempt++)
        {
            using var message = request();
            message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await GetAccessTokenAsync(cancellationToken).ConfigureAwait(false));
            var response = await _http.SendAsync(message, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode != System.Net.HttpStatusCode.Unauthorized || attempt > 0)
            {
                return response;
            }

            response.Dispose();
            Invalidate();
        }
    }

    /// <summary>Posts JSON to the hub with a bearer token.</summary>
    public Task<HttpResponseMessage> PostAsJsonAsync<T>(string path, T body, CancellationToken cancellationToken = default) =>
        SendAsync(() => new HttpRequestMessage(HttpMethod.Post, new Uri(_credentials.HubUri, path.TrimStart('/'))) { Content = JsonContent.Create(body) }, cancellationToken);

    /// <inheritdoc />
    public void Dispose()
    {
        _key?.Dispose();
        _lock.Dispose();
    }

    /// <summary>
    /// The client's private key: RSA (PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY") or EC (SEC 1 "EC PRIVATE KEY" or
    /// PKCS#8). RSA is tried first (a PKCS#8 label does not say which), then EC; anything else is a clear error.
    /// </summary>
    private static AsymmetricAlgorithm LoadKey(string pem)
    {
        return TryImport(RSA.Create(), pem) ?? TryImport(ECDsa.Create(), pem)
            ?? throw new ArgumentException("The private key is not an RSA or EC private key in PEM form.", "credentials");
    }

    /// <summary>The key with <paramref name="pem"/> imported, or null (and disposed) when it is not of its kind.</summary>
    private static AsymmetricAlgorithm? TryImport(AsymmetricAlgorithm key, string pem)
    {
        try
        {
            key.ImportFromPem(pem);
            return key;
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            key.Dispose();
            return null;
        }
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

/// <summary>A successful token response (RFC 6749 §5.1).</summary>
/// <param name="AccessToken">The bearer token.</param>
/// <param name="TokenType">Always <c>Bearer</c>.</param>
/// <param name="ExpiresIn">Lifetime in seconds.</param>
/// <param name="Scope">Granted scopes, space separated.</param>
public sealed record TokenResponse(
    [property: JsonPropertyName("access_token")] string AccessToken,
    [property: JsonPropertyName("token_type")] string TokenType,
    [property: JsonPropertyName("expires_in")] int ExpiresIn,
    [property: JsonPropertyName("scope")] string? Scope);

/// <summary>The token endpoint refused a request (RFC 6749 §5.2 error response in <see cref="Exception.Message"/>).</summary>
public sealed class HubTokenException : Exception
{
    /// <summary>Creates the exception.</summary>
    public HubTokenException(int status, string body)
        : base($"The hub refused the token request (HTTP {status}): {(body.Length > 500 ? body[..500] : body)}") => Status = status;

    /// <summary>Creates the exception.</summary>
    public HubTokenException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public HubTokenException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public HubTokenException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>HTTP status of the refusal.</summary>
    public int Status { get; }
}
