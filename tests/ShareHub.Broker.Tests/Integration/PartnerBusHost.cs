using MassTransit;
using ShareHub.Broker.Tests.Infrastructure;

namespace ShareHub.Broker.Tests.Integration;

/// <summary>
/// Partner systems running their own MassTransit bus over RabbitMQ — separate from the broker's bus, as they would be
/// in production — with the real Partner SDK consumer on each organisation's queue.
/// </summary>
public sealed class PartnerBusHost : IAsyncDisposable
{
    private readonly IBusControl _bus;

    private PartnerBusHost(IBusControl bus, PartnerRecorder recorder)
    {
        _bus = bus;
        Recorder = recorder;
    }

    public PartnerRecorder Recorder { get; }

    public static async Task<PartnerBusHost> StartAsync(Uri rabbitMq, PartnerRecorder recorder, params string[] organisations)
    {
        var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(rabbitMq);
            foreach (var organisation in organisations)
            {
                recorder.ConfigureEndpoint(cfg, organisation);
            }
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await bus.StartAsync(timeout.Token);
        return new PartnerBusHost(bus, recorder);
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _bus.StopAsync(timeout.Token);
    }
}
