using System.Globalization;
using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Identity;

/// <summary>
/// The hub's token signing keys: RSA private keys as PEM files in one directory. The file whose name sorts last is
/// the active signing key; older ones stay published (JWKS) so tokens signed just before a rotation remain valid for
/// their few minutes. <see cref="RotateAsync"/> adds a new key, keeps one predecessor and audits the rotation.
/// </summary>
public static class SigningKeys
{
    private const string Prefix = "signing-";

    /// <summary>Loads the keys of <paramref name="directory"/>, active key first.</summary>
    public static IReadOnlyList<RsaSecurityKey> Load(string directory)
    {
        if (!Directory.Exists(directory))
        {
            throw new InvalidOperationException($"The signing key directory '{directory}' does not exist: create a key with 'sharehub keys rotate --dir {directory}'.");
        }

        var files = Directory.GetFiles(directory, Prefix + "*.pem").OrderDescending(StringComparer.Ordinal).ToList();
        if (files.Count == 0)
        {
            throw new InvalidOperationException($"The signing key directory '{directory}' holds no {Prefix}*.pem key: create one with 'sharehub keys rotate --dir {directory}'.");
        }

        return files.Select(file =>
        {
            var rsa = RSA.Create();
            rsa.ImportFromPem(File.ReadAllText(file));
            return new RsaSecurityKey(rsa) { KeyId = Path.GetFileNameWithoutExtension(file) };
        }).ToList();
    }

    /// <summary>
    /// Creates a new 3072-bit RSA signing key in <paramref name="directory"/>, removes keys older than its predecessor,
    /// and audits the rotation through <paramref name="db"/> (saved here). Returns the new key id. The hub signs with
    /// the new key after its next start; docs/security.md describes the procedure.
    /// </summary>
    public static async Task<string> RotateAsync(string directory, HubDbContext db, TimeProvider time, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(db);
        Directory.CreateDirectory(directory);
        var now = time.GetUtcNow();
        var keyId = Prefix + now.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var path = Path.Combine(directory, keyId + ".pem");
        if (File.Exists(path))
        {
            throw new InvalidOperationException($"A key named {keyId} exists already; rotate again in a second.");
        }

        using (var rsa = RSA.Create(3072))
        {
            await File.WriteAllTextAsync(path, rsa.ExportPkcs8PrivateKeyPem(), cancellationToken).ConfigureAwait(false);
        }

        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        // Keep the new key and one predecessor (tokens it signed live at most one access token lifetime).
        var retired = Directory.GetFiles(directory, Prefix + "*.pem").OrderDescending(StringComparer.Ordinal).Skip(2).ToList();
        foreach (var old in retired)
        {
            File.Delete(old);
        }

        db.AuditEntries.Add(IdentityAudit.Entry(
            IdentityAuditKinds.KeyRotated, "rotated", IdentityCodes.KeyRotated, IdentityAudit.HubOrganisation, actor,
            $"Token signing key rotated: new key {keyId}; {retired.Count} retired key(s) removed ({string.Join(", ", retired.Select(Path.GetFileNameWithoutExtension))}).",
            now));
        await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        return keyId;
    }
}
