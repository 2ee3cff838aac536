using System.Text.Json;
using ShareHub.Contracts;

namespace ShareHub.Cli;

/// <summary>One signal of the demo: who submits what, and the story behind it.</summary>
/// <param name="Story">What happens, in plain words.</param>
/// <param name="Provider">Submitting organisation.</param>
/// <param name="Request">The request body.</param>
internal sealed record DemoScenario(string Story, string Provider, SubmitSignalRequest Request);

/// <summary>
/// The demo's signals. Each shows one aspect of the shipped policy set (policies/): permits with their obligations,
/// a denial because no rule exists, a denial because a case is required, an explicit prohibition, and input refused
/// before any decision.
/// </summary>
internal static class DemoScenarios
{
    public static IReadOnlyList<DemoScenario> All { get; } =
    [
        new("A municipality sees a holding company whose directors change every few months and reports it to the RIEC; it also tries to send it straight to the FIOD.",
            "gemeente-amsterdam",
            new(new SubjectDto("kvk", "12345678"), "kvk-ubo", "signaalweging", null, ["riec-amsterdam", "fiod"],
                Payload("""{ "naam": "Holding Zuidas B.V.", "adres": "Zuidplein 1, Amsterdam", "bestuurder-bsn": "111222333", "melder": { "naam": "A. de Vries", "telefoon": "020-1234567" }, "signaal": "zes bestuurderswisselingen in een jaar" }"""))),

        new("The police report a person to the RIEC for weighing; the source and informant must never travel with it.",
            "politie",
            new(new SubjectDto("bsn", "111222333"), "politiegegevens", "signaalweging", null, ["riec-amsterdam"],
                Payload("""{ "samenvatting": "meerdere meldingen van mogelijke witwasconstructie", "bron": "CIE-2026-0042", "informant": "I-77" }"""))),

        new("The municipality wants to share tax information with the FIOD for a case analysis.",
            "gemeente-amsterdam",
            new(new SubjectDto("bsn", "123456782"), "fiscaal", "casusanalyse", null, ["fiod"],
                Payload("""{ "opmerking": "aanslagen niet betaald" }"""))),

        new("The Belastingdienst wants to share fiscal data about the holding with the RIEC for a case analysis, but names no case (see the case below).",
            "belastingdienst",
            new(new SubjectDto("kvk", "12345678"), "fiscaal", "casusanalyse", null, ["riec-amsterdam"],
                Payload("""{ "omzet-2025": 2400000 }"""))),

        new("The police try to pass on health information (a special category under AVG art. 9).",
            "politie",
            new(new SubjectDto("bsn", "111222333"), "bijzondere-persoonsgegevens", "signaalweging", null, ["riec-amsterdam", "gemeente-amsterdam"],
                Payload("""{ "gezondheid": "verslavingsproblematiek" }"""))),

        new("The municipality submits a signal with a mistyped BSN (it fails the elfproef).",
            "gemeente-amsterdam",
            new(new SubjectDto("bsn", "111222334"), "identiteit", "signaalweging", null, ["riec-amsterdam"],
                Payload("""{ "naam": "J. Jansen" }"""))),
    ];

    private static JsonElement Payload(string json) => JsonDocument.Parse(json).RootElement.Clone();
}
