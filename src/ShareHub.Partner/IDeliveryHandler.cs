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
}
