using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;
using Xunit.Abstractions;

namespace ShareHub.Broker.Tests.Component;

/// <summary>Hostile and random input, and overload: always a 4xx/503 ProblemDetails, never a 500, never a stray row.</summary>
public sealed class RobustnessTests(ITestOutputHelper output)
{
    private static readonly HttpStatusCode[] Expected =
    [
        HttpStatusCode.Accepted, HttpStatusCode.BadRequest, HttpStatusCode.Unauthorized, HttpStatusCode.Forbidden,
        HttpStatusCode.RequestEntityTooLarge, HttpStatusCode.UnsupportedMediaType,
        HttpStatusCode.UnprocessableEntity, // a well-formed case reference naming no case (no case exists here)
    ];

    public static TheoryData<string, string, string?> HostileRequests => new()
    {
        { "wrong content type", "text/plain", null },
        { "xml body", "application/xml", null },
        { "right-to-left override in category", "application/json", "category:kvk-\u202Eubo" },
        { "zero-width space in recipient", "application/json", "recipient:riec-\u200Bamsterdam" },
        { "NUL in address", "application/json", "address:Dam 1\u0000" },
        { "BSN with Arabic-Indic digits", "application/json", "bsn:\u0661\u0661\u0661\u0662\u0662\u0662\u0663\u0663\u0663" },
        { "BSN with fullwidth digits", "application/json", "bsn:\uFF11\uFF11\uFF11\uFF12\uFF12\uFF12\uFF13\uFF13\uFF13" },
    };

    [Theory]
    [MemberData(nameof(HostileRequests))]
    public async Task Submit_HostileRequest_Is4xxProblemDetails_AndNothingStored(string because, string contentType, string? twist)
    {
        await using var hub = new ComponentHub();
        var request = Signals.KvkSignal();
        request = twist?.Split(':', 2) switch
        {
            ["category", var v] => request with { Category = v },
            ["recipient", var v] => request with { Recipients = [v] },
            ["address", var v] => request with { Subject = new SubjectDto("address", v) },
            ["bsn", var v] => request with { Subject = new SubjectDto("bsn", v) },
            _ => request,
        };
        using var content = new StringContent(JsonSerializer.Serialize(request, Signals.Json), Encoding.UTF8, contentType);

        using var response = await hub.ClientFor(Signals.Gemeente).PostAsync("/api/v1/signals", content);

        Assert.True((int)response.StatusCode is >= 400 and < 500, $"{because}: got {(int)response.StatusCode}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(0, await hub.Factory.WithDbAsync(db => db.Signals.CountAsync()));
    }

    [Fact]
    public async Task Submit_ForgedOrganisationHeader_Is401_AndNothingStored()
    {
        await using var hub = new ComponentHub();
        var client = hub.Factory.CreateClient();
        client.DefaultRequestHeaders.TryAddWithoutValidation("X-ShareHub-Dev-Organisation", "Belastingdienst\r\nX-Evil: 1");

        using var response = await client.SubmitAsync(Signals.KvkSignal());

        Assert.True(response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.BadRequest, $"got {response.StatusCode}");
        Assert.Equal(0, await hub.Factory.WithDbAsync(db => db.Signals.CountAsync()));
    }

    [Fact]
    public async Task Fuzz_RandomRequestsForABoundedTime_NeverA500_AndTheDatabaseHoldsExactlyTheAcceptedSignals()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("SHAREHUB_FUZZ_SEED"), out var replay) ? replay : Environment.TickCount;
        output.WriteLine($"fuzz seed {seed} (set SHAREHUB_FUZZ_SEED to replay)");

        var random = new Random(seed);
        // The per-client rate limit (429) is tested elsewhere; here every request should reach validation.
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false", ["ShareHub:Identity:PermitsPerMinute"] = "10000000" });
        var clients = new[] { Signals.Gemeente, Signals.Politie, "onbekend", Signals.Riec }.Select(o => hub.ClientFor(o)).Append(hub.Factory.CreateClient()).ToArray();
        var accepted = new List<SubmitSignalResponse>();
        var statuses = new Dictionary<HttpStatusCode, int>();
        var clock = Stopwatch.StartNew();

        for (var i = 0; i < 3000 && clock.Elapsed < TimeSpan.FromSeconds(6); i++)
        {
            var (body, contentType) = FuzzBody(random);
            using var content = new StringContent(body, Encoding.UTF8, contentType);
            using var response = await clients[random.Next(clients.Length)].PostAsync("/api/v1/signals", content);
            statuses[response.StatusCode] = statuses.GetValueOrDefault(response.StatusCode) + 1;

            Assert.True(Expected.Contains(response.StatusCode), $"seed {seed}, request {i}: {(int)response.StatusCode} for {Shorten(body)}");
            if (response.StatusCode == HttpStatusCode.Accepted)
            {
                accepted.Add(JsonSerializer.Deserialize<SubmitSignalResponse>(await response.Content.ReadAsStringAsync(), Signals.Json)!);
            }
            else
            {
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
                Assert.StartsWith("urn:sharehub:error:SH-", problem.GetProperty("type").GetString(), StringComparison.Ordinal);
                if (response.StatusCode == HttpStatusCode.UnprocessableEntity)
                {
                    Assert.Equal($"urn:sharehub:error:{ErrorCodes.UnknownCase}", problem.GetProperty("type").GetString());
                }
            }
        }

