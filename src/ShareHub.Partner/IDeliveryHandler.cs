using ShareHub.Contracts;

namespace ShareHub.Partner;

/// <summary>
/// Your system's handling of one delivery (e.g. store it in the partner's case system). Called at most once per
/// delivery id as far as the <see cref="IDeliveryInbox"/> can tell; throw to have the delivery retried and, after the
/// retries, moved to your error queue (nothing is dropped silently).
/// </summary>
public interface IDeliveryHandler
{
    /// <summary>Processes a delivery addressed to this partner.</summary>
    Task HandleAsync(DeliverSignal delivery, CancellationToken cancellationToken);

    /// <summary>
    /// Processes a case event of a case this partner takes part in (phase changed, information requested,
    /// intervention assigned, case closed, a hit/no-hit question…). A question is answered separately with
    /// <see cref="HitNoHit.AnswerAsync"/>: the hit or no-hit bit only. By default events are taken note of and
    /// acknowledged.
    /// </summary>
    Task HandleCaseEventAsync(DeliverCaseEvent caseEvent, CancellationToken cancellationToken) => Task.CompletedTask;
}
