using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;
using static ShareHub.Broker.Tests.Component.AuditTestKit;

namespace ShareHub.Broker.Tests.Component;

/// <summary>Issue #9: the RIEC case workflow — phases, participant-only case events, hit/no-hit, retention from closure, case history.</summary>
public sealed class CaseWorkflowTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private const string Reference = "RIEC-2026-0901";
    private const string Analyst = "analyst";
    private const string Om = "om";

    [Fact]
    public async Task CaseEvents_ReachParticipantsOnly_TheNonParticipantsQueueStaysEmpty()
    {
        await using var hub = new ComponentHub();
        var riec = hub.ClientFor(Signals.Riec, Analyst);
        var signal = await GemeenteSignalAsync(hub);

        var opened = await OpenAsync(riec, signal, Signals.Gemeente, Signals.Politie, Signals.Belastingdienst);
        Assert.Equal([Signals.Belastingdienst, Signals.Gemeente, Signals.Politie], opened.Decisions.Select(d => d.Recipient));
        Assert.All(opened.Decisions, d => Assert.Equal((true, "RIEC-COORD-01"), (d.Permitted, d.RuleId)));
        Assert.Equal(CasePhaseNames.Signaal, opened.Case.Phase);

        await MoveAsync(riec, "bevraging");
        await MoveAsync(riec, "weging");
        var removed = await riec.DeleteAsync($"/api/v1/cases/{Reference}/participants/{Signals.Belastingdienst}?reason=geen+fiscale+aanknopingspunten");
        Assert.Equal(HttpStatusCode.OK, removed.StatusCode);
        await MoveAsync(riec, "casusoverleg");
        var closed = await MoveAsync(riec, "afgesloten");
        Assert.NotNull(closed.Case.ClosedAt);
        Assert.Equal(CaseEventKinds.Closed, closed.Event);

        await WaitForAcknowledgementsAsync(hub);
        Assert.Equal(
            [CaseEventKinds.Opened, CaseEventKinds.PhaseChanged, CaseEventKinds.PhaseChanged, CaseEventKinds.ParticipantRemoved, CaseEventKinds.PhaseChanged, CaseEventKinds.Closed],
            hub.Partners.CaseEventsOf(Signals.Politie).Select(e => e.Kind));
        Assert.Equal("afgesloten", hub.Partners.CaseEventsOf(Signals.Politie)[^1].Phase);
        // The leaver was told nothing after it left; the organisation never in the case was told nothing at all.
        Assert.Equal([CaseEventKinds.Opened, CaseEventKinds.PhaseChanged, CaseEventKinds.PhaseChanged], hub.Partners.CaseEventsOf(Signals.Belastingdienst).Select(e => e.Kind));
        Assert.DoesNotContain(hub.Partners.Received, r => r.Organisation == Signals.Fiod);
        Assert.DoesNotContain(hub.Partners.CaseEvents, e => e.Organisation == Signals.Riec); // the owner does not send to itself

        var entries = await hub.Factory.WithDbAsync(db => db.AuditEntries.AsNoTracking().Where(a => a.CaseReference == Reference).ToListAsync());
        Assert.DoesNotContain(entries, a => a.Recipient == Signals.Fiod || a.Provider == Signals.Fiod);
        Assert.Equal(3 + 3 + 3 + 2 + 2 + 2, entries.Count(a => a.Kind == AuditKinds.CaseEventDecision && a.Outcome == "permit")); // opened, bevraging, weging, removed, casusoverleg, closed
        Assert.Equal(["opened", "phase-changed", "phase-changed", "left", "phase-changed", "closed"],
            entries.Where(a => a.Kind is AuditKinds.CaseOpened or AuditKinds.CasePhaseChanged or AuditKinds.CaseParticipantChanged).OrderBy(a => a.Id).Select(a => a.Outcome));
        Assert.Contains("noodzakelijk", entries.Single(a => a.Kind == AuditKinds.CaseOpened).Explanation, StringComparison.Ordinal); // the weighing is on record

        // A closed case takes nothing more.
        using var late = await riec.PostAsJsonAsync($"/api/v1/cases/{Reference}/phase", new ChangeCasePhaseRequest("afgesloten", "nogmaals"), Signals.Json);
        await AssertProblemAsync(late, HttpStatusCode.Conflict, "SH-C0003");
    }

    [Fact]
    public async Task PhaseRule_StrafvorderlijkeGegevens_DeniedInWeging_PermittedInCasusoverleg_BothAudited()
    {
        await using var hub = new ComponentHub();
        var riec = hub.ClientFor(Signals.Riec, Analyst);
        await OpenAsync(riec, await GemeenteSignalAsync(hub), Om, Signals.Politie);
        await MoveAsync(riec, "weging");
        var om = hub.ClientFor(Om);

        var inWeging = await om.SubmitAcceptedAsync(Strafvorderlijk());
        var denied = Assert.Single(inWeging.Decisions);
        Assert.Equal((false, "SH-P0004", "RIEC-CAS-04"), (denied.Permitted, denied.ReasonCode, denied.RuleId));
        Assert.Contains("case RIEC-2026-0901 is in phase 'weging'", denied.Explanation, StringComparison.Ordinal);

        await MoveAsync(riec, "casusoverleg");
        var inOverleg = await om.SubmitAcceptedAsync(Strafvorderlijk());
        var permitted = Assert.Single(inOverleg.Decisions);
        Assert.Equal((true, "SH-P0000", "RIEC-CAS-04"), (permitted.Permitted, permitted.ReasonCode, permitted.RuleId));
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => hub.Partners.Handled.Any(h => h.Delivery.DeliveryId == permitted.DeliveryId), Patience));
        Assert.Single(hub.Partners.Handled, h => h.Organisation == Signals.Politie && h.Delivery.CaseReference == Reference);

        var decisions = await hub.Factory.WithDbAsync(db => db.AuditEntries.AsNoTracking()
            .Where(a => a.Kind == AuditKinds.Decision && a.Provider == Om).OrderBy(a => a.Id).ToListAsync());
        Assert.Equal([("deny", "SH-P0004", Reference), ("permit", "SH-P0000", Reference)], decisions.Select(a => (a.Outcome, a.ReasonCode, a.CaseReference!)));
        // The shared signal is linked to the case (its retention waits for closure); the refused one is not (grace period).
        var linked = await hub.Factory.WithDbAsync(db => db.CaseSignals.Select(cs => cs.SignalId).ToListAsync());
        Assert.Equal(2, linked.Count); // the gemeente's signal the case was opened from, and the one shared in casusoverleg
        Assert.Contains(inOverleg.SignalId, linked);
        Assert.DoesNotContain(inWeging.SignalId, linked);
    }

    [Fact]
    public async Task SignalNamingACase_IsRefusedClearly_WhenTheCaseIsUnknown_TheProviderTakesNoPart_OrItIsClosed()
    {
        await using var hub = new ComponentHub();
        var riec = hub.ClientFor(Signals.Riec, Analyst);
        await OpenAsync(riec, await GemeenteSignalAsync(hub), Signals.Politie);

        using var unknown = await hub.ClientFor(Signals.Politie).SubmitAsync(PolitieSignal("RIEC-2026-9999"));
        using var outsider = await hub.ClientFor(Signals.Fiod).SubmitAsync(PolitieSignal(Reference) with { Category = "kvk-ubo" });
        await AssertProblemAsync(unknown, HttpStatusCode.UnprocessableEntity, "SH-C0001");
        await AssertProblemAsync(outsider, HttpStatusCode.UnprocessableEntity, "SH-C0001"); // same answer: no probing which cases exist

        await MoveAsync(riec, "afgesloten");
        using var closed = await hub.ClientFor(Signals.Politie).SubmitAsync(PolitieSignal(Reference));
        await AssertProblemAsync(closed, HttpStatusCode.Conflict, "SH-C0003");

        var (signals, refusals) = await hub.Factory.WithDbAsync(async db => (
            await db.Signals.CountAsync(),
            await db.AuditEntries.AsNoTracking().Where(a => a.Kind == AuditKinds.CaseReferenceRefused).OrderBy(a => a.Id).ToListAsync()));
        Assert.Equal(1, signals); // only the gemeente's signal: nothing of the refused ones was stored
        Assert.Equal([(Signals.Politie, "SH-C0001"), (Signals.Fiod, "SH-C0001"), (Signals.Politie, "SH-C0003")], refusals.Select(r => (r.Provider!, r.ReasonCode)));
        Assert.All(refusals, r => Assert.StartsWith("psn:", r.SubjectPseudonym, StringComparison.Ordinal));
    }

    [Fact]
    public async Task BatchItemsNamingACase_AreDecidedWithTheCase_AndAnUnknownCaseRefusesOnlyItsItem()
    {
        await using var hub = new ComponentHub();
        var riec = hub.ClientFor(Signals.Riec, Analyst);
        await OpenAsync(riec, await GemeenteSignalAsync(hub), Om, Signals.Politie);
        await MoveAsync(riec, "weging");

        // Same items as single submissions would be: the phase rule sees weging, the unknown case is refused (audited).
        using var response = await hub.ClientFor(Om).PostAsJsonAsync("/api/v1/signals/batch",
            new SubmitSignalBatchRequest([Strafvorderlijk(), Strafvorderlijk() with { CaseReference = "RIEC-2026-9999" }]), Signals.Json);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        var batch = JsonSerializer.Deserialize<SubmitSignalBatchResponse>(body, Signals.Json)!;

        Assert.Equal([202, 422], batch.Results.Select(r => r.Status));
        var denied = Assert.Single(batch.Results[0].Accepted!.Decisions);
        Assert.Equal((false, "RIEC-CAS-04"), (denied.Permitted, denied.RuleId));
        Assert.Contains("phase 'weging'", denied.Explanation, StringComparison.Ordinal);
        Assert.Equal("SH-C0001", batch.Results[1].Problem!.Code);
        var (refusals, linked) = await hub.Factory.WithDbAsync(async db => (
            await db.AuditEntries.AsNoTracking().CountAsync(a => a.Kind == AuditKinds.CaseReferenceRefused && a.Provider == Om),
            await db.CaseSignals.CountAsync(cs => cs.SignalId == batch.Results[0].Accepted!.SignalId)));
        Assert.Equal((1, 0), (refusals, linked)); // refused by policy: not linked, keeps its grace period

        await MoveAsync(riec, "casusoverleg");
        using var again = await hub.ClientFor(Om).PostAsJsonAsync("/api/v1/signals/batch", new SubmitSignalBatchRequest([Strafvorderlijk()]), Signals.Json);
        var permitted = JsonSerializer.Deserialize<SubmitSignalBatchResponse>(await again.Content.ReadAsStringAsync(), Signals.Json)!.Results[0].Accepted!;
        Assert.True(Assert.Single(permitted.Decisions).Permitted);
        Assert.Equal(1, await hub.Factory.WithDbAsync(db => db.CaseSignals.CountAsync(cs => cs.SignalId == permitted.SignalId)));
    }

    [Fact]
    public async Task RetriedSignalNamingACase_GetsItsStoredAnswer_EvenAfterTheCaseClosed()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        var riec = hub.ClientFor(Signals.Riec, Analyst);
        await OpenAsync(riec, await GemeenteSignalAsync(hub), Om, Signals.Politie);
        await MoveAsync(riec, "casusoverleg");
        var om = hub.ClientFor(Om);
        om.DefaultRequestHeaders.Add("Idempotency-Key", "om-strafvorderlijk-1");
        var first = await om.SubmitAcceptedAsync(Strafvorderlijk());

        // The answer was lost on the way back; by the time the OM's system retries, the case is closed.
        await MoveAsync(riec, "afgesloten");
        var retried = await om.SubmitAcceptedAsync(Strafvorderlijk());

        Assert.Equal(first.SignalId, retried.SignalId);
        Assert.Equal(first.Decisions.Select(d => (d.Permitted, d.DeliveryId)), retried.Decisions.Select(d => (d.Permitted, d.DeliveryId)));
        Assert.Equal(0, await hub.Factory.WithDbAsync(db => db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.CaseReferenceRefused)));
        using var fresh = await hub.ClientFor(Om).SubmitAsync(Strafvorderlijk()); // without the key it is a new signal: refused
        await AssertProblemAsync(fresh, HttpStatusCode.Conflict, "SH-C0003");
    }

    [Fact]
    public async Task ConcurrentCommandsOnOneCase_OnlyOneCommits_TheOthersAre409_AndNothingOfThemIsStored()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        var riec = hub.ClientFor(Signals.Riec, Analyst);
        await OpenAsync(riec, await GemeenteSignalAsync(hub), Signals.Politie);
        var eventsBefore = await hub.Factory.WithDbAsync(db => db.Outbox.CountAsync(o => o.CaseId != null));

        // Twelve analysts move the case from signaal to bevraging at the same moment: each read the case in signaal.
        var moves = await Task.WhenAll(Enumerable.Range(0, 12).Select(async i =>
        {
            using var response = await riec.PostAsJsonAsync($"/api/v1/cases/{Reference}/phase", new ChangeCasePhaseRequest("bevraging", $"analist {i}"), Signals.Json);
            var body = await response.Content.ReadAsStringAsync();
            return (response.StatusCode, Code: response.IsSuccessStatusCode ? null : JsonDocument.Parse(body).RootElement.GetProperty("code").GetString());
        }));

        Assert.Single(moves, m => m.StatusCode == HttpStatusCode.OK);
        Assert.All(moves.Where(m => m.StatusCode != HttpStatusCode.OK), m =>
        {
            Assert.Equal(HttpStatusCode.Conflict, m.StatusCode);
            Assert.Contains(m.Code, new[] { "SH-C0004", "SH-C0012" }); // lost the race, or read the case after the winner
        });
        var (changes, events) = await hub.Factory.WithDbAsync(async db => (
            await db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.CasePhaseChanged && a.CaseReference == Reference),
            await db.Outbox.CountAsync(o => o.CaseId != null)));
        Assert.Equal(1, changes);
        Assert.Equal(1, events - eventsBefore); // the one participant (politie) told once
        Assert.True((await Fg(hub.Factory).VerifyAsync()).Valid);
    }

    [Fact]
    public async Task CaseCommands_AreForTheRiecAnalystAndTheOwnerOnly_AndPhasesMoveForward()
    {
        await using var hub = new ComponentHub();
        var signal = await GemeenteSignalAsync(hub);
        var riec = hub.ClientFor(Signals.Riec, Analyst);

        using (var partnerSystem = await hub.ClientFor(Signals.Riec).PostAsJsonAsync("/api/v1/cases", Open(signal, Signals.Politie), Signals.Json))
        {
            Assert.Equal(HttpStatusCode.Forbidden, partnerSystem.StatusCode); // no cases:manage scope
        }

        await AssertProblemAsync(await hub.ClientFor(Signals.Gemeente, Analyst).PostAsJsonAsync("/api/v1/cases", Open(signal, Signals.Politie), Signals.Json), HttpStatusCode.Forbidden, "SH-C0006");
        await AssertProblemAsync(await riec.PostAsJsonAsync("/api/v1/cases", Open(signal, Signals.Politie) with { Weighing = "omdat" }, Signals.Json), HttpStatusCode.BadRequest, "SH-C0002");
        await AssertProblemAsync(await riec.PostAsJsonAsync("/api/v1/cases", Open(Guid.NewGuid(), Signals.Politie), Signals.Json), HttpStatusCode.UnprocessableEntity, "SH-C0007");

        await OpenAsync(riec, signal, Signals.Politie, Signals.Gemeente);
        await AssertProblemAsync(await riec.PostAsJsonAsync("/api/v1/cases", Open(signal, Signals.Politie), Signals.Json), HttpStatusCode.Conflict, "SH-C0005");
        await MoveAsync(riec, "weging");
        await AssertProblemAsync(await riec.PostAsJsonAsync($"/api/v1/cases/{Reference}/phase", new ChangeCasePhaseRequest("bevraging", "terug"), Signals.Json), HttpStatusCode.Conflict, "SH-C0004");
        await AssertProblemAsync(await riec.PostAsJsonAsync($"/api/v1/cases/{Reference}/questions", new AskHitNoHitRequest(new("kvk", "12345678"), null), Signals.Json), HttpStatusCode.Conflict, "SH-C0008");
        await AssertProblemAsync(await riec.PostAsJsonAsync($"/api/v1/cases/{Reference}/interventions", TaskFor(Signals.Gemeente, "vergunning-bibob", "bestuurlijke-interventie"), Signals.Json), HttpStatusCode.Conflict, "SH-C0008");

        // A participant's analyst sees the case but may not change it; an outsider's analyst does not see it at all.
        var gemeente = hub.ClientFor(Signals.Gemeente, Analyst);
        Assert.Equal("weging", (await gemeente.GetFromJsonAsync<CaseDto>($"/api/v1/cases/{Reference}", Signals.Json))!.Phase);
        await AssertProblemAsync(await gemeente.PostAsJsonAsync($"/api/v1/cases/{Reference}/phase", new ChangeCasePhaseRequest("casusoverleg", "ik wil"), Signals.Json), HttpStatusCode.Forbidden, "SH-C0006");
        await AssertProblemAsync(await hub.ClientFor(Signals.Fiod, Analyst).GetAsync($"/api/v1/cases/{Reference}"), HttpStatusCode.NotFound, "SH-N0404");
    }

    [Fact]
    public async Task HitNoHit_PartnersSeeOnlyTheSubject_AnswerOnlyTheBit_TheRiecSeesOnlyTheBits_AuditedOnBothSides()
    {
        await using var hub = new ComponentHub();
        var riec = hub.ClientFor(Signals.Riec, Analyst);
        await OpenAsync(riec, await GemeenteSignalAsync(hub), Signals.Gemeente, Signals.Politie, Signals.Belastingdienst);
        await MoveAsync(riec, "bevraging");

        using var asked = await riec.PostAsJsonAsync($"/api/v1/cases/{Reference}/questions", new AskHitNoHitRequest(new("kvk", "12345678"), null), Signals.Json);
        Assert.Equal(HttpStatusCode.OK, asked.StatusCode);
        var question = (await asked.Content.ReadFromJsonAsync<HitNoHitQuestionDto>(Signals.Json))!;
        Assert.All(question.Answers.Values, state => Assert.Equal("pending", state));
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => hub.Partners.CaseEvents.Count(e => e.Event.Kind == CaseEventKinds.HitNoHitAsked) == 3, Patience));

        // What a partner receives: the question id, the case, the subject to look up and its pseudonym — nobody else's name.
        var toPolitie = hub.Partners.CaseEventsOf(Signals.Politie).Single(e => e.Kind == CaseEventKinds.HitNoHitAsked);
        Assert.Equal((question.QuestionId, "kvk", "12345678", question.SubjectPseudonym, "RIEC-BEV-01"),
            (toPolitie.QuestionId!.Value, toPolitie.SubjectType!, toPolitie.SubjectId!, toPolitie.SubjectPseudonym!, toPolitie.RuleId));
        Assert.Empty(toPolitie.Participants);
        var copyAsJson = JsonSerializer.Serialize(toPolitie);
        Assert.DoesNotContain(Signals.Belastingdienst, copyAsJson, StringComparison.Ordinal);
        Assert.DoesNotContain(Signals.Gemeente, copyAsJson, StringComparison.Ordinal);
        Assert.DoesNotContain("Holding Zuidas", copyAsJson, StringComparison.Ordinal); // no signal content

        // Answers: the bit only. A "details" member is not part of the contract and is dropped on the floor.
        using (var hit = await hub.ClientFor(Signals.Politie).PostAsync(HubApi.AnswerPath(question.QuestionId),
            JsonContent.Create(new { subjectPseudonym = question.SubjectPseudonym, hit = true, details = "lopend onderzoek OPS-SECRET-17" })))
        {
            Assert.Equal(HttpStatusCode.Accepted, hit.StatusCode);
            Assert.Equal(string.Empty, await hit.Content.ReadAsStringAsync()); // nothing comes back
        }

        await AnswerAsync(hub, Signals.Belastingdienst, question, hit: false, HttpStatusCode.Accepted);
        await AnswerAsync(hub, Signals.Politie, question, hit: true, HttpStatusCode.Accepted);        // the same bit again: absorbed
        await AssertProblemAsync(await AnswerAsync(hub, Signals.Politie, question, hit: false), HttpStatusCode.Conflict, "SH-C0010");
        await AssertProblemAsync(await AnswerAsync(hub, Signals.Fiod, question, hit: true), HttpStatusCode.NotFound, "SH-N0404"); // never asked
        await AssertProblemAsync(await hub.ClientFor(Signals.Gemeente).PostAsJsonAsync(HubApi.AnswerPath(question.QuestionId),
            new AnswerHitNoHitRequest("psn:0000", true), Signals.Json), HttpStatusCode.UnprocessableEntity, "SH-C0011");

        // Only the owner reads the bits; a partner cannot, with its system token (no scope) or as analyst (not the owner).
        Assert.Equal(HttpStatusCode.Forbidden, (await hub.ClientFor(Signals.Politie).GetAsync($"/api/v1/cases/{Reference}/questions/{question.QuestionId}")).StatusCode);
        await AssertProblemAsync(await hub.ClientFor(Signals.Politie, Analyst).GetAsync($"/api/v1/cases/{Reference}/questions/{question.QuestionId}"), HttpStatusCode.NotFound, "SH-N0404");
        using var bitsResponse = await riec.GetAsync($"/api/v1/cases/{Reference}/questions/{question.QuestionId}");
        var bitsJson = await bitsResponse.Content.ReadAsStringAsync();
        var bits = JsonSerializer.Deserialize<HitNoHitQuestionDto>(bitsJson, Signals.Json)!;
        Assert.Equal(new Dictionary<string, string> { [Signals.Belastingdienst] = "no-hit", [Signals.Gemeente] = "pending", [Signals.Politie] = "hit" }, bits.Answers);
        Assert.DoesNotContain("OPS-SECRET", bitsJson, StringComparison.Ordinal);

        // After bevraging the policy no longer permits answering (RIEC-BEV-02: phase bevraging), and the refusal is audited.
        await MoveAsync(riec, "weging");
        await AssertProblemAsync(await AnswerAsync(hub, Signals.Gemeente, question, hit: true), HttpStatusCode.Forbidden, "SH-P0004");

        var entries = await hub.Factory.WithDbAsync(db => db.AuditEntries.AsNoTracking().Where(a => a.CaseReference == Reference).OrderBy(a => a.Id).ToListAsync());
        // The RIEC's side: one decision per participant asked, about the subject's pseudonym.
        Assert.Equal([Signals.Belastingdienst, Signals.Gemeente, Signals.Politie],
            entries.Where(a => a.Kind == AuditKinds.CaseEventDecision && a.Purpose == "bevraging").Select(a => a.Recipient));
        Assert.All(entries.Where(a => a.Kind == AuditKinds.CaseEventDecision && a.Purpose == "bevraging"), a => Assert.Equal(question.SubjectPseudonym, a.SubjectPseudonym));
        // The partners' side: each answer with the answering organisation as actor; the refused one as deny.
        Assert.Equal([(Signals.Politie, "hit"), (Signals.Belastingdienst, "no-hit"), (Signals.Gemeente, "deny")],
            entries.Where(a => a.Kind == AuditKinds.HitNoHitAnswered).Select(a => (a.ActorOrganisation, a.Outcome)));
        Assert.DoesNotContain(entries, a => a.Explanation.Contains("OPS-SECRET", StringComparison.Ordinal));
        Assert.True((await Fg(hub.Factory).VerifyAsync()).Valid);

        // For the data subject (AVG art. 15) the question and the answers are disclosures too; the refused answer a refusal.
        var report = (await Fg(hub.Factory).GetFromJsonAsync<Art15ReportDto>("/api/v1/audit/art15?subjectType=kvk&subject=12345678", Signals.Json))!;
        Assert.Equal([Signals.Belastingdienst, Signals.Gemeente, Signals.Politie],
            report.Disclosures.Where(d => d.Provider == Signals.Riec && d.Purpose == "bevraging").Select(d => d.Recipient!));
        Assert.Equal([Signals.Politie, Signals.Belastingdienst],
            report.Disclosures.Where(d => d.Recipient == Signals.Riec && d.Purpose == "bevraging").Select(d => d.Provider!));
        Assert.Contains(report.Refusals, r => (r.Provider, r.Purpose, r.ReasonCode) == (Signals.Gemeente, "bevraging", "SH-P0004"));
    }

    [Fact]
    public async Task InformationRequest_PassesOnlyWhenTheFollowUpExchangeIsPermitted_ThenContentFlowsAsACaseSignal()
    {
        await using var hub = new ComponentHub();
        var riec = hub.ClientFor(Signals.Riec, Analyst);
        await OpenAsync(riec, await GemeenteSignalAsync(hub), Signals.Politie, Signals.Belastingdienst);
        await MoveAsync(riec, "weging");

        var granted = await PostAsync<CaseCommandResponse>(riec, $"/api/v1/cases/{Reference}/requests", TaskFor(Signals.Politie, "politiegegevens", "casusanalyse"));
        var refused = await PostAsync<CaseCommandResponse>(riec, $"/api/v1/cases/{Reference}/requests", TaskFor(Signals.Belastingdienst, "fiscaal", "bestuurlijke-interventie"));
        Assert.Equal((true, "SH-P0000"), (Assert.Single(granted.Decisions).Permitted, granted.Decisions[0].ReasonCode));
        Assert.Equal((false, "SH-P0001"), (Assert.Single(refused.Decisions).Permitted, refused.Decisions[0].ReasonCode));

        Assert.True(await PartnerRecorder.WaitUntilAsync(() => hub.Partners.CaseEventsOf(Signals.Politie).Any(e => e.Kind == CaseEventKinds.InformationRequested), Patience));
        await WaitForAcknowledgementsAsync(hub);
        Assert.DoesNotContain(hub.Partners.CaseEventsOf(Signals.Belastingdienst), e => e.Kind == CaseEventKinds.InformationRequested);

        // The content follows as a signal naming the case, decided again with the case's phase and participants.
        var answer = await hub.ClientFor(Signals.Politie).SubmitAcceptedAsync(PolitieSignal(Reference));
        Assert.Equal((true, "RIEC-CAS-02"), (answer.Decisions[0].Permitted, answer.Decisions[0].RuleId));
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => hub.Partners.Handled.Any(h => h.Delivery.DeliveryId == answer.Decisions[0].DeliveryId), Patience));
        var delivered = hub.Partners.Handled.Single(h => h.Delivery.DeliveryId == answer.Decisions[0].DeliveryId).Delivery;
        Assert.DoesNotContain("informant", delivered.PayloadJson, StringComparison.Ordinal); // the rule's obligations still apply
    }

    [Fact]
    public async Task ClosingACase_StartsTheRetentionClockOfItsSignals()
    {
        var start = new DateTimeOffset(2026, 3, 2, 9, 0, 0, TimeSpan.Zero);
        var clock = new FakeTimeProvider(start);
        await using var hub = new ComponentHub(new() { ["ShareHub:Retention:Enabled"] = "false", ["ShareHub:Audit:CheckpointsEnabled"] = "false" },
            services: s => s.AddSingleton<TimeProvider>(clock));
        var signal = await GemeenteSignalAsync(hub); // RIEC-SIG-01: P6M = 180 days from submission
        await OpenAsync(hub.ClientFor(Signals.Riec, Analyst), signal, Signals.Politie);

        clock.Advance(TimeSpan.FromDays(200)); // past the signal's own retention, but the case is open: kept
        Assert.Equal(0, (await PurgeAsync(Fg(hub.Factory))).SignalsPurged);
        Assert.NotEqual(string.Empty, await PayloadAsync(hub, signal));

        var closed = await MoveAsync(hub.ClientFor(Signals.Riec, Analyst), "afgesloten");
        Assert.Equal(start.AddDays(200), closed.Case.ClosedAt);
        clock.Advance(TimeSpan.FromDays(179));
        Assert.Equal(0, (await PurgeAsync(Fg(hub.Factory))).SignalsPurged); // 180 days now count from closure
        clock.Advance(TimeSpan.FromDays(1));
        Assert.Equal(1, (await PurgeAsync(Fg(hub.Factory))).SignalsPurged);
        Assert.Equal(string.Empty, await PayloadAsync(hub, signal));

        // The participants' copies of the case events go when the case's own retention (RIEC-COORD-01: P2Y) ends.
        clock.Advance(TimeSpan.FromDays(730 - 180));
        var purged = await PurgeAsync(Fg(hub.Factory));
        Assert.Equal(2, purged.OutboxCopiesPurged); // case.opened and case.closed to politie
        Assert.All(await hub.Factory.WithDbAsync(db => db.Outbox.AsNoTracking().Where(o => o.CaseId != null).ToListAsync()), o => Assert.Equal(string.Empty, o.MessageJson));
        Assert.Single(await hub.Factory.WithDbAsync(db => db.AuditEntries.AsNoTracking().Where(a => a.Kind == AuditKinds.RetentionPurged && a.CaseReference == Reference && a.SignalId == null).ToListAsync()));
    }

    [Fact]
    public async Task PrivacyOfficer_SeesTheCasesFullExchangeHistory_PartnerOfficersTheirOwnPart_OutsidersNothing()
    {
        await using var hub = new ComponentHub();
        var riec = hub.ClientFor(Signals.Riec, Analyst);
        var signal = await GemeenteSignalAsync(hub);
        await OpenAsync(riec, signal, Signals.Politie, Signals.Belastingdienst);
        await MoveAsync(riec, "bevraging");
        await PostAsync<HitNoHitQuestionDto>(riec, $"/api/v1/cases/{Reference}/questions", new AskHitNoHitRequest(new("kvk", "12345678"), null));
        await WaitForAcknowledgementsAsync(hub);
        await MoveAsync(riec, "afgesloten");

        var history = (await Fg(hub.Factory).GetFromJsonAsync<CaseHistoryDto>($"/api/v1/audit/cases/{Reference}", Signals.Json))!;
        Assert.Equal(("partnership", "afgesloten"), (history.Scope, history.Case!.Phase));
        Assert.Equal([signal], history.SignalsRetainedUntil.Keys);
        // SQLite keeps RetainUntil in microseconds (AuditModel), the closure in ticks.
        Assert.Equal(history.Case.ClosedAt!.Value.AddDays(180), history.SignalsRetainedUntil[signal]!.Value, TimeSpan.FromMilliseconds(1));
        var kinds = history.Entries.Select(e => e.Kind).ToHashSet();
        Assert.Superset(new HashSet<string> { "case.opened", "case.phase-changed", "case.event-decision", "delivery.dispatched", "delivery.acknowledged" }, kinds);
        Assert.All(history.Entries, e => Assert.Equal(Reference, e.CaseReference));

        var politieOfficer = (await hub.ClientFor(Signals.Politie, PartnerOfficer).GetFromJsonAsync<CaseHistoryDto>($"/api/v1/audit/cases/{Reference}", Signals.Json))!;
        Assert.Equal(Signals.Politie, politieOfficer.Scope);
        Assert.All(politieOfficer.Entries, e => Assert.True(e.Provider == Signals.Politie || e.Recipient == Signals.Politie || e.ActorOrganisation == Signals.Politie));
        Assert.DoesNotContain(politieOfficer.Entries, e => e.Recipient == Signals.Belastingdienst);

        using var outsider = await hub.ClientFor(Signals.Fiod, PartnerOfficer).GetAsync($"/api/v1/audit/cases/{Reference}");
        await AssertProblemAsync(outsider, HttpStatusCode.NotFound, "SH-N0404");
        using var analyst = await riec.GetAsync($"/api/v1/audit/cases/{Reference}");
        Assert.Equal(HttpStatusCode.Forbidden, analyst.StatusCode); // analysts do not read the audit trail

        var reads = await hub.Factory.WithDbAsync(db => db.AuditEntries.AsNoTracking().Where(a => a.Kind == AuditKinds.AuditAccessed && a.Explanation.Contains("Case history of " + Reference)).ToListAsync());
        Assert.Contains(reads, r => r.ActorOrganisation == Signals.Riec);
        Assert.Contains(reads, r => r.ActorOrganisation == Signals.Politie);
    }

    // ------------------------------------------------------------------------------------------------------------

    /// <summary>Phase names as the API speaks them (the policy engine's CasePhases).</summary>
    private static class CasePhaseNames
    {
        public const string Signaal = "signaal";
    }

    private static async Task<Guid> GemeenteSignalAsync(ComponentHub hub)
    {
        var response = await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));
        return response.SignalId;
    }

    private static OpenCaseRequest Open(Guid signal, params string[] participants) => new(Reference,
        "Zes bestuurderswisselingen in een jaar en een pand zonder zichtbare activiteit: delen is noodzakelijk om te wegen, en beperkt tot de deelnemers.",
        [signal], participants);

    private static async Task<CaseCommandResponse> OpenAsync(HttpClient riec, Guid signal, params string[] participants)
    {
        using var response = await riec.PostAsJsonAsync("/api/v1/cases", Open(signal, participants), Signals.Json);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"open answered {(int)response.StatusCode}: {body}");
        return JsonSerializer.Deserialize<CaseCommandResponse>(body, Signals.Json)!;
    }

    private static Task<CaseCommandResponse> MoveAsync(HttpClient riec, string phase) =>
        PostAsync<CaseCommandResponse>(riec, $"/api/v1/cases/{Reference}/phase", new ChangeCasePhaseRequest(phase, $"naar {phase}"));

    private static async Task<T> PostAsync<T>(HttpClient client, string path, object body)
    {
        using var response = await client.PostAsJsonAsync(path, body, Signals.Json);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path} answered {(int)response.StatusCode}: {text}");
        return JsonSerializer.Deserialize<T>(text, Signals.Json)!;
    }

    private static CaseTaskRequest TaskFor(string organisation, string category, string purpose) => new(organisation, category, purpose, "Graag aanleveren voor de weging van de casus.");

    private static async Task<HttpResponseMessage> AnswerAsync(ComponentHub hub, string organisation, HitNoHitQuestionDto question, bool hit) =>
        await hub.ClientFor(organisation).PostAsJsonAsync(HubApi.AnswerPath(question.QuestionId), new AnswerHitNoHitRequest(question.SubjectPseudonym, hit), Signals.Json);

    private static async Task AnswerAsync(ComponentHub hub, string organisation, HitNoHitQuestionDto question, bool hit, HttpStatusCode expected)
    {
        using var response = await AnswerAsync(hub, organisation, question, hit);
        Assert.Equal(expected, response.StatusCode);
    }

    private static SubmitSignalRequest Strafvorderlijk() => new(new SubjectDto("kvk", "12345678"), "strafvorderlijk", "casusanalyse", Reference, [Signals.Politie],
        Signals.Payload("""{ "zaak": "parketnummer 13/123456-26", "verdenking": "witwassen" }"""));

    private static SubmitSignalRequest PolitieSignal(string reference) => new(new SubjectDto("kvk", "12345678"), "politiegegevens", "casusanalyse", reference, [Signals.Riec],
        Signals.Payload("""{ "samenvatting": "bekend in BVH als huurder van het pand", "bron": "BVH", "informant": "I-12" }"""));

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(code, JsonDocument.Parse(body).RootElement.GetProperty("code").GetString());
        response.Dispose();
    }

    /// <summary>Waits until every dispatched case event and delivery was acknowledged by its recipient.</summary>
    private static async Task WaitForAcknowledgementsAsync(ComponentHub hub) =>
        Assert.True(await PartnerRecorder.WaitUntilAsync(() => hub.Factory.WithDbAsync(async db =>
            await db.Outbox.CountAsync(o => o.Recipient != Om) == await db.Acknowledgements.CountAsync()), Patience), "not every delivery was acknowledged in time");

    private static Task<string> PayloadAsync(ComponentHub hub, Guid signal) => hub.Factory.WithDbAsync(db => db.Signals.Where(s => s.Id == signal).Select(s => s.PayloadJson).SingleAsync());

    private static async Task<RetentionPurgeResultDto> PurgeAsync(HttpClient fg)
    {
        using var response = await fg.PostAsync("/api/v1/retention/purge", null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<RetentionPurgeResultDto>(Signals.Json))!;
    }
}
