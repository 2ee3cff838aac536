using System.Collections.Concurrent;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Delivery;

/// <summary>
/// Deliveries this instance publishes whose acknowledgement it has not taken yet: per delivery, its recipient and what
/// its acknowledgement entry repeats of the decision entry. The <see cref="AcknowledgementRecorder"/> takes a delivery
/// from here instead of reading it back from the database — at maximum load that lookup was an eighth of PostgreSQL's
/// work per signal (docs/benchmarks.md, sessions 24–25).
/// </summary>
/// <remarks>
/// <para>The dispatcher adds rows just before it publishes them, so no acknowledgement can come first; they are
/// committed rows (it publishes nothing else), so what is here is what the database holds. A row whose publish fails
/// stays until the sweep publishes it again and it is acknowledged, or until it is forgotten. Each delivery is taken once: a second acknowledgement of it — a duplicate, a retry after a failed commit, an
/// acknowledgement at another instance — is looked up in the database as before, and a concurrent duplicate that took
/// no lookup is still refused by the acknowledgements' primary key (the recorder then absorbs it,
/// <see cref="AcknowledgementRecorder.RecordAsync"/>).</para>
/// <para>Bounded: beyond <see cref="Capacity"/> deliveries (a partner that stopped acknowledging) the oldest are
/// forgotten, and their acknowledgements are looked up.</para>
/// </remarks>
public sealed class PublishedDeliveries
{
    /// <summary>Deliveries kept at most (about 0.3 kB each, most of it strings shared with the decision entry).</summary>
    internal const int Capacity = 20_000;

    private readonly ConcurrentDictionary<Guid, AcknowledgedDelivery> _deliveries = new();

    /// <summary>The order deliveries were added in, to forget the oldest; a taken delivery's id stays until its turn.</summary>
    private readonly ConcurrentQueue<Guid> _added = new();
    private int _addedCount;

    /// <summary>Deliveries waiting for their acknowledgement (for tests).</summary>
    internal int Count => _deliveries.Count;

    /// <summary>Keeps committed rows about to be published (each with its decision entry, <see cref="OutboxMessage.AuditEntry"/>) until acknowledged.</summary>
    internal void Add(IEnumerable<OutboxMessage> rows)
    {
        foreach (var row in rows)
        {
            // The same columns the recorder's database lookup reads (AcknowledgementRecorder.Lookup).
            if (row.AuditEntry is not { } decision)
            {
                continue;
            }

            _deliveries[row.DeliveryId] = new AcknowledgedDelivery(
                row.DeliveryId, row.Recipient, row.SignalId, decision.Provider, decision.Category, decision.Purpose,
                decision.CaseReference, decision.SubjectType, decision.SubjectPseudonym, decision.RuleId, decision.LegalGround,
                decision.PolicyVersion, decision.TraceId);
            _added.Enqueue(row.DeliveryId);
            if (Interlocked.Increment(ref _addedCount) > Capacity && _added.TryDequeue(out var oldest))
            {
                Interlocked.Decrement(ref _addedCount);
                _deliveries.TryRemove(oldest, out _);
            }
        }
    }

    /// <summary>Takes a delivery out: true once per delivery added.</summary>
    internal bool TryTake(Guid deliveryId, out AcknowledgedDelivery delivery) =>
        _deliveries.TryRemove(deliveryId, out delivery!);
}
