using System.Net.Http.Json;
using System.Text.Json;
using ShareHub.Contracts;

namespace ShareHub.Broker.Tests.Infrastructure;

/// <summary>Signals used across tests, named by what the shipped policy set decides for them.</summary>
public static class Signals
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public const string Gemeente = "gemeente-amsterdam";
    public const string Riec = "riec-amsterdam";
    public const string Fiod = "fiod";
    public const string Politie = "politie";
    public const string Belastingdienst = "belastingdienst";

    /// <summary>A valid BSN (passes the elfproef) and the same digits with the check digit broken.</summary>
    public const string ValidBsn = "111222333";
    public const string InvalidBsn = "111222334";

    /// <summary>gemeente → riec: kvk-ubo for signaalweging is permitted; → fiod is not.</summary>
    public static SubmitSignalRequest KvkSignal(params string[] recipients) => new(
        new SubjectDto("kvk", "12345678"),
        "kvk-ubo",
        "signaalweging",
        null,
        recipients.Length == 0 ? [Riec] : recipients,
        Payload("""{ "naam": "Holding Zuidas B.V.", "ubo": "J. Jansen", "bsn": "111222333", "opmerking": "veel wisselingen van bestuurders" }"""));

    /// <summary>gemeente → fiod: fiscaal for casusanalyse: no rule permits it.</summary>
    public static SubmitSignalRequest FiscaalToFiod() => new(
        new SubjectDto("bsn", ValidBsn), "fiscaal", "casusanalyse", null, [Fiod], Payload("""{ "aanslag": 12000 }"""));

    public static JsonElement Payload(string json) => JsonDocument.Parse(json).RootElement.Clone();

    public static async Task<HttpResponseMessage> SubmitAsync(this HttpClient client, SubmitSignalRequest request) =>
        await client.PostAsJsonAsync("/api/v1/signals", request, Json);

    public static async Task<SubmitSignalResponse> SubmitAcceptedAsync(this HttpClient client, SubmitSignalRequest request)
    {
        using var response = await client.SubmitAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Accepted, $"expected 202, got {(int)response.StatusCode}: {body}");
        return JsonSerializer.Deserialize<SubmitSignalResponse>(body, Json)!;
    }
}
