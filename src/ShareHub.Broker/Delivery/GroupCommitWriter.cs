using System.Collections.Concurrent;
using System.Diagnostics;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Delivery;

/// <summary>
/// Group commit for the hub's hot audited writes — accepted signals (<see cref="SignalIntake"/>), deliveries marked
/// dispatched (<see cref="OutboxDispatcher"/>) and recipients' acknowledgements (<see cref="AcknowledgementRecorder"/>):
/// whatever is queued is written together, in ONE transaction that takes the audit chain-head lock once, instead of one
/// transaction (and one chain-lock wait) per request, per dispatch batch and per acknowledgement batch. There is no
/// background thread: the first waiting caller becomes the committer ("leader") and writes everything queued so far;
/// units that arrive meanwhile queue up and are written by the next leader. Each caller's task completes only after the
/// transaction holding its rows committed.
/// </summary>
/// <remarks>
/// <para>Crash consistency is unchanged: a unit (one signal, one batch request, one dispatch batch, one acknowledgement
/// batch) is in the database entirely or not at all, and its caller hears of success only after the commit. A crash
/// before commit loses only uncommitted units, whose callers got no answer and retry (with the same
/// <c>Idempotency-Key</c>, docs/reliability.md); an unrecorded dispatch is published again by the sweep.</para>
/// <para>Isolation: if a group's transaction fails — e.g. one unit's Idempotency-Key collides with a concurrent retry,
/// or an acknowledgement with one recorded meanwhile (unique index) — every unit of the group is written again in a
/// transaction of its own, so one bad unit never fails the others; the failing unit's caller receives its own
/// exception.</para>
/// <para>Several broker instances each have their own writer; their groups serialise on the chain-head lock in the
/// database, so the audit trail stays one verifiable chain.</para>
/// </remarks>
public sealed class GroupCommitWriter(
    IServiceScopeFactory scopes,
    PostgresGroupWrite postgres,
    Observability.HubMetrics metrics,
    ILogger<GroupCommitWriter> logger,
    IHttpContextAccessor? http = null)
{
    /// <summary>
    /// Rows per transaction, roughly (a unit is never split, so a group may exceed it by one unit). Bounds the
    /// transaction's size and the time the chain-head lock is held.
    /// </summary>
    internal const int MaxGroupRows = 512;

    private readonly ConcurrentQueue<Pending> _queue = new();

    /// <summary>Units written ahead of those in <see cref="_queue"/> (<see cref="WriteUnit.Urgent"/>).</summary>
    private readonly ConcurrentQueue<Pending> _urgent = new();
    private readonly SemaphoreSlim _committer = new(1, 1);

    /// <summary>
    /// Stores <paramref name="unit"/> in one transaction (possibly together with other callers' units) and returns once
    /// it committed. Throws what the write threw, e.g. <see cref="Microsoft.EntityFrameworkCore.DbUpdateException"/>.
    /// </summary>
    /// <param name="unit">Committed entirely or not at all.</param>
    /// <param name="cancellationToken">Cancels only while the unit still waits; once a committer took it, it is written.</param>
    public async Task CommitAsync(WriteUnit unit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(unit);
        cancellationToken.ThrowIfCancellationRequested();

        // The trace context belongs to this caller, not to whichever caller ends up committing the group: capture it
        // now (Logius: trace_id, parent_span_id, foreign_operation); the chain interceptor keeps values already set.
        var (traceId, parentSpanId, foreign) = AuditChainInterceptor.TraceContext(http?.HttpContext);
        foreach (var audit in unit.AuditEntries)
        {
            audit.TraceId ??= traceId;
            audit.ParentSpanId ??= parentSpanId;
            audit.ForeignOperation ??= foreign;
        }

        var pending = new Pending(unit);
        (unit.Urgent ? _urgent : _queue).Enqueue(pending);

        var leading = false;
        try
        {
            await _committer.WaitAsync(cancellationToken).ConfigureAwait(false);
            leading = true;
        }
        catch (OperationCanceledException) when (pending.TryCancel())
        {
            throw; // still queued: withdrawn, nothing will be written
        }
        catch (OperationCanceledException)
        {
            // Another committer already took the unit: its outcome is this caller's outcome.
        }

        if (leading)
        {
            try
            {
                // Everything queued before this caller is committed before (or with) its own unit — and urgent
                // units queued meanwhile too.
                while (!pending.Completion.Task.IsCompleted && Drain() is { Count: > 0 } group)
                {
                    await WriteDetachedAsync(group).ConfigureAwait(false);
                }
            }
            finally
            {
                _committer.Release();
            }
        }

        await pending.Completion.Task.ConfigureAwait(false);
    }

    private List<Pending> Drain()
    {
        var group = new List<Pending>();
        var rows = 0;
        // Urgent units first, then the rest in arrival order.
        while (rows < MaxGroupRows && (_urgent.TryDequeue(out var pending) || _queue.TryDequeue(out pending)))
        {
            if (pending.TryTake())
            {
                group.Add(pending);
                rows += pending.Unit.Rows;
            }
        }

        return group;
    }

    /// <summary>
    /// Writes the group outside the leader's execution context: no leader's Activity or HttpContext may leak into
    /// other callers' audit entries (their trace context was captured in <see cref="CommitAsync"/>).
    /// </summary>
    private async Task WriteDetachedAsync(List<Pending> group)
    {
        Task write;
        using (ExecutionContext.SuppressFlow())
        {
            write = Task.Run(() => WriteAsync(group));
        }

        await write.ConfigureAwait(false);
    }

    private async Task WriteAsync(List<Pending> group)
    {
        try
        {
            await SaveAndCompleteAsync(group).ConfigureAwait(false);
        }
        catch (Exception ex) when (group.Count > 1)
        {
            // One unit spoiled the group's transaction (rolled back): write each unit on its own.
            logger.LogDebug(ex, "Group commit of {Units} units failed; writing them one by one", group.Count);
            foreach (var pending in group)
            {
                pending.Unit.ForgetStoreKeys();
                try
                {
                    await SaveAndCompleteAsync([pending]).ConfigureAwait(false);
                }
                catch (Exception single)
                {
                    pending.Completion.TrySetException(single);
                }
            }
        }
        catch (Exception ex)
        {
            group[0].Completion.TrySetException(ex);
        }
    }

    private async Task SaveAndCompleteAsync(List<Pending> group)
    {
        var started = Stopwatch.GetTimestamp();
        var rows = await SaveAsync(group).ConfigureAwait(false);
        Complete(group, rows, Stopwatch.GetElapsedTime(started));
    }

    /// <summary>
    /// Tells the callers of a committed group. Nothing here may throw: <see cref="WriteAsync"/> would write the
    /// committed units again (recording metrics never throws, see <see cref="Observability.HubMetrics"/>).
    /// </summary>
    private void Complete(List<Pending> committed, GroupRows? rows, TimeSpan duration)
    {
        if (rows is not null)
        {
            // Written without EF Core, so its metrics interceptor did not count them.
            metrics.Committed(rows.Signals.Count, rows.AuditEntries, rows.Acknowledgements.Count);
        }

        metrics.GroupCommitted(committed.Count, duration);

        foreach (var pending in committed)
        {
            try
            {
                pending.Unit.Committed();
            }
            catch (Exception ex)
            {
                // The rows are committed whatever a follow-up does (e.g. handing deliveries to the dispatcher; the sweep
                // publishes what it did not): the caller hears of success.
                logger.LogError(ex, "After-commit step of a {Unit} failed", pending.Unit.GetType().Name);
            }

            metrics.GroupCommitWaited(pending.Unit.Kind, Stopwatch.GetElapsedTime(pending.QueuedAt));
            pending.Completion.TrySetResult();
        }
    }

    /// <summary>Writes the group in one transaction; returns its rows when they bypassed EF Core (PostgreSQL), else null.</summary>
    private async Task<GroupRows?> SaveAsync(List<Pending> group)
    {
        var rows = new GroupRows();
        foreach (var pending in group)
        {
            pending.Unit.AddTo(rows);
        }

        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<HubDbContext>();
        // One transaction for the group, which takes the chain-head lock once. Not cancellable: once taken, a unit is
        // written or fails, never silently dropped.
        if (db is PostgresHubDbContext)
        {
            // Without the change tracker: a few set-based statements per group instead of one per row.
            await postgres.SaveAsync(db, rows).ConfigureAwait(false);
            return rows;
        }

        // EF Core: the chain interceptor links the entries, the metrics interceptor counts them.
        rows.AddTo(db);
        await db.SaveChangesAsync(CancellationToken.None).ConfigureAwait(false);
        return null;
    }

    /// <summary>One caller's unit, and the state of its write.</summary>
    private sealed class Pending(WriteUnit unit)
    {
        private const int Queued = 0, Taken = 1, Cancelled = 2;
        private int _state;

        public WriteUnit Unit { get; } = unit;

        /// <summary>When the caller queued the unit (<see cref="Stopwatch.GetTimestamp"/>).</summary>
        public long QueuedAt { get; } = Stopwatch.GetTimestamp();

        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool TryTake() => Interlocked.CompareExchange(ref _state, Taken, Queued) == Queued;

        public bool TryCancel()
        {
            if (Interlocked.CompareExchange(ref _state, Cancelled, Queued) != Queued)
            {
                return false;
            }

            Completion.TrySetCanceled();
            return true;
        }
    }
}

