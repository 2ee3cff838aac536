using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ShareHub.Contracts;

namespace ShareHub.Partner;

/// <summary>Settings of a partner system.</summary>
public sealed class PartnerOptions
{
    /// <summary>Your organisation code in the partnership's policy set (e.g. <c>fiod</c>).</summary>
    public string Organisation { get; set; } = string.Empty;

    /// <summary>RabbitMQ address with your partner credentials.</summary>
    public Uri RabbitMqUri { get; set; } = new("amqp://127.0.0.1:5672/sharehub");

    /// <summary>Retry intervals before a failing delivery moves to your <c>_error</c> queue.</summary>
    public IReadOnlyList<TimeSpan> RetryIntervals { get; set; } = [TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5)];
}

/// <summary>Registers a partner's delivery consumer.</summary>
public static class PartnerBus
{
    /// <summary>
    /// Configures the receive endpoint for <paramref name="options"/>' own delivery queue on any MassTransit bus
    /// (RabbitMQ in production; the in-memory bus in the demo).
    /// </summary>
    public static void ConfigureDeliveryEndpoint(
        IReceiveConfigurator configurator,
        PartnerOptions options,
        IDeliveryHandler handler,
        IDeliveryInbox inbox,
        TimeProvider time,
        ILoggerFactory? loggers = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Organisation);
        var logger = (loggers ?? NullLoggerFactory.Instance).CreateLogger<DeliveryConsumer>();
        configurator.ReceiveEndpoint(QueueNames.Deliveries(options.Organisation), endpoint =>
        {
            endpoint.UseMessageRetry(r => r.Intervals([.. options.RetryIntervals]));
            endpoint.Consumer(() => new DeliveryConsumer(options.Organisation, handler, inbox, time, logger));
        });
    }

    /// <summary>
    /// Adds a MassTransit bus over RabbitMQ that consumes this partner's deliveries with the registered
    /// <see cref="IDeliveryHandler"/> and <see cref="IDeliveryInbox"/> (in-memory unless you register your own).
    /// </summary>
    public static IServiceCollection AddShareHubPartner(this IServiceCollection services, Action<PartnerOptions> configure)
    {
        var options = new PartnerOptions();
        configure(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Organisation);

        services.AddSingleton(options);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IDeliveryInbox, InMemoryDeliveryInbox>();
        services.AddMassTransit(bus => bus.UsingRabbitMq((context, cfg) =>
        {
            cfg.Host(options.RabbitMqUri);
            ConfigureDeliveryEndpoint(cfg, options,
                context.GetRequiredService<IDeliveryHandler>(),
                context.GetRequiredService<IDeliveryInbox>(),
                context.GetRequiredService<TimeProvider>(),
                context.GetService<ILoggerFactory>());
        }));
        return services;
    }
}
