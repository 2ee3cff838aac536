using System.Security.Cryptography;
using Microsoft.Extensions.Options;

namespace ShareHub.Broker.Audit;

/// <summary>Options of the <c>ShareHub:Audit</c> section (environment: <c>ShareHub__Audit__SigningKeyPath</c>, …).</summary>
public sealed class AuditOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "ShareHub:Audit";

    /// <summary>
    /// PEM file with the hub's ECDSA P-256 private key that signs checkpoints. Required outside Development; in
    /// Development a key is generated under <c>.data/</c> when none is configured.
    /// </summary>
    public string? SigningKeyPath { get; set; }

    /// <summary>Sign a checkpoint once this many entries were appended since the last one.</summary>
    public int CheckpointEveryEntries { get; set; } = 1000;

    /// <summary>Sign a checkpoint at least this often (seconds) while entries are appended.</summary>
    public int CheckpointIntervalSeconds { get; set; } = 300;

    /// <summary>How often (seconds) the checkpoint job looks at the chain head.</summary>
    public int CheckpointPollSeconds { get; set; } = 5;

    /// <summary>Whether this instance runs the checkpoint job.</summary>
    public bool CheckpointsEnabled { get; set; } = true;

    /// <summary>
    /// Base of the processing-activity URIs (Logius <c>dpl.core.processing_activity_id</c>): the partnership's art. 30
    /// register. An entry's activity is <c>{base}{activity}@{version}</c>.
    /// </summary>
    public string ProcessingActivityBase { get; set; } = "urn:sharehub:verwerkingsregister:";

    /// <summary>The development key file used when none is configured in Development.</summary>
    public const string DevelopmentKeyPath = ".data/audit-signing-key.pem";
}

/// <summary>Options of the <c>ShareHub:Retention</c> section.</summary>
public sealed class RetentionOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "ShareHub:Retention";

    /// <summary>Whether this instance runs the periodic purge.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>How often the purge runs (minutes).</summary>
    public int PurgeIntervalMinutes { get; set; } = 60;

    /// <summary>
    /// How long the payload of a signal whose recipients were all refused is kept (minutes). Nothing was shared, so
    /// there is no reason to keep it beyond the provider's chance to look at the decisions.
    /// </summary>
    public int RefusedSignalRetentionMinutes { get; set; } = 15;

    /// <summary>Retention for a permitted delivery whose rule sets none (days). The shipped rules all set one.</summary>
    public int DefaultRetentionDays { get; set; } = 183;

    /// <summary>Signals purged per transaction.</summary>
    public int BatchSize { get; set; } = 500;
}