        var (signals, decisions, outbox) = await hub.Factory.WithDbAsync(async db => (
            await db.Signals.CountAsync(), await db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.Decision), await db.Outbox.CountAsync()));
        Assert.Equal(accepted.Count, signals);
        Assert.Equal(accepted.Sum(a => a.Decisions.Count), decisions);
        Assert.Equal(accepted.Sum(a => a.Decisions.Count(d => d.Permitted)), outbox);
        output.WriteLine($"RELIABILITY: fuzz | requests {statuses.Values.Sum()} in {clock.Elapsed.TotalSeconds:F1} s | {string.Join(" | ", statuses.OrderBy(s => s.Key).Select(s => $"{(int)s.Key}: {s.Value}"))} | 5xx 0 | stray rows 0");
    }

    [Fact]
    public async Task Overload_BeyondTheConcurrencyLimit_Is503ProblemDetailsAtOnce()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:MaxConcurrentRequests"] = "1", ["ShareHub:MaxQueuedRequests"] = "0" });
        var client = hub.ClientFor(Signals.Gemeente);
        await client.SubmitAcceptedAsync(Signals.KvkSignal()); // schema and pools warmed up

        // The database is slow: another writer holds SQLite's write lock, so the next submission waits in its commit
        // while holding the only request slot.
        await using var blocker = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={hub.DatabaseFile}");
        await blocker.OpenAsync();
        await using var transaction = blocker.BeginTransaction(deferred: false);
        var slow = client.SubmitAsync(Signals.KvkSignal());
        await Task.Delay(500);

        var clock = Stopwatch.StartNew();
        using var rejected = await client.SubmitAsync(Signals.KvkSignal());
        var waited = clock.Elapsed;
        await transaction.RollbackAsync();
        using var first = await slow;

        Assert.Equal(HttpStatusCode.ServiceUnavailable, rejected.StatusCode);
        Assert.Equal("application/problem+json", rejected.Content.Headers.ContentType?.MediaType);
        Assert.Contains("SH-S0504", await rejected.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.NotNull(rejected.Headers.RetryAfter);
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        Assert.Equal(2, await hub.Factory.WithDbAsync(db => db.Signals.CountAsync()));
        output.WriteLine($"RELIABILITY: overload | rejected with 503 after {waited.TotalMilliseconds:F0} ms");
    }

    private static (string Body, string ContentType) FuzzBody(Random random)
    {
        var valid = JsonSerializer.SerializeToNode(Signals.KvkSignal(Signals.Riec, Signals.Fiod), Signals.Json)!.AsObject();
        string[] fields = ["subject", "category", "purpose", "caseReference", "recipients", "payload"];
        var mutations = random.Next(0, 4);
        for (var m = 0; m < mutations; m++)
        {
            var field = fields[random.Next(fields.Length)];
            valid[field] = random.Next(9) switch
            {
                0 => null,
                1 => random.Next(),
                2 => RandomText(random),
                3 => new System.Text.Json.Nodes.JsonArray(RandomText(random), random.Next()),
                4 => new System.Text.Json.Nodes.JsonObject { ["type"] = "bsn", ["id"] = random.Next(100_000_000, 999_999_999).ToString(System.Globalization.CultureInfo.InvariantCulture) },
                5 => new System.Text.Json.Nodes.JsonArray(Signals.Riec, Signals.Politie, RandomText(random)),
                6 => NestedArray(random.Next(1, 60)),
                7 => true,
                _ => new System.Text.Json.Nodes.JsonObject { ["x"] = new string('y', random.Next(0, 80_000)) },
            };
        }

        var body = valid.ToJsonString();
        return random.Next(10) switch
        {
            0 => (body[..random.Next(body.Length)], "application/json"),                       // truncated
            1 => (Nest(random.Next(10, 200)), "application/json"),                              // deep nesting
            2 => (body, "text/plain"),                                                          // wrong media type
            3 => (RandomText(random), "application/json"),                                      // garbage
            _ => (body, "application/json"),
        };
    }

    private static System.Text.Json.Nodes.JsonNode NestedArray(int depth) =>
        System.Text.Json.Nodes.JsonNode.Parse(new string('[', depth) + "1" + new string(']', depth))!;

    private static string Nest(int depth) => "{\"payload\":" + string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth + 1);

    private static string RandomText(Random random)
    {
        const string alphabet = "abc019{}[]\":,\\\u202E\u200B\u0000é漢🙂 \n";
        var length = random.Next(0, 40);
        var text = new StringBuilder(length);
        for (var i = 0; i < length; i++)
        {
            text.Append(alphabet[random.Next(alphabet.Length)]);
        }

        return text.ToString();
    }

    private static string Shorten(string text) => text.Length <= 200 ? text : text[..200] + "…";
}