/// <summary>
/// Rows that <see cref="GroupCommitWriter"/> commits together or not at all: what one caller writes in one go.
/// </summary>
public abstract class WriteUnit
{
    /// <summary>What the unit is, for the commit-wait metric's <c>unit</c> tag (low cardinality).</summary>
    internal abstract string Kind { get; }

    /// <summary>Rows the unit writes (bounds a group's size).</summary>
    internal abstract int Rows { get; }

    /// <summary>
    /// Written ahead of the units queued before it: the bookkeeping of deliveries already committed (dispatched marks,
    /// acknowledgements), which someone waits on to go on — the dispatcher to publish its next batch, a partner to
    /// take its next deliveries. Behind a queue of batch submissions (up to a second of groups on two cores) both fell
    /// behind the intake by a minute. Such units are small and bounded by the deliveries already committed, so they
    /// cannot starve the intake.
    /// </summary>
    internal virtual bool Urgent => false;

    /// <summary>The audit entries the unit appends (their trace context is captured from the caller).</summary>
    internal abstract IEnumerable<AuditEntry> AuditEntries { get; }

    /// <summary>Adds the unit's rows to the group's, in the order their audit entries join the chain.</summary>
    internal abstract void AddTo(GroupRows rows);

    /// <summary>
    /// Forgets database-generated keys of a rolled-back attempt, so the rows can be inserted again in a transaction of
    /// their own.
    /// </summary>
    internal virtual void ForgetStoreKeys()
    {
        foreach (var audit in AuditEntries)
        {
            audit.Id = 0;
        }
    }

