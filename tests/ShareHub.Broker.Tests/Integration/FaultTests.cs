using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;
using Xunit.Abstractions;

namespace ShareHub.Broker.Tests.Integration;

/// <summary>
/// Breaks things for real: SIGKILL of the broker process mid-stream, RabbitMQ stopped for more than ten seconds,
/// PostgreSQL stopped. Invariants: nothing accepted is lost, every delivery reaches its partner's handler exactly once,
/// no delivery exists without its audit entry, and denied pairs never reach a queue. Each test prints a
/// <c>RELIABILITY:</c> line with its figures (eng/reliability.sh collects them for docs/reliability.md).
/// </summary>
[Collection(RealServersCollection.Name)]
public sealed class FaultTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private static readonly string[] AllPartners = [Signals.Gemeente, Signals.Riec, Signals.Fiod, Signals.Politie, Signals.Belastingdienst];

    [Fact]
    public async Task BrokerKilledMidStream_EveryAcceptedSignalIsDeliveredExactlyOnce_AndNothingUnaudited()
    {
        const int total = 2000;
        await using var servers = await RealServers.CreateAsync();
        using var identity = new ProcessIdentity(AllPartners);
        var recorder = new PartnerRecorder();
        var settings = servers.HubSettings().Concat(identity.Settings()).ToDictionary();
        var port = BrokerProcess.FreePort();
        var broker = await BrokerProcess.StartAsync(settings, port);
        await using var partners = await PartnerBusHost.StartAsync(servers, org => identity.TokenClient(org, broker.Address), recorder, AllPartners);
        try
        {
            var stream = new SignalStream(() => identity.ClientForAsync(Signals.Gemeente, broker.Address).GetAwaiter().GetResult(), total, concurrency: 8);
            var run = stream.RunAsync(_ => Signals.KvkSignal(Signals.Riec, Signals.Fiod), TimeSpan.FromMinutes(5));

            Assert.True(await PartnerRecorder.WaitUntilAsync(() => stream.Accepted.Count >= total / 3 || run.IsCompleted, Patience));
            broker.Kill(); // SIGKILL: in-flight transactions die, published-but-unmarked rows stay unmarked
            var acceptedAtKill = stream.Accepted.Count;
            await broker.DisposeAsync();
            broker = await BrokerProcess.StartAsync(settings, port);
            await run;

            var stats = await AssertEverythingDeliveredOnceAsync(servers, recorder, stream);
            Assert.True(acceptedAtKill < stream.Accepted.Count, "the stream continued after the restart");
            Assert.Equal(total, stream.Accepted.Count); // with idempotent retries every signal is accepted exactly once
            Assert.Equal(total, stream.Accepted.Select(a => a.SignalId).Distinct().Count());
            output.WriteLine($"RELIABILITY: kill-9 | attempted {stream.Attempted} | accepted {stream.Accepted.Count} | accepted before kill {acceptedAtKill} | resubmitted after a cut-off request {stream.Unanswered} | resubmitted after a refused connection {stream.ConnectionRetries} | refused {stream.Refused.Count} | committed permits {stats.Permits} | delivered {stats.Handled} | redeliveries absorbed {stats.Duplicates} | lost 0");
        }
        finally
        {
            await broker.DisposeAsync();
        }
    }

    [Fact]
    public async Task RabbitMqStoppedForTenSeconds_SubmissionsStillAccepted_DeliveriesResumeAndNothingIsLost()
    {
        await using var servers = await RealServers.CreateAsync();
        var recorder = new PartnerRecorder();
        await using var hub = new HubFactory(Unlimited(servers.HubSettings()));
        await using var partners = await PartnerBusHost.StartAsync(servers, hub, recorder, AllPartners);
        var all = new SignalStream(() => hub.ClientFor(Signals.Gemeente), 200, concurrency: 4);
        await all.RunAsync(_ => Signals.KvkSignal(Signals.Riec, Signals.Fiod), TimeSpan.FromMinutes(1));

        var duringOutage = new SignalStream(() => hub.ClientFor(Signals.Gemeente), int.MaxValue, concurrency: 4);
        var outage = System.Diagnostics.Stopwatch.StartNew();
        await RealServers.ServicesAsync("rabbitmq-stop");
        try
        {
            await duringOutage.RunAsync(_ => Signals.KvkSignal(Signals.Riec, Signals.Fiod), TimeSpan.FromSeconds(10));
        }
        finally
        {
            await RealServers.ServicesAsync("rabbitmq-start");
        }

        var down = outage.Elapsed;
        Assert.True(down >= TimeSpan.FromSeconds(10));
        Assert.NotEmpty(duringOutage.Accepted);
        Assert.Empty(duringOutage.Refused);

        var after = new SignalStream(() => hub.ClientFor(Signals.Gemeente), 200, concurrency: 4);
        await after.RunAsync(_ => Signals.KvkSignal(Signals.Riec, Signals.Fiod), TimeSpan.FromMinutes(1));

        var stats = await AssertEverythingDeliveredOnceAsync(servers, recorder, all, duringOutage, after);
        output.WriteLine($"RELIABILITY: rabbitmq-down | outage {down.TotalSeconds:F1} s | accepted during outage {duringOutage.Accepted.Count} | accepted in all {all.Accepted.Count + duringOutage.Accepted.Count + after.Accepted.Count} | committed permits {stats.Permits} | delivered {stats.Handled} | redeliveries absorbed {stats.Duplicates} | lost 0");
    }

    [Fact]
    public async Task PostgresStopped_ApiAnswers503ProblemDetails_StoresNothing_AndRecoversByItself()
    {
        await using var servers = await RealServers.CreateAsync();
        await using var hub = new HubFactory(servers.HubSettings());
        var client = hub.ClientFor(Signals.Gemeente);
        await client.SubmitAcceptedAsync(Signals.KvkSignal());

        var refused = 0;
        await RealServers.ServicesAsync("postgres-stop");
        try
        {
            for (var i = 0; i < 5; i++)
            {
                using var response = await client.SubmitAsync(Signals.KvkSignal());
                Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
                Assert.Equal("urn:sharehub:error:SH-S0503", problem.GetProperty("type").GetString());
                Assert.True(response.Headers.RetryAfter is not null);
                refused++;
            }
        }
        finally
        {
            await RealServers.ServicesAsync("postgres-start");
        }

        // Recovers without a restart: stale pooled connections are replaced on the next attempts.
        var recovered = System.Diagnostics.Stopwatch.StartNew();
        Assert.True(await PartnerRecorder.WaitUntilAsync(async () =>
        {
            using var response = await client.SubmitAsync(Signals.KvkSignal());
            return response.StatusCode == HttpStatusCode.Accepted;
        }, TimeSpan.FromSeconds(60)));
        var accepted = 1 + 1; // before the outage, and the one that recovered

        Assert.Equal(accepted, await servers.ScalarAsync<long>("SELECT count(*) FROM signals"));
        output.WriteLine($"RELIABILITY: postgres-down | refused with 503 {refused} | stored while down 0 | recovered after {recovered.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task PartnerHandlerKeepsFailing_DeliveryGoesToItsErrorQueue_AndReplayDeliversItOnce()
    {
        await using var servers = await RealServers.CreateAsync();
        var recorder = new PartnerRecorder();
        var failing = true;
        recorder.OnHandle = _ => failing ? throw new InvalidOperationException("case system unavailable") : Task.CompletedTask;
        // One message per delivery, so the error queue's depth counts deliveries (a bundle's: DeliveryBundleTests).
        var settings = servers.HubSettings();
        settings["ShareHub:Dispatcher:BundleSize"] = "1";
        await using var hub = new HubFactory(settings);
        await using var partners = await PartnerBusHost.StartAsync(servers, hub, recorder, AllPartners);
        var client = hub.ClientFor(Signals.Gemeente);
        var submitted = new List<SubmitSignalResponse>();
        for (var i = 0; i < 3; i++)
        {
            submitted.Add(await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec)));
        }

        // Retries exhausted: the messages wait in the partner's error queue, visible to operators, not acknowledged.
        Assert.True(await PartnerRecorder.WaitUntilAsync(
            async () => await Partner.ErrorQueue.CountAsync(servers.RabbitMqUri, Signals.Riec) == 3, Patience));
        Assert.Empty(recorder.Handled);
        Assert.Equal(0, await servers.ScalarAsync<long>("SELECT count(*) FROM acknowledgements"));
        var status = await hub.ClientFor(Signals.Gemeente).GetFromJsonAsync<SignalStatusResponse>($"/api/v1/signals/{submitted[0].SignalId}", Signals.Json);
        Assert.Equal("dispatched", status!.Recipients.Single().DeliveryState);

        // The partner fixes its system; the operator replays the error queue.
        failing = false;
        Assert.Equal(3, await Partner.ErrorQueue.ReplayAsync(servers.RabbitMqUri, Signals.Riec));

        Assert.True(await PartnerRecorder.WaitUntilAsync(
            async () => await servers.ScalarAsync<long>("SELECT count(*) FROM acknowledgements") == 3, Patience));
        Assert.Equal(submitted.Select(s => s.Decisions.Single().DeliveryId!.Value).Order(), recorder.Handled.Select(h => h.Delivery.DeliveryId).Order());
        Assert.Equal(0u, await Partner.ErrorQueue.CountAsync(servers.RabbitMqUri, Signals.Riec));
        output.WriteLine($"RELIABILITY: partner-failure | failed deliveries parked in error queue 3 | replayed 3 | delivered after replay {recorder.Handled.Count} | acknowledged 3 | dropped 0");
    }

    /// <summary>Waits until the outbox is drained and checks the delivery invariants on the database and the partners.</summary>
    private static async Task<(int Permits, int Handled, int Duplicates)> AssertEverythingDeliveredOnceAsync(RealServers servers, PartnerRecorder recorder, params SignalStream[] streams)
    {
        // Every permit committed to the database — including those whose 202 was lost in a crash — must be delivered.
        Assert.True(await PartnerRecorder.WaitUntilAsync(async () =>
            await servers.ScalarAsync<long>("SELECT count(*) FROM outbox WHERE \"DispatchedAt\" IS NULL") == 0
            && recorder.Handled.Count >= await servers.ScalarAsync<long>("SELECT count(*) FROM audit_entries WHERE \"Kind\" = 'signal.decision' AND \"Outcome\" = 'permit'"),
            Patience), $"not all deliveries arrived: handled {recorder.Handled.Count}");
        await Task.Delay(1000); // let any straggling redelivery arrive before counting

        var permitted = (await servers.GuidsAsync("SELECT \"DeliveryId\" FROM audit_entries WHERE \"Kind\" = 'signal.decision' AND \"Outcome\" = 'permit'")).ToHashSet();
        var handled = recorder.Handled.ToList();
        var handledIds = handled.Select(h => h.Delivery.DeliveryId).ToList();

        Assert.Equal(handledIds.Count, handledIds.Distinct().Count());     // exactly once at the handler
        Assert.True(permitted.SetEquals(handledIds), "delivered set differs from the audited permits"); // none lost, none unaudited
        Assert.All(handled, h => Assert.Equal(Signals.Riec, h.Organisation)); // the denied recipient (fiod) got nothing
        var acceptedPermits = streams.SelectMany(s => s.Accepted).SelectMany(a => a.Decisions).Where(d => d.Permitted).Select(d => d.DeliveryId!.Value);
        Assert.All(acceptedPermits, id => Assert.Contains(id, permitted));  // every 202 was committed
        var depths = await servers.QueueDepthsAsync();
        Assert.DoesNotContain(depths, d => d.Key.EndsWith("_error", StringComparison.Ordinal) && d.Value > 0);
        return (permitted.Count, handled.Count, recorder.Received.Count - handled.Count);
    }

    /// <summary>Streams of thousands of signals from one client: lift the per-client rate limit (429) for the run.</summary>
    private static Dictionary<string, string?> Unlimited(Dictionary<string, string?> settings)
    {
        settings["ShareHub:Identity:PermitsPerMinute"] = "10000000";
        return settings;
    }
}
