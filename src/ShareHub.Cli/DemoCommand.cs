using System.Collections.Concurrent;
using System.CommandLine;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ShareHub.Broker;
using ShareHub.Broker.Api;
using ShareHub.Broker.Identity;
using Microsoft.AspNetCore.Http.Features;
using ShareHub.Contracts;
using ShareHub.Partner;

namespace ShareHub.Cli;

/// <summary>
/// <c>sharehub demo</c>: starts the real broker on the embedded default (SQLite file + in-memory bus) with five demo
/// partner systems on the same bus, submits a handful of signals through the real HTTP API, and prints what was
/// delivered to whom, why the rest was refused, and the audit trail; then walks one case from signal to closure
/// (<see cref="DemoCase"/>).
/// </summary>
internal static class DemoCommand
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>The partner organisations that run a demo consumer.</summary>
    private static readonly string[] Partners = ["gemeente-amsterdam", "belastingdienst", "fiod", "riec-amsterdam", "politie"];

    public static Command Create()
    {
        var dataOption = new Option<DirectoryInfo?>("--data") { Description = "Folder for the demo database (default: a new temporary folder)." };
        var policiesOption = new Option<string>("--policies") { Description = "Policy directory.", DefaultValueFactory = _ => "policies" };
        var command = new Command("demo", "Run the hub on the embedded default with demo partners and show permitted and refused exchanges.")
        {
            dataOption,
            policiesOption,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(dataOption), parse.GetValue(policiesOption)!, cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(DirectoryInfo? dataFolder, string policies, CancellationToken cancellationToken)
    {
        var folder = dataFolder?.FullName ?? Path.Combine(Path.GetTempPath(), $"sharehub-demo-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        var database = Path.Combine(folder, "sharehub.db");

        var received = new ConcurrentDictionary<Guid, DeliverSignal>();
        var caseEvents = new ConcurrentQueue<(string Organisation, DeliverCaseEvent Event)>();
        // Each demo organisation holds its own private key; the hub is given only the public half (private_key_jwt).
        var keys = Partners.Append(OfficerOrganisation).Distinct().ToDictionary(o => o, _ => RSA.Create(2048));
        using var analystKey = RSA.Create(2048);
        await using var app = BuildHub(database, policies, received, caseEvents, keys, analystKey);
        await app.InitialiseBrokerAsync(cancellationToken);
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();

        Console.WriteLine("ShareHub demo");
        Console.WriteLine("=============");
        Console.WriteLine($"The hub runs at {address} on the embedded default: SQLite ({database}) and an in-memory message bus.");
        Console.WriteLine($"Demo partner systems listening on their own delivery queue: {string.Join(", ", Partners)}.");
        Console.WriteLine("Each partner submits signals through the HTTP API. For every intended recipient the hub asks the policy set");
        Console.WriteLine("(policies/) for permit or deny, records an audit entry for every decision, and only then delivers.");
        Console.WriteLine();

        using var http = new HttpClient { BaseAddress = new Uri(address) };
        var tokens = keys.ToDictionary(k => k.Key, k => new HubTokenClient(http, new HubClientCredentials
        {
            HubUri = new Uri(address.TrimEnd('/') + "/"),
            ClientId = ClientId(k.Key),
            PrivateKeyPem = k.Value.ExportPkcs8PrivateKeyPem(),
        }));
        Console.WriteLine("Every call below carries a real access token: each partner system obtained one from the hub's token endpoint");
        Console.WriteLine("with the client credentials grant, signing a client assertion with its own private key (RFC 7523).");
        Console.WriteLine();
        var number = 0;
        var signals = new List<Guid?>();
        foreach (var scenario in DemoScenarios.All)
        {
            number++;
            signals.Add(await RunScenarioAsync(tokens, number, scenario, received, cancellationToken));
        }

        await PrintAuditAsync(tokens[OfficerOrganisation], cancellationToken);
        await PrintArt15Async(tokens[OfficerOrganisation], "111222333", cancellationToken);

        // The first signal (the municipality's report about the holding company) becomes a case.
        using var analyst = new HubTokenClient(http, new HubClientCredentials
        {
            HubUri = new Uri(address.TrimEnd('/') + "/"),
            ClientId = AnalystClientId,
            PrivateKeyPem = analystKey.ExportPkcs8PrivateKeyPem(),
        });
        await new DemoCase(analyst, tokens, tokens[OfficerOrganisation], caseEvents, received).RunAsync(signals[0]!.Value, cancellationToken);
        foreach (var client in tokens.Values)
        {
            client.Dispose();
        }

        foreach (var key in keys.Values)
        {
            key.Dispose();
        }

        await app.StopAsync(cancellationToken);
        Console.WriteLine();
        Console.WriteLine($"The demo database is kept in {database}.");
        return 0;
    }

    /// <summary>The organisation whose privacy officer reads the audit trail at the end (the partnership's FG).</summary>
    private const string OfficerOrganisation = "riec-amsterdam";

    private static string ClientId(string organisation) => organisation == OfficerOrganisation ? "demo-fg-riec-amsterdam" : $"demo-{organisation}";

    /// <summary>The RIEC analyst who opens and advances the demo case (role analyst: scopes signals:submit and cases:manage).</summary>
    private const string AnalystClientId = "demo-analyst-riec-amsterdam";

    private static WebApplication BuildHub(string database, string policies, ConcurrentDictionary<Guid, DeliverSignal> received,
        ConcurrentQueue<(string Organisation, DeliverCaseEvent Event)> caseEvents, Dictionary<string, RSA> keys, RSA analystKey)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development", Args = [] });
        var settings = new Dictionary<string, string?>
        {
            ["ShareHub:Database"] = "Sqlite",
            ["ShareHub:ConnectionString"] = $"Data Source={database}",
            ["ShareHub:Bus"] = "InMemory",
            ["ShareHub:PoliciesPath"] = policies,
            ["ShareHub:Authentication:Mode"] = "Tokens",
            // A fresh partnership key per demo run: pseudonyms differ between runs.
            ["ShareHub:PartnershipKey"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
        };

        // The demo clients, registered at start-up from configuration like an installation's fixed set would be.
        var index = 0;
        foreach (var (organisation, key) in keys)
        {
            var prefix = $"ShareHub:Identity:Clients:{index++}:";
            var roles = organisation == OfficerOrganisation ? new[] { "partner-system", "partnership-privacy-officer" } : ["partner-system"];
            settings[prefix + "ClientId"] = ClientId(organisation);
            settings[prefix + "Organisation"] = organisation;
            settings[prefix + "PublicKeyPem"] = key.ExportSubjectPublicKeyInfoPem();
            for (var r = 0; r < roles.Length; r++)
            {
                settings[prefix + $"Roles:{r}"] = roles[r];
            }
        }

        var analystPrefix = $"ShareHub:Identity:Clients:{index}:";
        settings[analystPrefix + "ClientId"] = AnalystClientId;
        settings[analystPrefix + "Organisation"] = OfficerOrganisation;
        settings[analystPrefix + "PublicKeyPem"] = analystKey.ExportSubjectPublicKeyInfoPem();
        settings[analystPrefix + "Roles:0"] = "analyst";

        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.AddBroker();

        foreach (var partner in Partners)
        {
            var handler = new RecordingHandler(partner, received, caseEvents);
            builder.Services.AddSingleton(new BusEndpointContribution((_, cfg) =>
                PartnerBus.ConfigureDeliveryEndpoint(cfg, new PartnerOptions { Organisation = partner }, handler, new InMemoryDeliveryInbox(), TimeProvider.System)));
        }

        var app = builder.Build();
        app.UseBroker();
        app.MapSignalsApi();
        app.MapAuditApi();
        app.MapDeliveriesApi();
        app.MapCasesApi();
        app.MapIdentityEndpoints();
        return app;
    }

    private static async Task<Guid?> RunScenarioAsync(Dictionary<string, HubTokenClient> tokens, int number, DemoScenario scenario, ConcurrentDictionary<Guid, DeliverSignal> received, CancellationToken cancellationToken)
    {
        Console.WriteLine($"Signal {number}: {scenario.Story}");
        Console.WriteLine($"  {scenario.Provider} shares '{scenario.Request.Category}' about {Describe(scenario.Request.Subject)} for purpose '{scenario.Request.Purpose}'"
            + (scenario.Request.CaseReference is null ? string.Empty : $" in case {scenario.Request.CaseReference}")
            + $" with: {string.Join(", ", scenario.Request.Recipients ?? [])}");

        var http = tokens[scenario.Provider];
        using var response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Post, "/api/v1/signals") { Content = JsonContent.Create(scenario.Request, options: Json) }, cancellationToken);

        if (!response.IsSuccessStatusCode)
        {
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Json, cancellationToken);
            Console.WriteLine($"  ✘ Refused at the door: HTTP {(int)response.StatusCode} {problem.GetProperty("title").GetString()} ({problem.GetProperty("code").GetString()}). Nothing was stored.");
            if (problem.TryGetProperty("errors", out var errors))
            {
                foreach (var field in errors.EnumerateObject())
                {
                    foreach (var message in field.Value.EnumerateArray())
                    {
                        Console.WriteLine($"      {field.Name}: {message.GetString()}");
                    }
                }
            }

            Console.WriteLine();
            return null;
        }

        var accepted = (await response.Content.ReadFromJsonAsync<SubmitSignalResponse>(Json, cancellationToken))!;
        var status = await WaitForDeliveriesAsync(http, accepted.SignalId, cancellationToken);
        Console.WriteLine($"  Accepted as signal {accepted.SignalId} (HTTP 202), decided by policy version {accepted.PolicyVersion[..12]}…");
        foreach (var recipient in status.Recipients)
        {
            if (recipient.Permitted)
            {
                var decision = accepted.Decisions.Single(d => d.Recipient == recipient.Recipient);
                var copy = decision.DeliveryId is { } id && received.TryGetValue(id, out var delivered) ? delivered : null;
                Console.WriteLine($"  ✔ {recipient.Recipient}: delivered and {recipient.DeliveryState} — rule '{recipient.RuleId}', legal ground: {recipient.LegalGround}");
                if (recipient.Obligations is not null)
                {
                    Console.WriteLine($"      obligations applied to its copy: {recipient.Obligations}");
                }

                if (copy is not null)
                {
                    Console.WriteLine($"      it received subject {copy.SubjectType}:{copy.SubjectId} and payload {Shorten(copy.PayloadJson)}");
                }
            }
            else
            {
                Console.WriteLine($"  ✘ {recipient.Recipient}: refused ({recipient.ReasonCode}) — {recipient.Explanation}");
            }
        }

        Console.WriteLine();
        return accepted.SignalId;
    }

    private static async Task<SignalStatusResponse> WaitForDeliveriesAsync(HubTokenClient http, Guid signalId, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, $"/api/v1/signals/{signalId}"), cancellationToken);
            response.EnsureSuccessStatusCode();
            var status = (await response.Content.ReadFromJsonAsync<SignalStatusResponse>(Json, cancellationToken))!;
            if (status.Recipients.All(r => r.DeliveryState is "refused" or "acknowledged") || attempt >= 100)
            {
                return status;
            }

            await Task.Delay(50, cancellationToken);
        }
    }

    private static async Task PrintAuditAsync(HubTokenClient http, CancellationToken cancellationToken)
    {
        using var response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, "/api/v1/audit?limit=1000"), cancellationToken);
        response.EnsureSuccessStatusCode();
        var entries = (await response.Content.ReadFromJsonAsync<List<AuditEntryDto>>(Json, cancellationToken))!;

        Console.WriteLine("Audit trail (as the partnership's privacy officer sees it; subjects appear only as pseudonyms)");
        Console.WriteLine("-------------------------------------------------------------------------------------------");
        foreach (var e in entries)
        {
            var what = e.Kind switch
            {
                "signal.decision" => $"{e.Outcome.ToUpperInvariant(),-6} {e.Provider} → {e.Recipient}  {e.Category}/{e.Purpose}  subject {e.SubjectType}:{e.SubjectPseudonym}  {(e.RuleId is null ? "no rule" : "rule " + e.RuleId)}  [{e.ReasonCode}]",
                "delivery.acknowledged" => $"ACK    {e.Recipient} acknowledged delivery {e.DeliveryId}  [{e.ReasonCode}]",
                _ => $"{e.Outcome.ToUpperInvariant(),-6} {e.Explanation}  [{e.ReasonCode}]",
            };
            Console.WriteLine($"#{e.Id,-3} {e.RecordedAt:HH:mm:ss.fff} {e.Kind,-22} {what}");
        }
    }

    /// <summary>What an FG would answer the person with BSN <paramref name="bsn"/> under AVG art. 15 (BGS art. 1.1: for all joint controllers).</summary>
    private static async Task PrintArt15Async(HubTokenClient http, string bsn, CancellationToken cancellationToken)
    {
        using var response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, $"/api/v1/audit/art15?subjectType=bsn&subject={bsn}"), cancellationToken);
        response.EnsureSuccessStatusCode();
        var report = (await response.Content.ReadFromJsonAsync<Art15ReportDto>(Json, cancellationToken))!;
        Console.WriteLine();
        Console.WriteLine($"The person with BSN {bsn[..3]}… asks the partnership what was shared about them (AVG art. 15):");
        Console.Write(AuditCommands.Art15Text(report));
    }

    private static string Describe(SubjectDto? subject) => subject?.Type switch
    {
        SubjectTypes.Bsn => $"a person (BSN {subject.Id![..3]}…)",
        SubjectTypes.Kvk => $"an organisation (KvK {subject.Id})",
        SubjectTypes.Address => $"the address '{subject.Id}'",
        _ => "an unidentified subject",
    };

    private static string Shorten(string json) => json.Length <= 110 ? json : json[..110] + "…";

    private sealed class RecordingHandler(string organisation, ConcurrentDictionary<Guid, DeliverSignal> received, ConcurrentQueue<(string, DeliverCaseEvent)> caseEvents) : IDeliveryHandler
    {
        public Task HandleAsync(DeliverSignal delivery, CancellationToken cancellationToken)
        {
            received[delivery.DeliveryId] = delivery;
            return Task.CompletedTask;
        }

        public Task HandleCaseEventAsync(DeliverCaseEvent caseEvent, CancellationToken cancellationToken)
        {
            caseEvents.Enqueue((organisation, caseEvent));
            return Task.CompletedTask;
        }
    }
}
