using System.Text;
using System.Text.Json.Nodes;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace ShareHub.Policies.Tests;

public class ObligationApplierTests
{
    private const string Bsn = "111222333"; // passes the elfproef (test number, not a real person)
    private const string OtherBsn = "123456782";
    private static readonly byte[] Key = Encoding.UTF8.GetBytes("test-partnership-key-0123456789ab");
    private static readonly byte[] OtherKey = Encoding.UTF8.GetBytes("another-partnership-key-987654321");

    [Fact]
    public void TestBsns_PassTheElfproef()
    {
        Assert.True(ObligationApplier.IsValidBsn(Bsn));
        Assert.True(ObligationApplier.IsValidBsn(OtherBsn));
        Assert.False(ObligationApplier.IsValidBsn("123456789"));
        Assert.False(ObligationApplier.IsValidBsn("12345678"));
    }

    [Fact]
    public void Pseudonymise_IsDeterministicPerKey_AndDiffersPerKeyAndType()
    {
        var first = ObligationApplier.Pseudonymise("bsn", Bsn, Key);
        var again = ObligationApplier.Pseudonymise("bsn", Bsn, Key);
        var otherKey = ObligationApplier.Pseudonymise("bsn", Bsn, OtherKey);
        var otherType = ObligationApplier.Pseudonymise("kvk", Bsn, Key);

        Assert.Equal(first, again);
        Assert.NotEqual(first, otherKey);
        Assert.NotEqual(first, otherType);
        Assert.Matches("^psn:[0-9a-f]{32}$", first);
        Assert.DoesNotContain(Bsn, first, StringComparison.Ordinal);
    }

    [Fact]
    public void Pseudonymise_IsHmacSha256OfTypeColonValue_FirstSixteenBytesHex()
    {
        var expected = "psn:" + Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(Key, Encoding.UTF8.GetBytes("bsn:" + Bsn))[..16]);

