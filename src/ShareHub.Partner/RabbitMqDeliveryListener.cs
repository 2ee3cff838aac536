using System.Text.Json;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using ShareHub.Contracts;

namespace ShareHub.Partner;

/// <summary>
/// Consumes this partner's own delivery queue with a least-privilege RabbitMQ user: it declares nothing (the hub
/// declared the queue; the user has no configure permission), publishes nothing (no write permission), and only
/// consumes and acknowledges messages of <c>sharehub.deliveries.&lt;organisation&gt;</c> (read permission on that
/// queue alone). A processed delivery is acknowledged to the hub over HTTP with a <c>deliveries:read</c> token, then
/// acked on the queue. A delivery that keeps failing is rejected without requeue, and RabbitMQ dead-letters it to the
/// hub-declared <c>_error</c> queue; nothing is dropped silently.
/// </summary>
public sealed class RabbitMqDeliveryListener : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly PartnerOptions _options;
    private readonly DeliveryProcessor _processor;
    private readonly Func<Guid, CancellationToken, Task> _acknowledge;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>Handled deliveries whose acknowledgement is under way (<see cref="AcknowledgeAsync"/>).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Task, byte> _acknowledging = new();
    private IConnection? _connection;
    private IChannel? _channel;

    /// <summary>Creates a listener; <paramref name="acknowledge"/> tells the hub a delivery was processed.</summary>
    public RabbitMqDeliveryListener(PartnerOptions options, DeliveryProcessor processor, Func<Guid, CancellationToken, Task> acknowledge, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Organisation);
        _options = options;
        _processor = processor;
        _acknowledge = acknowledge;
        _time = time;
        _logger = logger;
    }

    /// <summary>
    /// Acknowledges over HTTP with the token client: concurrent acknowledgements are grouped into one
    /// <c>POST /api/v1/deliveries/acknowledgements</c> (group commit, no timer: an idle partner sends at once; see
    /// <see cref="AcknowledgementBatcher"/>). The returned function throws — and the listener requeues the delivery
    /// after a pause — when the hub answers its delivery "not found" or the request fails; a delivery acknowledged
    /// already counts as success. A hub without the batch endpoint (404 on its path) is acknowledged one by one on
    /// <c>POST /api/v1/deliveries/{id}/acknowledgement</c>. Create it once per token client and reuse it: each returned function groups only its
    /// own calls.
    /// </summary>
    public static Func<Guid, CancellationToken, Task> HttpAcknowledgement(HubTokenClient tokens, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(time);
        return new AcknowledgementBatcher(tokens, time).AcknowledgeAsync;
    }

    /// <summary>Connects and starts consuming. Throws (ACCESS_REFUSED, 403) when the user may not read the queue.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        var factory = new ConnectionFactory
        {
            Uri = _options.RabbitMqUri,
            ClientProvidedName = $"sharehub-partner-{_options.Organisation}",
            AutomaticRecoveryEnabled = true,
            // The hub's topology is not ours to recover: only consumers are re-established after a reconnect.
            TopologyRecoveryEnabled = true,
            // HandlerConcurrency deliveries are handled at once (the inbox claims each id atomically, so a redelivery
            // racing its original is still handled once). A handled delivery then waits for the hub to record its
            // acknowledgement outside the dispatcher (AcknowledgeAsync), still counting against the prefetch: one at
            // a time, the acknowledgement round trip would cap a partner at a few dozen deliveries per second;
            // concurrently, the acknowledgements due during one round trip share the next request
            // (HttpAcknowledgement).
            // (A prefetch of 0 is AMQP's "unlimited".)
            ConsumerDispatchConcurrency = Math.Max((ushort)1, _options.PrefetchCount == 0 ? _options.HandlerConcurrency : Math.Min(_options.HandlerConcurrency, _options.PrefetchCount)),
        };
        _connection = await factory.CreateConnectionAsync(cancellationToken).ConfigureAwait(false);
        _channel = await _connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        await _channel.BasicQosAsync(0, _options.PrefetchCount, global: false, cancellationToken).ConfigureAwait(false);
        var consumer = new AsyncEventingBasicConsumer(_channel);
        consumer.ReceivedAsync += OnReceivedAsync;
        await _channel.BasicConsumeAsync(QueueNames.Deliveries(_options.Organisation), autoAck: false, consumer, cancellationToken).ConfigureAwait(false);
    }

    private async Task OnReceivedAsync(object sender, BasicDeliverEventArgs message)
    {
        var channel = _channel!;
        var token = _stopping.Token;
        Guid? deliveryId = null;
        try
        {
            var delivery = ReadMessage(message.Body.Span);
            deliveryId = delivery switch
            {
                DeliverCaseEvent caseEvent => caseEvent.DeliveryId,
                _ => ((DeliverSignal)delivery).DeliveryId,
            };
            await ProcessWithRetriesAsync(deliveryId.Value, ct => delivery switch
            {
                DeliverCaseEvent caseEvent => _processor.ProcessAsync(caseEvent, ct),
                _ => _processor.ProcessAsync((DeliverSignal)delivery, ct),
            }, token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !token.IsCancellationRequested)
        {
            // Misaddressed, unreadable or still failing after the retries: dead-letter it to the _error queue.
            _logger.LogError(ex, "Delivery {DeliveryId} failed; moved to the error queue", deliveryId);
            await channel.BasicNackAsync(message.DeliveryTag, multiple: false, requeue: false, CancellationToken.None).ConfigureAwait(false);
            return;
        }

        // The handler's call is done: the acknowledgement is awaited outside the consumer dispatcher, so the next
        // delivery is handled meanwhile. The delivery stays unacked on the queue (and counts against the prefetch)
        // until the hub recorded it; if this process dies first, RabbitMQ redelivers it and the inbox absorbs it.
        Track(AcknowledgeAsync(channel, message.DeliveryTag, deliveryId.Value, token));
    }

    /// <summary>Tells the hub, then acks on the queue; requeues after a pause if the hub did not take it. Never throws.</summary>
    private async Task AcknowledgeAsync(IChannel channel, ulong deliveryTag, Guid deliveryId, CancellationToken token)
    {
        try
        {
            await _acknowledge(deliveryId, token).ConfigureAwait(false);
            await channel.BasicAckAsync(deliveryTag, multiple: false, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception) when (token.IsCancellationRequested)
        {
            // Stopping: the channel closes and RabbitMQ requeues every delivery not acked on it.
        }
        catch (Exception ex)
        {
            // The hub did not take the acknowledgement (unreachable?): requeue after a pause; the inbox absorbs the
            // redelivery and the acknowledgement is tried again.
            _logger.LogWarning(ex, "Acknowledging delivery {DeliveryId} failed; it is requeued", deliveryId);
            try
            {
                await Task.Delay(_options.RetryIntervals.LastOrDefault(TimeSpan.FromSeconds(1)), _time, token).ConfigureAwait(false);
                await channel.BasicNackAsync(deliveryTag, multiple: false, requeue: true, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception nack) when (nack is not OperationCanceledException || !token.IsCancellationRequested)
            {
                // The channel is gone (connection lost): RabbitMQ requeues the delivery itself.
                _logger.LogWarning(nack, "Requeueing delivery {DeliveryId} failed; RabbitMQ requeues it when the channel closes", deliveryId);
            }
            catch (OperationCanceledException)
            {
                // Stopping during the pause: the closing channel requeues it.
            }
        }
    }

    /// <summary>Keeps <paramref name="acknowledging"/> until it completes, so that <see cref="DisposeAsync"/> can wait for it.</summary>
    private void Track(Task acknowledging)
    {
        if (acknowledging.IsCompleted)
        {
            return;
        }

        _acknowledging.TryAdd(acknowledging, 0);
        _ = acknowledging.ContinueWith(static (done, state) => ((System.Collections.Concurrent.ConcurrentDictionary<Task, byte>)state!).TryRemove(done, out _),
            _acknowledging, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task ProcessWithRetriesAsync(Guid deliveryId, Func<CancellationToken, Task> process, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await process(cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Exception ex) when (ex is not MisaddressedDeliveryException && attempt < _options.RetryIntervals.Count && !cancellationToken.IsCancellationRequested)
            {
                _logger.LogWarning(ex, "Delivery {DeliveryId} failed (attempt {Attempt}); retrying", deliveryId, attempt + 1);
                await Task.Delay(_options.RetryIntervals[attempt], _time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Reads the hub's message: MassTransit's JSON envelope with the <see cref="DeliverSignal"/> in <c>message</c>.</summary>
    internal static DeliverSignal ReadDelivery(ReadOnlySpan<byte> body) =>
        ReadMessage(body) as DeliverSignal ?? throw new InvalidDataException("The message holds no signal delivery.");

    /// <summary>
    /// Reads the hub's message: a <see cref="DeliverSignal"/> or, when the envelope's <c>messageType</c> names it, a
    /// <see cref="DeliverCaseEvent"/>.
    /// </summary>
    internal static object ReadMessage(ReadOnlySpan<byte> body)
    {
        using var document = JsonDocument.Parse(body.ToArray());
        var root = document.RootElement;
        var message = root.TryGetProperty("message", out var inner) ? inner : root;
        var isCaseEvent = root.TryGetProperty("messageType", out var types) && types.ValueKind == JsonValueKind.Array
            && types.EnumerateArray().Any(t => t.GetString() == CaseEventMessageType);
        return (isCaseEvent ? message.Deserialize<DeliverCaseEvent>(Json) : message.Deserialize<DeliverSignal>(Json) as object)
            ?? throw new InvalidDataException("The message holds no delivery.");
    }

    /// <summary>MassTransit's message type URN of <see cref="DeliverCaseEvent"/>.</summary>
    private const string CaseEventMessageType = "urn:message:ShareHub.Contracts:DeliverCaseEvent";

    /// <summary>Stops consuming and closes the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        // Acknowledgements under way end at once when cancelled (none throws); deliveries they leave unacked are
        // requeued by RabbitMQ when the channel closes.
        await Task.WhenAll(_acknowledging.Keys).ConfigureAwait(false);
        if (_channel is not null)
        {
            await _channel.CloseAsync().ConfigureAwait(false);
            _channel.Dispose();
        }

        if (_connection is not null)
        {
            await _connection.CloseAsync().ConfigureAwait(false);
            _connection.Dispose();
        }

        _stopping.Dispose();
    }
}
