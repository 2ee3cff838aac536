using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Npgsql;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Delivery;

namespace ShareHub.Broker.Data;

/// <summary>
/// The group commit's write on PostgreSQL (<see cref="GroupCommitWriter"/>), without EF Core's change tracker. EF Core
/// sends one INSERT per row — for a signal its row, three audit entries, an outbox row, an acknowledgement and a
/// dispatched mark — each parsed and planned by the server, each with its own parameter objects in the hub. Here a
/// group is two round trips and a few set-based statements, whatever its size:
/// <list type="number">
/// <item><c>BEGIN</c>; lock the chain head (<c>SELECT … FOR UPDATE</c>, as <see cref="AuditChainHeadStore"/>);
/// draw the new rows' keys from their identity sequences.</item>
/// <item>One <c>INSERT … SELECT * FROM unnest(…)</c> per table, with one array parameter per column; one
/// <c>UPDATE … FROM unnest(…)</c> for the dispatched marks; move the head; <c>COMMIT</c>.</item>
/// </list>
/// Every statement's text is fixed (the rows travel as array parameters), so each is prepared once per connection
/// and then only bound and executed: the server neither parses nor plans it again (Npgsql keeps prepared statements
/// across pooled connection leases).
/// The entries are linked by <see cref="AuditChainInterceptor.Link"/>, the same code that links EF Core saves, under
/// the same row lock, so the chain is one chain whoever wrote its entries. Tables and columns come from the EF Core
/// model: a property added to an entity is written here without a change to this class. A constraint violation (a
/// concurrent duplicate: Idempotency-Key, acknowledgement) is thrown as <see cref="DbUpdateException"/>, as EF Core
/// would; the transaction is rolled back either way.
/// </summary>
public sealed class PostgresGroupWrite(AuditChainInterceptor chain)
{
    private readonly ConcurrentDictionary<Type, Table> _tables = new();
    private string? _auditKeys;
    private string? _outboxKeys;

