using System.Diagnostics;
using System.Net;
using ShareHub.Broker.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using ShareHub.Contracts;
using Xunit.Abstractions;

namespace ShareHub.Broker.Tests.Integration;

/// <summary>
/// Readiness follows the real servers: it goes unhealthy when PostgreSQL or RabbitMQ stops and healthy again when they
/// return, while liveness stays up. These tests stop the shared servers, so they live in the non-parallel
/// <see cref="RealServersCollection"/> and restart the servers in <c>finally</c>, whatever happens.
/// </summary>
[Collection(RealServersCollection.Name)]
public sealed class ReadinessTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Readiness_GoesUnhealthyWhenPostgresOrRabbitMqStops_AndRecoversWhenTheyReturn()
    {
        await using var servers = await RealServers.CreateAsync();
        await using var hub = new HubFactory(servers.HubSettings());
        var client = hub.CreateClient();
        var transitions = new List<string>();

        try
        {
            await ExpectReadyAsync(client, HttpStatusCode.OK, "at start", transitions);

            await ServicesAsync("postgres-stop");
            await ExpectReadyAsync(client, HttpStatusCode.ServiceUnavailable, "PostgreSQL stopped", transitions);
            await ExpectLiveAsync(client);
            await ServicesAsync("postgres-start");
            await ExpectReadyAsync(client, HttpStatusCode.OK, "PostgreSQL back", transitions);

            await ServicesAsync("rabbitmq-stop");
            await ExpectReadyAsync(client, HttpStatusCode.ServiceUnavailable, "RabbitMQ stopped", transitions);
            await ExpectLiveAsync(client);
            await ServicesAsync("rabbitmq-start");
            await ExpectReadyAsync(client, HttpStatusCode.OK, "RabbitMQ back", transitions);
        }
        finally
        {
            output.WriteLine(string.Join(Environment.NewLine, transitions));
            // Never leave the shared servers down for the tests that follow, even when an assertion failed.
            await ServicesAsync("postgres-start");
            await ServicesAsync("rabbitmq-start");
        }
    }

    [Fact]
    public async Task QuorumVirtualHost_WithQuorumOption_CarriesTheExchangeOnQuorumQueuesOnly()
    {
        await using var servers = await RealServers.CreateAsync();
        // The production layout (deploy/k8s, deploy/compose): the vhost's default queue type is quorum, so queues that
        // partners and the hub's sends declare without a type are quorum queues, and the hub declares its own so too.
        var user = servers.RabbitMqUri.UserInfo.Split(':')[0];
        await RealServers.RabbitMqCtlAsync("delete_vhost", servers.VirtualHost);
        await RealServers.RabbitMqCtlAsync("add_vhost", servers.VirtualHost, "--default-queue-type", "quorum");
        await RealServers.RabbitMqCtlAsync("set_permissions", "-p", servers.VirtualHost, user, ".*", ".*", ".*");

        var recorder = new PartnerRecorder();
        var settings = servers.HubSettings();
        settings["ShareHub:RabbitMqQuorumQueues"] = "true";
        await using var hub = new HubFactory(settings);
        await using var partners = await PartnerBusHost.StartAsync(servers, hub, recorder, Signals.Riec, Signals.Fiod, Signals.Politie);
        await ExpectReadyAsync(hub.CreateClient(), HttpStatusCode.OK, "at start", []);

        var client = hub.ClientFor(Signals.Gemeente);
        var permitted = 0;
        for (var i = 0; i < 3; i++)
        {
            var response = await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod, Signals.Politie));
            permitted += response.Decisions.Count(d => d.Permitted);
        }

        Assert.True(permitted >= 3);
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => recorder.Handled.Count >= permitted, Patience), $"handled {recorder.Handled.Count} of {permitted}");
        Assert.True(await PartnerRecorder.WaitUntilAsync(
            async () => await hub.WithDbAsync(db => db.Acknowledgements.CountAsync()) >= permitted, Patience), "acknowledgements missing");

        var queues = (await RealServers.RabbitMqCtlAsync("list_queues", "-p", servers.VirtualHost, "--quiet", "--no-table-headers", "name", "type"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split('\t', ' '))
            .ToDictionary(parts => parts[0], parts => parts[^1]);
        Assert.Equal("quorum", queues[QueueNames.Acknowledgements]);
        Assert.Equal("quorum", queues[QueueNames.Deliveries(Signals.Riec)]);
        Assert.All(queues, q => Assert.Equal("quorum", q.Value));
    }

    private static async Task ExpectReadyAsync(HttpClient client, HttpStatusCode expected, string because, List<string> transitions)
    {
        var clock = Stopwatch.StartNew();
        HttpStatusCode last = 0;
        string body = string.Empty;
        while (clock.Elapsed < Patience)
        {
            using var response = await client.GetAsync("/health/ready");
            last = response.StatusCode;
            body = await response.Content.ReadAsStringAsync();
            if (last == expected)
            {
                // Status only: no check names, exception texts or connection strings.
                Assert.Contains(body, new[] { "Healthy", "Degraded", "Unhealthy" });
                transitions.Add($"{because}: {(int)expected} {body} after {clock.Elapsed.TotalSeconds:F1} s");
                return;
            }

            await Task.Delay(250);
        }

        Assert.Fail($"{because}: /health/ready stayed {(int)last} {body} for {Patience.TotalSeconds} s, expected {(int)expected}. So far: {string.Join("; ", transitions)}");
    }

    private static async Task ExpectLiveAsync(HttpClient client)
    {
        using var response = await client.GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private static async Task ServicesAsync(string command)
    {
        var script = Path.Combine(RepositoryRoot(), "eng", "services.sh");
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(command);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"eng/services.sh {command} failed ({process.ExitCode}): {await stderr}{await stdout}");
        }
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "eng", "services.sh")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("eng/services.sh not found above " + AppContext.BaseDirectory);
    }
}
