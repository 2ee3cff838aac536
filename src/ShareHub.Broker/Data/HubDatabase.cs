using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using ShareHub.Broker.Configuration;
using ShareHub.Broker.Identity;

namespace ShareHub.Broker.Data;

/// <summary>
/// Chooses the provider-specific <see cref="HubDbContext"/> and brings its schema up to date with the versioned EF Core
/// migrations of that provider (Data/Migrations/Sqlite|Postgres|SqlServer; docs/architecture.md "Schema management").
/// </summary>
public static class HubDatabase
{
    /// <summary>The table that only a ShareHub schema has; present without a migrations history = created by EnsureCreated.</summary>
    private const string MarkerTable = "audit_entries";

    /// <summary>A SQLite migration lock row older than this was left by a process that died while migrating.</summary>
    private static readonly TimeSpan StaleSqliteLock = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Registers <see cref="HubDbContext"/> as the subclass for <paramref name="settings"/>' provider, so every
    /// consumer of <see cref="HubDbContext"/> gets the context whose migrations match the database. Options added
    /// elsewhere with <c>services.ConfigureDbContext&lt;HubDbContext&gt;(…)</c> (e.g. the metrics interceptor) are
    /// applied too: EF Core would otherwise look for them under the subclass's type only.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="settings">Provider and connection string.</param>
    /// <param name="configure">Further options (interceptors), applied after the provider.</param>
    public static IServiceCollection AddHubDbContext(this IServiceCollection services, ShareHubOptions settings, Action<IServiceProvider, DbContextOptionsBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(settings);
        void Options(IServiceProvider sp, DbContextOptionsBuilder options)
        {
            configure(sp, UseProvider(options, settings.Database, settings.ConnectionString));
            foreach (var configuration in sp.GetServices<IDbContextOptionsConfiguration<HubDbContext>>())
            {
                configuration.Configure(sp, options);
            }
        }

        // Pooled: a request leases a context that was reset after its last use instead of building one (and its
        // scoped internal service provider) from scratch — per request, that was ~10 % of the broker's allocations.
        // The options are built once; they hold only the provider, the connection string and singleton interceptors.
        return settings.Database switch
        {
            DatabaseProvider.Postgres => services.AddDbContextPool<HubDbContext, PostgresHubDbContext>(Options),
            DatabaseProvider.SqlServer => services.AddDbContextPool<HubDbContext, SqlServerHubDbContext>(Options),
            _ => services.AddDbContextPool<HubDbContext, SqliteHubDbContext>(Options),
        };
    }

    /// <summary>The provider and the hub's OpenIddict entities: everything that shapes the model, and nothing else.</summary>
    public static DbContextOptionsBuilder UseProvider(DbContextOptionsBuilder options, DatabaseProvider provider, string connectionString)
    {
        ArgumentNullException.ThrowIfNull(options);
        _ = provider switch
        {
            DatabaseProvider.Postgres => options.UseNpgsql(WithPostgresDefaults(connectionString)),
            DatabaseProvider.SqlServer => options.UseSqlServer(connectionString),
            _ => options.UseSqlite(connectionString),
        };
        return options.UseHubIdentityStore();
    }

    /// <summary>
    /// The hub's defaults for Npgsql settings the connection string leaves out (an explicit value always wins):
    /// <list type="bullet">
    /// <item><c>Max Auto Prepare=64</c>: statements the hub runs again and again (EF Core's queries, the group commit's)
    /// are prepared on each physical connection, so PostgreSQL parses and plans them once instead of per call — the
    /// acknowledgement lookup alone spent more time in planning than in execution.</item>
    /// <item><c>No Reset On Close=true</c>: a connection going back to the pool is not reset (by default Npgsql sends
    /// seven reset statements with the next use of every pooled connection — hundreds a second at load). Resetting
    /// undoes session state — <c>SET</c>, temporary tables, <c>LISTEN</c>, session advisory locks, role changes — and
    /// the hub leaves none behind: its only session lock (migrations) is released explicitly, in <c>finally</c>.</item>
    /// </list>
    /// </summary>
    internal static string WithPostgresDefaults(string connectionString)
    {
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        if (!given.ContainsKey("Max Auto Prepare") && !given.ContainsKey("MaxAutoPrepare"))
        {
            builder.MaxAutoPrepare = 64;
        }

        if (!given.ContainsKey("No Reset On Close") && !given.ContainsKey("NoResetOnClose"))
        {
            builder.NoResetOnClose = true;
        }

        return builder.ConnectionString;
    }

