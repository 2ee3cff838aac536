using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Audit;

/// <summary>
/// The one place where audit entries join the hash chain. Every <c>SaveChangesAsync</c> that adds
/// <see cref="AuditEntry"/> rows — group commit (intake, dispatch marks, acknowledgements) on SQLite and SQL Server,
/// sweep, case workflow, policy store, purge, audit reads, authentication failures — passes through here: inside the
/// writing transaction it locks the chain head row, assigns consecutive sequences, truncates times to microseconds,
/// fills the trace context and processing activity, computes each hash and moves the head (<see cref="Link"/>, which
/// the PostgreSQL group commit calls directly, under the same lock). Sequence order is therefore commit order. Changing or deleting an existing
/// audit entry through EF Core is refused: the trail is append-only.
/// </summary>
public sealed class AuditChainInterceptor(IOptions<AuditOptions> options, IHttpContextAccessor? http = null) : SaveChangesInterceptor
{
    private readonly ConditionalWeakTable<DbContext, IDbContextTransaction> _owned = [];
    private readonly string _activityBase = options.Value.ProcessingActivityBase;

    /// <inheritdoc />
    public override InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        ArgumentNullException.ThrowIfNull(eventData);
        if (PendingEntries(eventData.Context!) is not null)
        {
            throw new InvalidOperationException("Audit entries must be saved with SaveChangesAsync: the hash chain is appended asynchronously.");
        }

