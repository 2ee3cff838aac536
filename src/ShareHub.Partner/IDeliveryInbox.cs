using System.Collections.Concurrent;

namespace ShareHub.Partner;

/// <summary>
/// Remembers which deliveries were processed, so a redelivered message (the hub publishes at least once) is absorbed.
/// Implement it on your own database to make "processed" and "remembered" one transaction; the SDK ships an in-memory
/// inbox for demos and tests.
/// </summary>
public interface IDeliveryInbox
{
    /// <summary>Claims a delivery id for processing; false when it was processed (or is being processed) already.</summary>
    ValueTask<bool> TryBeginAsync(Guid deliveryId, CancellationToken cancellationToken);

    /// <summary>Marks a claimed delivery as processed.</summary>
    ValueTask CompleteAsync(Guid deliveryId, CancellationToken cancellationToken);

    /// <summary>Releases a claim after a failure so a retry can process it.</summary>
    ValueTask AbandonAsync(Guid deliveryId, CancellationToken cancellationToken);
}

/// <summary>An inbox held in memory: deduplicates within the life of the process.</summary>
public sealed class InMemoryDeliveryInbox : IDeliveryInbox
{
    private readonly ConcurrentDictionary<Guid, bool> _seen = new();

    /// <summary>Number of deliveries processed.</summary>
    public int ProcessedCount => _seen.Count(kv => kv.Value);

    /// <inheritdoc />
    public ValueTask<bool> TryBeginAsync(Guid deliveryId, CancellationToken cancellationToken) => ValueTask.FromResult(_seen.TryAdd(deliveryId, false));

    /// <inheritdoc />
    public ValueTask CompleteAsync(Guid deliveryId, CancellationToken cancellationToken)
    {
        _seen[deliveryId] = true;
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask AbandonAsync(Guid deliveryId, CancellationToken cancellationToken)
    {
        _seen.TryRemove(new KeyValuePair<Guid, bool>(deliveryId, false));
        return ValueTask.CompletedTask;
    }
}
