using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Npgsql;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Delivery;

namespace ShareHub.Broker.Data;

/// <summary>
/// The group commit's write on PostgreSQL (<see cref="GroupCommitWriter"/>), without EF Core's change tracker. EF Core
/// sends one INSERT per row — for a signal its row, three audit entries, an outbox row, an acknowledgement and a
/// dispatched mark — each parsed and planned by the server, each with its own parameter objects in the hub. Here a
/// group is ONE round trip of a few set-based statements, whatever its size: <c>BEGIN</c>; move the chain head from
/// where this writer last left it (which takes its row lock, as <see cref="AuditChainHeadStore"/>'s
/// <c>SELECT … FOR UPDATE</c> does, and fails if another writer moved it meanwhile); two <c>SET LOCAL</c>s that keep
/// the server on one generic plan per statement (see <c>AddRows</c>); one
/// <c>INSERT … SELECT * FROM unnest(…)</c> per table, with one array parameter per column; one
/// <c>UPDATE … FROM unnest(…)</c> for the dispatched marks; <c>COMMIT</c>.
/// </summary>
/// <remarks>
/// <para>The head this writer last committed is kept in memory. When another writer moved it since — another broker
/// instance, or an EF Core save in this one (policy store, case workflow, token endpoint, audit reads) — the move fails
/// before anything is written (the head's <c>"Sequence"</c> would become NULL, refused by its NOT NULL constraint; the
/// unique index on <c>audit_entries."Sequence"</c> would refuse the entries next), the transaction is rolled back and
/// the group is written again the first way: <c>BEGIN</c> and read the head under its lock, then the rows. A writer
/// that does not know the head (just started, or its last write failed) starts that way too.</para>
/// <para>New rows' keys (audit entries, outbox) are drawn by the server from their identity sequences as the rows are
/// inserted, under the head's lock, so an entry's key grows with its sequence whoever wrote it (the audit list pages
/// with <c>afterId</c>); the keys come back with <c>RETURNING</c>, matched to the rows by each table's unique column
/// (<c>"Sequence"</c>, <c>"DeliveryId"</c>), and an outbox row finds its decision entry's key by that entry's
/// sequence.</para>
/// <para>Every statement's text is fixed (the rows travel as array parameters), so each is prepared once per connection
/// and then only bound and executed: the server neither parses nor plans it again (Npgsql keeps prepared statements
/// across pooled connection leases; left to itself, PostgreSQL's plan cache would still plan some of them anew at each
/// execution, which the <c>SET LOCAL</c>s prevent). The entries are linked by <see cref="AuditChainInterceptor.Link"/>, the same code
/// that links EF Core saves, so the chain is one chain whoever wrote its entries. Tables and columns come from the EF
/// Core model: a property added to an entity is written here without a change to this class. A constraint violation (a
/// concurrent duplicate: Idempotency-Key, acknowledgement) is thrown as <see cref="DbUpdateException"/>, as EF Core
/// would; the transaction is rolled back either way.</para>
/// <para>Called by one committer at a time (<see cref="GroupCommitWriter"/>); the remembered head is only a guess that
/// the database checks, so a concurrent caller could cost a retry, never a broken chain.</para>
/// </remarks>
public sealed class PostgresGroupWrite(AuditChainInterceptor chain)
{
    private readonly ConcurrentDictionary<Type, Table> _tables = new();

    /// <summary>The chain head as this writer's last commit left it; null when unknown.</summary>
    private volatile ChainHead? _head;

