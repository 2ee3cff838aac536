using System.Net;
using System.Net.Http.Json;
using Microsoft.Data.Sqlite;
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
