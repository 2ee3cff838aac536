using MassTransit;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Tests.Infrastructure;

/// <summary>
/// Hosts the real broker (Program.cs, real middleware, real EF Core provider, real MassTransit transport) in the test
/// process. Only configuration differs between tests; nothing inside the broker is replaced.
/// </summary>
public sealed class HubFactory(IReadOnlyDictionary<string, string?> settings, Action<IServiceCollection>? services = null, string environment = "Development")
    : WebApplicationFactory<Program>
{
    /// <summary>A fixed, test-only partnership key (base64 of 32 bytes).</summary>
    public const string TestPartnershipKey = BrokerProcess.TestPartnershipKey;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment(environment);
        builder.UseSetting("ShareHub:PartnershipKey", TestPartnershipKey);
        builder.UseSetting("ShareHub:Authentication:Mode", "Development");
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }

        if (services is not null)
        {
            builder.ConfigureServices(services);
        }
    }

    /// <summary>A client that authenticates as <paramref name="organisation"/> with the development scheme.</summary>
    public HttpClient ClientFor(string organisation, string? roles = null)
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Add("X-ShareHub-Dev-Organisation", organisation);
        if (roles is not null)
        {
            client.DefaultRequestHeaders.Add("X-ShareHub-Dev-Roles", roles);
        }

        return client;
    }

    /// <summary>Runs <paramref name="action"/> against the hub's database in a fresh scope.</summary>
    public async Task<T> WithDbAsync<T>(Func<HubDbContext, Task<T>> action)
    {
        using var scope = Services.CreateScope();
        return await action(scope.ServiceProvider.GetRequiredService<HubDbContext>());
    }

    /// <summary>Registers in-process partners on the hub's own bus (in-memory transport).</summary>
    public static Action<IServiceCollection> WithPartners(PartnerRecorder recorder, params string[] organisations) => services =>
    {
        foreach (var organisation in organisations)
        {
            services.AddSingleton(new BusEndpointContribution((context, cfg) => recorder.ConfigureEndpoint(cfg, organisation)));
        }
    };
}
