using ShareHub.Broker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace ShareHub.Broker.Tests.Integration;

/// <summary>Several broker processes, each with several publishing loops, on one PostgreSQL database and one RabbitMQ virtual host.</summary>
[Collection(RealServersCollection.Name)]
public sealed class MultiInstanceTests(ITestOutputHelper output)
{
    private static readonly string[] AllPartners = [Signals.Gemeente, Signals.Riec, Signals.Fiod, Signals.Politie, Signals.Belastingdienst];

    [Fact]
    public async Task ThreeBrokerProcesses_EachDeliveryIsPublishedOnce_NoneLostOrDuplicated()
    {
        const int perInstance = 300;
        await using var servers = await RealServers.CreateAsync();
        using var identity = new ProcessIdentity(AllPartners);
        var recorder = new PartnerRecorder();
        var settings = servers.HubSettings().Concat(identity.Settings()).ToDictionary();
        // Three publishing loops per instance, and each instance's sweep claiming rows of the same outbox.
        settings["ShareHub:Dispatcher:Concurrency"] = "3";
        var brokers = new List<BrokerProcess>();
        PartnerBusHost? partners = null;
        try
        {
            // All at once, as replicas of a Deployment start: they race to migrate the schema and to seed the same clients.
            var starting = Enumerable.Range(0, 3).Select(_ => BrokerProcess.StartAsync(settings, BrokerProcess.FreePort())).ToList();
            try
            {
                await Task.WhenAll(starting);
            }
            finally
            {
                brokers.AddRange(starting.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result)); // stopped below either way
            }

            // Partners acknowledge to any instance, as they would through one load-balanced address.
            partners = await PartnerBusHost.StartAsync(servers, org => identity.TokenClient(org, brokers[0].Address), recorder, AllPartners);
            var streams = brokers.Select(b => new SignalStream(() => identity.ClientForAsync(Signals.Gemeente, b.Address).GetAwaiter().GetResult(), perInstance, concurrency: 4)).ToList();
            await Task.WhenAll(streams.Select(s => s.RunAsync(_ => Signals.KvkSignal(Signals.Riec, Signals.Fiod), TimeSpan.FromMinutes(3))));
            Assert.All(streams, s => Assert.Equal(perInstance, s.Accepted.Count));

            var permits = streams.SelectMany(s => s.Accepted).SelectMany(a => a.Decisions).Where(d => d.Permitted).Select(d => d.DeliveryId!.Value).ToHashSet();
            // Partners process up to PrefetchCount deliveries at once, so handling runs ahead of the (HTTP, then batched)
            // acknowledgements: wait for those too.
            Assert.True(await PartnerRecorder.WaitUntilAsync(async () =>
                await servers.ScalarAsync<long>("SELECT count(*) FROM outbox WHERE \"DispatchedAt\" IS NULL") == 0 && recorder.Handled.Count >= permits.Count
                    && await servers.ScalarAsync<long>("SELECT count(*) FROM acknowledgements") >= permits.Count,
                TimeSpan.FromMinutes(2)));
            await Task.Delay(1000);

            // Published exactly once: no delivery was taken off a queue twice, so no instance published another's row.
            Assert.Equal(permits.Count, recorder.Received.Count);
            Assert.True(permits.SetEquals(recorder.Handled.Select(h => h.Delivery.DeliveryId)));
            Assert.Equal(permits.Count, await servers.ScalarAsync<long>("SELECT count(*) FROM acknowledgements"));
            output.WriteLine($"MULTI-INSTANCE: brokers 3 | signals {streams.Sum(s => s.Accepted.Count)} | permits {permits.Count} | consumed {recorder.Received.Count} | duplicates {recorder.Received.Count - permits.Count}");
        }
        finally
        {
            if (partners is not null)
            {
                await partners.DisposeAsync();
            }

            foreach (var broker in brokers)
            {
                await broker.DisposeAsync();
            }
        }
    }
}
