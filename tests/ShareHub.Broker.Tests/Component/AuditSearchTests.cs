extern alias cli;

using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;
using DemoScenarios = cli::ShareHub.Cli.DemoScenarios;
using static ShareHub.Broker.Tests.Component.AuditTestKit;

namespace ShareHub.Broker.Tests.Component;

/// <summary>Issue #5: the privacy officers' search, export and AVG art. 15 report, scoped and audited.</summary>
public sealed class AuditSearchTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task PartnerPrivacyOfficer_SeesOnlyEntriesOfTheirOrganisation_TheFgSeesAll()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod));
        await hub.ClientFor(Signals.Politie).SubmitAcceptedAsync(new SubmitSignalRequest(
            new SubjectDto("bsn", Signals.ValidBsn), "politiegegevens", "signaalweging", null, [Signals.Riec], Signals.Payload("""{ "samenvatting": "x" }""")));

        var fiod = await hub.ClientFor(Signals.Fiod, PartnerOfficer).SearchAsync("kind=signal.decision");
        var politie = await hub.ClientFor(Signals.Politie, PartnerOfficer).SearchAsync("kind=signal.decision");
        var all = await Fg(hub.Factory).SearchAsync("kind=signal.decision");

        var fiodEntry = Assert.Single(fiod.Entries);
        Assert.Equal((Signals.Gemeente, Signals.Fiod, "deny"), (fiodEntry.Provider, fiodEntry.Recipient, fiodEntry.Outcome));
        Assert.Equal("ERROR", fiodEntry.StatusCode);
        Assert.All(politie.Entries, e => Assert.Equal(Signals.Politie, e.Provider));
        Assert.Single(politie.Entries);
        Assert.Equal(3, all.Entries.Count);
    }

    [Fact]
    public async Task SearchByBsn_IsPseudonymisedOnTheServer_FiltersCombine_AndEveryReadIsAudited()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.FiscaalToFiod());
        await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));
        var fg = Fg(hub.Factory);

        var byBsn = await fg.SearchAsync($"subject={Signals.ValidBsn}&subjectType=bsn");
        var denied = await fg.SearchAsync($"decision=deny&category=fiscaal&purpose=casusanalyse&organisation={Signals.Fiod}");
        var none = await fg.SearchAsync($"subject={Signals.ValidBsn}&from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z");
        using var invalid = await fg.GetAsync($"/api/v1/audit/search?subject={Signals.InvalidBsn}");

        var entry = Assert.Single(byBsn.Entries, e => e.Kind == AuditKinds.Decision);
        Assert.Equal("fiscaal", entry.Category);
        Assert.StartsWith("psn:", entry.SubjectPseudonym, StringComparison.Ordinal);
        Assert.Single(denied.Entries);
        Assert.Empty(none.Entries);
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Equal("urn:sharehub:error:SH-U0101", (await invalid.Content.ReadFromJsonAsync<Microsoft.AspNetCore.Mvc.ProblemDetails>())!.Type);

        var reads = await hub.Factory.WithDbAsync(db => db.AuditEntries.Where(a => a.Kind == AuditKinds.AuditAccessed).OrderBy(a => a.Sequence).ToListAsync());
        Assert.True(reads.Count >= 3);
        Assert.All(reads, r => Assert.Equal((Signals.Riec, "test-riec-amsterdam-partnership-privacy-officer", "SH-U0001"), (r.ActorOrganisation, r.Actor, r.ReasonCode)));
        var first = reads[0];
        Assert.Equal(entry.SubjectPseudonym, first.SubjectPseudonym); // the read is about that subject (one line per data subject)
        Assert.Contains("subject of type bsn", first.Explanation, StringComparison.Ordinal);
        var auditText = await hub.Factory.WithDbAsync(async db => string.Join('\n', await db.AuditEntries.Select(a => a.Explanation).ToListAsync()));
        Assert.DoesNotContain(Signals.ValidBsn, auditText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Export_CsvAndJson_HoldTheLogiusFields_AndNeutraliseFormulas()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        await hub.ClientFor(Signals.Gemeente).SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec, Signals.Fiod));
        var fg = Fg(hub.Factory);

        using var csv = await fg.GetAsync("/api/v1/audit/export?format=csv&kind=signal.decision");
        using var json = await fg.GetAsync("/api/v1/audit/export?format=json&kind=signal.decision");
        using var bad = await fg.GetAsync("/api/v1/audit/export?format=xml");

        Assert.Equal("text/csv", csv.Content.Headers.ContentType?.MediaType);
        var lines = (await csv.Content.ReadAsStringAsync()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("sequence,id,name,start_time,end_time,status_code", lines[0], StringComparison.Ordinal);
        Assert.Contains("dpl.core.processing_activity_id", lines[0], StringComparison.Ordinal);
        Assert.Contains("dpl.core.data_subject_id", lines[0], StringComparison.Ordinal);
        var records = (await json.Content.ReadFromJsonAsync<List<AuditRecordDto>>(Signals.Json))!;
        Assert.Equal(["permit", "deny"], records.Select(r => r.Outcome));
        Assert.All(records, r => Assert.Equal(64, r.Hash.Length));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("'=1+1", ShareHub.Broker.Audit.AuditCsv.Write([records[0] with { Explanation = "=1+1" }]).Split("\r\n")[1].Split(',')[19]);
    }

    [Fact]
    public async Task Art15Report_ForTheDemoSubject_ListsExactlyTheExchangesTheDemoMadeAboutThem()
    {
        await using var hub = new ComponentHub();
        var made = new List<(SubjectDto Subject, string Provider, SubmitSignalRequest Request, SubmitSignalResponse Response)>();
        foreach (var scenario in DemoScenarios.All)
        {
            using var response = await hub.ClientFor(scenario.Provider).SubmitAsync(scenario.Request);
            if (response.StatusCode == HttpStatusCode.Accepted)
            {
                made.Add((scenario.Request.Subject!, scenario.Provider, scenario.Request, (await response.Content.ReadFromJsonAsync<SubmitSignalResponse>(Signals.Json))!));
            }
        }

        var permitted = made.Sum(m => m.Response.Decisions.Count(d => d.Permitted));
        Assert.True(await PartnerRecorder.WaitUntilAsync(
            () => hub.Factory.WithDbAsync(db => db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.Acknowledgement)).ContinueWith(t => t.Result >= permitted), Patience));

        const string demoBsn = "111222333";
        using var answer = await Fg(hub.Factory).GetAsync($"/api/v1/audit/art15?subjectType=bsn&subject={demoBsn}");
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        var report = (await answer.Content.ReadFromJsonAsync<Art15ReportDto>(Signals.Json))!;

        var aboutThem = made.Where(m => m.Subject is { Type: "bsn", Id: demoBsn }).ToList();
        Assert.NotEmpty(aboutThem);
        var expectedDisclosures = aboutThem.SelectMany(m => m.Response.Decisions.Where(d => d.Permitted)
            .Select(d => (m.Provider, d.Recipient, m.Request.Category!, m.Request.Purpose!, d.LegalGround, d.DeliveryId))).OrderBy(x => x.DeliveryId).ToList();
        var expectedRefusals = aboutThem.SelectMany(m => m.Response.Decisions.Where(d => !d.Permitted)
            .Select(d => (m.Provider, d.Recipient, m.Request.Category!, d.ReasonCode))).Order().ToList();
        Assert.NotEmpty(expectedDisclosures);
        Assert.NotEmpty(expectedRefusals);

        Assert.Equal("partnership", report.Scope);
        Assert.Equal(expectedDisclosures,
            report.Disclosures.Select(d => (d.Provider!, d.Recipient!, d.Category!, d.Purpose!, d.LegalGround, d.DeliveryId)).OrderBy(x => x.DeliveryId).ToList());
        Assert.All(report.Disclosures, d => Assert.NotNull(d.DispatchedAt));
        Assert.All(report.Disclosures, d => Assert.NotNull(d.AcknowledgedAt));
        Assert.Equal(expectedRefusals, report.Refusals.Select(r => (r.Provider!, r.Recipient!, r.Category!, r.ReasonCode)).Order().ToList());

        // A partner's privacy officer gets the same report limited to exchanges their organisation took part in.
        var gemeente = (await hub.ClientFor(Signals.Gemeente, PartnerOfficer).GetFromJsonAsync<Art15ReportDto>($"/api/v1/audit/art15?subject={demoBsn}", Signals.Json))!;
        Assert.Equal(Signals.Gemeente, gemeente.Scope);
        Assert.All(gemeente.Disclosures.Concat<object>(gemeente.Refusals), _ => { });
        Assert.All(gemeente.Refusals, r => Assert.True(r.Provider == Signals.Gemeente || r.Recipient == Signals.Gemeente));
        Assert.All(gemeente.Disclosures, d => Assert.True(d.Provider == Signals.Gemeente || d.Recipient == Signals.Gemeente));

        var reportRead = await hub.Factory.WithDbAsync(db => db.AuditEntries.Where(a => a.Kind == AuditKinds.AuditAccessed && a.Explanation.Contains("art. 15")).ToListAsync());
        Assert.Equal(2, reportRead.Count);
        Assert.All(reportRead, r => Assert.Equal(report.SubjectPseudonym, r.SubjectPseudonym));
    }
}
