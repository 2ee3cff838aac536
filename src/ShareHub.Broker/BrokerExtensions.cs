using FluentValidation;
using MassTransit;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ShareHub.Broker.Api;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Configuration;
using ShareHub.Broker.Data;
using ShareHub.Broker.Delivery;
using ShareHub.Broker.Observability;
using ShareHub.Broker.Identity;
using ShareHub.Broker.Policies;
using ShareHub.Broker.Security;

namespace ShareHub.Broker;

/// <summary>
/// Extra receive endpoints on the hub's bus. Used by the demo (partners in the same process on the in-memory
/// transport) and by tests; a production hub registers none.
/// </summary>
/// <param name="Configure">Called while the bus is configured.</param>
public sealed record BusEndpointContribution(Action<IBusRegistrationContext, IBusFactoryConfigurator> Configure);

/// <summary>Wiring of the broker host (eShop style: Program.cs stays short).</summary>
public static class BrokerExtensions
{
    /// <summary>Registers everything the broker needs, according to the <c>ShareHub</c> configuration section.</summary>
    public static WebApplicationBuilder AddBroker(this WebApplicationBuilder builder)
    {
        builder.AddSecretFiles(); // container secrets (/run/secrets/ShareHub__…) before anything reads the settings
        var services = builder.Services;
        var configuration = builder.Configuration.GetSection(ShareHubOptions.Section);
        var settings = configuration.Get<ShareHubOptions>() ?? new ShareHubOptions();

        services.AddOptions<ShareHubOptions>().Bind(configuration).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ShareHubOptions>, ShareHubOptionsValidator>();
        services.AddSingleton(TimeProvider.System);

        // The provider's own context type (its migrations: Data/Migrations/<provider>). Every SaveChanges that adds audit
        // entries appends them to the hash chain (Audit/AuditChainInterceptor.cs).
        services.AddHubDbContext(settings, (sp, options) => options.AddInterceptors(sp.GetRequiredService<AuditChainInterceptor>()));
        builder.AddAudit();

        services.AddSingleton<PolicyStore>();
        services.AddSingleton<PartnershipKey>();
        // Singleton: FluentValidation compiles its rule expressions once, in the constructor.
        services.AddSingleton<IValidator<SignalSubmission>, SignalValidator>();
        services.AddScoped<SignalIntake>();
        services.AddScoped<Cases.CaseWorkflow>();
        services.AddSingleton<GroupCommitWriter>();
        services.AddSingleton<PostgresGroupWrite>();
        services.AddSingleton<PublishedDeliveries>();
        services.AddSingleton<OutboxDispatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<OutboxDispatcher>());

        services.AddMassTransit(bus =>
        {
            bus.AddConsumer<DeliveryAcknowledgedConsumer, DeliveryAcknowledgedConsumerDefinition>();
            if (settings.Bus == BusTransport.RabbitMq && settings.RabbitMqQuorumQueues)
            {
                bus.AddConfigureEndpointsCallback(QuorumQueues.Configure);
            }

            if (settings.Bus == BusTransport.RabbitMq)
            {
                bus.UsingRabbitMq((context, cfg) =>
                {
                    cfg.Host(new Uri(settings.RabbitMqUri));
                    ConfigureEndpoints(context, cfg);
                });
            }
            else
            {
                bus.UsingInMemory((context, cfg) => ConfigureEndpoints(context, cfg));
            }
        });

        builder.AddObservability(); // health checks, logs, traces, metrics (Observability/, Health/)
        AddSecurity(builder, settings);

        services.AddBackPressure();
        services.AddProblemDetails();
        services.AddExceptionHandler<BadRequestHandler>();
        services.AddExceptionHandler<StorageUnavailableHandler>();
        // Unreadable bodies raise BadHttpRequestException in every environment, so BadRequestHandler answers them
        // the same way (with a stable code) in Development and Production.
        services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);

        // The whole request body is bounded, not only the payload: a signal envelope plus the payload limit.
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = settings.MaxPayloadBytes + (64 * 1024));
        services.Configure<KestrelServerOptions>(k => k.AddServerHeader = false);
        return builder;
    }

    private static void ConfigureEndpoints<T>(IBusRegistrationContext context, IBusFactoryConfigurator<T> cfg)
        where T : IReceiveEndpointConfigurator
    {
        foreach (var contribution in context.GetServices<BusEndpointContribution>())
        {
            contribution.Configure(context, cfg);
        }

        cfg.ConfigureEndpoints(context);
    }

    // Authentication (OpenIddict tokens, or the explicit Development header scheme), policies, rate limiting: Identity/.
    private static void AddSecurity(WebApplicationBuilder builder, ShareHubOptions settings) => builder.AddHubIdentity(settings);

    /// <summary>The middleware pipeline: problem details for every error, security headers, authentication, rate limiting.</summary>
    public static WebApplication UseBroker(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages(async context =>
        {
            var http = context.HttpContext;
            var status = http.Response.StatusCode;
            await http.RequestServices.GetRequiredService<IProblemDetailsService>()
                .WriteAsync(Problems.For(http, status, Problems.CodeForStatus(status))).ConfigureAwait(false);
        });
        app.UseBackPressure();
        var limit = app.Services.GetRequiredService<IOptions<ShareHubOptions>>().Value.MaxPayloadBytes + (64L * 1024);
        app.UseMiddleware<RequestBodyLimitMiddleware>(limit);
        app.UseHubSecurityHeaders();
        app.UseHubAuthentication();
        app.UseRateLimiter();
        app.UseAuthorization();
        return app;
    }

    /// <summary>
    /// Migrates the database to this version's schema and loads the policy set before the host starts serving. An
    /// invalid policy set, an unreachable database or a schema that migrations do not manage stops the hub here with a
    /// message saying what is wrong.
    /// </summary>
    public static async Task InitialiseBrokerAsync(this WebApplication app, CancellationToken cancellationToken = default)
    {
        var settings = app.Services.GetRequiredService<IOptions<ShareHubOptions>>().Value;
        using (var scope = app.Services.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<HubDbContext>();
            await HubDatabase.MigrateAsync(db, settings, app.Services.GetRequiredService<TimeProvider>(), cancellationToken).ConfigureAwait(false);
        }

        var policies = app.Services.GetRequiredService<PolicyStore>();
        await policies.LoadInitialAsync(cancellationToken).ConfigureAwait(false);
        policies.Watch();
        await app.InitialiseIdentityAsync(cancellationToken).ConfigureAwait(false);
        await app.DeclareDeliveryTopologyAsync(cancellationToken).ConfigureAwait(false);
    }
}
