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

    /// <summary>
    /// The oldest undispatched rows written before <paramref name="writtenBefore"/> and not claimed by another instance.
    /// </summary>
    public static async Task<List<OutboxMessage>> PendingBatchAsync(HubDbContext db, DatabaseProvider provider, int size, DateTimeOffset writtenBefore, CancellationToken cancellationToken)
    {
        if (provider != DatabaseProvider.Sqlite)
        {
            return await (provider == DatabaseProvider.Postgres
                    ? db.Outbox.FromSqlRaw(
                        "SELECT * FROM outbox WHERE \"DispatchedAt\" IS NULL AND \"CreatedAt\" < {1} ORDER BY \"Id\" LIMIT {0} FOR UPDATE SKIP LOCKED", size, writtenBefore)
                    : db.Outbox.FromSqlRaw(
                        "SELECT TOP ({0}) * FROM outbox WITH (UPDLOCK, READPAST, ROWLOCK) WHERE DispatchedAt IS NULL AND CreatedAt < {1} ORDER BY Id", size, writtenBefore))
                .ToListAsync(cancellationToken).ConfigureAwait(false);
        }

        // SQLite stores CreatedAt as text, which SQL cannot compare as a moment: the age is checked here. Ids follow
        // the order in which rows were written, so the young rows (the writer's own, published at once) come last.
        var oldest = await db.Outbox.Where(o => o.DispatchedAt == null).OrderBy(o => o.Id).Take(size)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        return oldest.Where(o => o.CreatedAt < writtenBefore).ToList();
    }
}
