using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ShareHub.Contracts;

namespace ShareHub.Partner;

/// <summary>Settings of a partner system.</summary>
public sealed class PartnerOptions
{
    /// <summary>Your organisation code in the partnership's policy set (e.g. <c>fiod</c>).</summary>
    public string Organisation { get; set; } = string.Empty;

    /// <summary>
    /// RabbitMQ address with your partner credentials (the hub provisions a user that may only read your own delivery
    /// queue: <c>sharehub partners provision</c>).
    /// </summary>
    public Uri RabbitMqUri { get; set; } = new("amqp://127.0.0.1:5672/sharehub");

    /// <summary>How you authenticate to the hub's HTTP API (acknowledgements).</summary>
    public HubClientCredentials Hub { get; set; } = new();

    /// <summary>Retry intervals before a failing delivery moves to your <c>_error</c> queue.</summary>
    public IReadOnlyList<TimeSpan> RetryIntervals { get; set; } = [TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5)];

    /// <summary>
    /// Deliveries taken off the queue and not yet acked on it (AMQP <c>basic.qos</c> prefetch): being handled, or
    /// handled and waiting for the hub to record their acknowledgement. A delivery keeps its place until the hub
    /// committed the acknowledgement (a transaction at the hub, tens to hundreds of milliseconds when the hub is busy
    /// with batch submissions), so this bounds a partner's throughput at about PrefetchCount per acknowledgement round
    /// trip; the acknowledgements due while <see cref="AcknowledgementRequests"/> requests are under way go together in
    /// the next (up to 500 each). 512: with 64 a partner fell behind a hub taking batches of 20 by half a minute
    /// (docs/architecture.md). The messages wait in your process's memory (about 1 kB each, a bundle up to 64 kB) and
    /// are not offered to your other instances meanwhile.
    /// </summary>
    public ushort PrefetchCount { get; set; } = 512;

    /// <summary>
    /// Acknowledgement requests to the hub under way at once (1–16). Behind batch submissions the hub takes a few
    /// hundred milliseconds to commit a request's acknowledgements; with one request at a time (up to 500
    /// acknowledgements each) a partner fell seconds behind a hub accepting 5,000 signals a second (docs/benchmarks.md,
    /// session 25). An idle partner still sends each acknowledgement at once, alone.
    /// </summary>
    public ushort AcknowledgementRequests { get; set; } = DefaultAcknowledgementRequests;

    /// <summary>The default of <see cref="AcknowledgementRequests"/>.</summary>
    internal const ushort DefaultAcknowledgementRequests = 4;

    /// <summary>
    /// Calls of your <see cref="IDeliveryHandler"/> at once (it must be thread-safe): the concurrency your code must
    /// bear. A handled delivery waiting for the hub's acknowledgement no longer holds a call. At most
    /// <see cref="PrefetchCount"/>. Lower it if your handler cannot bear the concurrency.
    /// </summary>
    public ushort HandlerConcurrency { get; set; } = 64;
}

/// <summary>Registers a partner's delivery consumer.</summary>
public static class PartnerBus
{
    /// <summary>
    /// Configures the receive endpoint for <paramref name="options"/>' own delivery queue on a MassTransit bus the hub
    /// owns — the demo's in-memory bus, where partners run inside the hub's process and acknowledge on that bus.
    /// </summary>
    public static void ConfigureDeliveryEndpoint(
        IReceiveConfigurator configurator,
        PartnerOptions options,
        IDeliveryHandler handler,
        IDeliveryInbox inbox,
        TimeProvider time,
        ILoggerFactory? loggers = null)
    {
        ArgumentNullException.ThrowIfNull(configurator);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Organisation);
        var processor = new DeliveryProcessor(options.Organisation, handler, inbox, (loggers ?? NullLoggerFactory.Instance).CreateLogger<DeliveryConsumer>());
        configurator.ReceiveEndpoint(QueueNames.Deliveries(options.Organisation), endpoint =>
        {
            endpoint.UseMessageRetry(r => r.Intervals([.. options.RetryIntervals]));
            endpoint.Consumer(() => new DeliveryConsumer(processor, time));
            endpoint.Consumer(() => new CaseEventConsumer(processor, time));
            endpoint.Consumer(() => new SignalBundleConsumer(processor, time));
        });
    }

    /// <summary>
    /// Adds a hosted listener on this partner's RabbitMQ delivery queue (least privilege: consume only, no topology,
    /// no publish) with the registered <see cref="IDeliveryHandler"/> and <see cref="IDeliveryInbox"/> (in-memory
    /// unless you register your own); acknowledgements go to the hub over HTTP with a private_key_jwt access token.
    /// </summary>
    public static IServiceCollection AddShareHubPartner(this IServiceCollection services, Action<PartnerOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var options = new PartnerOptions();
        configure(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Organisation);
        if (options.Hub.Scopes.Count == 0)
        {
            options.Hub.Scopes = [HubApi.DeliveriesScope];
        }

        services.AddSingleton(options);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IDeliveryInbox, InMemoryDeliveryInbox>();
        // One long-lived HttpClient for the hub (the SocketsHttpHandler pools and renews connections itself).
        services.AddSingleton(sp => new HubTokenClient(new HttpClient(), options.Hub, sp.GetRequiredService<TimeProvider>()));
        services.AddHostedService(sp => new PartnerListenerService(sp, options));
        return services;
    }

    private sealed class PartnerListenerService(IServiceProvider services, PartnerOptions options) : IHostedService
    {
        private RabbitMqDeliveryListener? _listener;

        public async Task StartAsync(CancellationToken cancellationToken)
        {
            var time = services.GetRequiredService<TimeProvider>();
            var loggers = services.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance;
            var processor = new DeliveryProcessor(options.Organisation, services.GetRequiredService<IDeliveryHandler>(),
                services.GetRequiredService<IDeliveryInbox>(), loggers.CreateLogger<DeliveryProcessor>());
            _listener = new RabbitMqDeliveryListener(options, processor,
                RabbitMqDeliveryListener.HttpAcknowledgement(services.GetRequiredService<HubTokenClient>(), time, options.AcknowledgementRequests), time,
                loggers.CreateLogger<RabbitMqDeliveryListener>());
            await _listener.StartAsync(cancellationToken).ConfigureAwait(false);
        }

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            if (_listener is not null)
            {
                await _listener.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
