using System.Diagnostics.Metrics;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Observability;

/// <summary>
/// The broker's metrics (Meter <c>ShareHub.Broker</c>). Tags stay low-cardinality and carry no personal data:
/// outcome, stable reason code, recipient organisation code — never a subject, signal or delivery id.
/// </summary>
public sealed class HubMetrics
{
    private readonly Counter<long> _signalsSubmitted;
    private readonly Counter<long> _decisions;
    private readonly Counter<long> _acknowledgements;
    private readonly Histogram<double> _deliveryLag;
    private long _outboxDepth = -1;

    /// <summary>Creates the instruments on a meter from <paramref name="meters"/>.</summary>
    public HubMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(HubTelemetry.SourceName);
        _signalsSubmitted = meter.CreateCounter<long>(
            "sharehub.signals.submitted", "{signal}", "Signals accepted and committed by the hub.");
        _decisions = meter.CreateCounter<long>(
            "sharehub.decisions", "{decision}", "Policy decisions committed, one per (signal, recipient); tags outcome and reason.");
        _acknowledgements = meter.CreateCounter<long>(
            "sharehub.deliveries.acknowledged", "{delivery}", "Acknowledgements recorded (first per delivery).");
        _deliveryLag = meter.CreateHistogram<double>(
            "sharehub.delivery.lag", "s", "Time from the hub accepting a signal to the bus confirming the delivery's publish.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] });
        meter.CreateObservableGauge(
            "sharehub.outbox.depth",
            ObserveOutboxDepth,
            "{delivery}",
            "Committed deliveries not yet published (sampled from the database).");
    }

    /// <summary>Counts committed signals.</summary>
    public void SignalsSubmitted(int count) => _signalsSubmitted.Add(count);

    /// <summary>Counts one committed decision.</summary>
    /// <param name="outcome"><c>permit</c> or <c>deny</c>.</param>
    /// <param name="reasonCode">Stable reason code (<c>SH-P…</c>).</param>
    public void Decision(string outcome, string reasonCode) =>
        _decisions.Add(1, new KeyValuePair<string, object?>("outcome", outcome), new KeyValuePair<string, object?>("reason", reasonCode));

    /// <summary>Counts recorded acknowledgements.</summary>
    public void Acknowledged(int count) => _acknowledgements.Add(count);

    /// <summary>
    /// Counts what one committed transaction stored: signals, decisions (from their audit entries; other entries are
    /// skipped), acknowledgements. Called by the EF Core save's interceptor and by the PostgreSQL group commit.
    /// </summary>
    public void Committed(int signals, IEnumerable<AuditEntry> entries, int acknowledgements)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (signals > 0)
        {
            SignalsSubmitted(signals);
        }

        foreach (var decision in entries.Where(e => e.Kind == AuditKinds.Decision))
        {
            Decision(decision.Outcome, decision.ReasonCode);
        }

        if (acknowledgements > 0)
        {
            Acknowledged(acknowledgements);
        }
    }

    /// <summary>Records the lag of one published delivery.</summary>
    public void DeliveryLag(TimeSpan lag, string recipient) =>
        _deliveryLag.Record(Math.Max(0, lag.TotalSeconds), new KeyValuePair<string, object?>("recipient", recipient));

    /// <summary>Sets the latest sampled outbox depth; null when the sample failed (the gauge then reports nothing).</summary>
    public void OutboxDepth(long? depth) => Interlocked.Exchange(ref _outboxDepth, depth ?? -1);

    private IEnumerable<Measurement<long>> ObserveOutboxDepth()
    {
        var depth = Interlocked.Read(ref _outboxDepth);
        return depth < 0 ? [] : [new Measurement<long>(depth)];
    }
}