/// <summary>Refuses to start a hub whose audit or retention settings are unusable (STYLE.md §5).</summary>
internal sealed class AuditOptionsValidator(IHostEnvironment environment) : IValidateOptions<AuditOptions>, IValidateOptions<RetentionOptions>
{
    public ValidateOptionsResult Validate(string? name, AuditOptions options)
    {
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.SigningKeyPath))
        {
            if (!environment.IsDevelopment())
            {
                failures.Add("ShareHub:Audit:SigningKeyPath is missing: set the path of a PEM file with the hub's ECDSA P-256 private key "
                    + "(openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt > audit-signing-key.pem). It signs audit checkpoints.");
            }
        }
        else if (!File.Exists(options.SigningKeyPath))
        {
            failures.Add($"ShareHub:Audit:SigningKeyPath '{options.SigningKeyPath}' does not exist.");
        }
        else
        {
            var usable = AuditSigningKey.TryLoad(options.SigningKeyPath, out var key, out var problem);
            key?.Dispose();
            if (!usable)
            {
                failures.Add($"ShareHub:Audit:SigningKeyPath '{options.SigningKeyPath}': {problem}");
            }
        }

        if (options.CheckpointEveryEntries < 1 || options.CheckpointIntervalSeconds < 1 || options.CheckpointPollSeconds < 1)
        {
            failures.Add("ShareHub:Audit needs CheckpointEveryEntries, CheckpointIntervalSeconds and CheckpointPollSeconds ≥ 1.");
        }

        if (!Uri.TryCreate(options.ProcessingActivityBase, UriKind.Absolute, out _))
        {
            failures.Add("ShareHub:Audit:ProcessingActivityBase must be an absolute URI (the art. 30 register).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    public ValidateOptionsResult Validate(string? name, RetentionOptions options) =>
        options.PurgeIntervalMinutes < 1 || options.RefusedSignalRetentionMinutes < 0 || options.DefaultRetentionDays < 1 || options.BatchSize < 1
            ? ValidateOptionsResult.Fail("ShareHub:Retention needs PurgeIntervalMinutes ≥ 1, RefusedSignalRetentionMinutes ≥ 0, DefaultRetentionDays ≥ 1 and BatchSize ≥ 1.")
            : ValidateOptionsResult.Success;
}

/// <summary>The hub's checkpoint signing key (ECDSA P-256). Verification needs only its public half.</summary>
public sealed class AuditSigningKey : IDisposable
{
    private readonly ECDsa _key;

    /// <summary>Loads the configured key; in Development without one, loads or creates the development key.</summary>
    public AuditSigningKey(IOptions<AuditOptions> options, ILogger<AuditSigningKey> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        var path = options.Value.SigningKeyPath;
        if (string.IsNullOrWhiteSpace(path))
        {
            // Only reachable in Development: the options validator refuses a missing key elsewhere.
            path = Path.GetFullPath(AuditOptions.DevelopmentKeyPath);
            EnsureDevelopmentKey(path);
            logger.LogWarning("ShareHub:Audit:SigningKeyPath is not set: checkpoints are signed with the DEVELOPMENT key {Path}.", path);
        }

        if (!TryLoad(path, out var key, out var problem))
        {
            throw new InvalidOperationException($"The audit signing key '{path}' cannot be used: {problem}");
        }

        _key = key!;
        KeyId = ComputeKeyId(_key);
        PublicKeyPem = _key.ExportSubjectPublicKeyInfoPem();
    }

    /// <summary>First 8 bytes (hex) of SHA-256 over the SubjectPublicKeyInfo.</summary>
    public string KeyId { get; }

    /// <summary>The public key, PEM (give it to auditors who verify exports).</summary>
    public string PublicKeyPem { get; }

    /// <summary>Signs <paramref name="payload"/> (ECDSA P-256, SHA-256, IEEE P1363 format).</summary>
    public byte[] Sign(byte[] payload) => _key.SignData(payload, HashAlgorithmName.SHA256);

    /// <summary>Checks a signature made by this key.</summary>
    public bool Verify(byte[] payload, byte[] signature) => _key.VerifyData(payload, signature, HashAlgorithmName.SHA256);

    /// <summary>Reads a PEM private key and checks it is P-256.</summary>
    public static bool TryLoad(string path, out ECDsa? key, out string? problem)
    {
        key = null;
        problem = null;
        string pem;
        try
        {
            pem = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problem = $"cannot be read ({ex.Message}).";
            return false;
        }

        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportFromPem(pem);
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            ecdsa.Dispose();
            problem = $"is not a PEM ECDSA private key ({ex.Message}).";
            return false;
        }

        var parameters = ecdsa.ExportParameters(includePrivateParameters: false);
        if (ecdsa.KeySize != 256 || parameters.Curve.Oid.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
        {
            ecdsa.Dispose();
            problem = "must be an ECDSA key on curve P-256 (prime256v1).";
            return false;
        }

        key = ecdsa;
        return true;
    }

    internal static string ComputeKeyId(ECDsa key) =>
        Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo())[..8]);

    private static void EnsureDevelopmentKey(string path)
    {
        if (File.Exists(path))
        {
            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temporary, key.ExportPkcs8PrivateKeyPem());
        try
        {
            File.Move(temporary, path, overwrite: false);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another process created it first: use theirs.
            File.Delete(temporary);
        }
    }

    /// <inheritdoc />
    public void Dispose() => _key.Dispose();
}
