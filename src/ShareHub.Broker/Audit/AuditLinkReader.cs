using System.Buffers.Binary;
using System.Data.Common;
using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Audit;

/// <summary>
/// Streams the stored audit trail in sequence order into <see cref="AuditLinkBatch"/>es, without EF Core
/// materialisation or change tracking: on PostgreSQL as a binary <c>COPY … TO STDOUT</c> whose bytes are encoded as
/// they arrive, on other providers (SQLite, SQL Server) through a plain <see cref="DbDataReader"/>.
/// </summary>
internal static class AuditLinkReader
{
    /// <summary>PostgreSQL binary COPY signature (11 bytes), then flags (int32) and header extension length (int32).</summary>
    private static ReadOnlySpan<byte> CopySignature => [(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', (byte)'\n', 0xFF, (byte)'\r', (byte)'\n', 0];

    private static readonly bool[] Guids = AuditHashChain.CanonicalFields
        .Select(f => typeof(AuditEntry).GetProperty(f)!.PropertyType == typeof(Guid?)).ToArray();

    /// <summary>
    /// Reads all entries, handing full batches to <paramref name="filled"/> and taking empty ones from
    /// <paramref name="free"/>; completes <paramref name="filled"/> at the end.
    /// </summary>
    public static async Task ReadAsync(HubDbContext db, ChannelReader<AuditLinkBatch> free, ChannelWriter<AuditLinkBatch> filled, CancellationToken cancellationToken)
    {
        await db.Database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var batch = await free.ReadAsync(cancellationToken).ConfigureAwait(false);
            batch.Clear();
            batch = db.Database.IsNpgsql()
                ? await CopyAsync(db, batch, free, filled, cancellationToken).ConfigureAwait(false)
                : await ReadRowsAsync(db, batch, free, filled, cancellationToken).ConfigureAwait(false);
            if (batch.Count > 0)
            {
                await filled.WriteAsync(batch, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync().ConfigureAwait(false);
        }

        filled.Complete();
    }

    /// <summary>
    /// PostgreSQL: binary COPY of the query (PostgreSQL docs, "COPY", binary format). The stream is not given the
    /// cancellation token: cancelling a running COPY sends a cancel request that can race with the connection's next
    /// command, so an early stop lets disposal read the rest of the stream instead.
    /// </summary>
    private static async Task<AuditLinkBatch> CopyAsync(HubDbContext db, AuditLinkBatch batch, ChannelReader<AuditLinkBatch> free, ChannelWriter<AuditLinkBatch> filled, CancellationToken cancellationToken)
    {
        var connection = (NpgsqlConnection)db.Database.GetDbConnection();
        var copy = await connection.BeginRawBinaryCopyAsync($"COPY ({Select(db)}) TO STDOUT (FORMAT BINARY)", cancellationToken).ConfigureAwait(false);
        await using (copy.ConfigureAwait(false))
        {
            var buffer = new byte[1 << 20];
            int start = 0, end = 0;
            var header = false;
            var trailer = false;
            var previous = AuditHashChain.Genesis;
            while (true)
            {
                if (!header && end - start >= 19)
                {
                    if (!buffer.AsSpan(start, CopySignature.Length).SequenceEqual(CopySignature))
                    {
                        throw new InvalidDataException("The COPY of the audit trail does not start with PostgreSQL's binary COPY signature.");
                    }

                    var extension = 19 + BinaryPrimitives.ReadInt32BigEndian(buffer.AsSpan(start + 15));
                    if (end - start >= extension)
                    {
                        start += extension;
                        header = true;
                    }
                }

                while (header && !trailer)
                {
                    if (batch.TryAddCopyRow(buffer.AsSpan(start, end - start), previous, Guids, out var consumed))
                    {
                        start += consumed;
                        if (batch.IsFull)
                        {
                            batch = await HandOverAsync(batch, free, filled, cancellationToken).ConfigureAwait(false);
                        }

                        continue;
                    }

                    trailer = consumed == 2;
                    start += consumed;
                    break;
                }

                cancellationToken.ThrowIfCancellationRequested();
                if (start > 0)
                {
                    Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                    end -= start;
                    start = 0;
                }

                if (end == buffer.Length)
                {
                    Array.Resize(ref buffer, buffer.Length * 2); // one tuple larger than the buffer
                }

                var read = await copy.ReadAsync(buffer.AsMemory(end), CancellationToken.None).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                end += read;
            }

            if (!trailer)
            {
                throw new InvalidDataException("The COPY of the audit trail ended before its end-of-data trailer.");
            }
        }

        return batch;
    }

    /// <summary>Other providers: a plain data reader, each row encoded as <see cref="AuditHashChain.WriteLinked"/> would.</summary>
    private static async Task<AuditLinkBatch> ReadRowsAsync(HubDbContext db, AuditLinkBatch batch, ChannelReader<AuditLinkBatch> free, ChannelWriter<AuditLinkBatch> filled, CancellationToken cancellationToken)
    {
        // SQLite stores RecordedAt as Unix microseconds through a value converter (AuditModel); SQL Server natively.
        var converter = db.Model.FindEntityType(typeof(AuditEntry))!.FindProperty(nameof(AuditEntry.RecordedAt))!.GetTypeMapping().Converter;
        var command = db.Database.GetDbConnection().CreateCommand();
        await using (command.ConfigureAwait(false))
        {
            command.CommandText = Select(db);
            command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                var previous = AuditHashChain.Genesis;
                var texts = new string?[Guids.Length];
                var guids = new Guid?[Guids.Length];
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var id = reader.GetInt64(0);
                    var hash = reader.IsDBNull(1) ? [] : reader.GetFieldValue<byte[]>(1);
                    var sequence = reader.GetInt64(2);
                    var recordedAt = converter is null
                        ? reader.GetFieldValue<DateTimeOffset>(3)
                        : (DateTimeOffset)converter.ConvertFromProvider(reader.GetValue(3))!;
                    var size = AuditLinkHeadSize;
                    for (var f = 0; f < Guids.Length; f++)
                    {
                        var isNull = reader.IsDBNull(4 + f);
                        guids[f] = Guids[f] && !isNull ? reader.GetFieldValue<Guid>(4 + f) : null;
                        texts[f] = !Guids[f] && !isNull ? reader.GetString(4 + f) : null;
                        size += 4 + (3 * (texts[f]?.Length ?? 0)) + 17;
                    }

                    var span = batch.Reserve(size);
                    var at = AuditHashChain.WriteHead(span, previous, sequence, AuditHashChain.UnixMicroseconds(recordedAt));
                    for (var f = 0; f < Guids.Length; f++)
                    {
                        if (Guids[f])
                        {
                            AuditHashChain.Write(span, ref at, guids[f]);
                        }
                        else
                        {
                            AuditHashChain.Write(span, ref at, texts[f]);
                        }
                    }

                    batch.Commit(at, sequence, id, hash);
                    previous = hash.Length == AuditHashChain.HashSize ? hash : AuditHashChain.Genesis;
                    if (batch.IsFull)
                    {
                        batch = await HandOverAsync(batch, free, filled, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
        }

        return batch;
    }

    private static int AuditLinkHeadSize => AuditHashChain.HashSize + AuditHashChain.HeadSize;

    private static async ValueTask<AuditLinkBatch> HandOverAsync(AuditLinkBatch batch, ChannelReader<AuditLinkBatch> free, ChannelWriter<AuditLinkBatch> filled, CancellationToken cancellationToken)
    {
        await filled.WriteAsync(batch, cancellationToken).ConfigureAwait(false);
        var next = await free.ReadAsync(cancellationToken).ConfigureAwait(false);
        next.Clear();
        return next;
    }

    /// <summary>Id, Hash, Sequence, RecordedAt, then the canonical fields, in sequence order; names from the EF Core model.</summary>
    private static string Select(HubDbContext db)
    {
        var entity = db.Model.FindEntityType(typeof(AuditEntry))!;
        var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        var sql = db.GetService<ISqlGenerationHelper>();
        string Column(string property) => sql.DelimitIdentifier(entity.FindProperty(property)!.GetColumnName(table)!);
        var columns = new[] { nameof(AuditEntry.Id), nameof(AuditEntry.Hash), nameof(AuditEntry.Sequence), nameof(AuditEntry.RecordedAt) }
            .Concat(AuditHashChain.CanonicalFields).Select(Column);
        return $"SELECT {string.Join(", ", columns)} FROM {sql.DelimitIdentifier(table.Name, table.Schema)} ORDER BY {Column(nameof(AuditEntry.Sequence))}";
    }
}
