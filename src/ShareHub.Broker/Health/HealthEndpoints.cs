using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using ShareHub.Broker.Data;
using ShareHub.Broker.Policies;

namespace ShareHub.Broker.Health;

/// <summary>
/// Liveness and readiness for orchestrators (Kubernetes probes, compose healthchecks, load balancers).
/// <list type="bullet">
/// <item><c>/health/live</c>: the process serves HTTP. Runs no check, so a database or RabbitMQ outage never makes
/// an orchestrator restart a healthy process.</item>
/// <item><c>/health/ready</c>: the database answers a query through <see cref="HubDbContext"/>, the MassTransit bus
/// is connected with its receive endpoints running (MassTransit registers that check itself, tagged
/// <c>ready</c>), and a policy set is loaded. Unready instances are taken out of the load balancer.</item>
/// </list>
/// Both are anonymous and answer only the overall status as text (<c>Healthy</c>, <c>Degraded</c>,
/// <c>Unhealthy</c>): no check names, versions, exceptions or host names are disclosed.
/// </summary>
public static class HealthEndpoints
{
    /// <summary>Tag of the checks that decide readiness; MassTransit tags its bus check the same way.</summary>
    public const string ReadyTag = "ready";

    /// <summary>Path of the liveness endpoint.</summary>
    public const string LivePath = "/health/live";

    /// <summary>Path of the readiness endpoint.</summary>
    public const string ReadyPath = "/health/ready";

    private static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Registers the readiness checks (database, policy set; the bus check comes with MassTransit).</summary>
    public static IServiceCollection AddHubHealthChecks(this IServiceCollection services)
    {
        services.AddHealthChecks()
            // A real round trip, not only "a connection could be opened": a pooled connection that the server
            // dropped (restart, failover) would otherwise still look fine.
            .AddDbContextCheck<HubDbContext>(
                "database",
                HealthStatus.Unhealthy,
                [ReadyTag],
                customTestQuery: async (db, cancellationToken) =>
                {
                    await db.Database.ExecuteSqlRawAsync("SELECT 1", cancellationToken).ConfigureAwait(false);
                    return true;
                })
            .AddCheck<PolicySetHealthCheck>("policy-set", HealthStatus.Unhealthy, [ReadyTag], CheckTimeout);

        // Every check is bounded: a database that does not answer (black-holed network) makes the instance
        // unready within the probe's timeout instead of hanging the probe.
        services.Configure<HealthCheckServiceOptions>(options =>
        {
            foreach (var registration in options.Registrations)
            {
                if (registration.Timeout == Timeout.InfiniteTimeSpan)
                {
                    registration.Timeout = CheckTimeout;
                }
            }
        });
        return services;
    }

    /// <summary>Maps <c>/health/live</c> and <c>/health/ready</c> (anonymous, status text only).</summary>
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapHealthChecks(LivePath, new HealthCheckOptions
        {
            Predicate = _ => false,
        }).AllowAnonymous();

        app.MapHealthChecks(ReadyPath, new HealthCheckOptions
        {
            Predicate = registration => registration.Tags.Contains(ReadyTag),
            // Degraded (e.g. the bus reconnecting) is not ready either: the default would answer it 200.
            ResultStatusCodes =
            {
                [HealthStatus.Healthy] = StatusCodes.Status200OK,
                [HealthStatus.Degraded] = StatusCodes.Status503ServiceUnavailable,
                [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
            },
        }).AllowAnonymous();
        return app;
    }
}

/// <summary>Ready only once the policy set has been loaded (the hub decides nothing without one).</summary>
internal sealed class PolicySetHealthCheck(PolicyStore policies) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            _ = policies.Current;
            return Task.FromResult(HealthCheckResult.Healthy());
        }
        catch (InvalidOperationException)
        {
            return Task.FromResult(new HealthCheckResult(context.Registration.FailureStatus, "No policy set is loaded yet."));
        }
    }
}
