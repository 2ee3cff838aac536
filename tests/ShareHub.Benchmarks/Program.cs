using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Running;
using ShareHub.Benchmarks;

// Three modes:
//   dotnet run -c Release --project tests/ShareHub.Benchmarks -- --job short --filter '*'   (BenchmarkDotNet)
//   dotnet run -c Release --project tests/ShareHub.Benchmarks -- --latency                 (per-call percentiles + throughput)
//   dotnet run -c Release --project tests/ShareHub.Benchmarks -- hub [--signals N] [--clients C] [--batch B] [--rate R] [--duration MIN] [--warmup S] [--smoke]
//                                                            (the hub on PostgreSQL + RabbitMQ against the bare bus)
//   dotnet run -c Release --project tests/ShareHub.Benchmarks -- --audit [entries]         (audit chain: in memory + from PostgreSQL)
if (args.Contains("--audit"))
{
    var at = Array.IndexOf(args, "--audit");
    var count = at + 1 < args.Length && int.TryParse(args[at + 1], CultureInfo.InvariantCulture, out var n) ? n : 1_000_000;
    return await AuditChainRun.RunAsync(Console.Out, count);
}

if (args.Contains("--latency"))
{
    return LatencyRun.Run(Console.Out);
}

if (args.FirstOrDefault() == "hub")
{
    return await HubBenchmark.RunAsync(args, Console.Out);
}

BenchmarkSwitcher.FromAssembly(typeof(PolicyDecisionBenchmarks).Assembly).Run(args);
return 0;

/// <summary>
/// BenchmarkDotNet reports means per iteration, not the tail of single calls. This mode times every single Decide
/// call of a mixed workload on one thread (Stopwatch ticks) and reports percentiles, then measures throughput.
/// </summary>
internal static class LatencyRun
{
    public static int Run(TextWriter output)
    {
        var set = Workload.LoadShippedSet();
        var mix = Workload.Mix(set, 4096, seed: 42);
        const int Calls = 2_000_000;

        // Warm up: JIT tiers and the per-combination decision caches.
        for (var i = 0; i < Calls; i++)
        {
            set.Decide(mix[i & 4095], Workload.At);
        }

        var samples = new long[Calls];
        for (var i = 0; i < Calls; i++)
        {
            var start = Stopwatch.GetTimestamp();
            set.Decide(mix[i & 4095], Workload.At);
            samples[i] = Stopwatch.GetTimestamp() - start;
        }

        // The same loop with an empty body, to subtract the cost of reading the clock twice.
        var overhead = new long[100_000];
        for (var i = 0; i < overhead.Length; i++)
        {
            var start = Stopwatch.GetTimestamp();
            overhead[i] = Stopwatch.GetTimestamp() - start;
        }

        Array.Sort(samples);
        Array.Sort(overhead);
        var clock = overhead[overhead.Length / 2];
        var clockNs = clock * 1e9 / Stopwatch.Frequency;
        double Ns(long ticks) => Math.Max(0, ticks - clock) * 1e9 / Stopwatch.Frequency;
        double Percentile(double p) => Ns(samples[Math.Min(samples.Length - 1, (int)(p * samples.Length))]);

        var watch = Stopwatch.StartNew();
        var permitted = 0;
        const int Throughput = 20_000_000;
        for (var i = 0; i < Throughput; i++)
        {
            if (set.Decide(mix[i & 4095], Workload.At).IsPermitted)
            {
                permitted++;
            }
        }

        watch.Stop();
        var perSecond = Throughput / watch.Elapsed.TotalSeconds;
        var inv = CultureInfo.InvariantCulture;
        output.WriteLine(string.Create(inv, $"policy set {set.Partnership} {set.Label} ({set.Version[..12]}…), {set.Rules.Count} rules; mixed workload of 4,096 requests (40% with a case)"));
        output.WriteLine(string.Create(inv, $"single-call latency over {Calls:N0} calls (median clock-read overhead of {clockNs:F0} ns subtracted):"));
        output.WriteLine(string.Create(inv, $"  p50 {Percentile(0.50):F0} ns   p90 {Percentile(0.90):F0} ns   p99 {Percentile(0.99):F0} ns   p99.9 {Percentile(0.999):F0} ns   max {Ns(samples[^1]) / 1000:F1} µs"));
        output.WriteLine(string.Create(inv, $"throughput, one thread: {perSecond:N0} decisions/s ({Throughput:N0} decisions in {watch.Elapsed.TotalMilliseconds:F0} ms; {permitted:N0} permitted)"));
        return 0;
    }
}
