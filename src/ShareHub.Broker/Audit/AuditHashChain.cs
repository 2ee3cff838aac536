using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Audit;

/// <summary>
/// The audit trail's hash chain: <c>hash_n = SHA-256(hash_{n-1} ‖ canonical_n)</c> with <c>hash_0</c> = 32 zero bytes.
/// The canonical encoding is binary, length-prefixed and provider-independent (docs/audit.md §"Canonical encoding"):
/// a database can only change what it stores, never how it is hashed. Like RFC 9162 §2.1.1, leaf data is
/// domain-separated (here by a version tag) so an entry can never be confused with a checkpoint.
/// </summary>
public sealed class AuditHashChain : IDisposable
{
    /// <summary>Size of a chain hash in bytes.</summary>
    public const int HashSize = 32;

    private static readonly byte[] EntryTag = "sharehub.audit.entry.v1"u8.ToArray();
    private static readonly byte[] CheckpointTag = "sharehub.audit.checkpoint.v1"u8.ToArray();

    private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private byte[] _buffer = new byte[4096];

    /// <summary>The hash before the first entry: 32 zero bytes.</summary>
    public static byte[] Genesis => new byte[HashSize];

    /// <summary>
    /// Truncates to whole microseconds in UTC: PostgreSQL stores timestamps with microsecond precision, so a value
    /// must be truncated before it is hashed and stored, or the chain would not verify after a round trip.
    /// </summary>
    public static DateTimeOffset TruncateToMicroseconds(DateTimeOffset value) =>
        new(value.UtcTicks - (value.UtcTicks % 10), TimeSpan.Zero);

    /// <summary>Microseconds since the Unix epoch (UTC).</summary>
    public static long UnixMicroseconds(DateTimeOffset value) => (value.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

    /// <summary>Computes the chain hash of <paramref name="entry"/> after <paramref name="previous"/>. Not thread-safe (reuses a buffer and a hash context).</summary>
    public void Next(ReadOnlySpan<byte> previous, AuditEntry entry, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var needed = MaxLinkedSize(entry);
        if (_buffer.Length < needed)
        {
            _buffer = new byte[Math.Max(needed, _buffer.Length * 2)];
        }

        var written = WriteLinked(previous, entry, _buffer);
        _sha.AppendData(_buffer, 0, written);
        _sha.GetHashAndReset(destination);
    }

    /// <summary>An upper bound of <see cref="WriteLinked"/>'s output for <paramref name="entry"/>.</summary>
    public static int MaxLinkedSize(AuditEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return HashSize + EntryTag.Length + 8 + 8 + (24 * 4) + (2 * 17) + MaxUtf8(entry);
    }

    /// <summary>
    /// Writes the bytes the chain hashes for <paramref name="entry"/>: <paramref name="previous"/> ‖ canonical encoding.
    /// <paramref name="destination"/> must hold <see cref="MaxLinkedSize"/> bytes.
    /// </summary>
    /// <returns>The number of bytes written.</returns>
    public static int WriteLinked(ReadOnlySpan<byte> previous, AuditEntry entry, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var span = destination;
        var at = WriteHead(span, previous, entry.Sequence, UnixMicroseconds(entry.RecordedAt));
        Write(span, ref at, entry.Kind);
        Write(span, ref at, entry.ActorOrganisation);
        Write(span, ref at, entry.Actor);
        Write(span, ref at, entry.SignalId);
        Write(span, ref at, entry.DeliveryId);
        Write(span, ref at, entry.Provider);
        Write(span, ref at, entry.Recipient);
        Write(span, ref at, entry.Category);
        Write(span, ref at, entry.Purpose);
        Write(span, ref at, entry.CaseReference);
        Write(span, ref at, entry.SubjectType);
        Write(span, ref at, entry.SubjectPseudonym);
        Write(span, ref at, entry.Outcome);
        Write(span, ref at, entry.ReasonCode);
        Write(span, ref at, entry.Explanation);
        Write(span, ref at, entry.RuleId);
        Write(span, ref at, entry.LegalGround);
        Write(span, ref at, entry.Obligations);
        Write(span, ref at, entry.PolicyVersion);
        Write(span, ref at, entry.TraceId);
        Write(span, ref at, entry.SpanId);
        Write(span, ref at, entry.ParentSpanId);
        Write(span, ref at, entry.ForeignOperation);
        Write(span, ref at, entry.ProcessingActivityId);
        return at;
    }

    /// <summary>
    /// The <see cref="AuditEntry"/> properties after <c>Sequence</c> and <c>RecordedAt</c>, in canonical order — the
    /// order <see cref="WriteLinked"/> writes them; readers that encode straight from database rows select them so.
    /// </summary>
    internal static readonly string[] CanonicalFields =
    [
        nameof(AuditEntry.Kind), nameof(AuditEntry.ActorOrganisation), nameof(AuditEntry.Actor), nameof(AuditEntry.SignalId),
        nameof(AuditEntry.DeliveryId), nameof(AuditEntry.Provider), nameof(AuditEntry.Recipient), nameof(AuditEntry.Category),
        nameof(AuditEntry.Purpose), nameof(AuditEntry.CaseReference), nameof(AuditEntry.SubjectType), nameof(AuditEntry.SubjectPseudonym),
        nameof(AuditEntry.Outcome), nameof(AuditEntry.ReasonCode), nameof(AuditEntry.Explanation), nameof(AuditEntry.RuleId),
        nameof(AuditEntry.LegalGround), nameof(AuditEntry.Obligations), nameof(AuditEntry.PolicyVersion), nameof(AuditEntry.TraceId),
        nameof(AuditEntry.SpanId), nameof(AuditEntry.ParentSpanId), nameof(AuditEntry.ForeignOperation), nameof(AuditEntry.ProcessingActivityId),
    ];

    /// <summary>Size of <see cref="WriteHead"/>'s output after the predecessor hash: tag, sequence, time.</summary>
    internal static int HeadSize => EntryTag.Length + 8 + 8;

    /// <summary>Writes previous ‖ tag ‖ sequence (int64 BE) ‖ time (Unix µs, int64 BE); returns the position after it.</summary>
    internal static int WriteHead(Span<byte> span, ReadOnlySpan<byte> previous, long sequence, long unixMicroseconds)
    {
        previous.CopyTo(span);
        var at = previous.Length;
        EntryTag.CopyTo(span[at..]);
        at += EntryTag.Length;
        BinaryPrimitives.WriteInt64BigEndian(span[at..], sequence);
        at += 8;
        BinaryPrimitives.WriteInt64BigEndian(span[at..], unixMicroseconds);
        return at + 8;
    }

    /// <summary>Convenience: the chain hash as a new array.</summary>
    public byte[] Next(ReadOnlySpan<byte> previous, AuditEntry entry)
    {
        var hash = new byte[HashSize];
        Next(previous, entry, hash);
        return hash;
    }

    /// <summary>The bytes a checkpoint signature covers: tag ‖ sequence ‖ head hash ‖ time (µs) ‖ key id.</summary>
    public static byte[] CheckpointPayload(long sequence, ReadOnlySpan<byte> headHash, DateTimeOffset createdAt, string keyId)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        var key = Encoding.UTF8.GetBytes(keyId);
        var payload = new byte[CheckpointTag.Length + 8 + headHash.Length + 8 + key.Length];
        var span = payload.AsSpan();
        CheckpointTag.CopyTo(span);
        var at = CheckpointTag.Length;
        BinaryPrimitives.WriteInt64BigEndian(span[at..], sequence);
        at += 8;
        headHash.CopyTo(span[at..]);
        at += headHash.Length;
        BinaryPrimitives.WriteInt64BigEndian(span[at..], UnixMicroseconds(createdAt));
        at += 8;
        key.CopyTo(span[at..]);
        return payload;
    }

