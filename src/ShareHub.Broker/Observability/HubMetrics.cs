using System.Diagnostics.Metrics;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Observability;

/// <summary>
/// The broker's metrics (Meter <c>ShareHub.Broker</c>). Tags stay low-cardinality and carry no personal data:
/// outcome, stable reason code, recipient organisation code — never a subject, signal or delivery id.
/// Recording never throws: it happens after a commit (or a publish), and a failing listener or exporter must not make
/// committed work look failed — its caller would answer an error, or the group commit write the rows again. A failure
/// is logged instead.
/// </summary>
public sealed class HubMetrics
{
    private readonly ILogger<HubMetrics> _logger;
    private readonly Counter<long> _signalsSubmitted;
    private readonly Counter<long> _decisions;
    private readonly Counter<long> _acknowledgements;
    private readonly Histogram<double> _deliveryLag;
    private readonly Histogram<int> _bundleSize;
    private readonly Histogram<double> _groupCommitDuration;
    private readonly Histogram<int> _groupCommitUnits;
    private readonly Histogram<double> _groupCommitWait;
    private long _outboxDepth = -1;

    /// <summary>Creates the instruments on a meter from <paramref name="meters"/>.</summary>
    public HubMetrics(IMeterFactory meters, ILogger<HubMetrics> logger)
    {
        _logger = logger;
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
        _bundleSize = meter.CreateHistogram<int>(
            "sharehub.delivery.bundle_size", "{delivery}", "Signal deliveries per published message: 1 for a lone delivery, more for a bundle; tag recipient.",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 500] });
        // A group commit takes milliseconds: buckets from half a millisecond (one fsync on a fast disk) to seconds.
        IReadOnlyList<double> commitSeconds = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
        _groupCommitDuration = meter.CreateHistogram<double>(
            "sharehub.group_commit.duration", "s", "Time one group commit's transaction took, from taking the queued units to the commit.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = commitSeconds });
        _groupCommitUnits = meter.CreateHistogram<int>(
            "sharehub.group_commit.units", "{unit}", "Units written by one group commit (a submission, a dispatch batch's marks, an acknowledgement batch).",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] });
        _groupCommitWait = meter.CreateHistogram<double>(
            "sharehub.group_commit.wait", "s", "Time from queuing a unit for the group commit to its commit: the commit's share of its caller's latency; tag unit.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = commitSeconds });
        meter.CreateObservableGauge(
            "sharehub.outbox.depth",
            ObserveOutboxDepth,
            "{delivery}",
            "Committed deliveries not yet published (sampled from the database).");
    }

    /// <summary>Counts committed signals.</summary>
    private void SignalsSubmitted(int count) => _signalsSubmitted.Add(count);

    /// <summary>Counts one committed decision.</summary>
    /// <param name="outcome"><c>permit</c> or <c>deny</c>.</param>
    /// <param name="reasonCode">Stable reason code (<c>SH-P…</c>).</param>
    private void Decision(string outcome, string reasonCode) =>
        _decisions.Add(1, new KeyValuePair<string, object?>("outcome", outcome), new KeyValuePair<string, object?>("reason", reasonCode));

    /// <summary>Counts recorded acknowledgements.</summary>
    private void Acknowledged(int count) => _acknowledgements.Add(count);

    /// <summary>
    /// Counts what one committed transaction stored: signals, decisions (from their audit entries; other entries are
    /// skipped), acknowledgements. Called by the EF Core save's interceptor and by the PostgreSQL group commit.
    /// </summary>
    public void Committed(int signals, IEnumerable<AuditEntry> entries, int acknowledgements)
    {
        ArgumentNullException.ThrowIfNull(entries);
        try
        {
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
        catch (Exception ex)
        {
            RecordingFailed(ex);
        }
    }

    /// <summary>Records the lag of one published delivery.</summary>
    public void DeliveryLag(TimeSpan lag, string recipient)
    {
        try
        {
            _deliveryLag.Record(Math.Max(0, lag.TotalSeconds), new KeyValuePair<string, object?>("recipient", recipient));
        }
        catch (Exception ex)
        {
            RecordingFailed(ex);
        }
    }

    /// <summary>Records one published message of signal deliveries: how many it carried.</summary>
    public void DeliveriesPublished(int deliveries, string recipient)
    {
        try
        {
            _bundleSize.Record(deliveries, new KeyValuePair<string, object?>("recipient", recipient));
        }
        catch (Exception ex)
        {
            RecordingFailed(ex);
        }
    }

    /// <summary>Records one committed group: how long its transaction took and how many units it wrote.</summary>
    public void GroupCommitted(int units, TimeSpan duration)
    {
        try
        {
            _groupCommitDuration.Record(duration.TotalSeconds);
            _groupCommitUnits.Record(units);
        }
        catch (Exception ex)
        {
            RecordingFailed(ex);
        }
    }

    /// <summary>Records how long one unit waited from being queued to its commit.</summary>
    /// <param name="unit">What the unit is: <c>signals</c>, <c>dispatched</c> or <c>acknowledgements</c>.</param>
    /// <param name="wait">From the caller queuing it to the commit of the group that held it.</param>
    public void GroupCommitWaited(string unit, TimeSpan wait)
    {
        try
        {
            _groupCommitWait.Record(wait.TotalSeconds, new KeyValuePair<string, object?>("unit", unit));
        }
        catch (Exception ex)
        {
            RecordingFailed(ex);
        }
    }

    /// <summary>Sets the latest sampled outbox depth; null when the sample failed (the gauge then reports nothing).</summary>
    public void OutboxDepth(long? depth) => Interlocked.Exchange(ref _outboxDepth, depth ?? -1);

    private void RecordingFailed(Exception ex) => _logger.LogError(ex, "Recording a metric failed; the work it measures is not affected");

    private IEnumerable<Measurement<long>> ObserveOutboxDepth()
    {
        var depth = Interlocked.Read(ref _outboxDepth);
        return depth < 0 ? [] : [new Measurement<long>(depth)];
    }
}
