using System.Data;
using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Data;
using ShareHub.Contracts;

namespace ShareHub.Broker.Audit;

/// <summary>
/// Recomputes the hash chain from the database, in sequence order, and checks the signed checkpoints and the chain
/// head. Stops at the first entry that does not check out and names it: a changed row fails its own hash, a deleted
/// row leaves a gap in the sequence, a reordered row fails the hash at its new position, a rewritten tail (hashes
/// recomputed by someone without the hub's key) fails at the next signed checkpoint, and a deleted tail fails against
/// the chain head and any checkpoint beyond it.
/// </summary>
public sealed class AuditVerifier(AuditSigningKey key, TimeProvider time)
{
    /// <summary>Batches in flight between the reader and the hashing: one being read, one being hashed, two queued.</summary>
    private const int Batches = 4;

    /// <summary>Verifies the whole trail.</summary>
    public async Task<AuditVerificationDto> VerifyAsync(HubDbContext db, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(db);
        var started = time.GetTimestamp();

        // PostgreSQL: checkpoints, entries and head are read in one REPEATABLE READ snapshot (no locks), so entries
        // appended while verifying cannot look like a head that disagrees with the chain. The entries are read in
        // Sequence order; without fresh statistics the planner may choose to sort the whole table (spilling to disk)
        // instead of walking the unique Sequence index, which is already in that order — sorting is turned off for it.
        await using var snapshot = db.Database.IsNpgsql() && db.Database.CurrentTransaction is null
            ? await db.Database.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false)
            : null;
        if (snapshot is not null)
        {
            await db.Database.ExecuteSqlRawAsync("SET TRANSACTION READ ONLY; SET LOCAL enable_sort = off", cancellationToken).ConfigureAwait(false);
        }

        var checkpoints = await db.Set<AuditCheckpoint>().AsNoTracking().OrderBy(c => c.Sequence).ThenBy(c => c.Id)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        var last = checkpoints.Count == 0 ? null : checkpoints[^1];
        var verified = 0;
        var previous = AuditHashChain.Genesis;
        long count = 0;

        AuditVerificationDto Result(long? badSequence, long? badId, string? problem) => new(
            problem is null, count, checkpoints.Count, verified, badSequence, badId, problem, Convert.ToHexStringLower(previous),
            last?.Sequence, last?.CreatedAt, key.KeyId, (long)time.GetElapsedTime(started).TotalMilliseconds);

        // Signatures first: a checkpoint that is not the hub's is worthless as an anchor. They are checked alongside
        // the chain (one ECDSA verification per checkpoint is not cheap), and a bad one is reported before anything else.
        var signatures = Task.Run(() => FirstBadSignature(checkpoints), cancellationToken);
        var chain = await VerifyChainAsync().ConfigureAwait(false);
        if (await signatures.ConfigureAwait(false) is { } badSignature)
        {
            (count, verified, previous) = (0, 0, AuditHashChain.Genesis);
            return Result(null, null, badSignature);
        }

        return chain;

