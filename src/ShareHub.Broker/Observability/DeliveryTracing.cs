using System.Diagnostics;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Observability;

/// <summary>
/// Re-joins a delivery to the trace of the HTTP request that submitted its signal. The outbox breaks the call chain
/// (the dispatcher publishes later, from a background service, with no ambient trace), so the dispatcher starts a
/// <c>sharehub.outbox.dispatch</c> activity whose parent is rebuilt from the trace id the intake stored on the
/// decision's audit entry. MassTransit's send activity becomes its child and carries the W3C <c>traceparent</c> on
/// the message, so the partner's consume activity shares the submitting request's trace id (the "Logboek
/// dataverwerkingen" links processing across organisations by trace id).
/// Only the trace id is stored, not the request's span id: the parent span id is a fresh one, so a trace viewer
/// shows the dispatch as a second root within the same trace rather than as a child of the HTTP span.
/// </summary>
public static class DeliveryTracing
{
    /// <summary>Name of the dispatch activity.</summary>
    public const string DispatchActivityName = "sharehub.outbox.dispatch";

    /// <summary>
    /// Starts the dispatch activity for <paramref name="row"/> (its <see cref="OutboxMessage.AuditEntry"/> must be
    /// loaded to continue the trace). Returns null when nobody listens and no trace id is stored.
    /// </summary>
    public static Activity? StartDispatch(OutboxMessage row)
    {
        ArgumentNullException.ThrowIfNull(row);
        var hasParent = TryGetSubmission(row, out var parent);
        var activity = HubTelemetry.Source.StartActivity(DispatchActivityName, ActivityKind.Producer, parent);
        if (activity is null && hasParent)
        {
            // Nobody samples the broker's own source, but MassTransit's may be listened to: still make the trace id
            // ambient so the send (and the partner's consume) stay in the submitting request's trace.
            activity = new Activity(DispatchActivityName);
            activity.SetParentId(parent.TraceId, parent.SpanId, parent.TraceFlags);
            activity.Start();
        }

        activity?.SetTag("sharehub.delivery_id", row.DeliveryId.ToString());
        activity?.SetTag("sharehub.recipient", row.Recipient);
        return activity;
    }

    /// <summary>
    /// Starts the dispatch activity of a bundle of deliveries (<see cref="ShareHub.Contracts.DeliverSignalBundle"/>).
    /// One message cannot continue several traces, so, as OpenTelemetry's messaging conventions have it for a batch,
    /// the activity links to each delivery's submitting trace instead of continuing one of them. Returns null when
    /// nobody listens.
    /// </summary>
    public static Activity? StartDispatch(IReadOnlyList<OutboxMessage> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var links = new List<ActivityLink>(rows.Count);
        foreach (var row in rows)
        {
            if (TryGetSubmission(row, out var submission))
            {
                links.Add(new ActivityLink(submission));
            }
        }

        var activity = HubTelemetry.Source.StartActivity(DispatchActivityName, ActivityKind.Producer, default(ActivityContext), links: links);
        activity?.SetTag("sharehub.recipient", rows.Count > 0 ? rows[0].Recipient : null);
        activity?.SetTag("messaging.batch.message_count", rows.Count);
        return activity;
    }

    /// <summary>
    /// The submitting request's trace, from the trace id the intake stored on the decision's audit entry (which must
    /// be loaded), with a fresh span id: the request's own span id is not stored.
    /// </summary>
    private static bool TryGetSubmission(OutboxMessage row, out ActivityContext submission)
    {
        submission = default;
        return row.AuditEntry?.TraceId is { Length: 32 } traceId
            && ActivityContext.TryParse($"00-{traceId}-{ActivitySpanId.CreateRandom().ToHexString()}-01", null, isRemote: true, out submission);
    }
}
