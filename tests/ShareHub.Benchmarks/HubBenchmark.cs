using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text.Json;
using HdrHistogram;
using MassTransit;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;
using ShareHub.Partner;

namespace ShareHub.Benchmarks;

/// <summary>
/// The hub against the bare bus on the same machine. Starts the broker as its own process on PostgreSQL + RabbitMQ
/// (a private database and virtual host), drives signals through the real HTTP API with concurrent clients, consumes
/// the deliveries with the real Partner SDK, and in the same run measures plain MassTransit publish→consume of the
/// same number of same-size messages over the same RabbitMQ (durable, publisher confirms). Usage:
/// <c>dotnet run -c Release --project tests/ShareHub.Benchmarks -- hub [--signals N] [--clients C] [--batch B]
/// [--rate R] [--duration MINUTES] [--warmup SECONDS] [--smoke]</c>. <c>--warmup</c> (default 45 s) drives the hub
/// unmeasured until its JIT has settled; <c>--batch</c> submits B signals per request to
/// <c>POST /api/v1/signals/batch</c>; <c>--rate</c> paces submissions at R signals/s in total (open loop: latency counts
/// from each signal's scheduled time, so a stalled hub cannot hide behind waiting clients); <c>--duration</c> runs at
/// that rate (default 100/s) for the given minutes. The broker's RSS and PSS are sampled every 2 s.
/// </summary>
internal static class HubBenchmark
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static async Task<int> RunAsync(string[] args, TextWriter output)
    {
        var smoke = args.Contains("--smoke");
        var clients = Option(args, "--clients", 16);
        var minutes = Option(args, "--duration", 0);
        var load = new Load(Option(args, "--batch", 1), Option(args, "--rate", minutes > 0 ? 100 : 0));
        var signals = minutes > 0 ? load.Rate * minutes * 60 : Option(args, "--signals", smoke ? 300 : 20_000);
        var warmup = Math.Min(500, signals / 4);
        // The broker's JIT needs ~40 s under load to reach steady state (tiered compilation compiles hot methods again
        // at higher tiers; measured with dotnet-counters, docs/benchmarks.md); until then much of its CPU goes to
        // compiling. The hub is warmed up for this long (at least `warmup` signals) before anything is measured.
        var warmupSeconds = Option(args, "--warmup", smoke ? 0 : 45);

        await using var servers = await RealServers.CreateAsync();
        output.WriteLine($"hub benchmark: {signals} signals, {clients} concurrent clients, warm-up ≥ {warmup} signals and ≥ {warmupSeconds} s (hub), {warmup} messages (bare bus), "
            + $"{(load.Batch > 1 ? $"batches of {load.Batch}" : "one signal per request")}, {(load.Rate > 0 ? $"paced at {load.Rate}/s" : "as fast as possible")}; "
            + $"PostgreSQL database {servers.Database}, RabbitMQ vhost {servers.VirtualHost}");

        var hub = await MeasureHubAsync(servers, signals, (warmup, TimeSpan.FromSeconds(warmupSeconds)), clients, load, output);
        var bare = await MeasureBareBusAsync(servers.RabbitMqUri, signals, warmup, clients, hub.MessageBytes);

        output.WriteLine();
        output.WriteLine($"{"",-34} {"hub",14} {"bare bus",14}");
        output.WriteLine($"{"messages",-34} {hub.Delivered,14:N0} {bare.Delivered,14:N0}");
        output.WriteLine($"{"message size (bytes)",-34} {hub.MessageBytes,14:N0} {bare.MessageBytes,14:N0}");
        output.WriteLine($"{"accepted/s (HTTP 202)",-34} {hub.AcceptedPerSecond,14:N0} {"",14}");
        output.WriteLine($"{"end-to-end/s (delivered + acked)",-34} {hub.EndToEndPerSecond,14:N0} {bare.EndToEndPerSecond,14:N0}");
        output.WriteLine($"{"submit→audited p50/p95/p99 (ms)",-34} {Percentiles(hub.Audited),14}");
        if (load.Rate > 0)
        {
            // Paced, the latencies count from each request's due time (open loop). These say how much of that is the
            // client's: how late a request left after its due time (timer, a busy client), and the latencies from the send.
            output.WriteLine($"{"  client start late (ms)",-34} {Percentiles(hub.Paced!.Late),14}");
            output.WriteLine($"{"  submit→audited from the send",-34} {Percentiles(hub.Paced.AuditedFromSend),14}");
            output.WriteLine($"  slowest seconds (UTC, answers over 10 ms from the send, worst ms): {hub.Paced.SlowestSeconds(8)}");
        }

        output.WriteLine($"{"submit→delivered p50/p95/p99 (ms)",-34} {Percentiles(hub.Delivery),14} {Percentiles(bare.Delivery),14}");
        if (load.Rate > 0)
        {
            output.WriteLine($"{"  submit→delivered from the send",-34} {Percentiles(hub.Paced!.DeliveredFromSend),14}");
        }

        output.WriteLine($"{"broker RSS start/peak (MB)",-34} {hub.Memory.RssStartMb,6:N0} / {hub.Memory.RssPeakMb,5:N0}");
        output.WriteLine($"{"broker PSS start/peak (MB)",-34} {hub.Memory.PssStartMb,6:N0} / {hub.Memory.PssPeakMb,5:N0}");
        output.WriteLine($"{"broker CPU (s user+sys)",-34} {hub.CpuSeconds,14:N1}");
        output.WriteLine($"{"broker CPU per signal (ms)",-34} {hub.CpuSeconds * 1000 / signals,14:N2}");
        output.WriteLine($"{"CPU per message, all processes (ms)",-34} {hub.Machine.Total * 1000 / signals,14:N2} {bare.Machine.Total * 1000 / signals,14:N2}");
        output.WriteLine($"  hub:      {hub.Machine.PerMessage(signals)}");
        output.WriteLine($"  bare bus: {bare.Machine.PerMessage(signals)}");
        output.WriteLine($"ratio hub/bare (end-to-end throughput): {hub.EndToEndPerSecond / bare.EndToEndPerSecond:F2}");
        return 0;
    }

    /// <summary>How signals are submitted: per request or in batches, as fast as possible (Rate 0) or paced.</summary>
    private sealed record Load(int Batch, int Rate);

    private sealed record Result(int Delivered, int MessageBytes, double AcceptedPerSecond, double EndToEndPerSecond, HistogramBase? Audited, HistogramBase Delivery, Memory Memory, double CpuSeconds, MachineCpu Machine, Pacing? Paced = null);

    /// <summary>A paced run's view of the client: how late requests left, and the latencies counted from the send.</summary>
    private sealed record Pacing(HistogramBase Late, HistogramBase AuditedFromSend, HistogramBase DeliveredFromSend)
    {
        /// <summary>Per wall-clock second (UTC) of the answer: the slowest submit→audited from the send, and how many took over 10 ms.</summary>
        private readonly ConcurrentDictionary<long, StrongBox<(long Worst, int Slow)>> _seconds = new();

        public static Pacing Create() => new(Histogram(), Histogram(), Histogram());

        public void RecordAudited(long microseconds, int count)
        {
            AuditedFromSend.RecordValueWithCount(microseconds, count);
            var second = _seconds.GetOrAdd(TimeProvider.System.GetUtcNow().ToUnixTimeSeconds(), _ => new StrongBox<(long, int)>());
            lock (second)
            {
                second.Value = (Math.Max(second.Value.Worst, microseconds), second.Value.Slow + (microseconds > 10_000 ? count : 0));
            }
        }

        /// <summary>
        /// The seconds with the most answers over 10 ms, to line up with the servers' logs (PostgreSQL checkpoints,
        /// autovacuum) and the broker's GC: where the tail of the latency comes from.
        /// </summary>
        public string SlowestSeconds(int count) => string.Join(", ", _seconds
            .OrderByDescending(s => s.Value.Value.Slow).Take(count)
            .Select(s => $"{DateTimeOffset.FromUnixTimeSeconds(s.Key):HH:mm:ss} {s.Value.Value.Slow} over 10 ms, worst {s.Value.Value.Worst / 1000.0:F1}"));

        private static LongConcurrentHistogram Histogram() => new(1, TimeSpan.FromMinutes(10).Ticks / 10, 3);
    }

    /// <summary>
    /// CPU seconds (user + system) spent over a measured phase by each process group on the machine: the broker, the
    /// PostgreSQL server processes, RabbitMQ (beam.smp) and this benchmark (clients and partner consumer alike), read
    /// from /proc. Processes that exit during the phase are not counted.
    /// </summary>
    private sealed record MachineCpu(IReadOnlyDictionary<string, double> Seconds)
    {
        public double Total => Seconds.Values.Sum();

        public static MachineCpu Read(int? broker)
        {
            var seconds = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var folder in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(folder), out var pid))
                {
                    continue;
                }

                try
                {
                    var comm = File.ReadAllText(Path.Combine(folder, "comm")).Trim();
                    var group = pid == broker ? "broker"
                        : pid == Environment.ProcessId ? "benchmark"
                        : comm == "postgres" ? "PostgreSQL"
                        : comm == "beam.smp" ? "RabbitMQ"
                        : null;
                    if (group is not null)
                    {
                        seconds[group] = seconds.GetValueOrDefault(group) + CpuSeconds(pid, withReapedChildren: true);
                    }
                }
                catch (IOException)
                {
                    // exited meanwhile
                }
                catch (UnauthorizedAccessException)
                {
                    // not ours to read
                }
            }

            return new MachineCpu(seconds);
        }

        public MachineCpu Since(MachineCpu start) =>
            new(Seconds.ToDictionary(s => s.Key, s => s.Value - start.Seconds.GetValueOrDefault(s.Key), StringComparer.Ordinal));

        public string PerMessage(int messages) => string.Join(", ", Seconds.OrderByDescending(s => s.Value)
            .Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Key} {s.Value * 1000 / messages:F3} ms")));
    }

    /// <summary>
    /// The broker's memory in MB. RSS counts every mapped page once per mapping: the runtime maps JIT-compiled code
    /// twice (W^X: a writable and an executable view of the same pages), so RSS counts that code twice. PSS
    /// (proportional set size, /proc/&lt;pid&gt;/smaps_rollup) counts each page once, and shared library pages in
    /// proportion to the processes sharing them.
    /// </summary>
    private sealed record Memory(double RssStartMb, double RssPeakMb, double PssStartMb, double PssPeakMb);

    private static async Task<Result> MeasureHubAsync(RealServers servers, int signals, (int Signals, TimeSpan Time) warming, int clients, Load load, TextWriter output)
    {
        var warmup = int.MaxValue; // until the warm-up ends: nothing is recorded
        var delivered = new LongConcurrentHistogram(1, TimeSpan.FromMinutes(10).Ticks / 10, 3); // microseconds
        var handled = 0;
        var messageBytes = 0;
        var pacing = load.Rate > 0 ? Pacing.Create() : null;
        var handler = new TimingHandler((delivery, dueAt, sentAt) =>
        {
            if (Interlocked.Increment(ref handled) > Volatile.Read(ref warmup))
            {
                var now = Stopwatch.GetTimestamp();
                delivered.RecordValue(Microseconds(now - dueAt));
                pacing?.DeliveredFromSend.RecordValue(Microseconds(now - sentAt));
            }

            messageBytes = JsonSerializer.SerializeToUtf8Bytes(delivery).Length;
        });
        using var identity = new ProcessIdentity("gemeente-amsterdam", "riec-amsterdam");
        await using var broker = await BrokerProcess.StartAsync(servers.HubSettings().Concat(identity.Settings()).ToDictionary(), BrokerProcess.FreePort());
        // The recipient consumes its queue (declared by the hub) with the Partner SDK and acknowledges over HTTP. The
        // hub answers an acknowledgement only after committing it, so the deliveries it answered are the recorded
        // ones: counted here, the run's end needs no polling of the database (a count(*) of the growing table every
        // 20 ms was PostgreSQL CPU charged to the hub: 2.2 s in a run of 60,000 batched signals, session 24).
        var recorded = new Acknowledged(RabbitMqDeliveryListener.HttpAcknowledgement(identity.TokenClient("riec-amsterdam", broker.Address), TimeProvider.System));
        var processor = new DeliveryProcessor("riec-amsterdam", handler, new InMemoryDeliveryInbox(), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        await using var partner = new RabbitMqDeliveryListener(
            new PartnerOptions { Organisation = "riec-amsterdam", RabbitMqUri = servers.RabbitMqUri },
            processor,
            recorded.AcknowledgeAsync,
            TimeProvider.System,
            Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        await partner.StartAsync();
        {
            var audited = new LongConcurrentHistogram(1, TimeSpan.FromMinutes(10).Ticks / 10, 3);
            // Renews its access token when it expires (5 minutes): long runs outlive one token.
            var http = identity.TokenClient("gemeente-amsterdam", broker.Address);

            var warmingClock = Stopwatch.StartNew();
            var warmed = 0;
            do
            {
                await SubmitAsync(http, warming.Signals, clients, load with { Rate = 0 }, null);
                warmed += warming.Signals;
            }
            while (warmingClock.Elapsed < warming.Time);

            await WaitAsync(() => Volatile.Read(ref handled) >= warmed, TimeSpan.FromMinutes(2));
            await recorded.WaitForAsync(warmed);
            Volatile.Write(ref warmup, warmed);
            output.WriteLine($"hub: warmed up with {warmed} signals in {warmingClock.Elapsed.TotalSeconds:F0} s");

            var rssStart = Rss(broker.ProcessId).Current;
            var pssStart = Pss(broker.ProcessId);
            var cpuStart = CpuSeconds(broker.ProcessId);
            var machineStart = MachineCpu.Read(broker.ProcessId);
            var clock = Stopwatch.StartNew();
            using var progress = Progress(() => $"hub: submitted {clock.Elapsed.TotalSeconds:F0} s, delivered {Volatile.Read(ref handled) - warmup}/{signals}");
            var samples = new List<(double RssMb, double PssMb)> { (rssStart, pssStart) };
            using var sampler = new Timer(_ =>
            {
                var sample = (Rss(broker.ProcessId).Current, Pss(broker.ProcessId));
                lock (samples)
                {
                    samples.Add(sample);
                }
            }, null, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2));
            await SubmitAsync(http, signals, clients, load, audited, pacing);
            var accepted = clock.Elapsed;
            await recorded.WaitForAsync(warmup + signals);
            var endToEnd = clock.Elapsed;
            await sampler.DisposeAsync();
            var (_, peak) = Rss(broker.ProcessId);
            if (samples.Count > 10)
            {
                var every10s = samples.Where((_, i) => i % 5 == 0).ToList();
                output.WriteLine("broker RSS over the run (MB, every 10 s): " + string.Join(" ", every10s.Select(s => s.RssMb.ToString("F0", CultureInfo.InvariantCulture))));
                output.WriteLine("broker PSS over the run (MB, every 10 s): " + string.Join(" ", every10s.Select(s => s.PssMb.ToString("F0", CultureInfo.InvariantCulture))));
                var half = samples.Count / 2;
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"broker RSS: first half max {samples.Take(half).Max(s => s.RssMb):F0} MB, second half max {samples.Skip(half).Max(s => s.RssMb):F0} MB, last {samples[^1].RssMb:F0} MB; "
                    + $"PSS: first half max {samples.Take(half).Max(s => s.PssMb):F0} MB, second half max {samples.Skip(half).Max(s => s.PssMb):F0} MB, last {samples[^1].PssMb:F0} MB"));
            }

            var cpu = CpuSeconds(broker.ProcessId) - cpuStart;
            var machine = MachineCpu.Read(broker.ProcessId).Since(machineStart);
            // Measured: now check the hub's own record once.
            var acknowledged = await servers.ScalarAsync<long>("SELECT count(*) FROM acknowledgements");
            if (acknowledged < warmup + signals)
            {
                throw new InvalidOperationException($"the hub answered {warmup + signals} acknowledgements but holds {acknowledged}");
            }

            output.WriteLine($"hub: {signals} accepted in {accepted.TotalSeconds:F1} s, {acknowledged - warmup} delivered and acknowledged in {endToEnd.TotalSeconds:F1} s");
            return new Result(signals, messageBytes, signals / accepted.TotalSeconds, signals / endToEnd.TotalSeconds, audited, delivered,
                new Memory(rssStart, peak, pssStart, samples.Max(s => s.PssMb)), cpu, machine, pacing);
        }
    }

    /// <summary>
    /// Submits <paramref name="count"/> signals, one per request or in batches: as fast as possible from
    /// <paramref name="clients"/> concurrent clients, or paced (Rate &gt; 0), open loop: request k is due at
    /// k·batch/rate seconds, its latencies count from then, and at most <paramref name="clients"/> are in flight.
    /// </summary>
    private static Task SubmitAsync(HubTokenClient http, int count, int clients, Load load, LongConcurrentHistogram? audited, Pacing? pacing = null)
    {
        var requests = (count + load.Batch - 1) / load.Batch;
        if (load.Rate > 0)
        {
            return PacedAsync(http, count, requests, clients, load, audited, pacing);
        }

        var next = -1;
        return Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
        {
            int k;
            while ((k = Interlocked.Increment(ref next)) < requests)
            {
                var now = Stopwatch.GetTimestamp();
                await SendAsync(http, Math.Min(load.Batch, count - (k * load.Batch)), load, now, now, audited, pacing);
            }
        })));
    }

    /// <summary>
    /// The paced submissions. One dedicated thread sleeps until each request's due time and sends it itself — a
    /// thread-pool timer per client woke up to 14 ms late on the busy machine (p99), which counted as hub latency. It
    /// waits for a free client when <paramref name="clients"/> requests are in flight: that delay is the hub's and is
    /// counted.
    /// </summary>
    private static Task PacedAsync(HubTokenClient http, int count, int requests, int clients, Load load, LongConcurrentHistogram? audited, Pacing? pacing)
    {
        var free = new SemaphoreSlim(clients, clients);
        var sent = new List<Task>(requests);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pacer = new Thread(() =>
        {
            try
            {
                var origin = Stopwatch.GetTimestamp();
                for (var k = 0; k < requests; k++)
                {
                    var due = origin + (long)((double)k * load.Batch / load.Rate * Stopwatch.Frequency);
                    // Thread.Sleep wakes within about a millisecond; closer than half a millisecond, it goes now.
                    while (Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due) is { TotalMilliseconds: > 0.5 } wait)
                    {
                        Thread.Sleep(wait);
                    }

                    free.Wait();
                    var request = SendAsync(http, Math.Min(load.Batch, count - (k * load.Batch)), load, due, Stopwatch.GetTimestamp(), audited, pacing);
                    sent.Add(request.ContinueWith(t =>
                    {
                        free.Release();
                        return t;
                    }, TaskScheduler.Default).Unwrap());
                }

                done.SetResult();
            }
            catch (Exception ex)
            {
                done.SetException(ex);
            }
        }) { IsBackground = true, Name = "benchmark pacer" };
        pacer.Start();
        return done.Task.ContinueWith(_ => Task.WhenAll(sent), TaskScheduler.Default).Unwrap();
    }

    /// <summary>Sends one request (due at <paramref name="due"/>, leaving at <paramref name="sent"/>) and records its latencies.</summary>
    private static async Task SendAsync(HubTokenClient http, int size, Load load, long due, long sent, LongConcurrentHistogram? audited, Pacing? pacing)
    {
        pacing?.Late.RecordValue(Microseconds(sent - due));
        // dueAt is the due time, so submit→delivered also counts from it; sentAt when the request left.
        var signals = Enumerable.Range(0, size).Select(_ => new SubmitSignalRequest(new SubjectDto("kvk", "12345678"), "kvk-ubo", "signaalweging", null, ["riec-amsterdam"],
            JsonSerializer.SerializeToElement(new { dueAt = due, sentAt = sent, naam = "Holding Zuidas B.V.", adres = "Zuidplein 1, Amsterdam", signaal = new string('x', 300) }))).ToList();
        using var response = load.Batch > 1
            ? await http.PostAsJsonAsync("/api/v1/signals/batch", new SubmitSignalBatchRequest(signals))
            : await http.PostAsJsonAsync("/api/v1/signals", signals[0]);
        var expected = load.Batch > 1 ? System.Net.HttpStatusCode.OK : System.Net.HttpStatusCode.Accepted;
        if (response.StatusCode != expected)
        {
            throw new InvalidOperationException($"submission answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        if (load.Batch > 1 && (await response.Content.ReadFromJsonAsync<SubmitSignalBatchResponse>(Json))!.Accepted != size)
        {
            throw new InvalidOperationException("the hub refused items of a batch");
        }

        var answered = Stopwatch.GetTimestamp();
        audited?.RecordValueWithCount(Microseconds(answered - due), size);
        pacing?.RecordAudited(Microseconds(answered - sent), size);
    }

    /// <summary>
    /// The partner's acknowledgements as the hub answered them: each delivery counted once, when the hub said it
    /// recorded it (the SDK's acknowledgement task completes only then; a redelivery's second acknowledgement is not
    /// counted again).
    /// </summary>
    private sealed class Acknowledged(Func<Guid, CancellationToken, Task> acknowledge)
    {
        private readonly ConcurrentDictionary<Guid, byte> _recorded = new();

        public async Task AcknowledgeAsync(Guid deliveryId, CancellationToken cancellationToken)
        {
            await acknowledge(deliveryId, cancellationToken).ConfigureAwait(false);
            _recorded.TryAdd(deliveryId, 0);
        }

        public Task WaitForAsync(int count) => WaitAsync(() => _recorded.Count >= count, TimeSpan.FromMinutes(10));
    }

    private static async Task<Result> MeasureBareBusAsync(Uri rabbitMq, int messages, int warmup, int clients, int messageBytes)
    {
        var delivered = new LongConcurrentHistogram(1, TimeSpan.FromMinutes(10).Ticks / 10, 3);
        var consumed = 0;
        var filler = new string('x', Math.Max(0, messageBytes - 120));
        var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(rabbitMq);
            cfg.ReceiveEndpoint("bench.bare", e => e.Handler<BareMessage>(context =>
            {
                if (Interlocked.Increment(ref consumed) > warmup)
                {
                    delivered.RecordValue(Microseconds(Stopwatch.GetTimestamp() - context.Message.SentAt));
                }

                return Task.CompletedTask;
            }));
        });
        await bus.StartAsync();
        try
        {
            var endpoint = await bus.GetSendEndpoint(new Uri("queue:bench.bare"));
            async Task SendAsync(int count)
            {
                var next = 0;
                await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
                {
                    while (Interlocked.Increment(ref next) <= count)
                    {
                        // Durable, persistent, and awaited until RabbitMQ confirms it: the same guarantees the hub's dispatcher asks for.
                        await endpoint.Send(new BareMessage(Guid.NewGuid(), Stopwatch.GetTimestamp(), filler), c => c.Durable = true);
                    }
                })));
            }

            await SendAsync(warmup);
            await WaitAsync(() => Volatile.Read(ref consumed) >= warmup, TimeSpan.FromMinutes(2));
            var machineStart = MachineCpu.Read(null);
            var clock = Stopwatch.StartNew();
            using var progress = Progress(() => $"bare bus: consumed {Volatile.Read(ref consumed) - warmup}/{messages}");
            await SendAsync(messages);
            await WaitAsync(() => Volatile.Read(ref consumed) >= warmup + messages, TimeSpan.FromMinutes(10));
            var elapsed = clock.Elapsed;
            var machine = MachineCpu.Read(null).Since(machineStart);
            var size = JsonSerializer.SerializeToUtf8Bytes(new BareMessage(Guid.Empty, 0, filler)).Length;
            return new Result(messages, size, 0, messages / elapsed.TotalSeconds, null, delivered, new Memory(0, 0, 0, 0), 0, machine);
        }
        finally
        {
            await bus.StopAsync();
        }
    }

    private static string Percentiles(HistogramBase? histogram) => histogram is null || histogram.TotalCount == 0
        ? "-"
        : string.Create(CultureInfo.InvariantCulture, $"{histogram.GetValueAtPercentile(50) / 1000.0:F1}/{histogram.GetValueAtPercentile(95) / 1000.0:F1}/{histogram.GetValueAtPercentile(99) / 1000.0:F1}");

    private static async Task WaitAsync(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException("the benchmark did not complete in time");
            }

            await Task.Delay(20);
        }
    }

    private static IDisposable Progress(Func<string> line)
    {
        var timer = new Timer(_ => Console.Error.Write("\r" + line() + "      "), null, TimeSpan.FromMilliseconds(500), TimeSpan.FromMilliseconds(500));
        return new Finally(() =>
        {
            timer.Dispose();
            Console.Error.WriteLine();
        });
    }

    private static (double Current, double Peak) Rss(int pid)
    {
        double current = 0, peak = 0;
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                current = Kilobytes(line) / 1024.0;
            }
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                peak = Kilobytes(line) / 1024.0;
            }
        }

        return (current, peak);
    }

    /// <summary>Proportional set size in MB, from /proc/&lt;pid&gt;/smaps_rollup (see <see cref="Memory"/>).</summary>
    private static double Pss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/smaps_rollup"))
        {
            if (line.StartsWith("Pss:", StringComparison.Ordinal))
            {
                return Kilobytes(line) / 1024.0;
            }
        }

        return 0;
    }

    /// <summary>The number of a /proc line like <c>VmRSS:   294264 kB</c>.</summary>
    private static long Kilobytes(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

    /// <summary>
    /// User + system CPU time of a process, from /proc/&lt;pid&gt;/stat (fields 14 and 15, clock ticks of 1/100 s), and
    /// with <paramref name="withReapedChildren"/> that of its children it waited for (fields 16 and 17).
    /// </summary>
    private static double CpuSeconds(int pid, bool withReapedChildren = false)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        if (withReapedChildren)
        {
            ticks += long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture);
        }

        return ticks / 100.0;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>A Stopwatch interval in whole microseconds, at least 1 (HdrHistogram records positive values).</summary>
    private static long Microseconds(long ticks) => Math.Max(1, ticks * 1_000_000 / Stopwatch.Frequency);

    private sealed class TimingHandler(Action<DeliverSignal, long, long> record) : IDeliveryHandler
    {
        public Task HandleAsync(DeliverSignal delivery, CancellationToken cancellationToken)
        {
            using var payload = JsonDocument.Parse(delivery.PayloadJson);
            record(delivery, payload.RootElement.GetProperty("dueAt").GetInt64(), payload.RootElement.GetProperty("sentAt").GetInt64());
            return Task.CompletedTask;
        }
    }

    private sealed class Finally(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}

/// <summary>The bare-bus baseline's message: same size as a hub delivery.</summary>
/// <param name="Id">Message id.</param>
/// <param name="SentAt">Stopwatch timestamp at send.</param>
/// <param name="Payload">Filler to match the hub's message size.</param>
public sealed record BareMessage(Guid Id, long SentAt, string Payload);
