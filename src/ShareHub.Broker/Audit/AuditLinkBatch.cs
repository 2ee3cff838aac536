using System.Buffers.Binary;
using System.Security.Cryptography;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Audit;

/// <summary>
/// A batch of consecutive chain links, laid out so they can be checked without allocating per entry: for entry i the
/// bytes the chain hashes — <c>stored hash_{i-1} ‖ canonical_i</c> — lie back to back in one buffer, next to the
/// entry's stored hash, sequence and row id. One reader fills a batch (from entities, a database reader or PostgreSQL's
/// binary COPY stream); <see cref="CheckLinks"/> then checks all its links on all cores.
/// </summary>
public sealed class AuditLinkBatch
{
    /// <summary>Entries per batch.</summary>
    public const int Capacity = 8192;

    private const int Chunk = 512;
    private const int HashSize = AuditHashChain.HashSize;

    private readonly int[] _starts = new int[Capacity + 1];
    private readonly long[] _sequences = new long[Capacity];
    private readonly long[] _ids = new long[Capacity];
    private readonly byte[] _hashes = new byte[Capacity * HashSize];
    private readonly bool[] _hashSized = new bool[Capacity];
    private readonly bool[] _links = new bool[Capacity];
    private byte[] _bytes = new byte[Capacity * 512];

    /// <summary>Number of entries in the batch.</summary>
    public int Count { get; private set; }

    /// <summary>True when no further entry fits.</summary>
    public bool IsFull => Count == Capacity;

    /// <summary>Empties the batch for reuse.</summary>
    public void Clear() => Count = 0;

    /// <summary>Stored sequence of entry <paramref name="index"/>.</summary>
    public long Sequence(int index) => _sequences[index];

    /// <summary>Row id of entry <paramref name="index"/>.</summary>
    public long Id(int index) => _ids[index];

    /// <summary>Stored hash of entry <paramref name="index"/> (its first 32 bytes if it was stored with another length).</summary>
    public ReadOnlySpan<byte> Hash(int index) => _hashes.AsSpan(index * HashSize, HashSize);

    /// <summary>After <see cref="CheckLinks"/>: whether entry <paramref name="index"/>'s stored hash is SHA-256 of its linked bytes.</summary>
    public bool LinkHolds(int index) => _links[index];

