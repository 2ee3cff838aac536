using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Observability;

/// <summary>
/// Samples the number of committed, unpublished outbox rows for the <c>sharehub.outbox.depth</c> gauge. One indexed
/// <c>COUNT(*)</c> per interval (on <c>DispatchedAt</c>), never per scrape, so a scrape never waits on the database.
/// Every instance reports the same, database-wide number: aggregate with max, not sum.
/// </summary>
internal sealed class OutboxDepthSampler(IServiceScopeFactory scopes, HubMetrics metrics, TimeProvider time, IConfiguration configuration, ILogger<OutboxDepthSampler> logger)
    : BackgroundService
{
    /// <summary>Configuration key of the sampling interval in seconds (default 15).</summary>
    public const string IntervalKey = "ShareHub:Telemetry:OutboxSampleSeconds";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromSeconds(Math.Max(1, configuration.GetValue(IntervalKey, 15)));
        while (!stoppingToken.IsCancellationRequested)
        {
            await SampleAsync(stoppingToken).ConfigureAwait(false);
            await Task.Delay(interval, time, stoppingToken).ConfigureAwait(false);
        }
    }

    internal async Task SampleAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var scope = scopes.CreateScope();
            var db = scope.ServiceProvider.GetRequiredService<HubDbContext>();
            metrics.OutboxDepth(await db.Outbox.LongCountAsync(o => o.DispatchedAt == null, cancellationToken).ConfigureAwait(false));
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // No number is better than a stale one: the gauge reports nothing until the database answers again.
            metrics.OutboxDepth(null);
            logger.LogDebug(ex, "Outbox depth could not be sampled");
        }
    }
}