        return result;
    }

    /// <inheritdoc />
    public override async ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(eventData);
        var db = eventData.Context!;
        // Contexts are pooled: forget a transaction left behind by an earlier lease whose save never completed (the pool
        // disposed it when the context was returned), so it can never be committed by this save.
        _owned.Remove(db);
        var added = PendingEntries(db);
        if (added is null)
        {
            return result;
        }

        IDbContextTransaction? owned = null;
        if (db.Database.CurrentTransaction is null)
        {
            owned = await db.Database.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        }

        var appended = false;
        try
        {
            await AppendAsync(db, added, cancellationToken).ConfigureAwait(false);
            appended = true;
        }
        finally
        {
            if (owned is not null)
            {
                if (appended)
                {
                    _owned.AddOrUpdate(db, owned);
                }
                else
                {
                    await owned.DisposeAsync().ConfigureAwait(false); // rolls back
                }
            }
        }

        return result;
    }

    /// <inheritdoc />
    public override async ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(eventData);
        if (_owned.TryGetValue(eventData.Context!, out var transaction))
        {
            _owned.Remove(eventData.Context!);
            await using (transaction.ConfigureAwait(false))
            {
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        return result;
    }

    /// <inheritdoc />
    public override async Task SaveChangesFailedAsync(DbContextErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(eventData);
        await RollBackAsync(eventData.Context!).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override async Task SaveChangesCanceledAsync(DbContextEventData eventData, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(eventData);
        await RollBackAsync(eventData.Context!).ConfigureAwait(false);
    }

    private async Task RollBackAsync(DbContext db)
    {
        if (_owned.TryGetValue(db, out var transaction))
        {
            _owned.Remove(db);
            await transaction.DisposeAsync().ConfigureAwait(false); // disposing an uncommitted transaction rolls it back
        }
    }

    /// <summary>
    /// The audit entries this save adds (null: none), in one pass over the tracked entries (one change detection). On
    /// the way it stops tracking the chain-head row: the head moves only together with the entries appended in the
    /// same save, so a head change left tracked by a save that failed (and rolled back) must never be written by a
    /// later save of the same context — that would move the head to entries that do not exist.
    /// </summary>
    private static List<AuditEntry>? PendingEntries(DbContext db)
    {
        List<AuditEntry>? added = null;
        List<EntityEntry>? heads = null;
        foreach (var entry in db.ChangeTracker.Entries())
        {
            switch (entry.Entity)
            {
                case AuditEntry audit when entry.State == EntityState.Added:
                    (added ??= []).Add(audit);
                    break;
                case AuditEntry audit when entry.State is EntityState.Modified or EntityState.Deleted:
                    throw new InvalidOperationException($"Audit entry {audit.Sequence} may not be changed or deleted: the audit trail is append-only.");
                case AuditChainHead:
                    (heads ??= []).Add(entry);
                    break;
                default:
                    break;
            }
        }

        heads?.ForEach(head => head.State = EntityState.Detached);
        return added;
    }

    private async Task AppendAsync(DbContext db, List<AuditEntry> added, CancellationToken cancellationToken)
    {
        var head = await AuditChainHeadStore.LockAsync(db, cancellationToken).ConfigureAwait(false);
        var (sequence, hash) = Link(added, head.Sequence, head.Hash);
        await AuditChainHeadStore.MoveAsync(db, head.Exists, sequence, hash, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Joins <paramref name="added"/> to the chain after the head (<paramref name="sequence"/>, <paramref name="previous"/>),
    /// in list order: consecutive sequences, times truncated to microseconds, the trace context and processing activity
    /// where not set, and each entry's hash. Returns the new head. The caller holds the chain-head lock and stores the
    /// entries and the new head in that transaction: the EF Core save above, or the PostgreSQL group commit
    /// (<see cref="PostgresGroupWrite"/>), which writes without the change tracker.
    /// </summary>
    internal (long Sequence, byte[] Hash) Link(IReadOnlyList<AuditEntry> added, long sequence, byte[] previous)
    {
        using var chain = new AuditHashChain();
        var (traceId, parentSpanId, foreign) = TraceContext(http?.HttpContext);

        foreach (var entry in added)
        {
            entry.Sequence = ++sequence;
            entry.RecordedAt = AuditHashChain.TruncateToMicroseconds(entry.RecordedAt);
            entry.TraceId ??= traceId;
            entry.SpanId ??= ActivitySpanId.CreateRandom().ToHexString();
            entry.ParentSpanId ??= parentSpanId;
            entry.ForeignOperation ??= foreign;
            entry.ProcessingActivityId ??= ProcessingActivity(entry);
            entry.Hash = chain.Next(previous, entry);
            previous = entry.Hash;
        }

        return (sequence, previous);
    }

    /// <summary>
    /// W3C Trace Context (Logius: <c>trace_id</c>, <c>parent_span_id</c>, <c>foreign_operation</c>): the current
    /// activity's trace when there is one, else the caller's <c>traceparent</c> trace id, else a new trace id.
    /// Also used by the intake's group commit, which captures it in each request before another request writes it.
    /// </summary>
    internal static (string TraceId, string? ParentSpanId, string? Foreign) TraceContext(HttpContext? request)
    {
        string? foreign = null;
        string? foreignTrace = null;
        if (request?.Request.Headers.TraceParent.ToString() is { Length: 55 } traceparent
            && traceparent[2] == '-' && traceparent[35] == '-' && traceparent[52] == '-'
            && traceparent.All(c => char.IsAsciiHexDigitLower(c) || c == '-'))
        {
            foreign = traceparent;
            foreignTrace = traceparent[3..35];
        }

        var activity = Activity.Current;
        var traceId = activity?.TraceId.ToHexString() ?? foreignTrace ?? ActivityTraceId.CreateRandom().ToHexString();
        return (traceId, activity?.SpanId.ToHexString(), foreign);
    }

    /// <summary>
    /// The versioned URI of the processing activity in the art. 30 register: the purpose for exchanges (versioned by
    /// the policy set that decided), the hub's own activities otherwise.
    /// </summary>
    private string ProcessingActivity(AuditEntry entry)
    {
        if (entry.Purpose is { } purpose)
        {
            var version = entry.PolicyVersion is { Length: > 12 } v ? v[..12] : entry.PolicyVersion ?? "0";
            return $"{_activityBase}{purpose}@{version}";
        }

        var activity = entry.Kind switch
        {
            AuditKinds.PolicyActivated or AuditKinds.PolicyRejected => "hub-beleidsbeheer",
            AuditKinds.AuthenticationFailed => "hub-toegangsbeveiliging",
            AuditKinds.AuditAccessed or AuditKinds.AuditVerified => "hub-audittoezicht",
            AuditKinds.RetentionPurged => "hub-bewaartermijnen",
            _ => "hub-gegevensuitwisseling",
        };
        return $"{_activityBase}{activity}@1";
    }
}

/// <summary>Reads, locks and moves the chain head row, per provider.</summary>
internal static class AuditChainHeadStore
{
    internal readonly record struct Head(bool Exists, long Sequence, byte[] Hash);

    /// <summary>
    /// Locks the head row for the rest of the transaction. PostgreSQL: <c>SELECT … FOR UPDATE</c>; SQL Server:
    /// <c>UPDLOCK, HOLDLOCK</c>; SQLite: the transaction already holds the single write lock (Microsoft.Data.Sqlite
    /// starts transactions with <c>BEGIN IMMEDIATE</c>).
    /// </summary>
    public static async Task<Head> LockAsync(DbContext db, CancellationToken cancellationToken)
    {
        var provider = db.Database.ProviderName ?? string.Empty;
        var sql = provider.Contains("SqlServer", StringComparison.Ordinal)
            ? "SELECT [Id], [Sequence], [Hash] FROM [audit_chain_head] WITH (UPDLOCK, HOLDLOCK) WHERE [Id] = 1"
            : provider.Contains("Npgsql", StringComparison.Ordinal)
                ? "SELECT \"Id\", \"Sequence\", \"Hash\" FROM audit_chain_head WHERE \"Id\" = 1 FOR UPDATE"
                : "SELECT \"Id\", \"Sequence\", \"Hash\" FROM audit_chain_head WHERE \"Id\" = 1";
        var rows = await db.Set<AuditChainHead>().FromSqlRaw(sql).AsNoTracking().ToListAsync(cancellationToken).ConfigureAwait(false);
        return rows.Count == 0 ? new Head(false, 0, AuditHashChain.Genesis) : new Head(true, rows[0].Sequence, rows[0].Hash);
    }

    public static async Task MoveAsync(DbContext db, bool exists, long sequence, byte[] hash, CancellationToken cancellationToken)
    {
        if (exists)
        {
            // The UPDATE joins the save's own command batch (one round trip fewer than a statement of its own); the row
            // is already locked by LockAsync in this transaction. PendingEntries (at the start of every save) guarantees
            // the head is not tracked here yet.
            var head = db.Attach(new AuditChainHead { Id = AuditChainHead.SingletonId, Sequence = sequence, Hash = hash });
            head.Property(h => h.Sequence).IsModified = true;
            head.Property(h => h.Hash).IsModified = true;
            return;
        }

        // The migrations create the row with the schema (AuditModel: HasData), so this only runs for a database whose
        // head row was removed by hand. Two writers racing here on PostgreSQL collide on the primary key and one fails.
        var table = db.Model.FindEntityType(typeof(AuditChainHead))!;
        var helper = db.GetService<Microsoft.EntityFrameworkCore.Storage.ISqlGenerationHelper>();
        var sql = $"INSERT INTO {helper.DelimitIdentifier(table.GetTableName()!)} ({helper.DelimitIdentifier("Id")}, {helper.DelimitIdentifier("Sequence")}, {helper.DelimitIdentifier("Hash")}) VALUES ({{0}}, {{1}}, {{2}})";
        await db.Database.ExecuteSqlRawAsync(sql, [AuditChainHead.SingletonId, sequence, hash], cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The committed head, without locking.</summary>
    public static async Task<Head> ReadAsync(DbContext db, CancellationToken cancellationToken)
    {
        var row = await db.Set<AuditChainHead>().AsNoTracking().SingleOrDefaultAsync(h => h.Id == AuditChainHead.SingletonId, cancellationToken).ConfigureAwait(false);
        return row is null ? new Head(false, 0, AuditHashChain.Genesis) : new Head(true, row.Sequence, row.Hash);
    }
}
