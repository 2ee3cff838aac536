using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;
using ShareHub.Partner;

namespace ShareHub.Broker.Tests.Integration;

/// <summary>Issue #9 on real PostgreSQL and RabbitMQ: case events and a hit/no-hit question reach the participants' least-privilege listeners only.</summary>
[Collection(RealServersCollection.Name)]
public sealed class CaseEventPathTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task CaseEvents_AndAQuestion_ReachOnlyTheParticipantsQueues_AndTheAnswerIsTheBit()
    {
        await using var servers = await RealServers.CreateAsync();
        var recorder = new PartnerRecorder();
        await using var hub = new HubFactory(servers.HubSettings());
        await using var partners = await PartnerBusHost.StartAsync(servers, hub, recorder, Signals.Gemeente, Signals.Riec, Signals.Fiod, Signals.Politie);

        var signal = await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));
        var riec = hub.ClientFor(Signals.Riec, "analyst");
        const string reference = "RIEC-2026-0950";
        using (var opened = await riec.PostAsJsonAsync("/api/v1/cases", new OpenCaseRequest(reference,
            "Aanwijzingen van ondermijning; delen is noodzakelijk en beperkt tot gemeente en politie.", [signal.SignalId], [Signals.Gemeente, Signals.Politie]), Signals.Json))
        {
            Assert.Equal(HttpStatusCode.Created, opened.StatusCode);
        }

        await PostOkAsync(riec, $"/api/v1/cases/{reference}/phase", new ChangeCasePhaseRequest("bevraging", "bevragen"));
        var question = await PostOkAsync<HitNoHitQuestionDto>(riec, $"/api/v1/cases/{reference}/questions", new AskHitNoHitRequest(new SubjectDto("kvk", "12345678"), null));
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => recorder.CaseEventsOf(Signals.Politie).Any(e => e.QuestionId == question.QuestionId), Patience));

        // The partner SDK answers the bit with its own token (deliveries:read), quoting the question's pseudonym.
        await hub.TokenClientFor(Signals.Politie).AnswerAsync(recorder.CaseEventsOf(Signals.Politie).Single(e => e.QuestionId == question.QuestionId), hit: true);
        await PostOkAsync(riec, $"/api/v1/cases/{reference}/phase", new ChangeCasePhaseRequest("afgesloten", "geen vervolg"));

        Assert.True(await PartnerRecorder.WaitUntilAsync(() => hub.WithDbAsync(async db =>
            await db.Acknowledgements.CountAsync() == await db.Outbox.CountAsync()), Patience), "not every delivery was acknowledged");
        Assert.Equal([CaseEventKinds.Opened, CaseEventKinds.PhaseChanged, CaseEventKinds.HitNoHitAsked, CaseEventKinds.Closed], recorder.CaseEventsOf(Signals.Politie).Select(e => e.Kind));
        Assert.Equal([CaseEventKinds.Opened, CaseEventKinds.PhaseChanged, CaseEventKinds.HitNoHitAsked, CaseEventKinds.Closed], recorder.CaseEventsOf(Signals.Gemeente).Select(e => e.Kind));
        Assert.DoesNotContain(recorder.Received, r => r.Organisation == Signals.Fiod);
        Assert.Empty(recorder.CaseEventsOf(Signals.Riec));

        var bits = (await riec.GetFromJsonAsync<HitNoHitQuestionDto>($"/api/v1/cases/{reference}/questions/{question.QuestionId}", Signals.Json))!;
        Assert.Equal(new Dictionary<string, string> { [Signals.Gemeente] = "pending", [Signals.Politie] = "hit" }, bits.Answers);
        Assert.Equal(1, await servers.ScalarAsync<long>("SELECT count(*) FROM audit_entries WHERE \"Kind\" = 'case.answer' AND \"Outcome\" = 'hit' AND \"ActorOrganisation\" = 'politie'"));

        var depths = await servers.QueueDepthsAsync();
        Assert.Equal(0, depths.GetValueOrDefault(QueueNames.Deliveries(Signals.Fiod)));
        Assert.DoesNotContain(depths, d => d.Key.EndsWith("_error", StringComparison.Ordinal) && d.Value > 0);
    }

    private static async Task PostOkAsync(HttpClient client, string path, object body) => await PostOkAsync<CaseCommandResponse>(client, path, body);

    private static async Task<T> PostOkAsync<T>(HttpClient client, string path, object body)
    {
        using var response = await client.PostAsJsonAsync(path, body, Signals.Json);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path} answered {(int)response.StatusCode}: {text}");
        return System.Text.Json.JsonSerializer.Deserialize<T>(text, Signals.Json)!;
    }
}