    /// <summary>Writes <paramref name="rows"/> in one transaction on <paramref name="db"/>'s connection; returns after the commit.</summary>
    public async Task SaveAsync(HubDbContext db, GroupRows rows)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(rows);
        await db.Database.OpenConnectionAsync().ConfigureAwait(false);
        try
        {
            var connection = (NpgsqlConnection)db.Database.GetDbConnection();
            try
            {
                if (rows.AuditEntries.Count == 0 || _head is not { } known || !await TryWriteAfterAsync(connection, db.Model, rows, known).ConfigureAwait(false))
                {
                    await WriteLockedAsync(connection, db.Model, rows).ConfigureAwait(false);
                }
            }
            catch (Exception ex)
            {
                _head = null; // whether the COMMIT happened is not known: read the head under the lock next time
                await RollBackAsync(connection).ConfigureAwait(false);
                // 23xxx: integrity constraint violation (unique, foreign key, not null) — what EF Core reports as
                // DbUpdateException, which the callers handle (a concurrent retry's Idempotency-Key, a duplicate
                // acknowledgement).
                if (ex is PostgresException { SqlState: [ '2', '3', ..] } violation)
                {
                    throw new DbUpdateException($"The group commit violated a constraint: {violation.MessageText}", violation);
                }

                throw;
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// One round trip: the group linked after <paramref name="known"/>, written if the head is still there. False (rolled
    /// back, nothing written) when another writer moved it.
    /// </summary>
    private async Task<bool> TryWriteAfterAsync(NpgsqlConnection connection, IModel model, GroupRows rows, ChainHead known)
    {
        var (sequence, hash) = chain.Link(rows.AuditEntries, known.Sequence, known.Hash);
        await using var write = new NpgsqlBatch(connection);
        write.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN ISOLATION LEVEL READ COMMITTED"));
        // The head's row lock first, held until COMMIT: writers queue here, so sequence order is commit order. The
        // statement waits for a writer holding the lock and then sees the head that writer left; if that is not the
        // head this group was linked to, "Sequence" would become NULL and the statement fails (NOT NULL): PostgreSQL
        // skips the rest of the batch, COMMIT included. (A head row deleted by hand is put back where the group leaves
        // the chain; the old way would restart the chain at 0 and collide with the stored entries.)
        var move = new NpgsqlBatchCommand(
            "INSERT INTO audit_chain_head AS h (\"Id\", \"Sequence\", \"Hash\") VALUES (1, $3, $4) ON CONFLICT (\"Id\") DO UPDATE "
            + "SET \"Sequence\" = CASE WHEN h.\"Sequence\" = $1 AND h.\"Hash\" = $2 THEN EXCLUDED.\"Sequence\" END, \"Hash\" = EXCLUDED.\"Hash\"");
        move.Parameters.Add(new NpgsqlParameter { Value = known.Sequence });
        move.Parameters.Add(new NpgsqlParameter { Value = known.Hash });
        move.Parameters.Add(new NpgsqlParameter { Value = sequence });
        move.Parameters.Add(new NpgsqlParameter { Value = hash });
        write.BatchCommands.Add(move);
        var returning = AddRows(write, model, rows);
        write.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
        try
        {
            await ExecuteAsync(write, returning).ConfigureAwait(false);
        }
        catch (PostgresException moved) when (moved is { SqlState: PostgresErrorCodes.NotNullViolation, TableName: "audit_chain_head" })
        {
            await RollBackAsync(connection).ConfigureAwait(false);
            _head = null;
            return false;
        }

        _head = new ChainHead(sequence, hash);
        return true;
    }

    /// <summary>Two round trips: read the head under its row lock, then the group linked after it.</summary>
    private async Task WriteLockedAsync(NpgsqlConnection connection, IModel model, GroupRows rows)
    {
        long sequence = 0;
        byte[]? previous = null;
        if (rows.AuditEntries.Count > 0)
        {
            await using var begin = new NpgsqlBatch(connection);
            begin.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN ISOLATION LEVEL READ COMMITTED"));
            begin.BatchCommands.Add(new NpgsqlBatchCommand("SELECT \"Sequence\", \"Hash\" FROM audit_chain_head WHERE \"Id\" = 1 FOR UPDATE"));
            await begin.PrepareAsync().ConfigureAwait(false);
            await using var reader = await begin.ExecuteReaderAsync().ConfigureAwait(false);
            (sequence, previous) = await reader.ReadAsync().ConfigureAwait(false) ? (reader.GetInt64(0), (byte[])reader[1]) : (0L, null);
        }

        await using var write = new NpgsqlBatch(connection);
        if (rows.AuditEntries.Count == 0)
        {
            write.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN ISOLATION LEVEL READ COMMITTED"));
        }

        var (head, hash) = chain.Link(rows.AuditEntries, sequence, previous ?? AuditHashChain.Genesis);
        var returning = AddRows(write, model, rows);
        if (rows.AuditEntries.Count > 0)
        {
            // The migrations create the head row with the schema; it is missing only if removed by hand (then, as in
            // AuditChainHeadStore.MoveAsync, two writers racing here collide on the primary key and one fails).
            var move = new NpgsqlBatchCommand(previous is null
                ? "INSERT INTO audit_chain_head (\"Id\", \"Sequence\", \"Hash\") VALUES (1, $1, $2)"
                : "UPDATE audit_chain_head SET \"Sequence\" = $1, \"Hash\" = $2 WHERE \"Id\" = 1");
            move.Parameters.Add(new NpgsqlParameter { Value = head });
            move.Parameters.Add(new NpgsqlParameter { Value = hash });
            write.BatchCommands.Add(move);
        }

        write.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
        await ExecuteAsync(write, returning).ConfigureAwait(false);
        _head = rows.AuditEntries.Count > 0 ? new ChainHead(head, hash) : _head;
    }

    /// <summary>
    /// Adds the inserts (parents before the rows that refer to them) and the dispatched marks; returns the tables whose
    /// inserts return new keys, in the order of their result sets.
    /// </summary>
    private List<(Table Table, IReadOnlyList<object> Rows)> AddRows(NpgsqlBatch batch, IModel model, GroupRows rows)
    {
        var returning = new List<(Table, IReadOnlyList<object>)>();
        // How the server plans what follows, until COMMIT (SET LOCAL). PostgreSQL's plan cache plans a prepared
        // statement anew at each execution (a "custom plan") while that looks cheaper than its one generic plan. A
        // generic plan cannot see how long the arrays are and counts each unnest(…) as 10 rows, so a statement that
        // looks up a row per element — the outbox row's decision entry, the dispatched marks' outbox rows — is costed
        // at ten index scans against the one or two a custom plan sees, and was planned again on most executions:
        // ~100–160 µs of the server's CPU each, as long as running it (pg_stat_statements with track_planning,
        // docs/benchmarks.md, session 22). Every statement here reaches existing rows by a unique key only, so one
        // generic plan serves every group: force it, and rule out a sequential scan — a plan made while a table was
        // still small would otherwise keep scanning it after it grew, until the next ANALYZE replaces the plan.
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SET LOCAL plan_cache_mode = force_generic_plan"));
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SET LOCAL enable_seqscan = off"));
        AddInsert(batch, model, rows.Signals, returning);
        AddInsert(batch, model, rows.AuditEntries, returning);
        AddInsert(batch, model, rows.Outbox, returning);
        AddInsert(batch, model, rows.CaseSignals, returning);
        AddInsert(batch, model, rows.Acknowledgements, returning);
        if (rows.Dispatched.Count > 0)
        {
            var marks = new NpgsqlBatchCommand(
                "UPDATE outbox AS o SET \"DispatchedAt\" = m.at, \"Attempts\" = m.attempts, \"LastError\" = NULL "
                + "FROM unnest($1::bigint[], $2::integer[], $3::timestamp with time zone[]) AS m(id, attempts, at) WHERE o.\"Id\" = m.id");
            marks.Parameters.Add(new NpgsqlParameter { Value = rows.Dispatched.Select(d => d.Row.Id).ToArray() });
            marks.Parameters.Add(new NpgsqlParameter { Value = rows.Dispatched.Select(d => d.Row.Attempts).ToArray() });
            marks.Parameters.Add(new NpgsqlParameter { Value = rows.Dispatched.Select(d => d.At.ToUniversalTime()).ToArray() });
            batch.BatchCommands.Add(marks);
        }

        return returning;
    }

    /// <summary>Runs the batch to its end (COMMIT), then gives the new rows the keys the server drew.</summary>
    private static async Task ExecuteAsync(NpgsqlBatch batch, List<(Table Table, IReadOnlyList<object> Rows)> returning)
    {
        await batch.PrepareAsync().ConfigureAwait(false);
        var keys = new List<Dictionary<object, long>>(returning.Count);
        await using (var reader = await batch.ExecuteReaderAsync().ConfigureAwait(false))
        {
            // Only the RETURNING inserts produce result sets; the reader skips the other statements' completions.
            foreach (var _ in returning)
            {
                var read = new Dictionary<object, long>();
                while (await reader.ReadAsync().ConfigureAwait(false))
                {
                    read.Add(reader.GetValue(1), reader.GetInt64(0));
                }

                keys.Add(read);
                await reader.NextResultAsync().ConfigureAwait(false);
            }

            while (await reader.NextResultAsync().ConfigureAwait(false))
            {
                // the rest of the batch; an error in it (COMMIT included) is thrown here
            }
        }

        // Committed: only now do the rows get their keys (a rolled-back group is written again, keys drawn anew).
        for (var i = 0; i < returning.Count; i++)
        {
            returning[i].Table.SetKeys(returning[i].Rows, keys[i]);
        }
    }

    /// <summary>Ends a transaction a failed write left open (after an error PostgreSQL skips the rest of the batch, COMMIT too).</summary>
    private static async Task RollBackAsync(NpgsqlConnection connection)
    {
        if (connection.FullState.HasFlag(System.Data.ConnectionState.Open))
        {
            try
            {
                await using var rollback = new NpgsqlCommand("ROLLBACK", connection);
                await rollback.ExecuteNonQueryAsync().ConfigureAwait(false);
            }
            catch (NpgsqlException)
            {
                // The connection is broken: the server rolled the transaction back when it went.
            }
        }
    }

    private void AddInsert<T>(NpgsqlBatch batch, IModel model, List<T> rows, List<(Table, IReadOnlyList<object>)> returning)
        where T : class
    {
        if (rows.Count > 0)
        {
            var table = _tables.GetOrAdd(typeof(T), t => new Table(model.FindEntityType(t)!));
            batch.BatchCommands.Add(table.Insert(rows));
            if (table.ReturnsKeys)
            {
                returning.Add((table, rows));
            }
        }
    }

    /// <summary>Where this writer's last commit left the chain.</summary>
    private sealed record ChainHead(long Sequence, byte[] Hash);

    /// <summary>
    /// An entity type's table as the model maps it: its INSERT, how to read each column's value, and — when the server
    /// draws the key (an identity column) — how the new keys are matched to the rows.
    /// </summary>
    private sealed class Table
    {
        private readonly string _sql;
        private readonly Column[] _columns;
        private readonly IProperty? _key;
        private readonly IClrPropertyGetter? _identity;
        private readonly (System.Reflection.PropertyInfo Property, IClrPropertyGetter Principal, IClrPropertyGetter PrincipalKey)[] _references;

        public Table(IEntityType type)
        {
            var table = StoreObjectIdentifier.Table(type.GetTableName()!, type.GetSchema());
            if (type.GetProperties().FirstOrDefault(p => p.IsShadowProperty()) is { } shadow)
            {
                throw new InvalidOperationException($"{type.DisplayName()}.{shadow.Name} is a shadow property, which the group commit cannot read: map it on the class.");
            }

            _key = ServerKey(type);
            var rowIdentity = _key is null ? null : RowIdentity(type);
            _identity = rowIdentity?.GetGetter();

            var columns = new List<Column>();
            var references = new List<(System.Reflection.PropertyInfo, IClrPropertyGetter, IClrPropertyGetter)>();
            foreach (var property in type.GetProperties().Where(p => p != _key))
            {
                var name = property.GetColumnName(table)!;
                // A reference to a row whose key the server draws in this same batch: the row is found by its unique
                // column (an outbox row's decision entry by the entry's sequence), which the hub knows beforehand.
                if (property.GetContainingForeignKeys().FirstOrDefault(k => ServerKey(k.PrincipalEntityType) is not null) is { } reference)
                {
                    var principal = reference.PrincipalEntityType;
                    var principalTable = StoreObjectIdentifier.Table(principal.GetTableName()!, principal.GetSchema());
                    var principalKey = ServerKey(principal)!;
                    var identity = RowIdentity(principal);
                    var identityGetter = identity.GetGetter();
                    var navigation = reference.DependentToPrincipal
                        ?? throw new InvalidOperationException($"{type.DisplayName()}.{property.Name} needs a navigation to {principal.DisplayName()} for the group commit to find its key.");
                    var principalGetter = navigation.GetGetter();
                    columns.Add(new Column(
                        identity,
                        name,
                        identity.GetColumnType(principalTable),
                        row => principalGetter.GetClrValue(row) is { } target
                            ? identityGetter.GetClrValue(target)
                            : throw new InvalidOperationException($"A {type.DisplayName()} in a group commit must carry its {navigation.Name}."),
                        column => $"(SELECT p.{Quote(principalKey.GetColumnName(principalTable)!)} FROM {Quote(principalTable.Name)} AS p WHERE p.{Quote(identity.GetColumnName(principalTable)!)} = {column})"));
                    references.Add((property.PropertyInfo!, principalGetter, principalKey.GetGetter()));
                }
                else
                {
                    columns.Add(new Column(property, name, property.GetColumnType(table), property.GetGetter().GetClrValue, column => column));
                }
            }

            _columns = [.. columns];
            _references = [.. references];
            var names = string.Join(", ", _columns.Select(c => Quote(c.Name)));
            var arrays = string.Join(", ", _columns.Select((c, i) => $"${i + 1}::{c.StoreType}[]"));
            var aliases = string.Join(", ", _columns.Select((_, i) => $"c{i}"));
            var values = string.Join(", ", _columns.Select((c, i) => c.Select($"u.c{i}")));
            _sql = $"INSERT INTO {Quote(table.Name)} ({names}) SELECT {values} FROM unnest({arrays}) AS u({aliases})"
                + (_key is null ? string.Empty : $" RETURNING {Quote(_key.GetColumnName(table)!)}, {Quote(rowIdentity!.GetColumnName(table)!)}");
        }

        /// <summary>Whether the INSERT returns the keys the server drew (key, unique column).</summary>
        public bool ReturnsKeys => _key is not null;

        public NpgsqlBatchCommand Insert<T>(List<T> rows)
            where T : class
        {
            var command = new NpgsqlBatchCommand(_sql);
            foreach (var column in _columns)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = column.Values(rows) });
            }

            return command;
        }

