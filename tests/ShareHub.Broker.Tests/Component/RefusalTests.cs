using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;

namespace ShareHub.Broker.Tests.Component;

/// <summary>Bad input and unauthorised callers get a ProblemDetails answer and leave nothing behind.</summary>
public sealed class RefusalTests
{
    public static TheoryData<string, Func<SubmitSignalRequest, SubmitSignalRequest>, string> InvalidSignals => new()
    {
        { "invalid BSN", r => r with { Subject = new SubjectDto("bsn", Signals.InvalidBsn) }, "SH-V0102" },
        { "BSN with letters", r => r with { Subject = new SubjectDto("bsn", "11122233a") }, "SH-V0102" },
        { "KvK of seven digits", r => r with { Subject = new SubjectDto("kvk", "1234567") }, "SH-V0103" },
        { "unknown subject type", r => r with { Subject = new SubjectDto("passport", "X1") }, "SH-V0101" },
        { "missing subject", r => r with { Subject = null }, "SH-V0101" },
        { "empty address", r => r with { Subject = new SubjectDto("address", " ") }, "SH-V0104" },
        { "unknown category", r => r with { Category = "medisch-dossier" }, "SH-V0105" },
        { "unknown purpose", r => r with { Purpose = "nieuwsgierigheid" }, "SH-V0106" },
        { "no recipients", r => r with { Recipients = [] }, "SH-V0107" },
        { "recipient not a participant", r => r with { Recipients = ["buurman"] }, "SH-V0107" },
        { "duplicate recipient", r => r with { Recipients = [Signals.Riec, Signals.Riec] }, "SH-V0107" },
        { "provider as recipient", r => r with { Recipients = [Signals.Gemeente] }, "SH-V0107" },
        { "payload not an object", r => r with { Payload = Signals.Payload("[1,2,3]") }, "SH-V0108" },
        { "payload missing", r => r with { Payload = null }, "SH-V0108" },
        { "payload too large", r => r with { Payload = Signals.Payload($$"""{ "blob": "{{new string('x', 70_000)}}" }""") }, "SH-V0108" },
        { "bad case reference", r => r with { CaseReference = "../../etc/passwd;" }, "SH-V0109" },
    };

