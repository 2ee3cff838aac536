using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using ShareHub.Contracts;
using ShareHub.Partner;

namespace ShareHub.Cli;

/// <summary>
/// The demo's case (issue #9): a municipality's signal about a holding company at an address becomes case
/// RIEC-2026-017; the RIEC asks the participants hit/no-hit about the address, requests fiscal and police information,
/// discusses the case, assigns a Bibob-style administrative intervention to the municipality and closes the case.
/// Every step goes through the real HTTP API with real tokens; partners answer questions from their own "systems".
/// </summary>
internal sealed class DemoCase(
    HubTokenClient analyst,
    Dictionary<string, HubTokenClient> partners,
    HubTokenClient officer,
    ConcurrentQueue<(string Organisation, DeliverCaseEvent Event)> caseEvents,
    ConcurrentDictionary<Guid, DeliverSignal> received)
{
    public const string Reference = "RIEC-2026-017";
    private const string Address = "Zuidplein 1, Amsterdam";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>What each participant's own systems know about the address (the demo's stand-in for their registers).</summary>
    private static readonly Dictionary<string, bool> KnowsTheAddress = new()
    {
        ["gemeente-amsterdam"] = true,  // an exploitatievergunning was applied for at the address
        ["politie"] = true,             // incident reports at the address
        ["belastingdienst"] = false,    // the address appears in no tax file
    };

    public async Task RunAsync(Guid fromSignal, CancellationToken cancellationToken)
    {
        Console.WriteLine();
        Console.WriteLine($"Case {Reference}: from signal to closure");
        Console.WriteLine("=================================");
        Console.WriteLine("The RIEC's analyst weighs the municipality's signal about Holding Zuidas B.V. and opens a case. Only the case's");
        Console.WriteLine("participants hear of it; every case event is decided by the policy set and audited before it is delivered.");
        Console.WriteLine();

        const string weighing = "Zes bestuurderswisselingen in een jaar en een pand zonder zichtbare activiteit: duidelijke en objectieve aanwijzingen van "
            + "ondermijning. Delen is noodzakelijk om te wegen en beperkt tot gemeente, politie en Belastingdienst (proportioneel).";
        Console.WriteLine($"The analyst documents the weighing decision: \"{weighing}\"");
        await CommandAsync("Open the case (phase signaal) with gemeente-amsterdam, politie and belastingdienst; the FIOD takes no part",
            HttpMethod.Post, "/api/v1/cases", new OpenCaseRequest(Reference, weighing, [fromSignal], ["gemeente-amsterdam", "politie", "belastingdienst"]), cancellationToken);

        await PhaseAsync("bevraging", "eerst nagaan of de deelnemers het adres kennen", cancellationToken);
        await AskAsync(cancellationToken);

        await PhaseAsync("weging", "twee deelnemers kennen het adres; fiscale en politie-informatie nodig voor de weging", cancellationToken);
        await CommandAsync("Request fiscal information from the Belastingdienst (follow-up: belastingdienst → riec, fiscaal for casusanalyse)",
            HttpMethod.Post, $"/api/v1/cases/{Reference}/requests", new CaseTaskRequest("belastingdienst", "fiscaal", "casusanalyse", "Omzet en aangiftegedrag van de holding."), cancellationToken);
        await CommandAsync("Request police information from the politie (follow-up: politie → riec, politiegegevens for casusanalyse)",
            HttpMethod.Post, $"/api/v1/cases/{Reference}/requests", new CaseTaskRequest("politie", "politiegegevens", "casusanalyse", "Meldingen en incidenten op het adres."), cancellationToken);
        await CommandAsync("Ask the Belastingdienst for fiscal data for an administrative intervention instead — no rule permits that follow-up",
            HttpMethod.Post, $"/api/v1/cases/{Reference}/requests", new CaseTaskRequest("belastingdienst", "fiscaal", "bestuurlijke-interventie", "Fiscale gegevens voor de gemeente."), cancellationToken);

        await SignalAsync("The Belastingdienst answers the request: fiscal data about the holding, naming the case", "belastingdienst",
            new(new SubjectDto("kvk", "12345678"), "fiscaal", "casusanalyse", Reference, ["riec-amsterdam"],
                Payload("""{ "omzet-2025": 2400000, "aangiften-te-laat": 3 }""")), cancellationToken);
        await SignalAsync("The politie answers the request; source and informant are stripped", "politie",
            new(new SubjectDto("address", Address), "politiegegevens", "casusanalyse", Reference, ["riec-amsterdam"],
                Payload("""{ "meldingen-2025": 7, "samenvatting": "nachtelijke activiteit, wisselende bezoekers", "bron": "BVH", "informant": "I-12" }""")), cancellationToken);
        await SignalAsync("The politie tries to share its information with the municipality already in weging (RIEC-CAS-03: only in casusoverleg)", "politie",
            PoliceToMunicipality(), cancellationToken);

        await PhaseAsync("casusoverleg", "weging afgerond: casus wordt besproken in het casusoverleg", cancellationToken);
        await SignalAsync("In the casusoverleg the same exchange is permitted (the municipality takes part in the case)", "politie", PoliceToMunicipality(), cancellationToken);

        await PhaseAsync("interventie", "afgesproken: bestuurlijke interventie door de gemeente (Bibob)", cancellationToken);
        await CommandAsync("Assign the municipality a Bibob-style administrative intervention",
            HttpMethod.Post, $"/api/v1/cases/{Reference}/interventions", new CaseTaskRequest("gemeente-amsterdam", "vergunning-bibob", "bestuurlijke-interventie",
                "Bibob-toets bij de aanvraag exploitatievergunning Zuidplein 1; weigering of intrekking overwegen."), cancellationToken);
        await SignalAsync("The RIEC hands the municipality its bestuurlijke rapportage for the intervention (RIEC-INT-01)", "riec-analyst",
            new(new SubjectDto("kvk", "12345678"), "vastgoed", "bestuurlijke-interventie", Reference, ["gemeente-amsterdam"],
                Payload("""{ "rapportage": "pand Zuidplein 1 in gebruik door Holding Zuidas B.V.; aanwijzingen van witwassen via vastgoed" }""")), cancellationToken);

        var closed = await PhaseAsync("afgesloten", "interventie uitgevoerd: vergunning geweigerd", cancellationToken);
        Console.WriteLine($"  closed at {closed.Case.ClosedAt:yyyy-MM-dd HH:mm:ss}: from now on the retention periods of the case's {closed.Case.SignalIds.Count} signals run.");
        await WaitForCaseEventsAsync(closed.Decisions, cancellationToken);

        Console.WriteLine();
        Console.WriteLine("What each organisation received about the case (case events on its own queue):");
        foreach (var organisation in new[] { "gemeente-amsterdam", "politie", "belastingdienst", "fiod" })
        {
            var events = caseEvents.Where(e => e.Organisation == organisation).Select(e => e.Event.Kind.Replace("case.", string.Empty, StringComparison.Ordinal)).ToList();
            Console.WriteLine($"  {organisation,-20} {(events.Count == 0 ? "nothing — not a participant" : string.Join(", ", events))}");
        }

        using var response = await officer.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, $"/api/v1/audit/cases/{Reference}"), cancellationToken);
        response.EnsureSuccessStatusCode();
        var history = (await response.Content.ReadFromJsonAsync<CaseHistoryDto>(Json, cancellationToken))!;
        Console.WriteLine();
        Console.WriteLine("The privacy officer reads the case's full exchange history (GET /api/v1/audit/cases/RIEC-2026-017, or `sharehub cases history`):");
        Console.Write(CaseCommands.HistoryText(history, compact: true));
    }

    private SubmitSignalRequest PoliceToMunicipality() => new(new SubjectDto("address", Address), "politiegegevens", "casusanalyse", Reference, ["gemeente-amsterdam"],
        Payload("""{ "samenvatting": "zeven meldingen in 2025, vermoedelijk dekmantel", "bron": "BVH", "informant": "I-12" }"""));

    private async Task AskAsync(CancellationToken cancellationToken)
    {
        Console.WriteLine($"Hit/no-hit: the RIEC asks every participant whether it knows the address '{Address}'.");
        using var asked = await analyst.SendAsync(() => Post($"/api/v1/cases/{Reference}/questions", new AskHitNoHitRequest(new SubjectDto("address", Address), null)), cancellationToken);
        asked.EnsureSuccessStatusCode();
        var question = (await asked.Content.ReadFromJsonAsync<HitNoHitQuestionDto>(Json, cancellationToken))!;

        // Each partner system looks the subject up in its own register and answers the bit — nothing else.
        var questions = await WaitAsync(() => caseEvents.Where(e => e.Event.QuestionId == question.QuestionId).ToList(), q => q.Count == KnowsTheAddress.Count, cancellationToken);
        var sample = questions.Single(q => q.Organisation == "politie").Event;
        Console.WriteLine($"  the politie received: question {sample.QuestionId}, case {sample.CaseReference}, subject {sample.SubjectType}:'{sample.SubjectId}' ({sample.SubjectPseudonym}),");
        Console.WriteLine($"    rule {sample.RuleId}, other participants named: {(sample.Participants.Count == 0 ? "none" : string.Join(", ", sample.Participants))}");
        foreach (var (organisation, caseEvent) in questions.OrderBy(q => q.Organisation, StringComparer.Ordinal))
        {
            await partners[organisation].AnswerAsync(caseEvent, KnowsTheAddress[organisation], cancellationToken);
        }

        using var bits = await analyst.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, $"/api/v1/cases/{Reference}/questions/{question.QuestionId}"), cancellationToken);
        bits.EnsureSuccessStatusCode();
        var answers = (await bits.Content.ReadFromJsonAsync<HitNoHitQuestionDto>(Json, cancellationToken))!.Answers;
        Console.WriteLine($"  the RIEC sees only the bits: {string.Join(", ", answers.Select(a => $"{a.Key} {a.Value}"))}");
        Console.WriteLine("  (a hit carries no content: the information follows only on a follow-up request that passes the policy)");
        Console.WriteLine();
    }

    private Task<CaseCommandResponse> PhaseAsync(string phase, string reason, CancellationToken cancellationToken) =>
        CommandAsync($"Move the case to {phase}: {reason}", HttpMethod.Post, $"/api/v1/cases/{Reference}/phase", new ChangeCasePhaseRequest(phase, reason), cancellationToken);

    private async Task<CaseCommandResponse> CommandAsync(string story, HttpMethod method, string path, object body, CancellationToken cancellationToken)
    {
        Console.WriteLine(story);
        using var response = await analyst.SendAsync(() => new HttpRequestMessage(method, path) { Content = JsonContent.Create(body, body.GetType(), options: Json) }, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{path} answered HTTP {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
        }

        var result = (await response.Content.ReadFromJsonAsync<CaseCommandResponse>(Json, cancellationToken))!;
        foreach (var d in result.Decisions)
        {
            Console.WriteLine(d.Permitted
                ? $"  ✔ {d.Recipient}: told ({result.Event}) — rule '{d.RuleId}'"
                : $"  ✘ {d.Recipient}: not told ({d.ReasonCode}){(d.RuleId is null ? string.Empty : $" — rule '{d.RuleId}'")}");
        }

        await WaitForCaseEventsAsync(result.Decisions, cancellationToken);
        Console.WriteLine();
        return result;
    }

    private async Task SignalAsync(string story, string provider, SubmitSignalRequest request, CancellationToken cancellationToken)
    {
        Console.WriteLine(story);
        var http = provider == "riec-analyst" ? analyst : partners[provider];
        using var response = await http.SendAsync(() => Post("/api/v1/signals", request), cancellationToken);
        response.EnsureSuccessStatusCode();
        var accepted = (await response.Content.ReadFromJsonAsync<SubmitSignalResponse>(Json, cancellationToken))!;
        foreach (var d in accepted.Decisions)
        {
            if (d.Permitted)
            {
                var copy = await WaitAsync(() => received.GetValueOrDefault(d.DeliveryId!.Value), c => c is not null, cancellationToken);
                Console.WriteLine($"  ✔ {d.Recipient}: delivered — rule '{d.RuleId}'; it received {copy!.SubjectType}:{copy.SubjectId} and {Shorten(copy.PayloadJson)}");
            }
            else
            {
                Console.WriteLine($"  ✘ {d.Recipient}: refused ({d.ReasonCode}) — {d.Explanation}");
            }
        }

        Console.WriteLine();
    }

    private async Task WaitForCaseEventsAsync(IReadOnlyList<CaseEventDecisionDto> decisions, CancellationToken cancellationToken)
    {
        var expected = decisions.Where(d => d.DeliveryId is not null).Select(d => d.DeliveryId!.Value).ToHashSet();
        await WaitAsync(() => caseEvents.Count(e => expected.Contains(e.Event.DeliveryId)), n => n >= expected.Count, cancellationToken);
    }

    private static async Task<T> WaitAsync<T>(Func<T> read, Func<T, bool> done, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var value = read();
            if (done(value) || attempt >= 200)
            {
                return value;
            }

            await Task.Delay(25, cancellationToken);
        }
    }

    private static HttpRequestMessage Post<T>(string path, T body) => new(HttpMethod.Post, path) { Content = JsonContent.Create(body, options: Json) };

    private static JsonElement Payload(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private static string Shorten(string json) => json.Length <= 90 ? json : json[..90] + "…";
}
