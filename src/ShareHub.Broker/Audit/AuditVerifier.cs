using System.Diagnostics;
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
    /// <summary>Verifies the whole trail.</summary>
    public async Task<AuditVerificationDto> VerifyAsync(HubDbContext db, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(db);
        var started = time.GetTimestamp();
        var checkpoints = await db.Set<AuditCheckpoint>().AsNoTracking().OrderBy(c => c.Sequence).ThenBy(c => c.Id)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        var last = checkpoints.Count == 0 ? null : checkpoints[^1];
        var verified = 0;
        var previous = AuditHashChain.Genesis;
        var computed = new byte[AuditHashChain.HashSize];
        long count = 0;

        AuditVerificationDto Result(long? badSequence, long? badId, string? problem) => new(
            problem is null, count, checkpoints.Count, verified, badSequence, badId, problem, Convert.ToHexStringLower(previous),
            last?.Sequence, last?.CreatedAt, key.KeyId, (long)time.GetElapsedTime(started).TotalMilliseconds);

        // Signatures first: a checkpoint that is not the hub's is worthless as an anchor.
        foreach (var checkpoint in checkpoints)
        {
            if (checkpoint.KeyId != key.KeyId)
            {
                return Result(null, null, $"Checkpoint {checkpoint.Id} (over {checkpoint.Sequence} entries) was signed with key {checkpoint.KeyId}, not with the hub's key {key.KeyId}.");
            }

            var payload = AuditHashChain.CheckpointPayload(checkpoint.Sequence, checkpoint.HeadHash, checkpoint.CreatedAt, checkpoint.KeyId);
            if (!key.Verify(payload, checkpoint.Signature))
            {
                return Result(null, null, $"Checkpoint {checkpoint.Id} (over {checkpoint.Sequence} entries) has an invalid signature: it was changed after signing.");
            }
        }

        var chain = new AuditHashChain();
        var next = 0;
        var entries = db.AuditEntries.AsNoTracking().OrderBy(a => a.Sequence).AsAsyncEnumerable();
        await foreach (var entry in entries.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            var expected = count + 1;
            if (entry.Sequence != expected)
            {
                return entry.Sequence > expected
                    ? Result(expected, entry.Id, $"Entry {expected} is missing (deleted); the next stored entry is {entry.Sequence} (id {entry.Id}).")
                    : Result(entry.Sequence, entry.Id, $"Entry {entry.Sequence} (id {entry.Id}) is stored twice or out of order.");
            }

            chain.Next(previous, entry, computed);
            if (!computed.AsSpan().SequenceEqual(entry.Hash))
            {
                return Result(expected, entry.Id, $"Entry {expected} (id {entry.Id}) does not match its hash: it was changed, or moved from another position.");
            }

            while (next < checkpoints.Count && checkpoints[next].Sequence == expected)
            {
                if (!computed.AsSpan().SequenceEqual(checkpoints[next].HeadHash))
                {
                    var from = next == 0 ? 1 : checkpoints[next - 1].Sequence + 1;
                    return Result(from, null, $"The chain up to entry {expected} differs from signed checkpoint {checkpoints[next].Id}: entries {from}…{expected} were rewritten.");
                }

                verified++;
                next++;
            }

            (previous, computed) = (computed, previous);
            count = expected;
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
