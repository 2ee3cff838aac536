using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ShareHub.Broker.Data;
using ShareHub.Broker.Delivery;
using ShareHub.Broker.Observability;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;

namespace ShareHub.Broker.Tests.Component;

/// <summary>
/// Which deliveries the dispatcher publishes together (<see cref="DeliverSignalBundle"/>), and bundles end to end on
/// the embedded default: every delivery handled and acknowledged once, whatever carried it.
/// </summary>
public sealed class DeliveryBundleTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Rows as <c>recipient[:characters]</c> (a case event as <c>case:recipient</c>); the expected messages as groups of
    /// row indexes, in the order they are formed.
    /// </summary>
    [Theory]
    [InlineData(100, "riec riec riec", "0 1 2")]
    [InlineData(100, "riec fiod riec fiod politie", "0 2|1 3|4")]
    [InlineData(2, "riec riec riec riec riec", "0 1|2 3|4")]
    [InlineData(1, "riec riec fiod", "0|1|2")]
    [InlineData(100, "riec case:riec riec case:riec", "0 2|1|3")]
    [InlineData(100, "riec:40000 riec:30000 riec:20000", "0|1 2")]
    [InlineData(100, "riec:70000 riec riec", "0|1 2")]
    [InlineData(100, "riec:32768 riec:32768 riec:1", "0 1|2")]
    public void Bundles_HoldOneRecipientsSignalDeliveries_UpToTheSizeAndCharacterLimits_CaseEventsGoAlone(int bundleSize, string rows, string expected)
    {
        var outbox = rows.Split(' ').Select((row, i) =>
        {
            var parts = row.Split(':');
            var caseEvent = parts[0] == "case";
            var recipient = caseEvent ? parts[1] : parts[0];
            var characters = !caseEvent && parts.Length > 1 ? int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) : 1000;
            return new OutboxMessage
            {
                Id = i,
                Recipient = recipient,
                MessageType = caseEvent ? OutboxMessageTypes.CaseEvent : OutboxMessageTypes.Signal,
                MessageJson = new string('x', characters),
            };
        }).ToList();

        var bundles = OutboxDispatcher.Bundles(outbox, bundleSize);

        Assert.Equal(expected, string.Join('|', bundles.Select(b => string.Join(' ', b))));
        Assert.All(bundles, b => Assert.Single(b.Select(i => outbox[i].Recipient).Distinct()));
    }

    [Theory]
    [InlineData(100)]
    [InlineData(1)]
    public async Task Batch_ToOneRecipient_IsPublishedInMessagesOfAtMostBundleSize_EachDeliveryHandledAndAcknowledgedOnce(int bundleSize)
    {
        // A hand-over queue of 2: the other 38 deliveries are read back by key as one batch, so they are at hand together.
        await using var hub = new ComponentHub(new()
        {
            ["ShareHub:Dispatcher:HandOverCapacity"] = "2",
            ["ShareHub:Dispatcher:SweepAfterSeconds"] = "300",
            ["ShareHub:Dispatcher:BundleSize"] = bundleSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        var meters = hub.Factory.Services.GetRequiredService<IMeterFactory>();
        var bundleSizes = new ConcurrentQueue<(int Deliveries, object? Recipient)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name == "sharehub.delivery.bundle_size" && ReferenceEquals(instrument.Meter.Scope, meters))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<int>((_, value, tags, _) => bundleSizes.Enqueue((value, tags[0].Value)));
        listener.Start();

        using var response = await hub.ClientFor(Signals.Gemeente).PostAsJsonAsync("/api/v1/signals/batch",
            new SubmitSignalBatchRequest([.. Enumerable.Range(0, 40).Select(_ => Signals.KvkSignal(Signals.Riec))]), Signals.Json);
        var batch = (await response.Content.ReadFromJsonAsync<SubmitSignalBatchResponse>(Signals.Json))!;
        var deliveries = batch.Results.Select(r => r.Accepted!.Decisions.Single().DeliveryId!.Value).ToList();

        Assert.True(await PartnerRecorder.WaitUntilAsync(
            () => hub.Factory.WithDbAsync(async db => await db.Acknowledgements.CountAsync() == 40), Patience));
        await Task.Delay(300); // a second copy of any of them would arrive now
        Assert.Equal(deliveries.Order(), hub.Partners.Received.Select(r => r.DeliveryId).Order());
        Assert.Equal(deliveries.Order(), hub.Partners.Handled.Select(h => h.Delivery.DeliveryId).Order());
        Assert.Equal(40, await hub.Factory.WithDbAsync(db => db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.Dispatched)));

        // Every delivery went out in exactly one message, none carrying more than BundleSize; the 38 read back
        // together travel in fewer messages than deliveries unless bundling is off.
        var sizes = bundleSizes.ToList();
        Assert.Equal(40, sizes.Sum(s => s.Deliveries));
        Assert.All(sizes, s => Assert.InRange(s.Deliveries, 1, bundleSize));
        Assert.All(sizes, s => Assert.Equal(Signals.Riec, s.Recipient));
        if (bundleSize > 1)
        {
            Assert.Contains(sizes, s => s.Deliveries > 1);
        }
        else
        {
            Assert.Equal(40, sizes.Count);
        }
    }
}
