using System.Collections.Concurrent;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Delivery;

/// <summary>
/// Group commit for the intake: concurrent submissions are queued and written together — many signals, their audit
/// entries and outbox rows in ONE transaction that takes the audit chain-head lock once — instead of one transaction
/// (and one chain-lock wait) per signal. There is no background thread: the first waiting request becomes the
/// committer ("leader") and writes everything queued so far; requests that arrive meanwhile queue up and are written
/// by the next leader. Each request completes only after the transaction holding its rows committed.
/// </summary>
/// <remarks>
/// <para>Crash consistency is unchanged: a unit (one signal, or one batch request) is in the database entirely or not
/// at all, and its caller hears 202 only after the commit. A crash before commit loses only uncommitted units, whose
/// callers got no answer and retry (with the same <c>Idempotency-Key</c>, docs/reliability.md).</para>
/// <para>Isolation: if a group's transaction fails — e.g. one unit's Idempotency-Key collides with a concurrent retry
/// (unique index) — every unit of the group is written again in a transaction of its own, so one bad unit never fails
/// the others; the failing unit's caller receives its own exception.</para>
/// <para>Several broker instances each have their own writer; their groups serialise on the chain-head lock in the
/// database exactly as single signals did, so the audit trail stays one verifiable chain.</para>
/// </remarks>
public sealed class IntakeWriter(IServiceScopeFactory scopes, OutboxDispatcher dispatcher, ILogger<IntakeWriter> logger, IHttpContextAccessor? http = null)
{
    /// <summary>
    /// Signals per transaction, at most (a unit is never split, so a group may exceed it by one unit). Bounds the
    /// transaction's size and the time the chain-head lock is held.
    /// </summary>
    internal const int MaxGroupSignals = 256;

    private readonly ConcurrentQueue<Unit> _queue = new();
    private readonly SemaphoreSlim _committer = new(1, 1);

    /// <summary>
    /// Stores <paramref name="signals"/> in one transaction (possibly together with other callers' signals) and
    /// returns once it committed. Throws what the write threw, e.g. <see cref="Microsoft.EntityFrameworkCore.DbUpdateException"/>.
    /// </summary>
    /// <param name="signals">One unit: committed entirely or not at all.</param>
    /// <param name="cancellationToken">Cancels only while the unit still waits; once a committer took it, it is written.</param>
    public async Task CommitAsync(IReadOnlyList<StagedSignal> signals, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(signals);
        cancellationToken.ThrowIfCancellationRequested();

        // The trace context belongs to this request, not to whichever request ends up committing the group: capture
        // it now (Logius: trace_id, parent_span_id, foreign_operation); the chain interceptor keeps values already set.
        var (traceId, parentSpanId, foreign) = AuditChainInterceptor.TraceContext(http?.HttpContext);
        foreach (var audit in signals.SelectMany(s => s.AuditEntries))
        {
            audit.TraceId ??= traceId;
            audit.ParentSpanId ??= parentSpanId;
            audit.ForeignOperation ??= foreign;
        }

        var unit = new Unit(signals);
        _queue.Enqueue(unit);

        var leading = false;
        try
        {
            await _committer.WaitAsync(cancellationToken).ConfigureAwait(false);
            leading = true;
        }
        catch (OperationCanceledException) when (unit.TryCancel())
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
                // Everything queued before this caller is committed before (or with) its own unit.
                while (!unit.Completion.Task.IsCompleted && Drain() is { Count: > 0 } group)
                {
                    await WriteDetachedAsync(group).ConfigureAwait(false);
                }
            }
            finally
            {
                _committer.Release();
            }
        }

        await unit.Completion.Task.ConfigureAwait(false);
    }

    private List<Unit> Drain()
    {
        var group = new List<Unit>();
        var signals = 0;
        while (signals < MaxGroupSignals && _queue.TryDequeue(out var unit))
        {
            if (unit.TryTake())
            {
                group.Add(unit);
                signals += unit.Signals.Count;
            }
        }

        return group;
    }

    /// <summary>
    /// Writes the group outside the leader's execution context: no leader's Activity or HttpContext may leak into
    /// other callers' audit entries (their trace context was captured in <see cref="CommitAsync"/>).
    /// </summary>
    private async Task WriteDetachedAsync(List<Unit> group)
    {
        Task write;
        using (ExecutionContext.SuppressFlow())
        {
            write = Task.Run(() => WriteAsync(group));
        }

        await write.ConfigureAwait(false);
    }

    private async Task WriteAsync(List<Unit> group)
    {
        try
        {
            await SaveAsync(group).ConfigureAwait(false);
            group.ForEach(u => u.Completion.TrySetResult());
        }
        catch (Exception ex) when (group.Count > 1)
        {
            // One unit spoiled the group's transaction (rolled back): write each unit on its own.
            logger.LogDebug(ex, "Group commit of {Units} intake units failed; writing them one by one", group.Count);
            foreach (var unit in group)
            {
                unit.ResetStoreKeys();
                try
                {
                    await SaveAsync([unit]).ConfigureAwait(false);
                    unit.Completion.TrySetResult();
                }
                catch (Exception single)
                {
                    unit.Completion.TrySetException(single);
                }
            }
        }
        catch (Exception ex)
        {
            group[0].Completion.TrySetException(ex);
        }

        if (group.Any(u => u.Completion.Task.IsCompletedSuccessfully && u.Signals.Any(s => s.Outbox.Count > 0)))
        {
            dispatcher.Nudge();
        }
    }

    private async Task SaveAsync(List<Unit> group)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<HubDbContext>();
        foreach (var signal in group.SelectMany(u => u.Signals))
        {
            db.Signals.Add(signal.Signal);
            db.AuditEntries.AddRange(signal.AuditEntries);
            db.Outbox.AddRange(signal.Outbox);
            if (signal.CaseLink is { } link)
            {
                db.CaseSignals.Add(link);
            }
        }

        // One SaveChanges = one transaction; the chain interceptor takes the chain-head lock once for the whole group.
        // Not cancellable: once taken, a unit is written or fails, never silently dropped.
        await db.SaveChangesAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>One caller's signals, and the state of their write.</summary>
    private sealed class Unit(IReadOnlyList<StagedSignal> signals)
    {
        private const int Queued = 0, Taken = 1, Cancelled = 2;
        private int _state;

        public IReadOnlyList<StagedSignal> Signals { get; } = signals;

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

        /// <summary>Forgets database-generated keys of a rolled-back attempt, so the rows can be inserted again.</summary>
        public void ResetStoreKeys()
        {
            foreach (var signal in Signals)
            {
                signal.AuditEntries.ForEach(a => a.Id = 0);
                signal.Outbox.ForEach(o => (o.Id, o.AuditEntryId) = (0, 0));
            }
        }
    }
}

/// <summary>
/// A decided signal ready to be stored: the signal, one audit entry per recipient decision and one outbox row per
/// permitted delivery (each row refers to its decision's entry).
/// </summary>
public sealed class StagedSignal(Signal signal)
{
    /// <summary>The signal row.</summary>
    public Signal Signal { get; } = signal;

    /// <summary>The decision entries, in recipient order.</summary>
    public List<AuditEntry> AuditEntries { get; } = [];

    /// <summary>The outbox rows of the permitted deliveries.</summary>
    public List<OutboxMessage> Outbox { get; } = [];

    /// <summary>The signal's link to the open case it was shared in (its retention starts at closure), or null.</summary>
    public CaseSignal? CaseLink { get; set; }
}