    /// <summary>Adds an entity: <paramref name="previous"/> is the stored hash of the entry before it.</summary>
    public void Add(AuditEntry entry, ReadOnlySpan<byte> previous)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var written = AuditHashChain.WriteLinked(previous, entry, Reserve(AuditHashChain.MaxLinkedSize(entry)));
        Commit(written, entry.Sequence, entry.Id, entry.Hash);
    }

    /// <summary>Space for the next entry's linked bytes, at least <paramref name="size"/> long.</summary>
    internal Span<byte> Reserve(int size)
    {
        var start = _starts[Count];
        if (_bytes.Length - start < size)
        {
            Array.Resize(ref _bytes, Math.Max(_bytes.Length * 2, start + size));
        }

        return _bytes.AsSpan(start);
    }

    /// <summary>Completes the entry whose <paramref name="written"/> linked bytes were written into <see cref="Reserve"/>'s span.</summary>
    internal void Commit(int written, long sequence, long id, ReadOnlySpan<byte> storedHash)
    {
        var index = Count;
        _starts[index + 1] = _starts[index] + written;
        _sequences[index] = sequence;
        _ids[index] = id;
        _hashSized[index] = storedHash.Length == HashSize;
        var slot = _hashes.AsSpan(index * HashSize, HashSize);
        slot.Clear();
        storedHash[..Math.Min(HashSize, storedHash.Length)].CopyTo(slot);
        Count = index + 1;
    }

    /// <summary>
    /// Checks every link in parallel. Each link <c>SHA-256(stored hash_{n-1} ‖ canonical_n) = stored hash_n</c> depends
    /// only on stored values, so the links of a batch are independent of each other.
    /// </summary>
    public void CheckLinks()
    {
        var count = Count;
        var options = new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount };
        Parallel.For(0, (count + Chunk - 1) / Chunk, options, () => IncrementalHash.CreateHash(HashAlgorithmName.SHA256), (part, _, sha) =>
        {
            Span<byte> computed = stackalloc byte[HashSize];
            var end = Math.Min(count, (part + 1) * Chunk);
            for (var i = part * Chunk; i < end; i++)
            {
                sha.AppendData(_bytes, _starts[i], _starts[i + 1] - _starts[i]);
                sha.GetHashAndReset(computed);
                _links[i] = _hashSized[i] && computed.SequenceEqual(Hash(i));
            }

            return sha;
        }, sha => sha.Dispose());
    }

    /// <summary>
    /// Adds one row of a PostgreSQL binary COPY of the columns Id, Hash, Sequence, RecordedAt and then
    /// <see cref="AuditHashChain.CanonicalFields"/> (PostgreSQL's binary COPY format, "Tuples"): the canonical encoding
    /// is written straight from the row's bytes. PostgreSQL sends text as a 32-bit big-endian length (−1 for null) and
    /// UTF-8 bytes, and a uuid as 16 bytes in network order — exactly the canonical encoding of strings and Guids — and a
    /// timestamptz as big-endian microseconds since 2000-01-01 UTC.
    /// </summary>
    /// <param name="row">Buffered COPY data starting at a tuple.</param>
    /// <param name="previous">Stored hash of the entry before; replaced by this entry's stored hash.</param>
    /// <param name="guids">Which of the canonical fields are Guids.</param>
    /// <param name="consumed">Bytes of <paramref name="row"/> that the tuple took (0 if it is not complete yet).</param>
    /// <returns>False if <paramref name="row"/> does not hold the whole tuple yet, or holds the end-of-data trailer (then <paramref name="consumed"/> is 2).</returns>
    internal bool TryAddCopyRow(ReadOnlySpan<byte> row, Span<byte> previous, bool[] guids, out int consumed)
    {
        consumed = 0;
        if (row.Length < 2)
        {
            return false;
        }

        var fields = BinaryPrimitives.ReadInt16BigEndian(row);
        if (fields == -1)
        {
            consumed = 2;
            return false;
        }

        if (fields != 4 + guids.Length)
        {
            throw new InvalidDataException($"The COPY of the audit trail has {fields} columns per row, not {4 + guids.Length}.");
        }

        // Find the end of the tuple first: only a whole tuple is encoded.
        var end = 2;
        for (var f = 0; f < fields; f++)
        {
            if (row.Length - end < 4)
            {
                return false;
            }

            end += 4 + Math.Max(0, BinaryPrimitives.ReadInt32BigEndian(row[end..]));
        }

        if (end > row.Length)
        {
            return false;
        }

        var at = 2;
        var id = BinaryPrimitives.ReadInt64BigEndian(Field(row, ref at, 8, "Id"));
        var hashLength = BinaryPrimitives.ReadInt32BigEndian(row[at..]);
        ReadOnlySpan<byte> hash = hashLength < 0 ? [] : row.Slice(at + 4, hashLength);
        at += 4 + Math.Max(0, hashLength);
        var sequence = BinaryPrimitives.ReadInt64BigEndian(Field(row, ref at, 8, "Sequence"));
        var recordedAt = BinaryPrimitives.ReadInt64BigEndian(Field(row, ref at, 8, "RecordedAt"));

        var span = Reserve(end + HashSize + AuditHashChain.HeadSize);
        var written = AuditHashChain.WriteHead(span, previous, sequence, unchecked(recordedAt + PostgresEpochUnixMicroseconds));
        foreach (var guid in guids)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(row[at..]);
            if (guid)
            {
                if (length == -1)
                {
                    span[written++] = 0;
                    at += 4;
                }
                else
                {
                    span[written++] = 1;
                    Field(row, ref at, 16, "uuid").CopyTo(span[written..]);
                    written += 16;
                }

                continue;
            }

            // text: length and bytes, copied as they are
            var size = 4 + Math.Max(0, length);
            row.Slice(at, size).CopyTo(span[written..]);
            written += size;
            at += size;
        }

        Commit(written, sequence, id, hash);
        previous.Clear();
        hash[..Math.Min(HashSize, hash.Length)].CopyTo(previous);
        consumed = end;
        return true;
    }

    /// <summary>2000-01-01T00:00:00Z (PostgreSQL's timestamp epoch) in microseconds since the Unix epoch.</summary>
    private const long PostgresEpochUnixMicroseconds = 946_684_800_000_000L;

    private static ReadOnlySpan<byte> Field(ReadOnlySpan<byte> row, ref int at, int size, string what)
    {
        var length = BinaryPrimitives.ReadInt32BigEndian(row[at..]);
        if (length != size)
        {
            throw new InvalidDataException($"The COPY of the audit trail has a {what} value of {length} bytes, not {size}.");
        }

        var value = row.Slice(at + 4, size);
        at += 4 + size;
        return value;
    }
}