    private static int MaxUtf8(AuditEntry e) =>
        3 * (Len(e.Kind) + Len(e.ActorOrganisation) + Len(e.Actor) + Len(e.Provider) + Len(e.Recipient) + Len(e.Category)
            + Len(e.Purpose) + Len(e.CaseReference) + Len(e.SubjectType) + Len(e.SubjectPseudonym) + Len(e.Outcome)
            + Len(e.ReasonCode) + Len(e.Explanation) + Len(e.RuleId) + Len(e.LegalGround) + Len(e.Obligations)
            + Len(e.PolicyVersion) + Len(e.TraceId) + Len(e.SpanId) + Len(e.ParentSpanId) + Len(e.ForeignOperation)
            + Len(e.ProcessingActivityId));

    private static int Len(string? s) => s?.Length ?? 0;

    /// <summary>A string: int32 big-endian UTF-8 length (−1 for null), then the bytes.</summary>
    internal static void Write(Span<byte> span, ref int at, string? value)
    {
        if (value is null)
        {
            BinaryPrimitives.WriteInt32BigEndian(span[at..], -1);
            at += 4;
            return;
        }

        var written = Encoding.UTF8.GetBytes(value, span[(at + 4)..]);
        BinaryPrimitives.WriteInt32BigEndian(span[at..], written);
        at += 4 + written;
    }

    /// <summary>A Guid: one presence byte, then 16 bytes in RFC 9562 (big-endian) order.</summary>
    internal static void Write(Span<byte> span, ref int at, Guid? value)
    {
        if (value is not { } guid)
        {
            span[at++] = 0;
            return;
        }

        span[at++] = 1;
        guid.TryWriteBytes(span[at..], bigEndian: true, out _);
        at += 16;
    }

    /// <inheritdoc />
    public void Dispose() => _sha.Dispose();
}
