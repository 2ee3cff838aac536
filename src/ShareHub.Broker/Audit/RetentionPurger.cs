using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ShareHub.Broker.Data;
using ShareHub.Contracts;

namespace ShareHub.Broker.Audit;

/// <summary>
/// Deletes what the hub may no longer keep once a signal's retention period has ended (the retention obligation of
/// the policy rule, carried per delivery as <c>RetainUntil</c>): the provider's payload, the submitted subject
/// identifier and the recipients' copies in the outbox. The audit metadata stays — it refers to the subject only by
/// pseudonym — and every purge is itself an audit entry (one per signal, i.e. per data subject).
/// </summary>
public sealed class RetentionPurger(HubDbContext db, TimeProvider time, IOptions<RetentionOptions> options, ILogger<RetentionPurger> logger)
{
    /// <summary>Purges every signal whose retention has ended.</summary>
    /// <param name="actorOrganisation">Who runs the purge (the hub for the periodic job, the caller on demand).</param>
    /// <param name="actor">Client, user or job name.</param>
    /// <param name="cancellationToken">Cancels between batches.</param>
    public async Task<RetentionPurgeResultDto> PurgeAsync(string actorOrganisation, string actor, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var batch = options.Value.BatchSize;
        int signals = 0, copies = 0;
        while (true)
        {
            // A delivery still waiting in the outbox is published first (the retention clock is for data already shared).
            // A signal linked to an open case is kept: its retention clock starts when the case is closed (issue #9).
            var due = await db.Signals
                .Where(s => s.PayloadPurgedAt == null && s.RetainUntil != null && s.RetainUntil <= now)
                .Where(s => !db.Outbox.Any(o => o.SignalId == s.Id && o.DispatchedAt == null))
                .Where(s => !db.CaseSignals.Any(cs => cs.SignalId == s.Id && db.Cases.Any(c => c.Id == cs.CaseId && c.ClosedAt == null)))
                .OrderBy(s => s.Id)
                .Take(batch)
                .ToListAsync(cancellationToken).ConfigureAwait(false);
            if (due.Count == 0)
            {
                break;
            }

            var ids = due.Select(s => (Guid?)s.Id).ToList();
            var rows = await db.Outbox.Where(o => ids.Contains(o.SignalId)).ToListAsync(cancellationToken).ConfigureAwait(false);
            var copiesBySignal = rows.GroupBy(r => r.SignalId!.Value).ToDictionary(g => g.Key, g => g.Count());
            foreach (var row in rows)
            {
                row.MessageJson = string.Empty;
            }

            foreach (var signal in due)
            {
                signal.PayloadJson = string.Empty;
                signal.SubjectId = string.Empty;
                signal.PayloadPurgedAt = now;
                var n = copiesBySignal.GetValueOrDefault(signal.Id);
                db.AuditEntries.Add(AuditRecords.Purged(signal, n, actorOrganisation, actor, now));
            }

            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            db.ChangeTracker.Clear();
            signals += due.Count;
            copies += rows.Count;
            if (due.Count < batch)
            {
                break;
            }
        }

        copies += await PurgeCaseEventsAsync(actorOrganisation, actor, now, cancellationToken).ConfigureAwait(false);

        var waiting = await db.Signals
            .CountAsync(s => s.PayloadPurgedAt == null && s.RetainUntil != null && s.RetainUntil <= now && db.Outbox.Any(o => o.SignalId == s.Id && o.DispatchedAt == null), cancellationToken)
            .ConfigureAwait(false);
        if (signals > 0 || waiting > 0)
        {
            logger.LogInformation("Retention purge: {Signals} signal(s) and {Copies} recipient copies purged; {Waiting} past retention still wait for dispatch", signals, copies, waiting);
        }

        return new RetentionPurgeResultDto(signals, copies, waiting);
    }

    /// <summary>
    /// Deletes the participants' copies of a closed case's events and questions (the subject identifier a question
    /// carried included) once the case's retention has ended; one audit entry per case.
    /// </summary>
    private async Task<int> PurgeCaseEventsAsync(string actorOrganisation, string actor, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var cases = await db.Cases
            .Where(c => c.EventsPurgedAt == null && c.RetainUntil != null && c.RetainUntil <= now)
            .Where(c => !db.Outbox.Any(o => o.CaseId == c.Id && o.DispatchedAt == null))
            .OrderBy(c => c.Id)
            .Take(options.Value.BatchSize)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        var copies = 0;
        foreach (var c in cases)
        {
            var rows = await db.Outbox.Where(o => o.CaseId == c.Id).ToListAsync(cancellationToken).ConfigureAwait(false);
            foreach (var row in rows)
            {
                row.MessageJson = string.Empty;
            }

            c.EventsPurgedAt = now;
            copies += rows.Count;
            db.AuditEntries.Add(new AuditEntry
            {
                Kind = AuditKinds.RetentionPurged,
                RecordedAt = now,
                ActorOrganisation = actorOrganisation,
                Actor = actor,
                Provider = c.Owner,
                CaseReference = c.Reference,
                Outcome = "purged",
                ReasonCode = ErrorCodes.RetentionPurged,
                Explanation = $"Retention of case {c.Reference} ended {c.RetainUntil:yyyy-MM-dd HH:mm:ss}Z: {rows.Count} participant copy(ies) of its events and questions deleted; audit metadata kept.",
            });
        }

        await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        db.ChangeTracker.Clear();
        return copies;
    }
}

/// <summary>Runs the <see cref="RetentionPurger"/> every <see cref="RetentionOptions.PurgeIntervalMinutes"/> (on the injected clock).</summary>
public sealed class RetentionPurgeService(IServiceScopeFactory scopes, TimeProvider time, IOptions<RetentionOptions> options, ILogger<RetentionPurgeService> logger) : BackgroundService
{
    /// <summary>Actor name of the periodic job in the audit trail.</summary>
    public const string JobActor = "retention-job";

    /// <summary>Completed runs (for tests and diagnostics).</summary>
    public int Runs => _runs;

    private int _runs;

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Enabled)
        {
            return;
        }

        var interval = TimeSpan.FromMinutes(options.Value.PurgeIntervalMinutes);
        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(interval, time, stoppingToken).ConfigureAwait(false);
            try
            {
                using var scope = scopes.CreateScope();
                await scope.ServiceProvider.GetRequiredService<RetentionPurger>().PurgeAsync(AuditTrail.HubOrganisation, JobActor, stoppingToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                logger.LogError(ex, "Retention purge failed; retrying at the next interval");
            }

            Interlocked.Increment(ref _runs);
        }
    }
}
