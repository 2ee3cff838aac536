using System.Data.Common;
using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using ShareHub.Broker.Data;
using ShareHub.Broker.Identity;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;
using ShareHub.Partner;

namespace ShareHub.Broker.Tests.Component;

/// <summary>
/// <c>POST /api/v1/deliveries/acknowledgements</c> and the Partner SDK's grouping of concurrent acknowledgements into
/// it, against the real broker (real tokens, real SQLite database, real audit chain). The dispatcher is off, so the
/// in-process partners acknowledge nothing themselves: every acknowledgement here is the test's.
/// </summary>
public sealed class AcknowledgementBatchTests
{
    private static readonly Dictionary<string, string?> NoDispatch = new() { ["ShareHub:Dispatcher:Enabled"] = "false" };

    [Fact]
    public async Task Batch_OwnForeignAndUnknown_AnswersEachItem_RecordsOnlyOwn_AndAuditsTheRest()
    {
        await using var hub = new ComponentHub(NoDispatch);
        var (own1, own2, foreign) = (await SubmitAsync(hub), await SubmitAsync(hub), await SubmitForFiodAsync(hub));
        var unknown = Guid.NewGuid();
        var processedAt = new DateTimeOffset(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);

        var answer = await AcknowledgeAsync(hub.ClientFor(Signals.Riec), (own1, processedAt), (foreign, null), (unknown, null), (own2, null));

        Assert.Equal([own1, foreign, unknown, own2], answer.Results.Select(r => r.DeliveryId));
        Assert.Equal(
            [AcknowledgementOutcome.Acknowledged, AcknowledgementOutcome.NotFound, AcknowledgementOutcome.NotFound, AcknowledgementOutcome.Acknowledged],
            answer.Results.Select(r => r.Outcome));
        var rows = await hub.Factory.WithDbAsync(db => db.Acknowledgements.ToListAsync());
        Assert.Equal(new[] { own1, own2 }.Order(), rows.Select(r => r.DeliveryId).Order());
        Assert.All(rows, r => Assert.Equal(Signals.Riec, r.Recipient));
        Assert.Equal(processedAt, rows.Single(r => r.DeliveryId == own1).AcknowledgedAt);

        var audits = await AcknowledgementAuditsAsync(hub);
        Assert.Equal(new[] { own1, own2 }.Order(), audits.Where(a => a.Outcome == "acknowledged").Select(a => a.DeliveryId!.Value).Order());
        var rejected = audits.Where(a => a.Outcome == "rejected").ToList();
        Assert.Equal(new[] { foreign, unknown }.Order(), rejected.Select(a => a.DeliveryId!.Value).Order());
        Assert.All(rejected, a => Assert.Equal((ErrorCodes.AcknowledgementRejected, Signals.Riec, Signals.Riec), (a.ReasonCode, a.ActorOrganisation, a.Recipient)));
        // The caller's privacy officer reads these entries: they do not name the organisation a foreign delivery was for.
        Assert.All(rejected, a => Assert.DoesNotContain(Signals.Fiod, a.Explanation, StringComparison.Ordinal));
        // The actor is the API client that acknowledged, not the bus.
        Assert.All(audits, a => Assert.StartsWith("test-riec", a.Actor, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Duplicates_WithinARequest_CountOnce_AndAcrossRequests_AreAlreadyAcknowledged()
    {
        await using var hub = new ComponentHub(NoDispatch);
        var (first, second, viaBus) = (await SubmitAsync(hub), await SubmitAsync(hub), await SubmitAsync(hub));
        var riec = hub.ClientFor(Signals.Riec);
        // The single endpoint (through the bus consumer) recorded one of them already.
        using (var single = await riec.PostAsJsonAsync(HubApi.AcknowledgementPath(viaBus), new AcknowledgeDeliveryRequest(null)))
        {
            Assert.Equal(HttpStatusCode.Accepted, single.StatusCode);
        }

        Assert.True(await PartnerRecorder.WaitUntilAsync(
            () => hub.Factory.WithDbAsync(db => db.Acknowledgements.AnyAsync(a => a.DeliveryId == viaBus)), TimeSpan.FromSeconds(20)));

        var once = await AcknowledgeAsync(riec, (first, null), (first, null), (viaBus, null));
        var again = await AcknowledgeAsync(riec, (first, null), (second, null));

        Assert.Equal([AcknowledgementOutcome.Acknowledged, AcknowledgementOutcome.Acknowledged, AcknowledgementOutcome.AlreadyAcknowledged], once.Results.Select(r => r.Outcome));
        Assert.Equal([AcknowledgementOutcome.AlreadyAcknowledged, AcknowledgementOutcome.Acknowledged], again.Results.Select(r => r.Outcome));
        var (rows, acknowledged) = await hub.Factory.WithDbAsync(async db => (
            await db.Acknowledgements.CountAsync(),
            await db.AuditEntries.Where(a => a.Kind == AuditKinds.Acknowledgement && a.Outcome == "acknowledged").GroupBy(a => a.DeliveryId).Select(g => g.Count()).ToListAsync()));
        Assert.Equal(3, rows);
        Assert.Equal([1, 1, 1], acknowledged);
    }

    [Fact]
    public async Task ConcurrentRequests_ForTheSameDeliveries_AllSucceed_AndRecordEachOnce()
    {
        await using var hub = new ComponentHub(NoDispatch);
        var deliveries = new List<Guid>();
        for (var i = 0; i < 6; i++)
        {
            deliveries.Add(await SubmitAsync(hub));
        }

        var riec = hub.ClientFor(Signals.Riec);
        // Eight requests race for the same six deliveries (in different orders); whichever commits first records them,
        // the others see them — before their own insert, or by losing on the unique key and recording one by one.
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            AcknowledgeAsync(riec, [.. deliveries.Skip(i % 6).Concat(deliveries.Take(i % 6)).Select(d => (d, (DateTimeOffset?)null))])));

        foreach (var delivery in deliveries)
        {
            var outcomes = answers.Select(a => a.Results.Single(r => r.DeliveryId == delivery).Outcome).ToList();
            Assert.Equal(1, outcomes.Count(o => o == AcknowledgementOutcome.Acknowledged));
            Assert.Equal(7, outcomes.Count(o => o == AcknowledgementOutcome.AlreadyAcknowledged));
        }

        var (rows, audits) = await hub.Factory.WithDbAsync(async db => (
            await db.Acknowledgements.CountAsync(),
            await db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.Acknowledgement && a.Outcome == "acknowledged")));
        Assert.Equal((6, 6), (rows, audits));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ConcurrentDuplicate_CommittedBetweenLookupAndSave_DoesNotFailTheBatch(bool alone)
    {
        var race = new ConcurrentDuplicate();
        await using var hub = new ComponentHub(NoDispatch, services: s =>
        {
            s.AddSingleton(race);
            s.ConfigureDbContext<HubDbContext>((sp, o) => o.AddInterceptors(sp.GetRequiredService<ConcurrentDuplicate>()));
        });
        var (before, racing, after) = (await SubmitAsync(hub), await SubmitAsync(hub), await SubmitAsync(hub));
        var riec = hub.ClientFor(Signals.Riec);
        race.Arm(racing, hub.Factory.Services);

        var answer = alone ? await AcknowledgeAsync(riec, (racing, null)) : await AcknowledgeAsync(riec, (before, null), (racing, null), (after, null));

        Assert.True(race.Happened, "the concurrent duplicate was not committed between lookup and save");
        Assert.Equal(
            alone ? [AcknowledgementOutcome.AlreadyAcknowledged] : [AcknowledgementOutcome.Acknowledged, AcknowledgementOutcome.AlreadyAcknowledged, AcknowledgementOutcome.Acknowledged],
            answer.Results.Select(r => r.Outcome));
        var (rows, audited) = await hub.Factory.WithDbAsync(async db => (
            await db.Acknowledgements.CountAsync(),
            await db.AuditEntries.Where(a => a.Kind == AuditKinds.Acknowledgement && a.Outcome == "acknowledged").Select(a => a.DeliveryId!.Value).ToListAsync()));
        Assert.Equal(alone ? 1 : 3, rows);
        Assert.Equal(alone ? [] : new[] { before, after }.Order(), audited.Order()); // the racing writer audits its own
    }

    [Theory]
    [InlineData(0)]
    [InlineData(AcknowledgeDeliveriesRequest.MaxDeliveries + 1)]
    public async Task Batch_OfNoneOrTooMany_Is400ProblemWithCode_NothingRecorded(int count)
    {
        await using var hub = new ComponentHub(NoDispatch);

        using var response = await hub.ClientFor(Signals.Riec).PostAsJsonAsync(HubApi.AcknowledgementsPath,
            new AcknowledgeDeliveriesRequest([.. Enumerable.Range(0, count).Select(_ => new DeliveryAcknowledgementItem(Guid.NewGuid(), null))]));

        await AssertInvalidAsync(hub, response);
    }

    [Fact]
    public async Task Batch_WithAnEmptyDeliveryId_OrNoBody_Is400ProblemWithCode_NothingRecorded()
    {
        await using var hub = new ComponentHub(NoDispatch);
        var own = await SubmitAsync(hub);
        var riec = hub.ClientFor(Signals.Riec);

        using var empty = await riec.PostAsJsonAsync(HubApi.AcknowledgementsPath,
            new AcknowledgeDeliveriesRequest([new(own, null), new(Guid.Empty, null)]));
        using var noList = await riec.PostAsJsonAsync(HubApi.AcknowledgementsPath, new { });

        await AssertInvalidAsync(hub, empty);
        await AssertInvalidAsync(hub, noList);
    }

    [Fact]
    public async Task Batch_WithoutTheDeliveriesScope_Is403_NothingRecorded()
    {
        await using var hub = new ComponentHub(NoDispatch);
        var own = await SubmitAsync(hub);

        using var response = await hub.ClientFor(Signals.Riec, HubScopes.AnalystRole).PostAsJsonAsync(HubApi.AcknowledgementsPath,
            new AcknowledgeDeliveriesRequest([new(own, null)]));

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Empty(await AcknowledgementAuditsAsync(hub));
        Assert.False(await hub.Factory.WithDbAsync(db => db.Acknowledgements.AnyAsync()));
    }

    [Fact]
    public async Task Sdk_GroupsConcurrentAcknowledgements_IntoFewerRequests_EachCallerGetsItsOwnOutcome()
    {
        await using var hub = new ComponentHub(NoDispatch);
        var own = new List<Guid>();
        for (var i = 0; i < 12; i++)
        {
            own.Add(await SubmitAsync(hub));
        }

        var (foreign, unknown) = (await SubmitForFiodAsync(hub), Guid.NewGuid());
        using var requests = new AcknowledgementRequests();
        using var tokens = await hub.Factory.RegisterTestClientAsync("sdk-riec", Signals.Riec, [HubScopes.PartnerSystemRole], handlers: requests);
        await tokens.GetAccessTokenAsync(); // the token request is not what this test counts
        var acknowledge = RabbitMqDeliveryListener.HttpAcknowledgement(tokens, TimeProvider.System, requestsInFlight: 1);

        // The first caller's request is held at the HTTP boundary until every caller has called: they all queue behind it.
        Guid[] ids = [own[0], foreign, .. own.Skip(1).Take(5), unknown, .. own.Skip(6)];
        var calls = ids.Select(id => (Id: id, Task: acknowledge(id, CancellationToken.None))).ToList();
        requests.Release();
        await Task.WhenAll(calls.Select(c => c.Task.ContinueWith(_ => { }, TaskScheduler.Default)));

        Assert.Equal(2, requests.Count); // the first caller alone, then everyone who queued meanwhile
        Assert.True(requests.Count < ids.Length);
        foreach (var (id, task) in calls)
        {
            if (id == foreign || id == unknown)
            {
                var refused = await Assert.ThrowsAsync<HttpRequestException>(() => task);
                Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
            }
            else
            {
                Assert.True(task.IsCompletedSuccessfully, $"acknowledging own delivery {id} failed: {task.Exception?.InnerException?.Message}");
            }
        }

        var rows = await hub.Factory.WithDbAsync(db => db.Acknowledgements.Select(a => a.DeliveryId).ToListAsync());
        Assert.Equal(own.Order(), rows.Order());
        // Acknowledged already counts as success; an idle caller is sent at once, alone.
        await acknowledge(own[3], CancellationToken.None);
        Assert.Equal(3, requests.Count);
    }

    [Fact]
    public async Task Sdk_SendsUpToItsRequestsInFlightAtOnce_AndTheCallersQueuedMeanwhileTogetherAfterwards()
    {
        await using var hub = new ComponentHub(NoDispatch);
        var own = new List<Guid>();
        for (var i = 0; i < 10; i++)
        {
            own.Add(await SubmitAsync(hub));
        }

        using var requests = new AcknowledgementRequests(held: 2);
        using var tokens = await hub.Factory.RegisterTestClientAsync("sdk-riec-parallel", Signals.Riec, [HubScopes.PartnerSystemRole], handlers: requests);
        await tokens.GetAccessTokenAsync();
        var acknowledge = RabbitMqDeliveryListener.HttpAcknowledgement(tokens, TimeProvider.System, requestsInFlight: 2);

        // The first two callers each send a request of their own, and both are held: the hub has seen neither. The
        // other eight queue, since both requests are under way.
        var first = new[] { acknowledge(own[0], CancellationToken.None), acknowledge(own[1], CancellationToken.None) };
        await requests.HeldAsync.WaitAsync(TimeSpan.FromSeconds(10));
        var rest = own.Skip(2).Select(id => acknowledge(id, CancellationToken.None)).ToList();
        Assert.Equal(2, requests.Count);
        Assert.All(rest, call => Assert.False(call.IsCompleted));

        requests.Release();
        await Task.WhenAll([.. first, .. rest]);

        // 2 held, then the eight queued callers in one or two requests (whichever sender drains first takes them all).
        Assert.InRange(requests.Count, 3, 4);
        var rows = await hub.Factory.WithDbAsync(db => db.Acknowledgements.Select(a => a.DeliveryId).ToListAsync());
        Assert.Equal(own.Order(), rows.Order());
        Assert.Throws<ArgumentOutOfRangeException>(() => RabbitMqDeliveryListener.HttpAcknowledgement(tokens, TimeProvider.System, requestsInFlight: 0));
    }

    [Fact]
    public async Task Sdk_RefusedRequest_FailsEveryCallerInIt()
    {
        await using var hub = new ComponentHub(NoDispatch);
        var own = await SubmitAsync(hub);
        // An analyst client has no deliveries:read scope: the hub refuses the whole request (403).
        using var tokens = await hub.Factory.RegisterTestClientAsync("sdk-riec-analyst", Signals.Riec, [HubScopes.AnalystRole]);
        var acknowledge = RabbitMqDeliveryListener.HttpAcknowledgement(tokens, TimeProvider.System);

        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => acknowledge(own, CancellationToken.None));

        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.False(await hub.Factory.WithDbAsync(db => db.Acknowledgements.AnyAsync()));
    }

