using System.Reflection;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using ShareHub.Broker.Data;
using ShareHub.Broker.Health;

namespace ShareHub.Broker.Observability;

/// <summary>
/// Logs, traces and metrics of the broker.
/// <list type="bullet">
/// <item>Logs: the console, as one JSON object per line in Production (<c>appsettings.Production.json</c> sets the
/// <c>json</c> formatter), plain text in Development; every line in a request or dispatch carries its
/// <c>TraceId</c>/<c>SpanId</c> scope.</item>
/// <item>Traces: ASP.NET Core requests (health probes excluded), MassTransit send/receive/consume, the broker's own
/// <c>sharehub.outbox.dispatch</c>, and — only when an exporter is configured — Npgsql commands (SQL text only, never
/// parameter values). The others are recorded in any case: the audit trail and the partners' consume spans carry their
/// trace context. Npgsql's are observation only, and recording one means building the command's whole SQL text (for
/// the group commit's batches, every statement of the batch): 5 % of the broker's allocations at 500 signals/s with
/// nothing to send them to.</item>
/// <item>Metrics: Meter <c>ShareHub.Broker</c> (<see cref="HubMetrics"/>), MassTransit, ASP.NET Core, .NET runtime.</item>
/// </list>
/// Export: OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (the standard <c>OTEL_*</c> variables apply), the
/// console when <c>ShareHub:Telemetry:ConsoleExporter</c> is true; otherwise nothing leaves the process.
/// Spans and metrics carry no payload, no subject identifier and no pseudonym.
/// </summary>
public static class ObservabilityExtensions
{
    /// <summary>Configuration key switching the console exporter on.</summary>
    public const string ConsoleExporterKey = "ShareHub:Telemetry:ConsoleExporter";

    /// <summary>Registers logging enrichment, OpenTelemetry, the broker's metrics and their collectors.</summary>
    public static WebApplicationBuilder AddObservability(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        var configuration = builder.Configuration;

        builder.Logging.Configure(o => o.ActivityTrackingOptions =
            ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId | ActivityTrackingOptions.ParentId);

        services.AddMetrics();
        services.AddSingleton<HubMetrics>();
        services.AddSingleton<MetricsInterceptor>();
        services.ConfigureDbContext<HubDbContext>((sp, options) => options.AddInterceptors(sp.GetRequiredService<MetricsInterceptor>()));
        services.AddHostedService<OutboxDepthSampler>();
        services.AddSendObserver<DeliveryLagObserver>();

        var otlp = !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        var console = configuration.GetValue(ConsoleExporterKey, false);
        var version = typeof(ObservabilityExtensions).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(HubTelemetry.ServiceName, serviceVersion: version))
            .WithTracing(tracing =>
            {
                tracing.AddSource(HubTelemetry.SourceName, HubTelemetry.MassTransitSourceName)
                    .AddAspNetCoreInstrumentation(o => o.Filter = http => !http.Request.Path.StartsWithSegments("/health", StringComparison.Ordinal));
                if (otlp || console)
                {
                    tracing.AddSource("Npgsql");
                }
            })
            .WithMetrics(metrics => metrics
                .AddMeter(HubTelemetry.SourceName, HubTelemetry.MassTransitSourceName, "System.Runtime")
                .AddAspNetCoreInstrumentation());

        if (otlp)
        {
            telemetry.UseOtlpExporter();
        }

        if (console)
        {
            telemetry.WithTracing(tracing => tracing.AddConsoleExporter())
                .WithMetrics(metrics => metrics.AddConsoleExporter());
        }

        services.AddHubHealthChecks();
        return builder;
    }
}
