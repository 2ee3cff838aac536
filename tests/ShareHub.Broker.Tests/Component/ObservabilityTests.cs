using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using ShareHub.Broker.Data;
using ShareHub.Broker.Observability;
using ShareHub.Broker.Tests.Infrastructure;

namespace ShareHub.Broker.Tests.Component;

/// <summary>Health endpoints, trace propagation through the outbox, metrics and log format on the embedded default.</summary>
public sealed class ObservabilityTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task HealthEndpoints_AreAnonymous_AndAnswerOnlyTheStatus()
    {
        await using var hub = new ComponentHub();
        var anonymous = hub.Factory.CreateClient();

        foreach (var path in new[] { "/health/live", "/health/ready" })
        {
            using var response = await anonymous.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal("Healthy", await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task Submit_PartnerConsumeActivity_SharesTheTraceIdOfTheSubmittingRequest()
    {
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is "Microsoft.AspNetCore" or HubTelemetry.MassTransitSourceName or HubTelemetry.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);

        await using var hub = new ComponentHub();
        var client = hub.ClientFor(Signals.Gemeente);
        // The submitting organisation's own trace (W3C trace context), as a partner's case system would send it.
        var traceId = ActivityTraceId.CreateRandom();
        client.DefaultRequestHeaders.Add("traceparent", $"00-{traceId.ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-01");

        var response = await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));
        var deliveryId = Assert.Single(response.Decisions, d => d.Permitted).DeliveryId!.Value;
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => !hub.Partners.Handled.IsEmpty, Patience));

        // The HTTP request that submitted the signal ran in this trace, and the intake stored it on the audit entry.
        Assert.True(await PartnerRecorder.WaitUntilAsync(
            () => stopped.Any(a => a.Source.Name == "Microsoft.AspNetCore" && a.Kind == ActivityKind.Server && a.TraceId == traceId), Patience));
        var audit = await hub.Factory.WithDbAsync(db => db.AuditEntries.SingleAsync(a => a.DeliveryId == deliveryId && a.Kind == AuditKinds.Decision));
        Assert.Equal(traceId.ToHexString(), audit.TraceId);

        // The partner's MassTransit consume activity — after the outbox and the background dispatcher — is in the
        // same trace, below the dispatcher's activity.
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => stopped.Any(IsPartnerConsume), Patience),
            "no MassTransit consumer activity in the request's trace; seen: "
            + string.Join(", ", stopped.Where(a => a.Source.Name == HubTelemetry.MassTransitSourceName).Select(a => $"{a.DisplayName}/{a.Kind}/{a.TraceId}")));
        var dispatch = Assert.Single(stopped, a => a.OperationName == DeliveryTracing.DispatchActivityName && a.TraceId == traceId);
        Assert.Equal(deliveryId.ToString(), dispatch.GetTagItem("sharehub.delivery_id"));

        bool IsPartnerConsume(Activity a) =>
            a.Source.Name == HubTelemetry.MassTransitSourceName && a.Kind == ActivityKind.Consumer && a.TraceId == traceId
            && a.TagObjects.Any(t => t.Value is string s && s.Contains(Contracts.QueueNames.Deliveries(Signals.Riec), StringComparison.Ordinal));
    }

    [Fact]
    public async Task Metrics_CountSignalsDecisionsByOutcome_RecordLagAndGroupCommits_AndSampleOutboxDepth()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Telemetry:OutboxSampleSeconds"] = "1" });
        var meters = hub.Factory.Services.GetRequiredService<IMeterFactory>();
        var longs = new ConcurrentQueue<(string Name, long Value, Dictionary<string, object?> Tags)>();
        var doubles = new ConcurrentQueue<(string Name, double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                // Only this hub's meter: other tests' hubs run in the same process.
                if (instrument.Meter.Name == HubTelemetry.SourceName && ReferenceEquals(instrument.Meter.Scope, meters))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => longs.Enqueue((i.Name, v, ToDictionary(tags))));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => doubles.Enqueue((i.Name, v, ToDictionary(tags))));
        listener.SetMeasurementEventCallback<int>((i, v, tags, _) => longs.Enqueue((i.Name, v, ToDictionary(tags))));
        listener.Start();

        var response = await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod));
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => !hub.Partners.Handled.IsEmpty, Patience));
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => doubles.Any(m => m.Name == "sharehub.delivery.lag"), Patience));

        Assert.Equal(1, longs.Where(m => m.Name == "sharehub.signals.submitted").Sum(m => m.Value));
        var decisions = longs.Where(m => m.Name == "sharehub.decisions").ToList();
        var deny = Assert.Single(response.Decisions, d => !d.Permitted);
        Assert.Contains(decisions, m => Equals(m.Tags["outcome"], "permit"));
        Assert.Contains(decisions, m => Equals(m.Tags["outcome"], "deny") && Equals(m.Tags["reason"], deny.ReasonCode));
        var lag = Assert.Single(doubles, m => m.Name == "sharehub.delivery.lag");
        Assert.Equal(Signals.Riec, lag.Tags["recipient"]);
        Assert.InRange(lag.Value, 0, Patience.TotalSeconds);

        // The gauge reports the sampled depth: the one delivery was published, so it settles at zero.
        Assert.True(await PartnerRecorder.WaitUntilAsync(() =>
        {
            listener.RecordObservableInstruments();
            return longs.Any(m => m.Name == "sharehub.outbox.depth" && m.Value == 0);
        }, Patience));
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => longs.Any(m => m.Name == "sharehub.deliveries.acknowledged"), Patience));

        // The group commit: every unit's wait, by what it is — the submission, the dispatcher's mark, the partner's
        // acknowledgement — and every group's duration and size; each unit is counted in exactly one group. (A unit's
        // wait is recorded just after its commit, so after the counters above.)
        Assert.True(await PartnerRecorder.WaitUntilAsync(
            () => doubles.Any(m => m.Name == "sharehub.group_commit.wait" && Equals(m.Tags["unit"], "acknowledgements")), Patience));
        var waits = doubles.Where(m => m.Name == "sharehub.group_commit.wait").ToList();
        Assert.Equal(["acknowledgements", "dispatched", "signals"], waits.Select(m => (string)m.Tags["unit"]!).Order());
        Assert.All(waits, m => Assert.InRange(m.Value, 0, Patience.TotalSeconds));
        var groups = doubles.Where(m => m.Name == "sharehub.group_commit.duration").ToList();
        Assert.InRange(groups.Count, 1, waits.Count);
        Assert.All(groups, m => Assert.InRange(m.Value, 0, Patience.TotalSeconds));
        Assert.Equal(waits.Count, longs.Where(m => m.Name == "sharehub.group_commit.units").Sum(m => m.Value));
    }

    [Fact]
    public async Task OutboxDepth_CountsCommittedUnpublishedDeliveries()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Politie));
        var sampler = hub.Factory.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<OutboxDepthSampler>().Single();
        var measured = new List<long>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name == "sharehub.outbox.depth" && ReferenceEquals(instrument.Meter.Scope, hub.Factory.Services.GetRequiredService<IMeterFactory>()))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, v, _, _) => measured.Add(v));
        listener.Start();

        await sampler.SampleAsync(CancellationToken.None);
        listener.RecordObservableInstruments();

        var pending = await hub.Factory.WithDbAsync(db => db.Outbox.CountAsync(o => o.DispatchedAt == null));
        Assert.True(pending > 0);
        Assert.Equal([pending], measured);
    }

    [Fact]
    public async Task GroupCommitMetrics_ThatThrow_DoNotWriteACommittedGroupAgain()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        await SubmitWithThrowingGroupCommitMetricsAsync(hub.Factory);
    }

    /// <summary>
    /// Eight concurrent submissions while every measurement of the hub's meter throws (an exporter's or a listener's bug
    /// after the commit): each is answered as accepted and stored once — a committed group is never written again.
    /// </summary>
    internal static async Task SubmitWithThrowingGroupCommitMetricsAsync(HubFactory factory)
    {
        var meters = factory.Services.GetRequiredService<IMeterFactory>();
        var thrown = 0;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name.StartsWith("sharehub.", StringComparison.Ordinal) && ReferenceEquals(instrument.Meter.Scope, meters))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<double>((_, _, _, _) => throw new InvalidOperationException($"listener failure {Interlocked.Increment(ref thrown)}"));
        listener.SetMeasurementEventCallback<int>((_, _, _, _) => throw new InvalidOperationException($"listener failure {Interlocked.Increment(ref thrown)}"));
        listener.SetMeasurementEventCallback<long>((_, _, _, _) => throw new InvalidOperationException($"listener failure {Interlocked.Increment(ref thrown)}"));
        listener.Start();

        var client = factory.ClientFor(Signals.Gemeente);
        var accepted = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod))));

        Assert.True(thrown > 0);
        Assert.Equal(8, accepted.Select(a => a.SignalId).Distinct().Count());
        Assert.Equal(8, await factory.WithDbAsync(db => db.Signals.CountAsync()));
        Assert.Equal(16, await factory.WithDbAsync(db => db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.Decision)));
    }

    [Theory]
    [InlineData("Production", "json")]
    [InlineData("Development", "simple")]
    public async Task ConsoleLogs_AreJsonInProduction_AndPlainInDevelopment(string environment, string formatter)
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Authentication:Mode"] = "None" }, environment);
        var options = hub.Factory.Services.GetRequiredService<IOptionsMonitor<ConsoleLoggerOptions>>().CurrentValue;
        Assert.Equal(formatter, options.FormatterName ?? "simple");
    }

    private static Dictionary<string, object?> ToDictionary(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var tag in tags)
        {
            result[tag.Key] = tag.Value;
        }

        return result;
    }
}
