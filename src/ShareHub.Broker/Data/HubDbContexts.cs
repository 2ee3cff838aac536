using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;
using ShareHub.Broker.Configuration;

namespace ShareHub.Broker.Data;

/// <summary>The hub's database on SQLite (the embedded default); migrations in <c>Data/Migrations/Sqlite</c>.</summary>
public sealed class SqliteHubDbContext(DbContextOptions<SqliteHubDbContext> options) : HubDbContext(options);

/// <summary>The hub's database on PostgreSQL; migrations in <c>Data/Migrations/Postgres</c>.</summary>
public sealed class PostgresHubDbContext(DbContextOptions<PostgresHubDbContext> options) : HubDbContext(options);

/// <summary>The hub's database on Microsoft SQL Server; migrations in <c>Data/Migrations/SqlServer</c>.</summary>
public sealed class SqlServerHubDbContext(DbContextOptions<SqlServerHubDbContext> options) : HubDbContext(options);

/// <summary>
/// Design-time factories for <c>dotnet ef</c> (eng/migrations.sh): they build each provider's model exactly as the
/// running hub does (<see cref="HubDatabase.UseProvider"/>) without reading configuration or reaching a server —
/// generating a migration never opens a connection.
/// </summary>
internal sealed class SqliteHubDbContextFactory : IDesignTimeDbContextFactory<SqliteHubDbContext>
{
    public SqliteHubDbContext CreateDbContext(string[] args) => (SqliteHubDbContext)HubDatabase.CreateContext(DatabaseProvider.Sqlite, "Data Source=design-time.db");
}

/// <inheritdoc cref="SqliteHubDbContextFactory"/>
internal sealed class PostgresHubDbContextFactory : IDesignTimeDbContextFactory<PostgresHubDbContext>
{
    public PostgresHubDbContext CreateDbContext(string[] args) => (PostgresHubDbContext)HubDatabase.CreateContext(DatabaseProvider.Postgres, "Host=localhost;Database=sharehub");
}

/// <inheritdoc cref="SqliteHubDbContextFactory"/>
internal sealed class SqlServerHubDbContextFactory : IDesignTimeDbContextFactory<SqlServerHubDbContext>
{
    public SqlServerHubDbContext CreateDbContext(string[] args) => (SqlServerHubDbContext)HubDatabase.CreateContext(DatabaseProvider.SqlServer, "Server=localhost;Database=ShareHub;TrustServerCertificate=True");
}
