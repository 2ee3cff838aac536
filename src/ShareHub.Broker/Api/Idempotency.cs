using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Data;
using ShareHub.Broker.Delivery;
using ShareHub.Contracts;

namespace ShareHub.Broker.Api;

/// <summary>
/// Safe retries of <c>POST /api/v1/signals</c> with the <c>Idempotency-Key</c> request header
/// (draft-ietf-httpapi-idempotency-key-header): a client that lost the answer — e.g. the hub crashed mid-request —
/// resubmits with the same key and gets the original signal's 202 back instead of a second signal. A key reused for a
/// different request is refused (422), as the draft recommends.
/// </summary>
internal static class Idempotency
{
    public const string Header = "Idempotency-Key";

    /// <summary>1–64 printable ASCII characters (a UUID fits).</summary>
    public static bool IsValidKey(string key) => key.Length is > 0 and <= 64 && key.All(c => c is >= '!' and <= '~');

    /// <summary>
    /// A batch submission's key is stored per signal as <c>key#index</c>: the key itself may be at most 60 characters
    /// so that the stored key fits the 64-character column.
    /// </summary>
    public const int MaxBatchKeyLength = 60;

    /// <summary>Whether <paramref name="key"/> may key a batch submission.</summary>
    public static bool IsValidBatchKey(string key) => IsValidKey(key) && key.Length <= MaxBatchKeyLength;

    /// <summary>The key stored for item <paramref name="index"/> of a batch submitted with <paramref name="key"/>.</summary>
    public static string BatchItemKey(string key, int index) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{key}#{index}");

    /// <summary>The signals stored by an earlier batch with <paramref name="key"/>, by item index.</summary>
    public static async Task<Dictionary<int, Signal>> FindBatchAsync(HubDbContext db, string provider, string key, CancellationToken cancellationToken)
    {
        var keys = Enumerable.Range(0, SubmitSignalBatchRequest.MaxSignals).Select(i => BatchItemKey(key, i)).ToList();
        var signals = await db.Signals.AsNoTracking()
            .Where(s => s.Provider == provider && s.IdempotencyKey != null && keys.Contains(s.IdempotencyKey))
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        return signals.ToDictionary(s => keys.IndexOf(s.IdempotencyKey!));
    }

    /// <summary>A stable hash of the request as the hub understood it.</summary>
    public static string HashOf(SubmitSignalRequest request) =>
        Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(request)));

    /// <summary>The earlier signal submitted by <paramref name="provider"/> with <paramref name="key"/>, if any.</summary>
    public static Task<Signal?> FindAsync(HubDbContext db, string provider, string key, CancellationToken cancellationToken) =>
        db.Signals.AsNoTracking().SingleOrDefaultAsync(s => s.Provider == provider && s.IdempotencyKey == key, cancellationToken);

    /// <summary>Rebuilds the original 202 answer from the signal's decision audit entries.</summary>
    public static async Task<SubmitSignalResponse> ReplayAsync(HubDbContext db, Signal signal, CancellationToken cancellationToken)
    {
        var decisions = await db.AuditEntries.AsNoTracking()
            .Where(a => a.SignalId == signal.Id && a.Kind == AuditKinds.Decision)
            .OrderBy(a => a.Id)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        return SignalIntake.Response(signal, decisions);
    }
}
