using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Configuration;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Infrastructure;

namespace ShareHub.Broker.Tests.Integration;

/// <summary>
/// Issue #8 on a real PostgreSQL server: migrations applied by several hub instances starting at once, the first audit
/// entries of those instances, and a database that an earlier ShareHub made with EnsureCreated.
/// </summary>
[Collection(RealServersCollection.Name)]
public sealed class MigrationPostgresTests
{
    private const int Instances = 4;

    [Fact]
    public async Task InstancesStartingAtOnce_MigrateAnEmptyDatabaseOnce_AndTheirFirstAuditEntriesChainWithoutAGap()
    {
        await using var servers = await RealServers.CreateAsync();
        var settings = new ShareHubOptions { Database = DatabaseProvider.Postgres, ConnectionString = servers.PostgresConnectionString };

        // Every instance runs the start-up migration at the same moment (EF Core's migration lock serialises them).
        using var start = new Barrier(Instances);
        await Task.WhenAll(Enumerable.Range(0, Instances).Select(_ => Task.Run(async () =>
        {
            await using var db = HubDatabase.CreateContext(DatabaseProvider.Postgres, servers.PostgresConnectionString);
            start.SignalAndWait();
            await HubDatabase.MigrateAsync(db, settings, TimeProvider.System, CancellationToken.None);
        })));

        await using (var db = HubDatabase.CreateContext(DatabaseProvider.Postgres, servers.PostgresConnectionString))
        {
            Assert.Equal(db.Database.GetMigrations(), await db.Database.GetAppliedMigrationsAsync());
            Assert.Equal(db.Database.GetMigrations().LongCount(), await servers.ScalarAsync<long>("SELECT count(*) FROM \"__EFMigrationsHistory\""));
        }

        // Then each instance writes its first audit entry (policy activation does so at start-up), all at once: the
        // chain head row exists from the migration on, so they queue on its row lock instead of racing to create it.
        using var write = new Barrier(Instances);
        await Task.WhenAll(Enumerable.Range(0, Instances).Select(i => Task.Run(async () =>
        {
            await using var db = ChainedContext(servers.PostgresConnectionString);
            write.SignalAndWait();
            await new AuditTrail(db, TimeProvider.System).RecordAuthenticationFailureAsync(null, $"instance-{i}", ErrorCodes.Unauthenticated, "start-up race test", CancellationToken.None);
        })));

        await using (var db = HubDatabase.CreateContext(DatabaseProvider.Postgres, servers.PostgresConnectionString))
        {
            var sequences = await db.AuditEntries.OrderBy(a => a.Sequence).Select(a => a.Sequence).ToListAsync();
            Assert.Equal(Enumerable.Range(1, Instances).Select(i => (long)i), sequences);
            Assert.Equal(Instances, await db.Set<AuditChainHead>().Select(h => h.Sequence).SingleAsync());
        }
    }

    [Fact]
    public async Task PostgresDatabaseCreatedByEnsureCreated_IsRefusedWithWhatToDo_AndLeftUntouched()
    {
        await using var servers = await RealServers.CreateAsync();
        await using (var legacy = HubDatabase.CreateContext(DatabaseProvider.Postgres, servers.PostgresConnectionString))
        {
            await legacy.Database.EnsureCreatedAsync(); // what ShareHub did before versioned migrations
        }

        var settings = new ShareHubOptions { Database = DatabaseProvider.Postgres, ConnectionString = servers.PostgresConnectionString };
        await using var db = HubDatabase.CreateContext(DatabaseProvider.Postgres, servers.PostgresConnectionString);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => HubDatabase.MigrateAsync(db, settings, TimeProvider.System, CancellationToken.None));

        Assert.Contains("the Postgres database holds ShareHub tables", error.Message, StringComparison.Ordinal);
        Assert.Contains("EnsureCreated", error.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await servers.ScalarAsync<long>("SELECT count(*) FROM information_schema.tables WHERE table_name = '__EFMigrationsHistory'"));
    }

    /// <summary>A context with the hub's hash-chain interceptor, as dependency injection builds it.</summary>
    private static PostgresHubDbContext ChainedContext(string connectionString)
    {
        var options = new DbContextOptionsBuilder<PostgresHubDbContext>();
        HubDatabase.UseProvider(options, DatabaseProvider.Postgres, connectionString).AddInterceptors(new AuditChainInterceptor(Options.Create(new AuditOptions())));
        return new PostgresHubDbContext(options.Options);
    }
}