        async Task<AuditVerificationDto> VerifyChainAsync()
        {
            // Reading (one thread, no EF Core materialisation: AuditLinkReader) and hashing (all cores) overlap: batches
            // flow through a small channel and are recycled. Each entry's link H(stored hash_{n-1} ‖ canonical_n) =
            // stored hash_n is independent of the others, so a batch is checked in parallel; a changed row breaks its
            // own link, and the first broken link in sequence order is reported.
            var free = Channel.CreateBounded<AuditLinkBatch>(Batches);
            var filled = Channel.CreateBounded<AuditLinkBatch>(Batches);
            for (var i = 0; i < Batches; i++)
            {
                free.Writer.TryWrite(new AuditLinkBatch());
            }

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var reader = Task.Run(async () =>
            {
                try
                {
                    await AuditLinkReader.ReadAsync(db, free.Reader, filled.Writer, stop.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    filled.Writer.TryComplete(ex); // surfaces in the consumer below
                }
            }, stop.Token);

            var next = 0;
            try
            {
                await foreach (var batch in filled.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                {
                    batch.CheckLinks();
                    for (var i = 0; i < batch.Count; i++)
                    {
                        var sequence = batch.Sequence(i);
                        var expected = count + 1;
                        if (sequence != expected)
                        {
                            return sequence > expected
                                ? Result(expected, batch.Id(i), $"Entry {expected} is missing (deleted); the next stored entry is {sequence} (id {batch.Id(i)}).")
                                : Result(sequence, batch.Id(i), $"Entry {sequence} (id {batch.Id(i)}) is stored twice or out of order.");
                        }

                        if (!batch.LinkHolds(i))
                        {
                            return Result(expected, batch.Id(i), $"Entry {expected} (id {batch.Id(i)}) does not match its hash: it was changed, or moved from another position.");
                        }

                        while (next < checkpoints.Count && checkpoints[next].Sequence == expected)
                        {
                            if (!batch.Hash(i).SequenceEqual(checkpoints[next].HeadHash))
                            {
                                var from = next == 0 ? 1 : checkpoints[next - 1].Sequence + 1;
                                return Result(from, null, $"The chain up to entry {expected} differs from signed checkpoint {checkpoints[next].Id}: entries {from}…{expected} were rewritten.");
                            }

                            verified++;
                            next++;
                        }

                        batch.Hash(i).CopyTo(previous);
                        count = expected;
                    }

                    free.Writer.TryWrite(batch);
                }
            }
            finally
            {
                await stop.CancelAsync().ConfigureAwait(false);
                try
                {
                    await reader.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // stopped early because a bad entry was found
                }
            }

            if (next < checkpoints.Count)
            {
                return Result(count + 1, null, $"The chain ends at entry {count}, but checkpoint {checkpoints[next].Id} was signed over {checkpoints[next].Sequence} entries: entries {count + 1}…{checkpoints[next].Sequence} were deleted.");
            }

            var head = await AuditChainHeadStore.ReadAsync(db, cancellationToken).ConfigureAwait(false);
            if (head.Sequence != count)
            {
                return head.Sequence > count
                    ? Result(count + 1, null, $"The chain head records {head.Sequence} entries but only {count} are stored: entries {count + 1}…{head.Sequence} were deleted.")
                    : Result(head.Sequence + 1, null, $"The chain head records {head.Sequence} entries but {count} are stored: the head row was changed.");
            }

            if (!head.Hash.AsSpan().SequenceEqual(previous))
            {
                return Result(count, null, $"The chain head's hash does not match entry {count}: the head row or the last entry was changed.");
            }

            return Result(null, null, null);
        }
    }

    /// <summary>The problem with the first checkpoint (in sequence order) not validly signed with the hub's key, if any.</summary>
    private string? FirstBadSignature(List<AuditCheckpoint> checkpoints)
    {
        foreach (var checkpoint in checkpoints)
        {
            if (checkpoint.KeyId != key.KeyId)
            {
                return $"Checkpoint {checkpoint.Id} (over {checkpoint.Sequence} entries) was signed with key {checkpoint.KeyId}, not with the hub's key {key.KeyId}.";
            }

            var payload = AuditHashChain.CheckpointPayload(checkpoint.Sequence, checkpoint.HeadHash, checkpoint.CreatedAt, checkpoint.KeyId);
            if (!key.Verify(payload, checkpoint.Signature))
            {
                return $"Checkpoint {checkpoint.Id} (over {checkpoint.Sequence} entries) has an invalid signature: it was changed after signing.";
            }
        }

        return null;
    }
}

/// <summary>
/// Signs checkpoints of the chain head with the hub's key: every <see cref="AuditOptions.CheckpointEveryEntries"/>
/// entries and at least every <see cref="AuditOptions.CheckpointIntervalSeconds"/> while the chain grows
/// (cf. the signed tree heads of RFC 9162 §4.10).
/// </summary>
public sealed class AuditCheckpointer(
    IServiceScopeFactory scopes,
    AuditSigningKey key,
    TimeProvider time,
    Microsoft.Extensions.Options.IOptions<AuditOptions> options,
    ILogger<AuditCheckpointer> logger) : BackgroundService
{
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly AuditOptions _settings = options.Value;

    /// <summary>Signs a checkpoint of the current head, unless the latest checkpoint already covers it.</summary>
    /// <returns>The new checkpoint, or null when there was nothing new.</returns>
    public async Task<AuditCheckpoint?> CheckpointAsync(CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var scope = scopes.CreateScope();
            var db = scope.ServiceProvider.GetRequiredService<HubDbContext>();
            var head = await AuditChainHeadStore.ReadAsync(db, cancellationToken).ConfigureAwait(false);
            var covered = await db.Set<AuditCheckpoint>().MaxAsync(c => (long?)c.Sequence, cancellationToken).ConfigureAwait(false) ?? 0;
            if (head.Sequence <= covered)
            {
                return null;
            }

            var now = AuditHashChain.TruncateToMicroseconds(time.GetUtcNow());
            var checkpoint = new AuditCheckpoint
            {
                Sequence = head.Sequence,
                HeadHash = head.Hash,
                CreatedAt = now,
                KeyId = key.KeyId,
                Signature = key.Sign(AuditHashChain.CheckpointPayload(head.Sequence, head.Hash, now, key.KeyId)),
            };
            db.Add(checkpoint);
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            return checkpoint;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_settings.CheckpointsEnabled)
        {
            return;
        }

        var lastAt = time.GetUtcNow();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(_settings.CheckpointPollSeconds), time, stoppingToken).ConfigureAwait(false);
                using var scope = scopes.CreateScope();
                var db = scope.ServiceProvider.GetRequiredService<HubDbContext>();
                var head = await AuditChainHeadStore.ReadAsync(db, stoppingToken).ConfigureAwait(false);
                var covered = await db.Set<AuditCheckpoint>().MaxAsync(c => (long?)c.Sequence, stoppingToken).ConfigureAwait(false) ?? 0;
                var due = head.Sequence - covered >= _settings.CheckpointEveryEntries
                    || (head.Sequence > covered && time.GetUtcNow() - lastAt >= TimeSpan.FromSeconds(_settings.CheckpointIntervalSeconds));
                if (due && await CheckpointAsync(stoppingToken).ConfigureAwait(false) is { } made)
                {
                    lastAt = made.CreatedAt;
                    logger.LogDebug("Signed audit checkpoint over {Sequence} entries", made.Sequence);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // The database is unreachable (or similar): try again at the next poll; the chain itself is unaffected.
                logger.LogError(ex, "Signing an audit checkpoint failed; retrying at the next poll");
            }
        }
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        _lock.Dispose();
        base.Dispose();
    }
}