        Assert.Equal(expected, ObligationApplier.Pseudonymise("bsn", Bsn, Key));
        Assert.Equal(expected, ObligationApplier.Pseudonymise("BSN", " " + Bsn + " ", Key));
    }

    [Fact]
    public void Apply_StripFields_RemovesTopLevelNestedAndArrayPaths()
    {
        var payload = JsonNode.Parse("""
            {
              "adres": "Damrak 1",
              "bron": "CI-0815",
              "melder": { "naam": "J. Jansen", "telefoon": "0612345678", "rol": "buurtbewoner" },
              "panden": [ { "adres": "A", "eigenaar": { "naam": "X" } }, { "adres": "B", "eigenaar": { "naam": "Y" } } ]
            }
            """);
        var obligations = new Obligations(false, ["bron", "melder.naam", "melder.telefoon", "panden.eigenaar.naam", "niet.aanwezig"], null);

        var result = ObligationApplier.Apply(obligations, "kvk", "12345678", payload, Key);

        var json = result.Payload!.ToJsonString();
        Assert.Equal("""{"adres":"Damrak 1","melder":{"rol":"buurtbewoner"},"panden":[{"adres":"A","eigenaar":{}},{"adres":"B","eigenaar":{}}]}""", json);
        Assert.Equal("12345678", result.SubjectId);
        Assert.Equal(["strip-fields: removed bron, melder.naam, melder.telefoon, panden.eigenaar.naam"], result.Applied);
    }

    [Fact]
    public void Apply_NeverModifiesTheInputPayload()
    {
        var payload = JsonNode.Parse($$"""{"bsn":"{{Bsn}}","bron":"x"}""");
        var before = payload!.ToJsonString();

        ObligationApplier.Apply(new Obligations(true, ["bron"], null), "bsn", Bsn, payload, Key);

        Assert.Equal(before, payload.ToJsonString());
    }

    [Fact]
    public void Apply_PseudonymiseBsn_ReplacesSubjectAndEveryOccurrence()
    {
        var payload = JsonNode.Parse($$"""
            {
              "bsn": "{{Bsn}}",
              "bsnAlsGetal": {{Bsn}},
              "notitie": "Betrokkene (BSN {{Bsn}}) woont samen met BSN {{OtherBsn}}.",
              "huishouden": [ { "bsn": "{{OtherBsn}}" } ],
              "{{Bsn}}": "sleutel is een BSN",
              "telefoon": "0612345678",
              "kvk": "12345678"
            }
            """);

        var result = ObligationApplier.Apply(new Obligations(true, [], TimeSpan.FromDays(730)), "bsn", Bsn, payload, Key);

        var pseudonym = ObligationApplier.Pseudonymise("bsn", Bsn, Key);
        var otherPseudonym = ObligationApplier.Pseudonymise("bsn", OtherBsn, Key);
        var json = result.Payload!.ToJsonString();
        Assert.Equal(pseudonym, result.SubjectId);
        Assert.DoesNotContain(Bsn, json, StringComparison.Ordinal);
        Assert.DoesNotContain(OtherBsn, json, StringComparison.Ordinal);
        Assert.Equal(pseudonym, result.Payload!["bsn"]!.GetValue<string>());
        Assert.Equal(pseudonym, result.Payload!["bsnAlsGetal"]!.GetValue<string>());
        Assert.Equal($"Betrokkene (BSN {pseudonym}) woont samen met BSN {otherPseudonym}.", result.Payload!["notitie"]!.GetValue<string>());
        Assert.Equal(otherPseudonym, result.Payload!["huishouden"]![0]!["bsn"]!.GetValue<string>());
        Assert.Equal("sleutel is een BSN", result.Payload![pseudonym]!.GetValue<string>());
        Assert.Equal("0612345678", result.Payload!["telefoon"]!.GetValue<string>());
        Assert.Equal("12345678", result.Payload!["kvk"]!.GetValue<string>());
        Assert.Equal(["pseudonymise-bsn: subject BSN and 6 payload value(s) replaced by keyed pseudonym", "retention: 730 days"], result.Applied);
    }

    [Fact]
    public void Apply_PseudonymiseBsn_LeavesANonBsnSubjectAlone()
    {
        var result = ObligationApplier.Apply(new Obligations(true, [], null), "kvk", "12345678", JsonNode.Parse("""{"naam":"Holding BV"}"""), Key);

        Assert.Equal("12345678", result.SubjectId);
        Assert.Equal("""{"naam":"Holding BV"}""", result.Payload!.ToJsonString());
    }

    [Fact]
    public void Apply_NoObligations_ReturnsACopyAndAppliesNothing()
    {
        var payload = JsonNode.Parse($$"""{"bsn":"{{Bsn}}"}""");

        var result = ObligationApplier.Apply(Obligations.None, "bsn", Bsn, payload, Key);

        Assert.Equal(Bsn, result.SubjectId);
        Assert.Equal(payload!.ToJsonString(), result.Payload!.ToJsonString());
        Assert.NotSame(payload, result.Payload);
        Assert.Empty(result.Applied);
    }

    [Fact]
    public void Apply_NullPayload_IsAllowed()
    {
        var result = ObligationApplier.Apply(new Obligations(true, ["x"], null), "bsn", Bsn, null, Key);

        Assert.Null(result.Payload);
        Assert.Equal(ObligationApplier.Pseudonymise("bsn", Bsn, Key), result.SubjectId);
    }

    [Property(MaxTest = 500)]
    public Property Apply_PseudonymiseBsn_RawBsnNeverInOutput()
    {
        var bsn = Gen.Choose(10_000_000, 99_999_999)
            .Select(n => n.ToString("D8", System.Globalization.CultureInfo.InvariantCulture))
            .Select(WithCheckDigit)
            .Where(b => b is not null)
            .Select(b => b!);
        return Prop.ForAll(Arb.From(bsn), Arb.From(Gen.ArrayOf(Gen.Elements(0, 1, 2, 3), 5)), (subject, shape) =>
        {
            // Build a payload with the subject's BSN in strings, numbers, nested objects and arrays.
            var payload = new JsonObject();
            for (var i = 0; i < shape.Length; i++)
            {
                JsonNode node = shape[i] switch
                {
                    0 => JsonValue.Create(subject),
                    1 => JsonValue.Create($"BSN {subject}, zie dossier"),
                    2 => new JsonArray(new JsonObject { ["bsn"] = subject, ["n"] = long.Parse(subject, System.Globalization.CultureInfo.InvariantCulture) }),
                    _ => new JsonObject { [subject] = new JsonObject { ["deep"] = $"x{subject}" } },
                };
                payload["f" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)] = node;
            }

            var result = ObligationApplier.Apply(new Obligations(true, [], null), "bsn", subject, payload, Key);
            var json = result.Payload!.ToJsonString();
            return !json.Contains(subject, StringComparison.Ordinal) && result.SubjectId.StartsWith("psn:", StringComparison.Ordinal);
        });
    }

    /// <summary>Appends the digit that makes 8 digits a valid BSN, or null when none does.</summary>
    private static string? WithCheckDigit(string eight)
    {
        var sum = 0;
        for (var i = 0; i < 8; i++)
        {
            sum += (9 - i) * (eight[i] - '0');
        }

        var check = sum % 11;
        return check <= 9 ? eight + check.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
    }
}
