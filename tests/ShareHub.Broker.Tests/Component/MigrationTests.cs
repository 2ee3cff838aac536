using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.Extensions.Time.Testing;
using ShareHub.Broker.Configuration;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Infrastructure;

namespace ShareHub.Broker.Tests.Component;

/// <summary>
/// Issue #8: versioned migrations per provider. The model must never run ahead of the migrations (for every provider,
/// no server needed), and the embedded SQLite file is created, upgraded and refused through them.
/// </summary>
public sealed class MigrationTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "sharehub-tests", "migrations-" + Guid.NewGuid().ToString("N"));

    public MigrationTests() => Directory.CreateDirectory(_folder);

    /// <summary>Connection strings that are never opened: the pending-changes check compares models only.</summary>
    public static TheoryData<DatabaseProvider, string> Providers => new()
    {
        { DatabaseProvider.Sqlite, "Data Source=never-opened.db" },
        { DatabaseProvider.Postgres, "Host=never-opened.invalid;Database=sharehub" },
        { DatabaseProvider.SqlServer, "Server=never-opened.invalid;Database=ShareHub" },
    };

    [Theory]
    [MemberData(nameof(Providers))]
    public void Model_HasNoChangesThatNoMigrationCovers(DatabaseProvider provider, string connectionString)
    {
        using var db = HubDatabase.CreateContext(provider, connectionString);

        Assert.True(db.Database.GetMigrations().Any(), $"{provider} has no migrations");
        Assert.False(db.Database.HasPendingModelChanges(),
            $"The {provider} model has changes no migration covers: run  bash eng/migrations.sh add <Name>  and commit the result.");
    }

    [Fact]
    public void EveryProvider_HasTheSameMigrations_InTheSameOrder()
    {
        // eng/migrations.sh adds each migration to all three sets; one added by hand to a single provider would leave
        // the other databases behind.
        var names = Providers.Select(row =>
        {
            using var db = HubDatabase.CreateContext((DatabaseProvider)row[0], (string)row[1]);
            return db.Database.GetMigrations().Select(id => id[(id.IndexOf('_', StringComparison.Ordinal) + 1)..]).ToList();
        }).ToList();

        Assert.Contains("InitialCreate", names[0]);
        Assert.All(names, n => Assert.Equal(names[0], n));
    }

    [Fact]
    public async Task FreshSqliteFile_IsMigratedToTheLatestSchema_InWalMode_AndMigratingAgainChangesNothing()
    {
        var (settings, file) = Sqlite("fresh");
        await using (var db = HubDatabase.CreateContext(DatabaseProvider.Sqlite, settings.ConnectionString))
        {
            await HubDatabase.MigrateAsync(db, settings, TimeProvider.System, CancellationToken.None);
            Assert.Equal(db.Database.GetMigrations(), await db.Database.GetAppliedMigrationsAsync());
            Assert.Empty(await db.Database.GetPendingMigrationsAsync());
            Assert.Equal(0, await db.AuditEntries.CountAsync()); // the tables are there and queryable
        }

        Assert.Equal("wal", await ScalarAsync<string>(file, "PRAGMA journal_mode;"));
        var history = await ScalarAsync<long>(file, "SELECT count(*) FROM \"__EFMigrationsHistory\"");

        await using (var again = HubDatabase.CreateContext(DatabaseProvider.Sqlite, settings.ConnectionString))
        {
            await HubDatabase.MigrateAsync(again, settings, TimeProvider.System, CancellationToken.None);
        }

        Assert.Equal(history, await ScalarAsync<long>(file, "SELECT count(*) FROM \"__EFMigrationsHistory\""));
    }

    [Fact]
    public async Task SqliteFileCreatedByEnsureCreated_IsRefusedWithWhatToDo_AndLeftUntouched()
    {
        var (settings, file) = Sqlite("legacy");
        await using (var legacy = HubDatabase.CreateContext(DatabaseProvider.Sqlite, settings.ConnectionString))
        {
            await legacy.Database.EnsureCreatedAsync(); // what ShareHub did before versioned migrations
        }

        await using var db = HubDatabase.CreateContext(DatabaseProvider.Sqlite, settings.ConnectionString);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => HubDatabase.MigrateAsync(db, settings, TimeProvider.System, CancellationToken.None));

        Assert.Contains("no EF Core migrations history", error.Message, StringComparison.Ordinal);
        Assert.Contains(file, error.Message, StringComparison.Ordinal);
        Assert.Contains("delete the file", error.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await ScalarAsync<long>(file, "SELECT count(*) FROM sqlite_master WHERE name = '__EFMigrationsHistory'"));
    }

    [Fact]
    public async Task HubStartingOnAnEnsureCreatedSqliteFile_StopsWithTheMigrationError()
    {
        await using var hub = new ComponentHub();
        await using (var legacy = HubDatabase.CreateContext(DatabaseProvider.Sqlite, $"Data Source={hub.DatabaseFile}"))
        {
            await legacy.Database.EnsureCreatedAsync();
        }

        var error = Assert.ThrowsAny<Exception>(() => hub.Factory.CreateClient());

        Assert.Contains("no EF Core migrations history", error.ToString(), StringComparison.Ordinal);
        SqliteConnection.ClearAllPools();
    }

    [Fact]
    public async Task SqliteMigrationLockLeftByADeadProcess_IsRefusedWithTheCommandThatClearsIt()
    {
        var (settings, file) = Sqlite("stale-lock");
        await using (var db = HubDatabase.CreateContext(DatabaseProvider.Sqlite, settings.ConnectionString))
        {
            await db.Database.MigrateAsync();
        }

        // What EF Core's SQLite lock leaves when the process is killed between taking and releasing it.
        var taken = new DateTimeOffset(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);
        await AuditTestKit.SqliteAsync(file, "CREATE TABLE IF NOT EXISTS \"__EFMigrationsLock\" (\"Id\" INTEGER NOT NULL CONSTRAINT \"PK___EFMigrationsLock\" PRIMARY KEY, \"Timestamp\" TEXT NOT NULL);"
            + $"INSERT INTO \"__EFMigrationsLock\" (\"Id\", \"Timestamp\") VALUES (1, '{taken.ToString("yyyy-MM-dd HH:mm:ss.FFFFFFFzzz", CultureInfo.InvariantCulture)}');");

        await using var again = HubDatabase.CreateContext(DatabaseProvider.Sqlite, settings.ConnectionString);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(
            () => HubDatabase.MigrateAsync(again, settings, new FakeTimeProvider(taken.AddHours(1)), CancellationToken.None));

        Assert.Contains("died while migrating", error.Message, StringComparison.Ordinal);
        Assert.Contains("DELETE FROM \"__EFMigrationsLock\"", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SqlServerIdempotentScript_CreatesEveryTableOfTheModel_GuardedByTheMigrationsHistory()
    {
        // SQL Server cannot run here: check the T-SQL a DBA would be given (deploy/README.md) instead.
        using var db = HubDatabase.CreateContext(DatabaseProvider.SqlServer, "Server=never-opened.invalid;Database=ShareHub");
        var script = db.GetService<IMigrator>().GenerateScript(options: MigrationsSqlGenerationOptions.Idempotent);

        Assert.StartsWith("IF OBJECT_ID(N'[__EFMigrationsHistory]') IS NULL", script.TrimStart('\uFEFF'), StringComparison.Ordinal);
        foreach (var table in db.Model.GetEntityTypes().Select(e => e.GetTableName()).Distinct())
        {
            Assert.Contains($"CREATE TABLE [{table}] (", script, StringComparison.Ordinal);
        }

        Assert.Contains("INSERT INTO [audit_chain_head] ([Id], [Hash], [Sequence])", script, StringComparison.Ordinal);
        Assert.All(db.Database.GetMigrations(), id => Assert.Contains($"WHERE [MigrationId] = N'{id}'", script, StringComparison.Ordinal));
    }

    [Fact]
    public async Task SqlServerConnection_FailsOnTheNetwork_NotOnGlobalizationInvariantMode()
    {
        // No SQL Server here: nothing listens on loopback port 1. SqlClient refuses to open any connection when the
        // process runs in globalization-invariant mode (NotSupportedException); the hub must reach the network step.
        await using var db = HubDatabase.CreateContext(DatabaseProvider.SqlServer, "Server=tcp:127.0.0.1,1;Database=ShareHub;Connect Timeout=2;Encrypt=False");

        var error = await Record.ExceptionAsync(() => db.Database.OpenConnectionAsync());

        Assert.IsType<Microsoft.Data.SqlClient.SqlException>(error);
    }

    private (ShareHubOptions Settings, string File) Sqlite(string name)
    {
        var file = Path.Combine(_folder, name + ".db");
        return (new ShareHubOptions { Database = DatabaseProvider.Sqlite, ConnectionString = $"Data Source={file}" }, file);
    }

    private static async Task<T> ScalarAsync<T>(string file, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={file};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (T)(await command.ExecuteScalarAsync())!;
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // best effort: a temp folder
        }
    }
}
