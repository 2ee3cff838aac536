using System.Net;
using System.Net.Http.Json;
using Microsoft.Data.Sqlite;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;

namespace ShareHub.Broker.Tests.Component;

/// <summary>Callers and checks shared by the audit tests.</summary>
public static class AuditTestKit
{
    public const string PartnershipOfficer = "partnership-privacy-officer";
    public const string PartnerOfficer = "privacy-officer";

    /// <summary>The partnership's FG (sees everything).</summary>
    public static HttpClient Fg(HubFactory factory) => factory.ClientFor(Signals.Riec, PartnershipOfficer);

    public static async Task<AuditVerificationDto> VerifyAsync(this HttpClient client)
    {
        using var response = await client.GetAsync("/api/v1/audit/verify");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<AuditVerificationDto>(Signals.Json))!;
    }

    public static async Task<AuditSearchResponse> SearchAsync(this HttpClient client, string query = "")
    {
        using var response = await client.GetAsync($"/api/v1/audit/search?limit=1000&{query}");
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"search answered {(int)response.StatusCode}: {body}");
        return System.Text.Json.JsonSerializer.Deserialize<AuditSearchResponse>(body, Signals.Json)!;
    }

    /// <summary>Runs SQL against a SQLite file behind the hub's back (as an attacker with file access would).</summary>
    public static async Task<int> SqliteAsync(string databaseFile, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={databaseFile};Pooling=false");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// Appends <paramref name="count"/> refusals through the hub's chain (one transaction): non-ASCII text (curly
    /// apostrophe, euro sign, a surrogate pair), null and non-null Guids and strings — enough for several verifier batches.
    /// </summary>
    public static Task<int> AppendRefusalsAsync(HubFactory factory, int count)
    {
        var start = new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
        return factory.WithDbAsync(db =>
        {
            db.AuditEntries.AddRange(Enumerable.Range(0, count).Select(i => new AuditEntry
            {
                Kind = AuditKinds.Decision,
                RecordedAt = start.AddTicks(i * 17L),
                ActorOrganisation = Signals.Gemeente,
                Actor = "dev:" + Signals.Gemeente,
                SignalId = i % 3 == 0 ? null : Guid.CreateVersion7(start.AddSeconds(i)),
                Provider = Signals.Gemeente,
                Recipient = i % 2 == 0 ? Signals.Riec : null,
                CaseReference = i % 5 == 0 ? $"zaak-{i}-👍" : null,
                Outcome = "deny",
                ReasonCode = "SH-P0001",
                Explanation = $"Geen regel staat toe dat ’s-Hertogenbosch dit deelt (€ {i}); geweigerd.",
            }));
            return db.SaveChangesAsync();
        });
    }

    /// <summary>Submits a permitted + refused signal and waits until the permitted delivery was acknowledged.</summary>
    public static async Task<SubmitSignalResponse> ExchangeAsync(HubFactory factory, TimeSpan patience)
    {
        var response = await factory.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod));
        var delivery = response.Decisions.Single(d => d.Permitted).DeliveryId!.Value;
        Assert.True(await PartnerRecorder.WaitUntilAsync(
            () => factory.WithDbAsync(db => Task.FromResult(db.AuditEntries.Any(a => a.DeliveryId == delivery && a.Kind == "delivery.acknowledged"))), patience),
            "the delivery was not acknowledged in time");
        return response;
    }
}
