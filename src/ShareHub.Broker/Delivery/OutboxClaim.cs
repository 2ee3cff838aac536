using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using ShareHub.Broker.Configuration;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Delivery;

/// <summary>
/// How a dispatcher claims a batch of outbox rows so that, with several broker instances on one database, each row is
/// published by exactly one of them. On PostgreSQL and SQL Server the batch is read with row locks inside a
/// transaction — <c>FOR UPDATE SKIP LOCKED</c> / <c>WITH (UPDLOCK, READPAST, ROWLOCK)</c> — so concurrent dispatchers
/// skip each other's rows; the locks are held until the rows are marked dispatched and released if the instance dies
/// (its rows are then claimed by another instance: at least once, absorbed by the partner inbox). SQLite is the
/// single-process embedded default: no claim transaction, which would hold its only write lock while publishing.
/// </summary>
internal static class OutboxClaim
{
    /// <summary>Starts the claim transaction, or returns null where none is needed (SQLite).</summary>
    public static async Task<IDbContextTransaction?> BeginAsync(HubDbContext db, DatabaseProvider provider, CancellationToken cancellationToken) =>
        provider == DatabaseProvider.Sqlite
            ? null
            : await db.Database.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>The oldest undispatched rows not claimed by another instance.</summary>
    public static IQueryable<OutboxMessage> PendingBatch(HubDbContext db, DatabaseProvider provider, int size) => provider switch
    {
        DatabaseProvider.Postgres => db.Outbox.FromSqlRaw(
            "SELECT * FROM outbox WHERE \"DispatchedAt\" IS NULL ORDER BY \"Id\" LIMIT {0} FOR UPDATE SKIP LOCKED", size),
        DatabaseProvider.SqlServer => db.Outbox.FromSqlRaw(
            "SELECT TOP ({0}) * FROM outbox WITH (UPDLOCK, READPAST, ROWLOCK) WHERE DispatchedAt IS NULL ORDER BY Id", size),
        _ => db.Outbox.Where(o => o.DispatchedAt == null).OrderBy(o => o.Id).Take(size),
    };
}
