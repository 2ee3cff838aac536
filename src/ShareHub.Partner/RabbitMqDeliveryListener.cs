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
/// hub-declared <c>_error</c> queue; nothing is dropped silently. A message may be a bundle of deliveries
/// (<see cref="DeliverSignalBundle"/>): each is handled, deduplicated and acknowledged on its own, and the message is
/// acked once the hub recorded them all — or, if any kept failing, dead-lettered whole once the hub recorded the others.
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

    /// <summary>Calls of the handler at once (<see cref="PartnerOptions.HandlerConcurrency"/>), a bundle's included.</summary>
    private readonly SemaphoreSlim _handlerCalls;

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
        _handlerCalls = new SemaphoreSlim(Math.Max(1, (int)options.HandlerConcurrency));
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
    /// <param name="tokens">The hub client with the partner's access token.</param>
    /// <param name="time">The partner's clock: when a delivery was processed.</param>
    /// <param name="requestsInFlight">Requests under way at once (<see cref="PartnerOptions.AcknowledgementRequests"/>, 1–16).</param>
    public static Func<Guid, CancellationToken, Task> HttpAcknowledgement(HubTokenClient tokens, TimeProvider time, int requestsInFlight = PartnerOptions.DefaultAcknowledgementRequests)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThan(requestsInFlight, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(requestsInFlight, 16);
        return new AcknowledgementBatcher(tokens, time, requestsInFlight).AcknowledgeAsync;
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
            // HandlerConcurrency messages are handled at once, and their deliveries (a bundle's several) share
            // HandlerConcurrency handler calls (the inbox claims each id atomically, so a redelivery racing its
            // original is still handled once). A handled message then waits for the hub to record its
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
        (Guid DeliveryId, Exception? Failure)[] outcomes;
        try
        {
            // One delivery, or a bundle of them (DeliverSignalBundle): each is handled on its own, concurrently.
            outcomes = await Task.WhenAll(Deliveries(ReadMessage(message.Body.Span)).Select(delivery => HandleAsync(delivery, token))).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !token.IsCancellationRequested)
        {
            // Unreadable, or a bundle addressed to someone else: dead-letter it to the _error queue.
            _logger.LogError(ex, "Message {MessageId} could not be read or is not addressed to us; moved to the error queue", message.BasicProperties.MessageId);
            await channel.BasicNackAsync(message.DeliveryTag, multiple: false, requeue: false, CancellationToken.None).ConfigureAwait(false);
            return;
        }

        var handled = new List<Guid>(outcomes.Length);
        foreach (var (deliveryId, failure) in outcomes)
        {
            if (failure is null)
            {
                handled.Add(deliveryId);
            }
            else
            {
                // Misaddressed, or still failing after the retries: its message goes to the _error queue.
                _logger.LogError(failure, "Delivery {DeliveryId} failed; moved to the error queue", deliveryId);
            }
        }

        if (handled.Count == 0)
        {
            await channel.BasicNackAsync(message.DeliveryTag, multiple: false, requeue: false, CancellationToken.None).ConfigureAwait(false);
            return;
        }

        // The handler's calls are done: the acknowledgements are awaited outside the consumer dispatcher, so the next
        // message is handled meanwhile. The message stays unacked on the queue (and counts against the prefetch)
        // until the hub recorded them; if this process dies first, RabbitMQ redelivers it and the inbox absorbs it.
        // A bundle in which some deliveries failed goes to the _error queue whole once the others are recorded: a
        // replay hands the failed ones to the handler again, and the inbox absorbs the rest.
        Track(AcknowledgeAsync(channel, message.DeliveryTag, handled, deadLetter: handled.Count < outcomes.Length, token));
    }

    /// <summary>The deliveries a message carries: itself, or a bundle's (which must be addressed to this partner).</summary>
    private IReadOnlyList<object> Deliveries(object message) =>
        message is DeliverSignalBundle bundle ? _processor.Open(bundle) : [message];

    /// <summary>
    /// Hands one delivery to the processor, retrying, within <see cref="PartnerOptions.HandlerConcurrency"/> handler
    /// calls. Returns the failure instead of throwing (but for stopping), so a bundle's other deliveries go on.
    /// </summary>
    private async Task<(Guid DeliveryId, Exception? Failure)> HandleAsync(object delivery, CancellationToken token)
    {
        var (deliveryId, process) = delivery switch
        {
            DeliverCaseEvent caseEvent => (caseEvent.DeliveryId, (Func<CancellationToken, Task>)(ct => _processor.ProcessAsync(caseEvent, ct))),
            DeliverSignal signal => (signal.DeliveryId, ct => _processor.ProcessAsync(signal, ct)),
            _ => throw new InvalidDataException("The message holds no delivery."),
        };
        await _handlerCalls.WaitAsync(token).ConfigureAwait(false);
        try
        {
            await ProcessWithRetriesAsync(deliveryId, process, token).ConfigureAwait(false);
            return (deliveryId, null);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !token.IsCancellationRequested)
        {
            return (deliveryId, ex);
        }
        finally
        {
            _handlerCalls.Release();
        }
    }

    /// <summary>
    /// Tells the hub, then acks the message on the queue — or, when some of its deliveries failed, dead-letters it;
    /// requeues it after a pause if the hub did not take them. Never throws.
    /// </summary>
    private async Task AcknowledgeAsync(IChannel channel, ulong deliveryTag, List<Guid> deliveryIds, bool deadLetter, CancellationToken token)
    {
        try
        {
            await Task.WhenAll(deliveryIds.Select(id => _acknowledge(id, token))).ConfigureAwait(false);
            if (deadLetter)
            {
                await channel.BasicNackAsync(deliveryTag, multiple: false, requeue: false, CancellationToken.None).ConfigureAwait(false);
            }
            else
            {
                await channel.BasicAckAsync(deliveryTag, multiple: false, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception) when (token.IsCancellationRequested)
        {
            // Stopping: the channel closes and RabbitMQ requeues every delivery not acked on it.
        }
        catch (Exception ex)
        {
            // The hub did not take the acknowledgement (unreachable?): requeue after a pause; the inbox absorbs the
            // redelivery and the acknowledgement is tried again.
            _logger.LogWarning(ex, "Acknowledging deliveries {DeliveryIds} failed; their message is requeued", deliveryIds);
            try
            {
                await Task.Delay(_options.RetryIntervals.LastOrDefault(TimeSpan.FromSeconds(1)), _time, token).ConfigureAwait(false);
                await channel.BasicNackAsync(deliveryTag, multiple: false, requeue: true, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception nack) when (nack is not OperationCanceledException || !token.IsCancellationRequested)
            {
                // The channel is gone (connection lost): RabbitMQ requeues the message itself.
                _logger.LogWarning(nack, "Requeueing deliveries {DeliveryIds} failed; RabbitMQ requeues them when the channel closes", deliveryIds);
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
    /// <see cref="DeliverCaseEvent"/> or a <see cref="DeliverSignalBundle"/> (with at least one delivery).
    /// </summary>
    internal static object ReadMessage(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body);
        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement;
        var message = root.TryGetProperty("message", out var inner) ? inner : root;
        var type = root.TryGetProperty("messageType", out var types) && types.ValueKind == JsonValueKind.Array
            ? types.EnumerateArray().Select(t => t.GetString()).FirstOrDefault(t => t is CaseEventMessageType or BundleMessageType)
            : null;
        object? read = type switch
        {
            CaseEventMessageType => message.Deserialize<DeliverCaseEvent>(Json),
            BundleMessageType => message.Deserialize<DeliverSignalBundle>(Json) is { Deliveries: [_, ..] } bundle && bundle.Deliveries.All(d => d is not null)
                ? bundle
                : throw new InvalidDataException("The bundle holds no deliveries."),
            _ => message.Deserialize<DeliverSignal>(Json),
        };
        return read ?? throw new InvalidDataException("The message holds no delivery.");
    }

    /// <summary>MassTransit's message type URN of <see cref="DeliverCaseEvent"/>.</summary>
    private const string CaseEventMessageType = "urn:message:ShareHub.Contracts:DeliverCaseEvent";

    /// <summary>MassTransit's message type URN of <see cref="DeliverSignalBundle"/>.</summary>
    private const string BundleMessageType = "urn:message:ShareHub.Contracts:DeliverSignalBundle";

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
        _handlerCalls.Dispose();
    }
}
