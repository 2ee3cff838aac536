using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using ShareHub.Contracts;

namespace ShareHub.Broker.Tests.Infrastructure;

/// <summary>
/// Submits a bounded stream of signals with several concurrent clients and records every answer. Every signal carries an
/// Idempotency-Key, so a client retries safely when the broker was down or died mid-request, as a real client would.
/// </summary>
public sealed class SignalStream(Func<HttpClient> clientFactory, int total, int concurrency)
{
    private readonly string _run = Guid.NewGuid().ToString("N")[..8];
    private int _next;

    /// <summary>Signals answered 202, with their decisions.</summary>
    public ConcurrentBag<SubmitSignalResponse> Accepted { get; } = [];

    /// <summary>HTTP status codes of non-202 answers.</summary>
    public ConcurrentBag<HttpStatusCode> Refused { get; } = [];

    /// <summary>Requests cut off mid-way (connection reset) and resubmitted with their idempotency key.</summary>
    public int Unanswered => _unanswered;

    private int _unanswered;
    private int _connectionRetries;

    /// <summary>Resubmissions after a refused connection (the broker was down; the request never reached it).</summary>
    public int ConnectionRetries => _connectionRetries;

    /// <summary>Attempts made so far.</summary>
    public int Attempted => Math.Min(Volatile.Read(ref _next), total);

    /// <summary>Runs the stream until <c>total</c> attempts or the time limit; <paramref name="request"/> builds the i-th request.</summary>
    public async Task RunAsync(Func<int, SubmitSignalRequest> request, TimeSpan limit)
    {
        using var deadline = new CancellationTokenSource(limit);
        var workers = Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            using var client = clientFactory();
            int i;
            while ((i = Interlocked.Increment(ref _next)) <= total && !deadline.IsCancellationRequested)
            {
                var body = request(i);
                var key = $"stream-{_run}-{i}";
                while (!deadline.IsCancellationRequested)
                {
                    try
                    {
                        using var message = new HttpRequestMessage(HttpMethod.Post, "/api/v1/signals") { Content = JsonContent.Create(body, options: Signals.Json) };
                        message.Headers.Add("Idempotency-Key", key);
                        using var response = await client.SendAsync(message, deadline.Token);
                        if (response.StatusCode == HttpStatusCode.Accepted)
                        {
                            Accepted.Add((await response.Content.ReadFromJsonAsync<SubmitSignalResponse>(Signals.Json, deadline.Token))!);
                        }
                        else
                        {
                            Refused.Add(response.StatusCode);
                        }

                        break;
                    }
                    catch (HttpRequestException ex) when (ex.HttpRequestError == HttpRequestError.ConnectionError)
                    {
                        // Nothing reached the broker (it is down): a client resubmits the same signal.
                        Interlocked.Increment(ref _connectionRetries);
                        await Task.Delay(50);
                    }
                    catch (HttpRequestException)
                    {
                        // The broker died mid-request: the signal may or may not have been committed. The client
                        // resubmits with the same Idempotency-Key, so it gets the stored signal back, never a second one.
                        Interlocked.Increment(ref _unanswered);
                        await Task.Delay(50);
                    }
                    catch (OperationCanceledException) when (deadline.IsCancellationRequested)
                    {
                        break; // the time limit ended the stream
                    }
                }
            }
        }));
        await Task.WhenAll(workers);
    }
}
