using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ShareHub.Broker.Tests.Infrastructure;

/// <summary>
/// The broker as a separate operating-system process (the real build output of src/ShareHub.Broker), so tests can
/// kill it with SIGKILL mid-stream and start it again — something an in-process host cannot show.
/// </summary>
public sealed class BrokerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output;

    private BrokerProcess(Process process, StringBuilder output, Uri address)
    {
        _process = process;
        _output = output;
        Address = address;
    }

    /// <summary>A fixed, test-only partnership key (base64 of 32 bytes).</summary>
    public const string TestPartnershipKey = "dGVzdC1wYXJ0bmVyc2hpcC1rZXktMzItYnl0ZXMtbG9uZyE=";

    /// <summary>The process id (for resource measurements).</summary>
    public int ProcessId => _process.Id;

    /// <summary>The broker's HTTP address.</summary>
    public Uri Address { get; }

    /// <summary>What the process printed (for failure messages).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>A free TCP port on loopback.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Starts the broker with the given settings and waits until it answers on <c>/</c>.</summary>
    public static async Task<BrokerProcess> StartAsync(IReadOnlyDictionary<string, string?> settings, int port)
    {
        var testBin = AppContext.BaseDirectory; // …/tests/<project>/bin/<Configuration>/net10.0/
        var configuration = new DirectoryInfo(testBin).Parent!.Name;
        var root = RealServers.RepositoryRoot();
        var brokerBin = Path.Combine(root, "src", "ShareHub.Broker", "bin", configuration, "net10.0");
        var dll = Path.Combine(brokerBin, "ShareHub.Broker.dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"Build the broker first ({configuration}): {dll}");
        }

        var address = new Uri($"http://127.0.0.1:{port}");
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = brokerBin,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add(address.ToString());
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Development";
        // The GC settings of the shipped image (deploy/docker/Dockerfile).
        start.Environment["DOTNET_gcServer"] = "0";
        start.Environment["DOTNET_GCgen0size"] = "0x2000000";
        start.Environment["ShareHub__PoliciesPath"] = Path.Combine(root, "policies");
        start.Environment["ShareHub__PartnershipKey"] = TestPartnershipKey;
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (key, value) in settings)
        {
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        var output = new StringBuilder();
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var broker = new BrokerProcess(process, output, address);
        using var http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"The broker process exited with {process.ExitCode}:\n{broker.Output}");
            }

            try
            {
                using var response = await http.GetAsync("/api/v1/signals/00000000-0000-0000-0000-000000000000");
                return broker; // any HTTP answer (401/404) means it is serving
            }
            catch (HttpRequestException)
            {
                await Task.Delay(100);
            }
            catch (TaskCanceledException)
            {
                await Task.Delay(100);
            }
        }

        await broker.DisposeAsync();
        throw new TimeoutException($"The broker did not start within 60 s:\n{broker.Output}");
    }

    /// <summary>SIGKILL: no shutdown hooks, no flushing — as a crash.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            Kill();
        }

        _process.Dispose();
        return ValueTask.CompletedTask;
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }
    }
}
