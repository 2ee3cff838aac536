using System.Collections.Concurrent;
using System.Net;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;

namespace ShareHub.Broker.Tests.Integration;

/// <summary>The exchange path end to end on a real PostgreSQL database and a real RabbitMQ broker.</summary>
[Collection(RealServersCollection.Name)]
public sealed class ExchangePathTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private static readonly string[] AllPartners = [Signals.Gemeente, Signals.Riec, Signals.Fiod, Signals.Politie, Signals.Belastingdienst];

    [Fact]
    public async Task PermittedDeliveries_ReachExactlyThePermittedQueues_DeniedNeverReachAny_AuditCommittedFirst()
    {
        await using var servers = await RealServers.CreateAsync();
        var recorder = new PartnerRecorder();
        var auditSeenAtConsume = new ConcurrentDictionary<Guid, bool>();
        recorder.OnHandle = async delivery =>
        {
            // At the moment the partner consumes, the audit entry must already be committed (visible to another
            // connection) and the publish must not precede it.
            await using var connection = new NpgsqlConnection(servers.PostgresConnectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT count(*) FROM audit_entries WHERE \"Id\" = @id AND \"DeliveryId\" = @delivery AND \"Outcome\" = 'permit'", connection);
            command.Parameters.AddWithValue("id", delivery.AuditEntryId);
            command.Parameters.AddWithValue("delivery", delivery.DeliveryId);
            auditSeenAtConsume[delivery.DeliveryId] = (long)(await command.ExecuteScalarAsync())! == 1;
        };
        await using var hub = new HubFactory(servers.HubSettings());
        await using var partners = await PartnerBusHost.StartAsync(servers, hub, recorder, AllPartners);

        var submitted = new List<SubmitSignalResponse>();
        var gemeente = hub.ClientFor(Signals.Gemeente);
        for (var i = 0; i < 10; i++)
        {
            submitted.Add(await gemeente.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod, Signals.Politie)));
            submitted.Add(await gemeente.SubmitAcceptedAsync(Signals.FiscaalToFiod()));
        }

        var permitted = submitted.SelectMany(s => s.Decisions).Where(d => d.Permitted).ToDictionary(d => d.DeliveryId!.Value, d => d.Recipient);
        var denied = submitted.SelectMany(s => s.Decisions).Where(d => !d.Permitted).ToList();
        Assert.NotEmpty(permitted);
        Assert.NotEmpty(denied);

        Assert.True(await PartnerRecorder.WaitUntilAsync(() => recorder.Handled.Count >= permitted.Count, Patience),
            $"expected {permitted.Count} deliveries, got {recorder.Handled.Count}");
        await WaitForAcknowledgementsAsync(hub, permitted.Count);

        // Exactly the permitted (delivery, recipient) pairs, each once, each from the recipient's own queue.
        var handled = recorder.Handled.ToList();
        Assert.Equal(permitted.Count, handled.Count);
        Assert.Equal(permitted.Keys.Order(), handled.Select(h => h.Delivery.DeliveryId).Order());
        Assert.All(handled, h => Assert.Equal(permitted[h.Delivery.DeliveryId], h.Organisation));
        Assert.All(handled, h => Assert.Equal(h.Organisation, h.Delivery.Recipient));

        // Denied pairs: no message of that signal ever reached that recipient's queue.
        var signalsByRecipient = handled.Select(h => (h.Delivery.SignalId, h.Organisation)).ToHashSet();
        var deniedPairs = submitted.SelectMany(s => s.Decisions.Where(d => !d.Permitted).Select(d => (s.SignalId, d.Recipient)));
        Assert.All(deniedPairs, pair => Assert.DoesNotContain(pair, signalsByRecipient));

        // Ordering: the audit entry was visible when the partner consumed, and recorded before dispatch.
        Assert.All(permitted.Keys, id => Assert.True(auditSeenAtConsume[id], $"audit entry of delivery {id} was not committed at consumption"));
        var outOfOrder = await servers.ScalarAsync<long>(
            "SELECT count(*) FROM outbox o JOIN audit_entries a ON a.\"Id\" = o.\"AuditEntryId\" WHERE o.\"DispatchedAt\" IS NULL OR o.\"DispatchedAt\" < a.\"RecordedAt\"");
        Assert.Equal(0, outOfOrder);

        // Every queue drained, nothing in an error queue.
        var depths = await servers.QueueDepthsAsync();
        Assert.All(AllPartners, p => Assert.Equal(0, depths.GetValueOrDefault(QueueNames.Deliveries(p))));
        Assert.DoesNotContain(depths, d => d.Key.EndsWith("_error", StringComparison.Ordinal) && d.Value > 0);
    }

    [Fact]
    public async Task BrokerRestartBetweenCommitAndPublish_DeliversEachPermittedDeliveryExactlyOnce()
    {
        await using var servers = await RealServers.CreateAsync();
        var recorder = new PartnerRecorder();

        // First broker instance commits but never publishes (as if it crashed right after the commit).
        var permitted = new List<Guid>();
        var crashed = new HubFactory(servers.HubSettings(dispatcherEnabled: false));
        await using var partners = await PartnerBusHost.StartAsync(servers, crashed, recorder, AllPartners);
        await using (crashed)
        {
            var client = crashed.ClientFor(Signals.Gemeente);
            for (var i = 0; i < 15; i++)
            {
                var response = await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod));
                permitted.AddRange(response.Decisions.Where(d => d.Permitted).Select(d => d.DeliveryId!.Value));
            }

            await Task.Delay(500);
            Assert.Empty(recorder.Received);
            Assert.Equal(permitted.Count, await servers.ScalarAsync<long>("SELECT count(*) FROM outbox WHERE \"DispatchedAt\" IS NULL"));
        }

        // A new broker process resumes from the outbox.
        await using var restarted = new HubFactory(servers.HubSettings());
        partners.Hub = restarted; // acknowledgements go to the running instance
        _ = restarted.Server;
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => recorder.Handled.Count >= permitted.Count, Patience));
        await WaitForAcknowledgementsAsync(restarted, permitted.Count);
        await Task.Delay(500);

        Assert.Equal(permitted.Order(), recorder.Handled.Select(h => h.Delivery.DeliveryId).Order());
        Assert.Equal(permitted.Count, recorder.Received.Count);
    }

    [Fact]
    public async Task CrashAfterPublishBeforeMarking_RepublishesAndThePartnerAbsorbsTheDuplicates()
    {
        await using var servers = await RealServers.CreateAsync();
        var recorder = new PartnerRecorder();
        await using var hub = new HubFactory(servers.HubSettings());
        await using var partners = await PartnerBusHost.StartAsync(servers, hub, recorder, AllPartners);
        var client = hub.ClientFor(Signals.Gemeente);
        for (var i = 0; i < 5; i++)
        {
            await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));
        }

        Assert.True(await PartnerRecorder.WaitUntilAsync(() => recorder.Handled.Count >= 5, Patience));
        await WaitForAcknowledgementsAsync(hub, 5);

        // The publish happened but the "dispatched" mark was lost: the dispatcher publishes the same deliveries again.
        Assert.Equal(5, await servers.ExecuteAsync("UPDATE outbox SET \"DispatchedAt\" = NULL"));
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => recorder.Received.Count >= 10, Patience), $"received {recorder.Received.Count}");
        Assert.True(await PartnerRecorder.WaitUntilAsync(
            async () => await servers.ScalarAsync<long>("SELECT count(*) FROM outbox WHERE \"DispatchedAt\" IS NULL") == 0, Patience));
        await Task.Delay(1000);

        Assert.Equal(5, recorder.Handled.Count); // the handler saw each delivery once
        Assert.Equal(5, recorder.Handled.Select(h => h.Delivery.DeliveryId).Distinct().Count());
        Assert.Equal(5, await servers.ScalarAsync<long>("SELECT count(*) FROM acknowledgements"));
        Assert.Equal(5, await servers.ScalarAsync<long>("SELECT count(*) FROM audit_entries WHERE \"Outcome\" = 'acknowledged'"));
    }

    [Fact]
    public async Task InvalidSignal_OnPostgres_Is400AndLeavesNoRow()
    {
        await using var servers = await RealServers.CreateAsync();
        await using var hub = new HubFactory(servers.HubSettings());

        using var response = await hub.ClientFor(Signals.Gemeente).SubmitAsync(Signals.KvkSignal() with { Subject = new SubjectDto("bsn", Signals.InvalidBsn) });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(0, await servers.ScalarAsync<long>("SELECT count(*) FROM signals"));
        Assert.Equal(0, await servers.ScalarAsync<long>("SELECT count(*) FROM outbox"));
        Assert.Equal(0, await servers.ScalarAsync<long>("SELECT count(*) FROM audit_entries WHERE \"Kind\" = 'signal.decision'"));
    }

    private static async Task WaitForAcknowledgementsAsync(HubFactory hub, int expected) =>
        Assert.True(await PartnerRecorder.WaitUntilAsync(
            () => hub.WithDbAsync(async db => await db.Acknowledgements.CountAsync() >= expected), Patience),
            $"expected {expected} acknowledgements");
}