    [Theory]
    [MemberData(nameof(InvalidSignals))]
    public async Task Submit_InvalidSignal_Is400WithStableCode_AndNothingStored(string because, Func<SubmitSignalRequest, SubmitSignalRequest> mutate, string expectedCode)
    {
        await using var hub = new ComponentHub();

        using var response = await hub.ClientFor(Signals.Gemeente).SubmitAsync(mutate(Signals.KvkSignal()));

        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, because);
        var problem = await ReadProblemAsync(response);
        Assert.Equal("urn:sharehub:error:SH-V0001", problem.GetProperty("type").GetString());
        var codes = problem.GetProperty("codes").EnumerateObject().SelectMany(p => p.Value.EnumerateArray()).Select(c => c.GetString());
        Assert.Contains(expectedCode, codes);
        await AssertNothingStoredAsync(hub);
    }

    [Fact]
    public async Task Submit_PayloadLimit_CountsTheBytesOfTheUtf8Json_NotItsCharacters()
    {
        await using var hub = new ComponentHub();
        var client = hub.ClientFor(Signals.Gemeente);
        // "é" is two bytes in UTF-8, sent unescaped (a serializer would write it as \u00e9): a payload of exactly
        // 64 KiB has fewer characters than that.
        const int Limit = 64 * 1024;
        string Payload(string tail) => $$"""{"blob":"{{new string('é', (Limit - 12) / 2)}}{{tail}}"}""";
        Assert.Equal(Limit, Encoding.UTF8.GetByteCount(Payload("a")));

        async Task<HttpResponseMessage> SubmitAsync(string payload)
        {
            var body = JsonSerializer.Serialize(Signals.KvkSignal() with { Payload = Signals.Payload("""{"blob":0}""") }, JsonSerializerOptions.Web)
                .Replace("""{"blob":0}""", payload, StringComparison.Ordinal);
            using var content = new StringContent(body, Encoding.UTF8, "application/json");
            return await client.PostAsync("/api/v1/signals", content);
        }

        using var accepted = await SubmitAsync(Payload("a"));
        using var refused = await SubmitAsync(Payload("ab"));

        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("SH-V0108", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{ not json")]
    [InlineData("{\"subject\": 42}")]
    [InlineData("{\"recipients\": \"riec-amsterdam\"}")]
    [InlineData("")]
    public async Task Submit_MalformedJson_Is400ProblemDetails_AndNothingStored(string body)
    {
        await using var hub = new ComponentHub();
        using var content = new StringContent(body, Encoding.UTF8, "application/json");

        using var response = await hub.ClientFor(Signals.Gemeente).PostAsync("/api/v1/signals", content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await ReadProblemAsync(response);
        Assert.StartsWith("urn:sharehub:error:SH-V", problem.GetProperty("type").GetString(), StringComparison.Ordinal);
        await AssertNothingStoredAsync(hub);
    }

    [Fact]
    public async Task Submit_DeeplyNestedPayload_Is400_AndNothingStored()
    {
        await using var hub = new ComponentHub();
        var nested = string.Concat(Enumerable.Repeat("{\"a\":", 200)) + "1" + new string('}', 200);
        var body = JsonSerializer.Serialize(Signals.KvkSignal(), Signals.Json).Replace("\"payload\":{", $"\"payload\":{{\"deep\":{nested},", StringComparison.Ordinal);
        using var content = new StringContent(body, Encoding.UTF8, "application/json");

        using var response = await hub.ClientFor(Signals.Gemeente).PostAsync("/api/v1/signals", content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        await ReadProblemAsync(response);
        await AssertNothingStoredAsync(hub);
    }

    [Fact]
    public async Task Submit_BodyOverTheRequestLimit_Is413ProblemDetails_AndNothingStored()
    {
        await using var hub = new ComponentHub();
        var body = "{\"payload\":{\"x\":\"" + new string('x', 200_000) + "\"}}";
        using var content = new StringContent(body, Encoding.UTF8, "application/json");

        using var response = await hub.ClientFor(Signals.Gemeente).PostAsync("/api/v1/signals", content);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var problem = await ReadProblemAsync(response);
        Assert.Equal("urn:sharehub:error:SH-V0003", problem.GetProperty("type").GetString());
        await AssertNothingStoredAsync(hub);
    }

    [Fact]
    public async Task Submit_WithoutAuthentication_Is401ProblemDetails_AndNothingStored()
    {
        await using var hub = new ComponentHub();

        using var response = await hub.Factory.CreateClient().SubmitAsync(Signals.KvkSignal());

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var problem = await ReadProblemAsync(response);
        Assert.Equal("urn:sharehub:error:SH-A0401", problem.GetProperty("type").GetString());
        await AssertNothingStoredAsync(hub);
    }

    [Fact]
    public async Task Submit_ByOrganisationOutsideThePartnership_Is403_AndNothingStored()
    {
        await using var hub = new ComponentHub();

        using var response = await hub.ClientFor("kwaadwillende-bv").SubmitAsync(Signals.KvkSignal());

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        var problem = await ReadProblemAsync(response);
        Assert.Equal("urn:sharehub:error:SH-A0403", problem.GetProperty("type").GetString());
        await AssertNothingStoredAsync(hub);
    }

    [Fact]
    public async Task Submit_WhenAuthenticationModeIsNone_EveryCallIs401()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Authentication:Mode"] = "None" });

        using var response = await hub.ClientFor(Signals.Gemeente).SubmitAsync(Signals.KvkSignal());

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        await AssertNothingStoredAsync(hub);
    }

    [Fact]
    public async Task Start_DevelopmentAuthenticationInProduction_IsRefusedWithAMessage()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Authentication:Mode"] = "Development" }, environment: "Production");

        var error = Assert.ThrowsAny<Exception>(() => hub.Factory.CreateClient());

        Assert.Contains("Authentication:Mode=Development", Flatten(error), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AuditApi_PartnerPrivacyOfficerSeesOnlyOwnOrganisation_PartnershipOfficerSeesAll()
    {
        await using var hub = new ComponentHub();
        await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod));

        var politie = await hub.ClientFor(Signals.Politie, "privacy-officer").GetFromJsonAsync<List<AuditEntryDto>>("/api/v1/audit", Signals.Json);
        var fiod = await hub.ClientFor(Signals.Fiod, "privacy-officer").GetFromJsonAsync<List<AuditEntryDto>>("/api/v1/audit", Signals.Json);
        var fg = await hub.ClientFor(Signals.Riec, "partnership-privacy-officer").GetFromJsonAsync<List<AuditEntryDto>>("/api/v1/audit", Signals.Json);
        using var analyst = await hub.ClientFor(Signals.Fiod).GetAsync("/api/v1/audit");

        Assert.Empty(politie!);
        Assert.All(fiod!, e => Assert.True(e.Provider == Signals.Fiod || e.Recipient == Signals.Fiod || e.ActorOrganisation == Signals.Fiod));
        Assert.Single(fiod!, e => e.Kind == AuditKinds.Decision);
        Assert.Contains(fg!, e => e.Kind == AuditKinds.PolicyActivated);
        Assert.Equal(2, fg!.Count(e => e.Kind == AuditKinds.Decision));
        Assert.Equal(HttpStatusCode.Forbidden, analyst.StatusCode);
    }

    private static async Task<JsonElement> ReadProblemAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    private static async Task AssertNothingStoredAsync(ComponentHub hub)
    {
        var (signals, decisions, outbox) = await hub.Factory.WithDbAsync(async db => (
            await db.Signals.CountAsync(), await db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.Decision), await db.Outbox.CountAsync()));
        Assert.Equal(0, signals);
        Assert.Equal(0, decisions);
        Assert.Equal(0, outbox);
        Assert.Empty(hub.Partners.Received);
    }

    private static string Flatten(Exception error)
    {
        var text = new StringBuilder();
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            text.AppendLine(e.Message);
        }

        return text.ToString();
    }
}
