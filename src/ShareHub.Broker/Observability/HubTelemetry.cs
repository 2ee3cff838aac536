using System.Diagnostics;

namespace ShareHub.Broker.Observability;

/// <summary>Names of the broker's own telemetry sources, for exporters and listeners.</summary>
public static class HubTelemetry
{
    /// <summary>OpenTelemetry <c>service.name</c> of the broker.</summary>
    public const string ServiceName = "sharehub-broker";

    /// <summary>Name of the broker's <see cref="System.Diagnostics.ActivitySource"/> and <see cref="System.Diagnostics.Metrics.Meter"/>.</summary>
    public const string SourceName = "ShareHub.Broker";

    /// <summary>The ActivitySource MassTransit 8 starts its send/receive/consume activities from.</summary>
    public const string MassTransitSourceName = "MassTransit";

    /// <summary>The broker's activities (e.g. <c>sharehub.outbox.dispatch</c>).</summary>
    internal static readonly ActivitySource Source = new(SourceName);
}
