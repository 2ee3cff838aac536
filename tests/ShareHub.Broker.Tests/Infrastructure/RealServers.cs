using System.Diagnostics;
using Npgsql;

namespace ShareHub.Broker.Tests.Infrastructure;

/// <summary>
/// A private PostgreSQL database and RabbitMQ virtual host on the real servers that <c>eng/services.sh</c> starts,
/// created for one test and dropped afterwards, so tests never see each other's data or queues.
/// </summary>
public sealed class RealServers : IAsyncDisposable
{
    private const string DefaultPostgres = "Host=127.0.0.1;Port=5432;Database=sharehub;Username=sharehub;Password=sharehub-dev";
    private const string DefaultRabbitMq = "amqp://sharehub:sharehub-dev@127.0.0.1:5672/sharehub";

    private readonly string _adminConnection;

    private RealServers(string adminConnection, string database, string connectionString, string vhost, Uri rabbitMqUri)
    {
        _adminConnection = adminConnection;
        Database = database;
        PostgresConnectionString = connectionString;
        VirtualHost = vhost;
        RabbitMqUri = rabbitMqUri;
    }

    /// <summary>Name of this test's database.</summary>
    public string Database { get; }

    /// <summary>Connection string of this test's database.</summary>
    public string PostgresConnectionString { get; }

    /// <summary>This test's RabbitMQ virtual host.</summary>
    public string VirtualHost { get; }

    /// <summary>AMQP address of this test's virtual host.</summary>
    public Uri RabbitMqUri { get; }

    /// <summary>Broker settings pointing at these servers.</summary>
    public Dictionary<string, string?> HubSettings(bool dispatcherEnabled = true) => new()
    {
        ["ShareHub:Database"] = "Postgres",
        ["ShareHub:ConnectionString"] = PostgresConnectionString,
        ["ShareHub:Bus"] = "RabbitMq",
        ["ShareHub:RabbitMqUri"] = RabbitMqUri.ToString(),
        ["ShareHub:Dispatcher:Enabled"] = dispatcherEnabled ? "true" : "false",
        ["ShareHub:Dispatcher:PollIntervalMilliseconds"] = "200",
    };

    /// <summary>Creates a fresh database and virtual host.</summary>
    public static async Task<RealServers> CreateAsync()
    {
        var admin = Environment.GetEnvironmentVariable("SHAREHUB_TEST_POSTGRES") ?? DefaultPostgres;
        var amqp = new Uri(Environment.GetEnvironmentVariable("SHAREHUB_TEST_RABBITMQ") ?? DefaultRabbitMq);
        var suffix = Guid.NewGuid().ToString("N")[..12];
        var database = $"sharehub_it_{suffix}";
        var vhost = $"sharehub-it-{suffix}";

        try
        {
            await using var connection = new NpgsqlConnection(admin);
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{database}\"", connection);
            await create.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException ex)
        {
            throw new InvalidOperationException($"PostgreSQL is not reachable with '{admin}'. Start the test servers with: bash eng/services.sh start", ex);
        }

        var user = amqp.UserInfo.Split(':')[0];
        await RabbitMqCtlAsync("add_vhost", vhost);
        await RabbitMqCtlAsync("set_permissions", "-p", vhost, user, ".*", ".*", ".*");

        var connectionString = new NpgsqlConnectionStringBuilder(admin) { Database = database, Pooling = true }.ConnectionString;
        var rabbit = new UriBuilder(amqp) { Path = "/" + Uri.EscapeDataString(vhost) }.Uri;
        return new RealServers(admin, database, connectionString, vhost, rabbit);
    }

    /// <summary>Messages ready + unacknowledged per queue in this test's virtual host.</summary>
    public async Task<Dictionary<string, int>> QueueDepthsAsync()
    {
        var output = await RabbitMqCtlAsync("list_queues", "-p", VirtualHost, "--quiet", "--no-table-headers", "name", "messages");
        var depths = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = line.Split('\t', ' ');
            if (parts.Length >= 2 && int.TryParse(parts[^1], out var count))
            {
                depths[parts[0]] = count;
            }
        }

        return depths;
    }

    /// <summary>Runs a scalar SQL query against this test's database.</summary>
    public async Task<T> ScalarAsync<T>(string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return (T)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Runs a query returning one uuid column.</summary>
    public async Task<List<Guid>> GuidsAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var ids = new List<Guid>();
        while (await reader.ReadAsync())
        {
            ids.Add(reader.GetGuid(0));
        }

        return ids;
    }

    /// <summary>Runs <c>eng/services.sh</c> with a subcommand (e.g. rabbitmq-stop) to break or restore a server.</summary>
    public static async Task ServicesAsync(string subcommand)
    {
        var script = Path.Combine(RepositoryRoot(), "eng", "services.sh");
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(subcommand);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"eng/services.sh {subcommand} failed ({process.ExitCode}): {await stdout}{await stderr}");
        }
    }

    /// <summary>The repository root (the folder holding ShareHub.sln).</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ShareHub.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("ShareHub.sln not found above the test binaries.");
    }

    /// <summary>Runs a SQL statement against this test's database.</summary>
    public async Task<int> ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteNonQueryAsync();
    }

    /// <summary>Runs rabbitmqctl against the local node.</summary>
    public static async Task<string> RabbitMqCtlAsync(params string[] arguments)
    {
        var start = new ProcessStartInfo("rabbitmqctl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("rabbitmqctl was not found. Start the test servers with: bash eng/services.sh start", ex);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"rabbitmqctl {string.Join(' ', arguments)} failed ({process.ExitCode}): {await stderr}");
            }

            return await stdout;
        }
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using (var connection = new NpgsqlConnection(_adminConnection))
        {
            await connection.OpenAsync();
            try
            {
                await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{Database}\" WITH (FORCE)", connection);
                await drop.ExecuteNonQueryAsync();
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                // WITH (FORCE) checks that it may signal every session on the database before it ends any, and PostgreSQL
                // 15 counts an autovacuum worker (which runs as no role) among them: after a long benchmark run one is
                // often at work there. A plain DROP DATABASE stops autovacuum workers itself and waits (up to 5 s) for
                // other sessions to end, so end this role's sessions (e.g. a broker process's pool), then drop.
                await using var terminate = new NpgsqlCommand(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = $1 AND usename = current_user AND pid <> pg_backend_pid()",
                    connection);
                terminate.Parameters.Add(new NpgsqlParameter { Value = Database });
                await terminate.ExecuteNonQueryAsync();
                await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{Database}\"", connection);
                await drop.ExecuteNonQueryAsync();
            }
        }

        await RabbitMqCtlAsync("delete_vhost", VirtualHost);
    }
}