    [Fact]
    public async Task Sdk_AgainstAHubWithoutTheBatchEndpoint_AcknowledgesOneByOne_AndStopsTryingTheBatch()
    {
        await using var hub = new ComponentHub(NoDispatch);
        var (first, second, foreign) = (await SubmitAsync(hub), await SubmitAsync(hub), await SubmitForFiodAsync(hub));
        // A hub from before the batch endpoint: its path is unknown there (404), the single endpoint works.
        using var olderHub = new WithoutBatchEndpoint();
        using var tokens = await hub.Factory.RegisterTestClientAsync("sdk-riec-old", Signals.Riec, [HubScopes.PartnerSystemRole], handlers: olderHub);
        var acknowledge = RabbitMqDeliveryListener.HttpAcknowledgement(tokens, TimeProvider.System);

        await acknowledge(first, CancellationToken.None);
        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => acknowledge(foreign, CancellationToken.None));
        await acknowledge(second, CancellationToken.None);

        Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
        Assert.Equal(1, olderHub.BatchAttempts); // learnt once, then one by one
        Assert.Equal(3, olderHub.SingleRequests);
        // The single endpoint records through the bus consumer.
        Assert.True(await PartnerRecorder.WaitUntilAsync(
            async () => (await hub.Factory.WithDbAsync(db => db.Acknowledgements.Select(a => a.DeliveryId).ToListAsync())).Order().SequenceEqual(new[] { first, second }.Order()),
            TimeSpan.FromSeconds(20)));
    }

    /// <summary>A permitted signal gemeente → riec; returns its delivery.</summary>
    private static async Task<Guid> SubmitAsync(ComponentHub hub) =>
        (await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec))).Decisions.Single().DeliveryId!.Value;

    /// <summary>
    /// A delivery addressed to fiod. No signal rule permits one to fiod, so a riec delivery is readdressed in the
    /// database: to the hub it is then fiod's.
    /// </summary>
    private static async Task<Guid> SubmitForFiodAsync(ComponentHub hub)
    {
        var delivery = await SubmitAsync(hub);
        await hub.Factory.WithDbAsync(db => db.Outbox.Where(o => o.DeliveryId == delivery).ExecuteUpdateAsync(s => s.SetProperty(o => o.Recipient, Signals.Fiod)));
        return delivery;
    }

    private static async Task<AcknowledgeDeliveriesResponse> AcknowledgeAsync(HttpClient client, params (Guid Id, DateTimeOffset? At)[] items)
    {
        using var response = await client.PostAsJsonAsync(HubApi.AcknowledgementsPath,
            new AcknowledgeDeliveriesRequest([.. items.Select(i => new DeliveryAcknowledgementItem(i.Id, i.At))]));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"expected 200, got {(int)response.StatusCode}: {body}");
        return System.Text.Json.JsonSerializer.Deserialize<AcknowledgeDeliveriesResponse>(body, Signals.Json)!;
    }

    private static Task<List<AuditEntry>> AcknowledgementAuditsAsync(ComponentHub hub) =>
        hub.Factory.WithDbAsync(db => db.AuditEntries.Where(a => a.Kind == AuditKinds.Acknowledgement).ToListAsync());

    private static async Task AssertInvalidAsync(ComponentHub hub, HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = (await response.Content.ReadFromJsonAsync<ValidationProblemDetails>())!;
        Assert.Equal(ErrorCodes.TypeUri(ErrorCodes.InvalidAcknowledgements), problem.Type);
        Assert.Equal(ErrorCodes.InvalidAcknowledgements, problem.Extensions["code"]?.ToString());
        Assert.Contains(problem.Errors.Keys, k => k.StartsWith("deliveries", StringComparison.Ordinal));
        Assert.Empty(await AcknowledgementAuditsAsync(hub));
        Assert.False(await hub.Factory.WithDbAsync(db => db.Acknowledgements.AnyAsync()));
    }

    /// <summary>
    /// Another writer (an instance, the bus consumer) that records an armed delivery's acknowledgement right after the
    /// recorder looked for earlier ones and before its own transaction starts: the batch then loses on the unique key.
    /// </summary>
    private sealed class ConcurrentDuplicate : DbTransactionInterceptor
    {
        private (Guid Delivery, IServiceProvider Services)? _armed;

        public bool Happened { get; private set; }

        public void Arm(Guid delivery, IServiceProvider services) => _armed = (delivery, services);

        public override async ValueTask<InterceptionResult<DbTransaction>> TransactionStartingAsync(DbConnection connection, TransactionStartingEventData eventData, InterceptionResult<DbTransaction> result, CancellationToken cancellationToken = default)
        {
            if (_armed is { } armed && eventData.Context!.ChangeTracker.Entries<Acknowledgement>().Any(e => e.Entity.DeliveryId == armed.Delivery))
            {
                _armed = null;
                using var scope = armed.Services.CreateScope();
                var other = scope.ServiceProvider.GetRequiredService<HubDbContext>();
                other.Acknowledgements.Add(new Acknowledgement { DeliveryId = armed.Delivery, Recipient = Signals.Riec, AcknowledgedAt = DateTimeOffset.UnixEpoch, ReceivedAt = DateTimeOffset.UnixEpoch });
                await other.SaveChangesAsync(cancellationToken);
                Happened = true;
            }

            return result;
        }
    }

    /// <summary>Makes the hub look like one from before the batch endpoint: that path answers 404, as an unknown route.</summary>
    private sealed class WithoutBatchEndpoint : DelegatingHandler
    {
        private int _batchAttempts;
        private int _singleRequests;

        public int BatchAttempts => Volatile.Read(ref _batchAttempts);

        public int SingleRequests => Volatile.Read(ref _singleRequests);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var path = request.RequestUri?.AbsolutePath ?? string.Empty;
            if (path == HubApi.AcknowledgementsPath)
            {
                Interlocked.Increment(ref _batchAttempts);
                return Task.FromResult(new HttpResponseMessage(HttpStatusCode.NotFound) { RequestMessage = request });
            }

            if (path.EndsWith("/acknowledgement", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _singleRequests);
            }

            return base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>
    /// Counts acknowledgement requests at the HTTP boundary and holds the first one until <see cref="Release"/>.
    /// </summary>
    /// <summary>Counts acknowledgement requests and holds the first <paramref name="held"/> of them until <see cref="Release"/>.</summary>
    private sealed class AcknowledgementRequests(int held = 1) : DelegatingHandler
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _allHeld = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _count;

        public int Count => Volatile.Read(ref _count);

        /// <summary>Completes once the held requests are all waiting.</summary>
        public Task HeldAsync => _allHeld.Task;

        public void Release() => _gate.TrySetResult();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.RequestUri?.AbsolutePath == HubApi.AcknowledgementsPath && Interlocked.Increment(ref _count) is var number && number <= held)
            {
                if (number == held)
                {
                    _allHeld.TrySetResult();
                }

                await _gate.Task.WaitAsync(cancellationToken);
            }

            return await base.SendAsync(request, cancellationToken);
        }
    }
}
