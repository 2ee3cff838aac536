using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ShareHub.Contracts;

namespace ShareHub.Partner;

/// <summary>
/// Group commit for acknowledgements: concurrent acknowledgements go to the hub together in one
/// <c>POST /api/v1/deliveries/acknowledgements</c> instead of one request each. There is no timer and no background
/// thread, so an idle partner adds no latency: a waiting caller becomes a sender and sends everything queued so far (up
/// to <see cref="AcknowledgeDeliveriesRequest.MaxDeliveries"/>); callers that arrive while
/// <paramref name="requestsInFlight"/> requests are under way queue up and are sent by the next sender. Each caller
/// completes with its own item's outcome.
/// </summary>
/// <remarks>
/// <para>More than one request in flight: the hub commits an acknowledgement in a transaction shared with its other
/// writes, so behind batch submissions a request takes a few hundred milliseconds on a busy hub, and one request at a
/// time (at most 500 acknowledgements) capped a partner at about 1,500–2,000 acknowledgements a second while the hub
/// accepted 5,000 signals a second; the deliveries waiting for their acknowledgement held the partner's prefetch
/// window, and the rest arrived seconds after the hub accepted them (docs/benchmarks.md, session 25).</para>
/// <para>A request is sent with the token of its sender's caller's cancellation; the listener gives all its callers the
/// same token (its stopping token), so a cancelled request cancels only callers that are stopping anyway.</para>
/// </remarks>
/// <param name="tokens">The hub client with the partner's access token.</param>
/// <param name="time">The partner's clock (the acknowledgement's time).</param>
/// <param name="requestsInFlight">Acknowledgement requests under way at once, at least 1.</param>
internal sealed class AcknowledgementBatcher(HubTokenClient tokens, TimeProvider time, int requestsInFlight)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly ConcurrentQueue<Pending> _queue = new();
    private readonly SemaphoreSlim _sender = new(Math.Max(1, requestsInFlight), Math.Max(1, requestsInFlight));

    /// <summary>Set once the hub answered the batch path with 404: a hub from before the batch endpoint.</summary>
    private volatile bool _singleOnly;

    /// <summary>
    /// Tells the hub <paramref name="deliveryId"/> was processed (now, by this partner's clock) and returns once the
    /// hub recorded it — or had recorded it already. Throws <see cref="HttpRequestException"/> when the hub answers
    /// "not found" for it (404) or refuses the request (its status), or the exception of a failed request.
    /// </summary>
    public async Task AcknowledgeAsync(Guid deliveryId, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var item = new Pending(new DeliveryAcknowledgementItem(deliveryId, time.GetUtcNow()));
        _queue.Enqueue(item);

        var sending = false;
        try
        {
            await _sender.WaitAsync(cancellationToken).ConfigureAwait(false);
            sending = true;
        }
        catch (OperationCanceledException) when (item.TryCancel())
        {
            throw; // still queued: withdrawn, never sent
        }
        catch (OperationCanceledException)
        {
            // Another sender already took the item: its outcome is this caller's outcome.
        }

        if (sending)
        {
            try
            {
                // Send what is queued until this caller's own item is sent (by this sender or by another one).
                while (!item.Completion.Task.IsCompleted && Drain() is { Count: > 0 } group)
                {
                    await SendAsync(group, cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                _sender.Release();
            }
        }

        await item.Completion.Task.ConfigureAwait(false);
    }

    private List<Pending> Drain()
    {
        var group = new List<Pending>();
        while (group.Count < AcknowledgeDeliveriesRequest.MaxDeliveries && _queue.TryDequeue(out var item))
        {
            if (item.TryTake())
            {
                group.Add(item);
            }
        }

        return group;
    }

    private async Task SendAsync(List<Pending> group, CancellationToken cancellationToken)
    {
        if (_singleOnly)
        {
            await SendOneByOneAsync(group, cancellationToken).ConfigureAwait(false);
            return;
        }

        try
        {
            using var response = await tokens.PostAsJsonAsync(HubApi.AcknowledgementsPath,
                new AcknowledgeDeliveriesRequest([.. group.Select(p => p.Item)]), cancellationToken).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                // The batch endpoint answers per item and never 404 as a whole: this hub predates it. Partners may
                // upgrade the SDK before the hub is upgraded, so acknowledge one by one from now on.
                _singleOnly = true;
                await SendOneByOneAsync(group, cancellationToken).ConfigureAwait(false);
                return;
            }

            if (!response.IsSuccessStatusCode)
            {
                var refused = new HttpRequestException($"The hub refused the acknowledgement of {group.Count} deliveries: HTTP {(int)response.StatusCode}", null, response.StatusCode);
                group.ForEach(p => p.Completion.TrySetException(refused));
                return;
            }

            var answer = await response.Content.ReadFromJsonAsync<AcknowledgeDeliveriesResponse>(Json, cancellationToken).ConfigureAwait(false);
            if (answer?.Results is not { } results || results.Count != group.Count)
            {
                throw new InvalidDataException($"The hub answered {answer?.Results?.Count ?? 0} results for {group.Count} acknowledgements.");
            }

            for (var i = 0; i < group.Count; i++)
            {
                var (item, result) = (group[i], results[i]);
                if (result.DeliveryId != item.Item.DeliveryId)
                {
                    item.Completion.TrySetException(new InvalidDataException($"The hub answered for delivery {result.DeliveryId} where {item.Item.DeliveryId} was asked."));
                }
                else if (result.Outcome == AcknowledgementOutcome.NotFound)
                {
                    // As the single endpoint's 404: no delivery with this id is addressed to this organisation.
                    item.Completion.TrySetException(new HttpRequestException($"The hub refused the acknowledgement of {item.Item.DeliveryId}: not found", null, HttpStatusCode.NotFound));
                }
                else
                {
                    item.Completion.TrySetResult(); // acknowledged now, or already
                }
            }
        }
        catch (Exception ex)
        {
            // Unreachable hub, unreadable answer, cancellation: every caller of the request hears it.
            group.ForEach(p => p.Completion.TrySetException(ex));
        }
    }

    /// <summary>
    /// The older path, <c>POST /api/v1/deliveries/{id}/acknowledgement</c> per delivery (concurrently): 2xx is success,
    /// anything else (404: not this partner's delivery) fails that caller only.
    /// </summary>
    private async Task SendOneByOneAsync(List<Pending> group, CancellationToken cancellationToken) =>
        await Task.WhenAll(group.Select(async pending =>
        {
            try
            {
                using var response = await tokens.PostAsJsonAsync(HubApi.AcknowledgementPath(pending.Item.DeliveryId),
                    new AcknowledgeDeliveryRequest(pending.Item.AcknowledgedAt), cancellationToken).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    pending.Completion.TrySetResult();
                }
                else
                {
                    pending.Completion.TrySetException(new HttpRequestException(
                        $"The hub refused the acknowledgement of {pending.Item.DeliveryId}: HTTP {(int)response.StatusCode}", null, response.StatusCode));
                }
            }
            catch (Exception ex)
            {
                pending.Completion.TrySetException(ex);
            }
        })).ConfigureAwait(false);

    /// <summary>One caller's acknowledgement, and the state of its request.</summary>
    private sealed class Pending(DeliveryAcknowledgementItem item)
    {
        private const int Queued = 0, Taken = 1, Cancelled = 2;
        private int _state;

        public DeliveryAcknowledgementItem Item { get; } = item;

        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool TryTake() => Interlocked.CompareExchange(ref _state, Taken, Queued) == Queued;

        public bool TryCancel()
        {
            if (Interlocked.CompareExchange(ref _state, Cancelled, Queued) != Queued)
            {
                return false;
            }

            Completion.TrySetCanceled();
            return true;
        }
    }
}
