using MassTransit;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;
using static ShareHub.Broker.Tests.Component.AuditTestKit;

namespace ShareHub.Broker.Tests.Component;

/// <summary>
/// Issue #5 §4: the privacy officer's page in a real headless Chromium (Debian's /usr/bin/chromium, installed by
/// eng/chromium.sh; Playwright downloads no browser). The broker runs on Kestrel on a loopback port.
/// </summary>
public sealed class AuditPageBrowserTests
{
    private const string Hostile = "<img src=x onerror=\"window.__xss=1\">";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task PrivacyPage_InChromium_SearchesShowsTheArt15ReportAndTheVerifyStatus_AndShowsPartnerDataAsText()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Audit:CheckpointsEnabled"] = "false" });
        hub.Factory.UseKestrel(0);
        hub.Factory.StartServer();
        var address = hub.Factory.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        await ExchangeAsync(hub.Factory, Patience);

        // A partner system sends hostile text; the hub records it (as a rejected acknowledgement) and the page must show it as text.
        var bus = hub.Factory.Services.GetRequiredService<IBus>();
        await (await bus.GetSendEndpoint(new Uri($"queue:{QueueNames.Acknowledgements}"))).Send(new DeliveryAcknowledged(Guid.NewGuid(), Hostile, DateTimeOffset.UnixEpoch));
        Assert.True(await PartnerRecorder.WaitUntilAsync(
            () => hub.Factory.WithDbAsync(db => Task.FromResult(db.AuditEntries.Any(a => a.Outcome == "rejected"))), Patience));

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        await using var context = await browser.NewContextAsync(new BrowserNewContextOptions
        {
            // The development scheme: the same headers (and so the same authorisation policy) as the audit API.
            ExtraHTTPHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + await hub.Factory.TokenClientFor(Signals.Riec, PartnershipOfficer).GetAccessTokenAsync() },
        });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(30_000);
        var dialogs = 0;
        page.Dialog += (_, dialog) => { dialogs++; _ = dialog.DismissAsync(); };

        // Search by subject (a KvK number, pseudonymised by the hub).
        await page.GotoAsync($"{address}/privacy");
        Assert.Equal("partnership", await page.Locator("#scope").InnerTextAsync());
        await page.FillAsync("#subject", "12345678");
        await page.SelectOptionAsync("#subjectType", "kvk");
        await page.ClickAsync("#search-button");
        await page.WaitForSelectorAsync("#results tr.entry");
        var rows = await page.Locator("#results tr.entry").AllInnerTextsAsync();
        Assert.Contains(rows, r => r.Contains("signal.decision", StringComparison.Ordinal) && r.Contains("permit", StringComparison.Ordinal) && r.Contains(Signals.Riec, StringComparison.Ordinal));
        Assert.Contains(rows, r => r.Contains("deny", StringComparison.Ordinal) && r.Contains(Signals.Fiod, StringComparison.Ordinal));
        Assert.Contains(rows, r => r.Contains("delivery.dispatched", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.Contains("delivery.acknowledged", StringComparison.Ordinal));
        Assert.DoesNotContain(rows, r => r.Contains("12345678", StringComparison.Ordinal)); // only the pseudonym is shown

        // The hostile partner text is displayed literally and never runs.
        await page.SelectOptionAsync("#decision", "rejected");
        await page.FillAsync("#subject", string.Empty);
        await page.ClickAsync("#search-button");
        await page.WaitForSelectorAsync("#results tr.entry");
        Assert.Contains(Hostile, await page.Locator("#results").InnerTextAsync(), StringComparison.Ordinal);
        Assert.Equal(0, await page.Locator("#results img").CountAsync());
        Assert.True(await page.EvaluateAsync<bool>("() => window.__xss === undefined"));

        // AVG art. 15 report.
        await page.ClickAsync("#nav-art15");
        await page.FillAsync("#subject", "12345678");
        await page.SelectOptionAsync("#subjectType", "kvk");
        await page.ClickAsync("#art15-button");
        await page.WaitForSelectorAsync("#art15");
        var disclosure = Assert.Single(await page.Locator("#disclosures tr.disclosure").AllInnerTextsAsync());
        Assert.Contains(Signals.Gemeente, disclosure, StringComparison.Ordinal);
        Assert.Contains(Signals.Riec, disclosure, StringComparison.Ordinal);
        Assert.Contains("kvk-ubo", disclosure, StringComparison.Ordinal);
        Assert.Contains("AVG art. 6", disclosure, StringComparison.Ordinal);
        Assert.Contains(Signals.Fiod, Assert.Single(await page.Locator("#refusals tr.refusal").AllInnerTextsAsync()), StringComparison.Ordinal);

        // Verify status: intact, then broken after somebody edits the database file.
        await page.ClickAsync("#nav-verify");
        Assert.Equal("true", await page.Locator("#verify-status").GetAttributeAsync("data-valid"));
        Assert.StartsWith("INTACT", await page.Locator("#verify-status").InnerTextAsync(), StringComparison.Ordinal);
        await SqliteAsync(hub.DatabaseFile, "UPDATE audit_entries SET \"LegalGround\" = 'geen' WHERE \"Sequence\" = 2");
        await page.ReloadAsync();
        Assert.Equal("false", await page.Locator("#verify-status").GetAttributeAsync("data-valid"));
        Assert.Equal("2", await page.Locator("#first-bad").InnerTextAsync());
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Path.GetTempPath(), "sharehub-privacy-verify.png"), FullPage = true });
        Assert.Equal(0, dialogs);

        // The page is behind the audit policy: a partner without the role is refused (and that refusal is audited).
        var stranger = await browser.NewContextAsync(new BrowserNewContextOptions { ExtraHTTPHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + await hub.Factory.TokenClientFor(Signals.Gemeente).GetAccessTokenAsync() } });
        var refused = await (await stranger.NewPageAsync()).GotoAsync($"{address}/privacy");
        Assert.Equal(403, refused!.Status);
        await stranger.DisposeAsync();
        Assert.True(await hub.Factory.WithDbAsync(db => Task.FromResult(db.AuditEntries.Any(a => a.Kind == AuditKinds.AuthenticationFailed && a.ActorOrganisation == Signals.Gemeente))));
    }
}