    /// <summary>
    /// A context for <paramref name="provider"/> outside dependency injection (design-time factories, tests, benchmarks):
    /// the same model as the running hub, without its interceptors — do not add audit entries through it.
    /// </summary>
    public static HubDbContext CreateContext(DatabaseProvider provider, string connectionString) => provider switch
    {
        DatabaseProvider.Postgres => new PostgresHubDbContext((DbContextOptions<PostgresHubDbContext>)UseProvider(new DbContextOptionsBuilder<PostgresHubDbContext>(), provider, connectionString).Options),
        DatabaseProvider.SqlServer => new SqlServerHubDbContext((DbContextOptions<SqlServerHubDbContext>)UseProvider(new DbContextOptionsBuilder<SqlServerHubDbContext>(), provider, connectionString).Options),
        _ => new SqliteHubDbContext((DbContextOptions<SqliteHubDbContext>)UseProvider(new DbContextOptionsBuilder<SqliteHubDbContext>(), provider, connectionString).Options),
    };

    /// <summary>Key of the PostgreSQL advisory lock that serialises migrations ("SHMIGR" in ASCII).</summary>
    private const long PostgresMigrationLock = 0x5348_4D49_4752;

    /// <summary>
    /// Applies the pending migrations of the configured provider (creating the database and, for SQLite, its folder).
    /// Several hub instances may start at once: one migrates and the others wait and find the work done (PostgreSQL: a
    /// session advisory lock taken here, because EF Core's own lock there ends with each migration's transaction;
    /// SQL Server: EF Core's <c>sp_getapplock</c>; SQLite: EF Core's <c>__EFMigrationsLock</c> row).
    /// </summary>
    /// <exception cref="InvalidOperationException">The database holds a ShareHub schema that migrations do not manage
    /// (created by an earlier version with <c>EnsureCreated</c>), or a SQLite migration lock was left by a dead process.</exception>
    public static async Task MigrateAsync(HubDbContext db, ShareHubOptions settings, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(time);
        var sqlite = settings.Database == DatabaseProvider.Sqlite;
        if (sqlite)
        {
            var file = new SqliteConnectionStringBuilder(settings.ConnectionString).DataSource;
            var folder = Path.GetDirectoryName(Path.GetFullPath(file));
            if (!string.IsNullOrEmpty(folder))
            {
                Directory.CreateDirectory(folder);
            }
        }

        var exists = await db.Database.CanConnectAsync(cancellationToken).ConfigureAwait(false);

        // Npgsql's own migration lock is LOCK TABLE inside each migration's transaction, so it is released after the
        // first of several pending migrations: a replica waiting for it then re-applies the second one ("column already
        // exists"). A session-level advisory lock held on one connection across the whole migration serialises
        // replicas starting at once; the later ones find nothing pending. (SQL Server's sp_getapplock and SQLite's
        // lock row already span the whole run.)
        var serialise = exists && settings.Database == DatabaseProvider.Postgres;
        if (serialise)
        {
            await db.Database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_lock({PostgresMigrationLock})", cancellationToken).ConfigureAwait(false);
        }

        try
        {
            if (exists)
            {
                await RefuseUnmanagedSchemaAsync(db, settings, cancellationToken).ConfigureAwait(false);
                if (sqlite)
                {
                    await RefuseStaleSqliteLockAsync(db, settings, time, cancellationToken).ConfigureAwait(false);
                }
            }

            await db.Database.MigrateAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (serialise)
            {
                // Closing the connection would release the lock too, but pooled connections stay open on the server.
                await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_unlock({PostgresMigrationLock})", CancellationToken.None).ConfigureAwait(false);
                await db.Database.CloseConnectionAsync().ConfigureAwait(false);
            }
        }

        if (sqlite)
        {
            // WAL: readers do not block the single writer; full fsync on commit keeps durability.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A schema made by <c>EnsureCreated</c> (ShareHub before versioned migrations) has the tables but no migrations
    /// history: migrating it would fail on the first <c>CREATE TABLE</c> with a bare "already exists". Say what it is
    /// and what to do instead.
    /// </summary>
    private static async Task RefuseUnmanagedSchemaAsync(HubDbContext db, ShareHubOptions settings, CancellationToken cancellationToken)
    {
        // Table first, history second: another instance migrating right now commits the table together with its
        // history row, so once the table is visible here the row is too (the other order could see neither the row
        // nor, a moment later, both, and refuse a database that is being migrated properly).
        var sql = settings.Database == DatabaseProvider.Sqlite
            ? $"SELECT count(*) AS \"Value\" FROM sqlite_master WHERE type = 'table' AND name = '{MarkerTable}'"
            : $"SELECT count(*) AS \"Value\" FROM information_schema.tables WHERE table_name = '{MarkerTable}'";
        var tables = await db.Database.SqlQueryRaw<int>(sql).ToListAsync(cancellationToken).ConfigureAwait(false);
        if (tables.Sum() == 0 || (await db.Database.GetAppliedMigrationsAsync(cancellationToken).ConfigureAwait(false)).Any())
        {
            return;
        }

        var what = settings.Database == DatabaseProvider.Sqlite
            ? $"the SQLite file '{new SqliteConnectionStringBuilder(settings.ConnectionString).DataSource}'"
            : $"the {settings.Database} database";
        throw new InvalidOperationException(
            $"{what} holds ShareHub tables ('{MarkerTable}', …) but no EF Core migrations history (__EFMigrationsHistory): it was " +
            "created by a ShareHub version before versioned migrations (EnsureCreated). The hub will not alter a schema it " +
            "cannot identify. Development/demo data: delete the file (e.g. .data/sharehub.db with its -wal/-shm files) or drop " +
            "the database and start again. Data to keep: export the audit trail first (sharehub audit export), then recreate " +
            "the database, or have a DBA baseline it (deploy/README.md, \"Database schema\").");
    }

    /// <summary>
    /// SQLite's migration lock is a row in <c>__EFMigrationsLock</c>, not a session lock: a process killed while
    /// migrating leaves it behind and every later start would wait for it forever. A row older than
    /// <see cref="StaleSqliteLock"/> is refused with the way out, never deleted silently (another process may share the file).
    /// </summary>
    private static async Task RefuseStaleSqliteLockAsync(HubDbContext db, ShareHubOptions settings, TimeProvider time, CancellationToken cancellationToken)
    {
        var exists = await db.Database.SqlQueryRaw<int>("SELECT count(*) AS \"Value\" FROM sqlite_master WHERE type = 'table' AND name = '__EFMigrationsLock'")
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        if (exists.Sum() == 0)
        {
            return;
        }

        var stamps = await db.Database.SqlQueryRaw<string>("SELECT \"Timestamp\" AS \"Value\" FROM \"__EFMigrationsLock\"").ToListAsync(cancellationToken).ConfigureAwait(false);
        foreach (var stamp in stamps)
        {
            if (DateTimeOffset.TryParse(stamp, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var taken) && time.GetUtcNow() - taken > StaleSqliteLock)
            {
                var file = new SqliteConnectionStringBuilder(settings.ConnectionString).DataSource;
                throw new InvalidOperationException(
                    $"The SQLite file '{file}' has held a migration lock since {taken:u}: a ShareHub process died while migrating it. " +
                    $"When no other ShareHub process uses the file, remove the lock and start again: sqlite3 '{file}' 'DELETE FROM \"__EFMigrationsLock\";'");
            }
        }
    }
}