    /// <summary>Writes <paramref name="rows"/> in one transaction on <paramref name="db"/>'s connection; returns after the commit.</summary>
    public async Task SaveAsync(HubDbContext db, GroupRows rows)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(rows);
        await db.Database.OpenConnectionAsync().ConfigureAwait(false);
        try
        {
            var connection = (NpgsqlConnection)db.Database.GetDbConnection();
            _auditKeys ??= await KeySequenceAsync(connection, db.Model, typeof(AuditEntry)).ConfigureAwait(false);
            _outboxKeys ??= await KeySequenceAsync(connection, db.Model, typeof(OutboxMessage)).ConfigureAwait(false);
            try
            {
                await WriteAsync(connection, db.Model, rows).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
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

    private async Task WriteAsync(NpgsqlConnection connection, IModel model, GroupRows rows)
    {
        // Round trip 1: BEGIN, the chain-head lock (held until COMMIT), the new rows' keys.
        long sequence;
        byte[]? previous;
        var auditIds = new List<long>(rows.AuditEntries.Count);
        var outboxIds = new List<long>(rows.Outbox.Count);
        await using (var begin = new NpgsqlBatch(connection))
        {
            begin.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN ISOLATION LEVEL READ COMMITTED"));
            begin.BatchCommands.Add(new NpgsqlBatchCommand("SELECT \"Sequence\", \"Hash\" FROM audit_chain_head WHERE \"Id\" = 1 FOR UPDATE"));
            begin.BatchCommands.Add(Keys(_auditKeys!, rows.AuditEntries.Count));
            begin.BatchCommands.Add(Keys(_outboxKeys!, rows.Outbox.Count));
            await begin.PrepareAsync().ConfigureAwait(false);
            await using var reader = await begin.ExecuteReaderAsync().ConfigureAwait(false);
            (sequence, previous) = await reader.ReadAsync().ConfigureAwait(false) ? (reader.GetInt64(0), (byte[])reader[1]) : (0L, null);
            await reader.NextResultAsync().ConfigureAwait(false);
            while (await reader.ReadAsync().ConfigureAwait(false))
            {
                auditIds.Add(reader.GetInt64(0));
            }

            await reader.NextResultAsync().ConfigureAwait(false);
            while (await reader.ReadAsync().ConfigureAwait(false))
            {
                outboxIds.Add(reader.GetInt64(0));
            }
        }

        for (var i = 0; i < rows.AuditEntries.Count; i++)
        {
            rows.AuditEntries[i].Id = auditIds[i];
        }

        for (var i = 0; i < rows.Outbox.Count; i++)
        {
            rows.Outbox[i].Id = outboxIds[i];
            if (rows.Outbox[i].AuditEntry is { } decision)
            {
                rows.Outbox[i].AuditEntryId = decision.Id; // the decision is among this group's entries
            }
        }

        var (head, hash) = chain.Link(rows.AuditEntries, sequence, previous ?? AuditHashChain.Genesis);

        // Round trip 2: the rows (parents before the rows that refer to them), the marks, the head, COMMIT.
        await using var write = new NpgsqlBatch(connection);
        AddInsert(write, model, rows.Signals);
        AddInsert(write, model, rows.AuditEntries);
        AddInsert(write, model, rows.Outbox);
        AddInsert(write, model, rows.CaseSignals);
        AddInsert(write, model, rows.Acknowledgements);
        if (rows.Dispatched.Count > 0)
        {
            var marks = new NpgsqlBatchCommand(
                "UPDATE outbox AS o SET \"DispatchedAt\" = m.at, \"Attempts\" = m.attempts, \"LastError\" = NULL "
                + "FROM unnest($1::bigint[], $2::integer[], $3::timestamp with time zone[]) AS m(id, attempts, at) WHERE o.\"Id\" = m.id");
            marks.Parameters.Add(new NpgsqlParameter { Value = rows.Dispatched.Select(d => d.Row.Id).ToArray() });
            marks.Parameters.Add(new NpgsqlParameter { Value = rows.Dispatched.Select(d => d.Row.Attempts).ToArray() });
            marks.Parameters.Add(new NpgsqlParameter { Value = rows.Dispatched.Select(d => d.At.ToUniversalTime()).ToArray() });
            write.BatchCommands.Add(marks);
        }

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
        await write.PrepareAsync().ConfigureAwait(false);
        await write.ExecuteNonQueryAsync().ConfigureAwait(false);
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

    private static NpgsqlBatchCommand Keys(string sequence, int count)
    {
        var command = new NpgsqlBatchCommand("SELECT nextval($1::regclass) FROM generate_series(1, $2)");
        command.Parameters.Add(new NpgsqlParameter { Value = sequence });
        command.Parameters.Add(new NpgsqlParameter { Value = count });
        return command;
    }

    /// <summary>The identity sequence of an entity's key column.</summary>
    private static async Task<string> KeySequenceAsync(NpgsqlConnection connection, IModel model, Type entity)
    {
        var type = model.FindEntityType(entity)!;
        await using var command = new NpgsqlCommand("SELECT pg_get_serial_sequence($1, $2)", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = type.GetTableName()! });
        command.Parameters.Add(new NpgsqlParameter { Value = type.FindPrimaryKey()!.Properties.Single().GetColumnName() });
        return (string?)await command.ExecuteScalarAsync().ConfigureAwait(false)
            ?? throw new InvalidOperationException($"The key of {type.GetTableName()} has no identity sequence.");
    }

    private void AddInsert<T>(NpgsqlBatch batch, IModel model, List<T> rows)
        where T : class
    {
        if (rows.Count > 0)
        {
            batch.BatchCommands.Add(_tables.GetOrAdd(typeof(T), t => new Table(model.FindEntityType(t)!)).Insert(rows));
        }
    }

    /// <summary>An entity type's table as the model maps it: its INSERT and how to read each column's value.</summary>
    private sealed class Table
    {
        private readonly string _sql;
        private readonly Column[] _columns;

        public Table(IEntityType type)
        {
            var table = StoreObjectIdentifier.Table(type.GetTableName()!, type.GetSchema());
            if (type.GetProperties().FirstOrDefault(p => p.IsShadowProperty()) is { } shadow)
            {
                throw new InvalidOperationException($"{type.DisplayName()}.{shadow.Name} is a shadow property, which the group commit cannot read: map it on the class.");
            }

            _columns = [.. type.GetProperties().Select(p => new Column(p, p.GetColumnName(table)!, p.GetColumnType(table)))];
            var names = string.Join(", ", _columns.Select(c => Quote(c.Name)));
            var arrays = string.Join(", ", _columns.Select((c, i) => $"${i + 1}::{c.StoreType}[]"));
            _sql = $"INSERT INTO {Quote(table.Name)} ({names}) SELECT * FROM unnest({arrays})";
        }

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

        private static string Quote(string identifier) => $"\"{identifier.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";
    }

    /// <summary>One column: its name, store type and the values of a list of entities, as the provider stores them.</summary>
    private sealed class Column(IProperty property, string name, string storeType)
    {
        private readonly IClrPropertyGetter _getter = property.GetGetter();
        private readonly Microsoft.EntityFrameworkCore.Storage.ValueConversion.ValueConverter? _converter = property.GetTypeMapping().Converter;
        private readonly Type _element = ElementType(property);

        public string Name { get; } = name;

        public string StoreType { get; } = storeType;

        public Array Values<T>(List<T> rows)
            where T : class
        {
            var values = Array.CreateInstance(_element, rows.Count);
            for (var i = 0; i < rows.Count; i++)
            {
                var value = _getter.GetClrValue(rows[i]);
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
