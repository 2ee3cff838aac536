using System.Text.Json;
using System.Threading.Channels;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Configuration;
using ShareHub.Broker.Data;
using ShareHub.Contracts;

namespace ShareHub.Broker.Delivery;

/// <summary>
/// Publishes committed outbox rows to each recipient's own queue, then marks them dispatched. It only ever reads
/// committed rows, so nothing is published without its audit entry. A crash after a publish but before marking
/// leads to a second publish of the same delivery id, which recipients absorb (at-least-once + idempotent receive).
/// </summary>
public sealed class OutboxDispatcher(
    IServiceScopeFactory scopes,
    IBus bus,
    TimeProvider time,
    IOptions<ShareHubOptions> options,
    ILogger<OutboxDispatcher> logger) : BackgroundService
{
    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(30);
    private readonly ShareHubOptions.DispatcherOptions _settings = options.Value.Dispatcher;
    private readonly DatabaseProvider _database = options.Value.Database;

    /// <summary>
    /// One wake-up signal per dispatch loop. Several loops overlap one batch's publisher confirms and commit with the
    /// next batch's claim; they claim disjoint rows exactly as several broker instances do (<see cref="OutboxClaim"/>).
    /// SQLite has no row claim, so it gets one loop.
    /// </summary>
    private readonly Channel<bool>[] _nudges = [.. Enumerable.Range(0, options.Value.Database == DatabaseProvider.Sqlite ? 1 : options.Value.Dispatcher.Concurrency)
        .Select(_ => Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite }))];

    /// <summary>Tells the dispatcher new rows were committed, so it need not wait for the next poll.</summary>
    public void Nudge()
    {
        foreach (var nudges in _nudges)
        {
            nudges.Writer.TryWrite(true);
        }
    }

    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_settings.Enabled)
        {
            logger.LogWarning("The outbox dispatcher is disabled on this instance: deliveries wait in the outbox.");
            return Task.CompletedTask;
        }

        return Task.WhenAll(_nudges.Select(nudges => RunAsync(nudges.Reader, stoppingToken)));
    }

    /// <summary>One dispatch loop: a batch at a time, then wait for a nudge or the poll interval.</summary>
    private async Task RunAsync(ChannelReader<bool> nudges, CancellationToken stoppingToken)
    {
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            int published;
            try
            {
                published = await DispatchBatchAsync(stoppingToken).ConfigureAwait(false);
                failures = 0;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // The database is unreachable (or similar): nothing was marked, so nothing is lost. Back off and retry.
                failures++;
                logger.LogError(ex, "Outbox dispatch round failed ({Failures} in a row); retrying", failures);
                published = 0;
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(30_000, 250 * (1 << Math.Min(failures, 7)))), time, stoppingToken).ConfigureAwait(false);
            }

            if (published >= _settings.BatchSize)
            {
                continue; // more rows are probably waiting
            }

            await WaitForWorkAsync(nudges, stoppingToken).ConfigureAwait(false);
        }
    }

    private async Task WaitForWorkAsync(ChannelReader<bool> nudges, CancellationToken stoppingToken)
    {
        using var poll = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var delay = Task.Delay(TimeSpan.FromMilliseconds(_settings.PollIntervalMilliseconds), time, poll.Token);
        var nudge = nudges.WaitToReadAsync(poll.Token).AsTask();
        await Task.WhenAny(delay, nudge).ConfigureAwait(false);
        await poll.CancelAsync().ConfigureAwait(false);
        nudges.TryRead(out _);
    }

    /// <summary>Publishes one batch of pending rows in outbox order; returns how many were published.</summary>
    internal async Task<int> DispatchBatchAsync(CancellationToken cancellationToken)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<HubDbContext>();

        // Several broker instances may dispatch the same outbox: each claims its batch with row locks that the others
        // skip, held until the batch is marked dispatched (see OutboxClaim).
        await using var claim = await OutboxClaim.BeginAsync(db, _database, cancellationToken).ConfigureAwait(false);
        var pending = await OutboxClaim.PendingBatch(db, _database, _settings.BatchSize)
            .ToListAsync(cancellationToken)
            .ConfigureAwait(false);
        if (pending.Count == 0)
        {
            return 0;
        }

        // The decisions' audit entries: their TraceId continues the submitting request's trace (DeliveryTracing).
        var auditIds = pending.Select(o => o.AuditEntryId).ToList();
        await db.AuditEntries.Where(a => auditIds.Contains(a.Id)).LoadAsync(cancellationToken).ConfigureAwait(false);

        // Publish concurrently: each send waits for the broker's publisher confirm (durable, persistent message).
        var outcomes = await Task.WhenAll(pending.Select(row => SendAsync(row, cancellationToken))).ConfigureAwait(false);

        var now = time.GetUtcNow();
        var published = 0;
        for (var i = 0; i < pending.Count; i++)
        {
            pending[i].Attempts++;
            if (outcomes[i] is null)
            {
                pending[i].DispatchedAt = now;
                pending[i].LastError = null;
                published++;
                // Audited in the same transaction that marks the row dispatched (docs/audit.md).
                db.AuditEntries.Add(AuditRecords.Dispatched(pending[i], now));
            }
            else
            {
                pending[i].LastError = outcomes[i]![..Math.Min(outcomes[i]!.Length, 1000)];
            }
        }

        await db.SaveChangesAsync(CancellationToken.None).ConfigureAwait(false);
        if (claim is not null)
        {
            await claim.CommitAsync(CancellationToken.None).ConfigureAwait(false);
        }

        if (published < pending.Count)
        {
            logger.LogWarning("{Failed} of {Count} deliveries could not be published; they stay in the outbox", pending.Count - published, pending.Count);
            throw new InvalidOperationException("Some deliveries could not be published.");
        }

        return published;
    }

    /// <summary>Sends one row; returns null on success or the error text.</summary>
    private async Task<string?> SendAsync(OutboxMessage row, CancellationToken cancellationToken)
    {
        using var dispatch = Observability.DeliveryTracing.StartDispatch(row);
        try
        {
            // Signal deliveries and case events travel the same way; the audit entry id is known only after commit.
            object message = row.MessageType switch
            {
                OutboxMessageTypes.CaseEvent => (JsonSerializer.Deserialize<DeliverCaseEvent>(row.MessageJson)
                    ?? throw new InvalidOperationException($"Outbox row {row.Id} holds no message.")) with { AuditEntryId = row.AuditEntryId },
                _ => (JsonSerializer.Deserialize<DeliverSignal>(row.MessageJson)
                    ?? throw new InvalidOperationException($"Outbox row {row.Id} holds no message.")) with { AuditEntryId = row.AuditEntryId },
            };

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(SendTimeout);
            // To the recipient's exchange, not "queue:": the hub declares the queue itself at start (with its dead-letter
            // error queue, Identity/DeliveryTopology.cs), and MassTransit must not re-declare it with other arguments.
            var endpoint = await bus.GetSendEndpoint(new Uri($"exchange:{QueueNames.Deliveries(row.Recipient)}")).ConfigureAwait(false);
            await endpoint.Send(message, context =>
            {
                // The delivery id doubles as message id: recipients deduplicate redeliveries on it.
                context.MessageId = row.DeliveryId;
                context.Durable = true;
            }, timeout.Token).ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return $"{ex.GetType().Name}: {ex.Message}";
        }
    }
}