        /// <summary>Gives each row the key the server drew for it, and its references their principals' keys.</summary>
        public void SetKeys(IReadOnlyList<object> rows, Dictionary<object, long> keys)
        {
            var setter = _key!.PropertyInfo!;
            foreach (var row in rows)
            {
                setter.SetValue(row, keys[_identity!.GetClrValue(row)!]);
                foreach (var (property, principal, principalKey) in _references)
                {
                    property.SetValue(row, principalKey.GetClrValue(principal.GetClrValue(row)!));
                }
            }
        }

        /// <summary>The key column PostgreSQL fills from an identity sequence, or null.</summary>
        private static IProperty? ServerKey(IEntityType type) =>
            type.FindPrimaryKey()?.Properties is [var key]
                && NpgsqlPropertyExtensions.GetValueGenerationStrategy(key) is NpgsqlValueGenerationStrategy.IdentityByDefaultColumn or NpgsqlValueGenerationStrategy.IdentityAlwaysColumn or NpgsqlValueGenerationStrategy.SerialColumn
                ? key
                : null;

        /// <summary>The unique column (one-column unique index without a filter) that tells the rows apart before they have keys.</summary>
        private static IProperty RowIdentity(IEntityType type) =>
            type.GetIndexes().Where(i => i.IsUnique && i.GetFilter() is null && i.Properties is [var p] && !p.IsPrimaryKey()).Select(i => i.Properties[0]).FirstOrDefault()
            ?? throw new InvalidOperationException($"{type.DisplayName()} has a server-drawn key but no unique column to match new rows to their keys.");

