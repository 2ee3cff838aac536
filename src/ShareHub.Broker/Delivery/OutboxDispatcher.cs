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
/// Publishes committed outbox rows to each recipient's own queue, then marks them dispatched. It only ever publishes
/// committed rows, so nothing is published without its audit entry. Two paths:
/// <list type="bullet">
/// <item><b>At once.</b> The writer that committed a row hands it over right after the commit (<see cref="Enqueue"/>);
/// it is published from memory, with no query, and the batch's <c>delivery.dispatched</c> marks and audit entries join
/// the next group commit (<see cref="GroupCommitWriter"/>) instead of a transaction of their own. In a burst beyond the
/// in-memory queue only the rows' keys are kept, and the rows are read back by key once the queue is empty.</item>
/// <item><b>Sweep.</b> Rows that the first path did not publish — this instance crashed or restarted, the bus was down,
/// the burst outlasted half the sweep age, another instance wrote them with its dispatcher off — are claimed from the database
/// once they are older than <c>ShareHub:Dispatcher:SweepAfterSeconds</c>, published and marked in the claim's
/// transaction.</item>
/// </list>
/// A row young enough for the first path is never swept, and the first path leaves a row alone once it is half that age,
/// so in normal operation each delivery is published once. A crash (or a failed mark) after a publish leads to a second
/// publish of the same delivery id, which recipients absorb (at-least-once + idempotent receive).
/// </summary>
public sealed class OutboxDispatcher(
    IServiceScopeFactory scopes,
    IBus bus,
    GroupCommitWriter writer,
    PublishedDeliveries publishedDeliveries,
    TimeProvider time,
    IOptions<ShareHubOptions> options,
    ILogger<OutboxDispatcher> logger) : BackgroundService
{
    /// <summary>
    /// Keys of committed rows that did not fit the hand-over queue (a burst of batch submissions), at most: the first
    /// path reads them from the database once the queue is empty. Beyond it rows wait for the sweep.
    /// </summary>
    internal const int OverflowCapacity = 1_000_000;

    private static readonly TimeSpan SweepSendTimeout = TimeSpan.FromSeconds(30);
    private readonly ShareHubOptions.DispatcherOptions _settings = options.Value.Dispatcher;
    private readonly DatabaseProvider _database = options.Value.Database;

    /// <summary>Rows waiting in memory to be published at once (<c>HandOverCapacity</c>); beyond it only their keys are kept.</summary>
    private readonly Channel<OutboxMessage> _committed = Channel.CreateBounded<OutboxMessage>(
        new BoundedChannelOptions(options.Value.Dispatcher.HandOverCapacity) { FullMode = BoundedChannelFullMode.Wait });

    private readonly System.Collections.Concurrent.ConcurrentQueue<long> _overflow = new();
    private int _overflowCount;

    private TimeSpan SweepAfter => TimeSpan.FromSeconds(_settings.SweepAfterSeconds);

    /// <summary>
    /// Publishes committed rows at once (their <see cref="OutboxMessage.AuditEntry"/> is the decision's entry, as the
    /// writer left it). Returns at once; rows it cannot take now are left to the sweep.
    /// </summary>
    public void Enqueue(IEnumerable<OutboxMessage> committed)
    {
        ArgumentNullException.ThrowIfNull(committed);
        if (!_settings.Enabled)
        {
            return;
        }

        foreach (var row in committed)
        {
            if (_committed.Writer.TryWrite(row))
            {
                continue;
            }

            // The queue is full, so a loop is busy with it and comes to the overflow when it is empty.
            if (Interlocked.Increment(ref _overflowCount) <= OverflowCapacity)
            {
                _overflow.Enqueue(row.Id);
            }
            else
            {
                Interlocked.Decrement(ref _overflowCount);
                logger.LogDebug("Hand-over queue and overflow full: delivery {DeliveryId} waits for the sweep", row.DeliveryId);
            }
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

        // Several loops publish at once: while one waits for its batch's publisher confirms, another publishes the next
        // rows. One loop sweeps: it only has work after a failure, and claims the rows it sweeps exactly as several
        // broker instances' sweeps do (OutboxClaim).
        return Task.WhenAll(Enumerable.Range(0, _settings.Concurrency).Select(_ => PublishCommittedAsync(stoppingToken))
            .Append(SweepAsync(stoppingToken)));
    }

    /// <summary>
    /// Marks a loop may have outstanding while it publishes its next full batches. A mark waits for a group commit,
    /// which behind batch submissions takes a few hundred milliseconds on two cores; with one outstanding mark per loop
    /// the dispatcher published only about two batches per commit and fell behind the intake. Each outstanding mark is
    /// a batch published but not yet recorded, which a crash makes the sweep publish again (recipients absorb it).
    /// </summary>
    internal const int MarksInFlight = 4;

    /// <summary>
    /// The first path: a batch of handed-over rows at a time (the overflow's once the queue is empty), published
    /// concurrently; the batch's marks are committed by the writer while the next batch is published (one outstanding
    /// mark per loop; up to <see cref="MarksInFlight"/> while batches come full).
    /// </summary>
    private async Task PublishCommittedAsync(CancellationToken stoppingToken)
    {
        var marking = new Queue<Task>(MarksInFlight);
        var batch = new List<OutboxMessage>(_settings.BatchSize);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var now = time.GetUtcNow();
                while (batch.Count < _settings.BatchSize && _committed.Reader.TryRead(out var row))
                {
                    if (IsYoung(row, now))
                    {
                        batch.Add(row);
                    }
                }

                if (batch.Count == 0 && !_overflow.IsEmpty)
                {
                    batch.AddRange(await OverflowBatchAsync(now, stoppingToken).ConfigureAwait(false));
                }

                if (batch.Count == 0)
                {
                    // Nothing in memory and no overflow: wait for the next commit (the overflow only grows while the
                    // queue is full, that is not empty).
                    if (!await _committed.Reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
                    {
                        break;
                    }

                    continue;
                }

                // Kept for their acknowledgements before the send, so no acknowledgement can come first.
                publishedDeliveries.Add(batch);
                // The send gives up before the sweep could claim the row: at most one path publishes it.
                var outcomes = await PublishAsync(batch, SweepAfter / 2, stoppingToken).ConfigureAwait(false);
                var published = batch.Where((_, i) => outcomes[i] is null).ToList();
                if (published.Count < batch.Count)
                {
                    logger.LogWarning("{Failed} of {Count} deliveries could not be published at once ({Error}); the sweep retries them",
                        batch.Count - published.Count, batch.Count, outcomes.First(o => o is not null));
                }

                // A full batch means a backlog: publish on while marks are outstanding. Otherwise wait for the previous
                // mark first, as the rows committed meanwhile then join one larger batch (fewer, fuller publish rounds
                // and marks at a steady load).
                var inFlight = batch.Count == _settings.BatchSize ? MarksInFlight : 1;
                batch.Clear();
                while (marking.Count > 0 && (marking.Peek().IsCompleted || marking.Count >= inFlight))
                {
                    await marking.Dequeue().ConfigureAwait(false);
                }

                if (published.Count > 0)
                {
                    marking.Enqueue(MarkAsync(published));
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: rows still in memory are in the outbox, for the sweep of the next start.
        }

        await Task.WhenAll(marking).ConfigureAwait(false);
    }

    /// <summary>Half the sweep age: a row the sweep may claim soon is left to it, so no row is published by both paths.</summary>
    private bool IsYoung(OutboxMessage row, DateTimeOffset now) => now - row.CreatedAt < SweepAfter / 2;

    /// <summary>Up to one batch of the overflow's rows that are still to publish and young, read from the database.</summary>
    private async Task<List<OutboxMessage>> OverflowBatchAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var ids = new List<long>(_settings.BatchSize);
        while (ids.Count < _settings.BatchSize && _overflow.TryDequeue(out var id))
        {
            Interlocked.Decrement(ref _overflowCount);
            ids.Add(id);
        }

        try
        {
            using var scope = scopes.CreateScope();
            var db = scope.ServiceProvider.GetRequiredService<HubDbContext>();
            var rows = await db.Outbox.AsNoTracking().Include(o => o.AuditEntry)
                .Where(o => ids.Contains(o.Id) && o.DispatchedAt == null)
                .OrderBy(o => o.Id)
                .ToListAsync(cancellationToken).ConfigureAwait(false);
            return rows.Where(row => IsYoung(row, now)).ToList();
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // Unread rows stay in the outbox: the sweep publishes them.
            logger.LogWarning(ex, "Could not read {Count} overflowed deliveries; the sweep publishes them", ids.Count);
            return [];
        }
    }

    /// <summary>Commits the dispatched marks and audit entries of published rows (via the group commit); never throws.</summary>
    private async Task MarkAsync(List<OutboxMessage> published)
    {
        try
        {
            await writer.CommitAsync(new DispatchedUnit(published, time.GetUtcNow()), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Published but not marked: the sweep publishes them again later, and the recipients' inboxes absorb the
            // second copy — as after a crash between publish and mark.
            logger.LogError(ex, "Could not mark {Count} published deliveries dispatched; the sweep will publish them again", published.Count);
        }
    }

    /// <summary>The second path: one claimed batch at a time, then wait for the poll interval.</summary>
    private async Task SweepAsync(CancellationToken stoppingToken)
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
                logger.LogError(ex, "Outbox sweep failed ({Failures} in a row); retrying", failures);
                published = 0;
                await Delay(TimeSpan.FromMilliseconds(Math.Min(30_000, 250 * (1 << Math.Min(failures, 7)))), stoppingToken).ConfigureAwait(false);
            }

            if (published < _settings.BatchSize)
            {
                await Delay(TimeSpan.FromMilliseconds(_settings.PollIntervalMilliseconds), stoppingToken).ConfigureAwait(false);
            }
        }
    }

    private async Task Delay(TimeSpan delay, CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
    }

    /// <summary>Claims, publishes and marks one batch of pending rows older than the sweep age, in outbox order; returns how many were published.</summary>
    internal async Task<int> DispatchBatchAsync(CancellationToken cancellationToken)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<HubDbContext>();

        // Several broker instances may dispatch the same outbox: each claims its batch with row locks that the others
        // skip, held until the batch is marked dispatched (see OutboxClaim).
        await using var claim = await OutboxClaim.BeginAsync(db, _database, cancellationToken).ConfigureAwait(false);
        var pending = await OutboxClaim.PendingBatchAsync(db, _database, _settings.BatchSize, time.GetUtcNow() - SweepAfter, cancellationToken)
            .ConfigureAwait(false);
        if (pending.Count == 0)
        {
            return 0;
        }

        // The decisions' audit entries: their TraceId continues the submitting request's trace (DeliveryTracing).
        var auditIds = pending.Select(o => o.AuditEntryId).ToList();
        await db.AuditEntries.Where(a => auditIds.Contains(a.Id)).LoadAsync(cancellationToken).ConfigureAwait(false);

        // Publish concurrently: each send waits for the broker's publisher confirm (durable, persistent message).
        publishedDeliveries.Add(pending);
        var outcomes = await PublishAsync(pending, SweepSendTimeout, cancellationToken).ConfigureAwait(false);

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

    /// <summary>
    /// The most stored message text (UTF-16 characters of the rows' JSON, about its bytes) one bundle carries: no more
    /// than one delivery at the payload limit (64 KiB), so a bundle takes no more of a partner's memory per prefetched
    /// message than a single delivery could (PartnerOptions.PrefetchCount). A delivery larger than this goes alone.
    /// </summary>
    internal const int BundleCharacters = 64 * 1024;

    /// <summary>
    /// Publishes <paramref name="rows"/> concurrently: each recipient's signal deliveries together as
    /// <see cref="DeliverSignalBundle"/>s (up to <c>BundleSize</c> deliveries and <see cref="BundleCharacters"/>), a
    /// lone delivery and every case event on its own. Returns, per row, null once the bus confirmed it, else the error
    /// text (a bundle's rows share their bundle's outcome).
    /// </summary>
    private async Task<string?[]> PublishAsync(IReadOnlyList<OutboxMessage> rows, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var outcomes = new string?[rows.Count];
        await Task.WhenAll(Bundles(rows, _settings.BundleSize).Select(async bundle =>
        {
            var outcome = bundle.Count == 1
                ? await SendAsync(rows[bundle[0]], timeout, cancellationToken).ConfigureAwait(false)
                : await SendAsync([.. bundle.Select(i => rows[i])], timeout, cancellationToken).ConfigureAwait(false);
            foreach (var i in bundle)
            {
                outcomes[i] = outcome;
            }
        })).ConfigureAwait(false);
        return outcomes;
    }

    /// <summary>
    /// Groups <paramref name="rows"/> (by index) into the messages that carry them: signal deliveries to the same
    /// recipient together, in row order, up to <paramref name="bundleSize"/> deliveries and
    /// <see cref="BundleCharacters"/> of stored JSON; case events one per message. A group never holds two recipients.
    /// </summary>
    internal static List<List<int>> Bundles(IReadOnlyList<OutboxMessage> rows, int bundleSize)
    {
        var bundles = new List<List<int>>(rows.Count);
        var open = new Dictionary<string, (List<int> Rows, int Characters)>(StringComparer.Ordinal);
        for (var i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            var characters = row.MessageJson.Length;
            if (row.MessageType == OutboxMessageTypes.CaseEvent)
            {
                bundles.Add([i]);
            }
            else if (open.TryGetValue(row.Recipient, out var bundle) && bundle.Rows.Count < bundleSize && bundle.Characters + characters <= BundleCharacters)
            {
                bundle.Rows.Add(i);
                open[row.Recipient] = (bundle.Rows, bundle.Characters + characters);
            }
            else
            {
                List<int> opened = [i];
                bundles.Add(opened);
                open[row.Recipient] = (opened, characters);
            }
        }

        return bundles;
    }

    /// <summary>Sends one row; returns null on success or the error text.</summary>
    private async Task<string?> SendAsync(OutboxMessage row, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var dispatch = Observability.DeliveryTracing.StartDispatch(row);
        try
        {
            // Signal deliveries and case events travel the same way. The delivery id doubles as message id.
            object message = row.MessageType == OutboxMessageTypes.CaseEvent
                ? (JsonSerializer.Deserialize<DeliverCaseEvent>(row.MessageJson)
                    ?? throw new InvalidOperationException($"Outbox row {row.Id} holds no message.")) with { AuditEntryId = row.AuditEntryId }
                : Delivery(row);
            await SendAsync(row.Recipient, message, row.DeliveryId, timeout, cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return $"{ex.GetType().Name}: {ex.Message}";
        }
    }

    /// <summary>Sends signal deliveries to one recipient as one bundle; returns null on success or the error text.</summary>
    private async Task<string?> SendAsync(List<OutboxMessage> rows, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var dispatch = Observability.DeliveryTracing.StartDispatch(rows);
        try
        {
            // Grouped by recipient (Bundles); checked again here because a bundle is read whole by its queue's owner.
            var recipient = rows[0].Recipient;
            if (rows.Exists(row => !string.Equals(row.Recipient, recipient, StringComparison.Ordinal)))
            {
                throw new InvalidOperationException("A bundle must not hold deliveries for two recipients.");
            }

            // The bundle's own message id is new: recipients deduplicate each delivery by its delivery id.
            await SendAsync(recipient, new DeliverSignalBundle(recipient, [.. rows.Select(Delivery)]), NewId.NextGuid(), timeout, cancellationToken)
                .ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return $"{ex.GetType().Name}: {ex.Message}";
        }
    }

    /// <summary>
    /// The row's signal delivery, with the audit entry id known only after the commit. A row the intake handed over
    /// carries the delivery its JSON was made from: no need to parse that back.
    /// </summary>
    private static DeliverSignal Delivery(OutboxMessage row) =>
        (row.Built ?? JsonSerializer.Deserialize<DeliverSignal>(row.MessageJson) ?? throw new InvalidOperationException($"Outbox row {row.Id} holds no message."))
            with { AuditEntryId = row.AuditEntryId };

    /// <summary>Sends <paramref name="message"/> to the recipient's queue, durable, and waits for the bus's confirm.</summary>
    private async Task SendAsync(string recipient, object message, Guid messageId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        // To the recipient's exchange, not "queue:": the hub declares the queue itself at start (with its dead-letter
        // error queue, Identity/DeliveryTopology.cs), and MassTransit must not re-declare it with other arguments.
        var endpoint = await bus.GetSendEndpoint(new Uri($"exchange:{QueueNames.Deliveries(recipient)}")).ConfigureAwait(false);
        await endpoint.Send(message, context =>
        {
            // Recipients deduplicate redeliveries on the delivery id (a single delivery's message id, or inside a bundle).
            context.MessageId = messageId;
            context.Durable = true;
        }, timeoutSource.Token).ConfigureAwait(false);
    }
}

/// <summary>
/// Rows published at once, marked dispatched with one <c>delivery.dispatched</c> entry each (docs/audit.md). The rows
/// are the intake's own objects (their decision entry attached); only their marks are written.
/// </summary>
internal sealed class DispatchedUnit : WriteUnit
{
    private readonly List<OutboxMessage> _rows;
    private readonly List<AuditEntry> _entries;
    private readonly DateTimeOffset _now;

    public DispatchedUnit(List<OutboxMessage> rows, DateTimeOffset now)
    {
        _rows = rows;
        _now = now;
        foreach (var row in rows)
        {
            row.Attempts++;
        }

        _entries = [.. rows.Select(row => AuditRecords.Dispatched(row, now))];
    }

    internal override string Kind => "dispatched";

    /// <inheritdoc />
    internal override bool Urgent => true;

    internal override int Rows => _rows.Count;

    internal override IEnumerable<AuditEntry> AuditEntries => _entries;

    internal override void AddTo(GroupRows rows)
    {
        rows.Dispatched.AddRange(_rows.Select(row => (row, _now)));
        rows.AuditEntries.AddRange(_entries);
    }
}
