using ShareHub.Broker.Tests.Infrastructure;

namespace ShareHub.Broker.Tests.Component;

/// <summary>The broker on its embedded default (a SQLite file of its own + in-memory bus) with in-process partners.</summary>
public sealed class ComponentHub : IAsyncDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "sharehub-tests", Guid.NewGuid().ToString("N"));

    public ComponentHub(Dictionary<string, string?>? settings = null, string environment = "Development", Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? services = null)
    {
        Directory.CreateDirectory(_folder);
        DatabaseFile = Path.Combine(_folder, "hub.db");
        var all = new Dictionary<string, string?>
        {
            ["ShareHub:Database"] = "Sqlite",
            ["ShareHub:ConnectionString"] = $"Data Source={DatabaseFile}",
            ["ShareHub:Bus"] = "InMemory",
            ["ShareHub:Dispatcher:PollIntervalMilliseconds"] = "100",
            // Rows another instance left behind (DispatcherDown_…) are swept after 2 s instead of 10.
            ["ShareHub:Dispatcher:SweepAfterSeconds"] = "2",
        };
        foreach (var (key, value) in settings ?? [])
        {
            all[key] = value;
        }

        var partners = HubFactory.WithPartners(Partners, Signals.Gemeente, Signals.Riec, Signals.Fiod, Signals.Politie, Signals.Belastingdienst);
        Factory = new HubFactory(all, s => { partners(s); services?.Invoke(s); }, environment);
    }

    public string DatabaseFile { get; }

    public PartnerRecorder Partners { get; } = new();

    public HubFactory Factory { get; }

    public HttpClient ClientFor(string organisation, string? roles = null) => Factory.ClientFor(organisation, roles);

    public async ValueTask DisposeAsync()
    {
        await Factory.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A file still held open by the OS is left for the temp cleaner.
        }
    }
}