    /// <summary>Runs right after the commit, before the caller is told.</summary>
    internal virtual void Committed()
    {
    }
}

/// <summary>The rows of one group commit, by table, in the order the units added them.</summary>
public sealed class GroupRows
{
    /// <summary>New signals.</summary>
    public List<Signal> Signals { get; } = [];

    /// <summary>New audit entries, in chain order.</summary>
    public List<AuditEntry> AuditEntries { get; } = [];

    /// <summary>New outbox rows (each with its decision entry, <see cref="OutboxMessage.AuditEntry"/>, among <see cref="AuditEntries"/>).</summary>
    public List<OutboxMessage> Outbox { get; } = [];

    /// <summary>New links of signals to cases.</summary>
    public List<CaseSignal> CaseSignals { get; } = [];

    /// <summary>New acknowledgements.</summary>
    public List<Acknowledgement> Acknowledgements { get; } = [];

    /// <summary>
    /// Outbox rows that were published, to be marked dispatched at <c>At</c> with their <see cref="OutboxMessage.Attempts"/>.
    /// </summary>
    public List<(OutboxMessage Row, DateTimeOffset At)> Dispatched { get; } = [];

    /// <summary>Adds the rows to an EF Core context (the published rows as stubs: only their marks are written).</summary>
    internal void AddTo(HubDbContext db)
    {
        db.Signals.AddRange(Signals);
        db.AuditEntries.AddRange(AuditEntries);
        db.Outbox.AddRange(Outbox);
        db.CaseSignals.AddRange(CaseSignals);
        db.Acknowledgements.AddRange(Acknowledgements);
        foreach (var (row, at) in Dispatched)
        {
            var stub = db.Outbox.Attach(new OutboxMessage { Id = row.Id, Recipient = row.Recipient, MessageJson = string.Empty });
            stub.Entity.DispatchedAt = at;
            stub.Entity.Attempts = row.Attempts;
            stub.Entity.LastError = null;
            stub.Property(o => o.DispatchedAt).IsModified = true;
            stub.Property(o => o.Attempts).IsModified = true;
            stub.Property(o => o.LastError).IsModified = true;
        }
    }
}