        private static string Quote(string identifier) => $"\"{identifier.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";
    }

    /// <summary>One column: its name, store type, the values of a list of entities as the provider stores them, and its expression in the SELECT.</summary>
    private sealed class Column(IProperty stored, string name, string storeType, Func<object, object?> read, Func<string, string> select)
    {
        private readonly Microsoft.EntityFrameworkCore.Storage.ValueConversion.ValueConverter? _converter = stored.GetTypeMapping().Converter;
        private readonly Type _element = ElementType(stored);

        public string Name { get; } = name;

        public string StoreType { get; } = storeType;

        /// <summary>The column's value in the SELECT over the unnested arrays.</summary>
        public string Select(string unnested) => select(unnested);

        public Array Values<T>(List<T> rows)
            where T : class
        {
            var values = Array.CreateInstance(_element, rows.Count);
            for (var i = 0; i < rows.Count; i++)
            {
                var value = read(rows[i]);
                if (_converter is not null && value is not null)
                {
                    value = _converter.ConvertToProvider(value);
                }

                // timestamptz takes UTC only (Npgsql refuses other offsets); the moment is the same.
                values.SetValue(value is DateTimeOffset moment ? moment.ToUniversalTime() : value, i);
            }

            return values;
        }

        private static Type ElementType(IProperty property)
        {
            var type = property.GetTypeMapping().Converter?.ProviderClrType ?? property.ClrType;
            return property.IsNullable && type.IsValueType && Nullable.GetUnderlyingType(type) is null
                ? typeof(Nullable<>).MakeGenericType(type)
                : type;
        }
    }
}
