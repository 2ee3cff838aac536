using System.Globalization;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace ShareHub.Policies.Tests;

/// <summary>Runs the table of decision cases in <c>policies/tests/cases.yaml</c> against the shipped set.</summary>
public class ShippedCaseTests
{
    private static readonly Lazy<CaseFile> Cases = new(() =>
    {
        var deserializer = new DeserializerBuilder().WithNamingConvention(HyphenatedNamingConvention.Instance).Build();
        return deserializer.Deserialize<CaseFile>(File.ReadAllText(Path.Combine(Repo.Policies, "tests", "cases.yaml")));
    });

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (var c in Cases.Value.Cases)
        {
            data.Add(c.Name);
        }

        return data;
    }

    [Fact]
    public void CaseFile_CoversPermitsDenialsAndEveryReasonCode()
    {
        var reasons = Cases.Value.Cases.Select(c => c.Expect.Reason).ToHashSet();
        foreach (var (code, _) in ReasonCodes.All)
        {
            Assert.Contains(code, reasons);
        }

        Assert.Equal(Cases.Value.Cases.Count, Cases.Value.Cases.Select(c => c.Name).Distinct().Count());
    }

    [Fact]
    public void CaseFile_EveryPermitRuleOfTheShippedSetIsExercised()
    {
        var exercised = Cases.Value.Cases.Where(c => c.Expect.Decision == "permit").Select(c => c.Expect.Rule).ToHashSet();
        var untested = Repo.Shipped.Rules.Where(r => r.Effect == RuleEffect.Permit && !exercised.Contains(r.Id)).Select(r => r.Id).ToList();

        // Not every rule needs its own permit case yet; this list must only shrink.
        string[] knownUntested = ["RIEC-SIG-03", "RIEC-CAS-04", "RIEC-CAS-05", "RIEC-CAS-06", "RIEC-CAS-07", "RIEC-CAS-08", "RIEC-CAS-09", "RIEC-CAS-10", "RIEC-INT-02", "RIEC-INT-03", "RIEC-INT-05", "RIEC-INT-06", "RIEC-INT-07"];
        Assert.Empty(untested.Except(knownUntested));
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Decide_ShippedSet_MatchesCase(string name)
    {
        var c = Cases.Value.Cases.Single(x => x.Name == name);
        var at = DateTimeOffset.Parse(c.At ?? Cases.Value.At, CultureInfo.InvariantCulture);
        var caseContext = c.Case is null ? null : new CaseContext(c.Case.Reference, c.Case.Phase, c.Case.Participants ?? []);
        var request = new DecisionRequest(c.Provider, c.Recipient, c.Category, c.Purpose, caseContext);

        var decision = Repo.Shipped.Decide(request, at);

        var expect = c.Expect;
        Assert.True(expect.Decision is "permit" or "deny", $"case '{name}': decision must be permit or deny");
        Assert.Equal(expect.Decision == "permit", decision.IsPermitted);
        Assert.Equal(expect.Reason, decision.ReasonCode);
        Assert.Equal(expect.Rule is null or "null" ? null : expect.Rule, decision.RuleId);
        Assert.StartsWith(decision.IsPermitted ? "permitted: " : "denied: ", decision.Explanation, StringComparison.Ordinal);
        Assert.Equal(Repo.Shipped.Version, decision.PolicyVersion);
        if (decision.IsPermitted)
        {
            Assert.NotNull(decision.LegalGround);
            Assert.Contains(decision.LegalGround.Citation, decision.Explanation, StringComparison.Ordinal);
        }
        else
        {
            Assert.Null(decision.LegalGround);
            Assert.Same(Obligations.None, decision.Obligations);
        }

        if (expect.Ground is not null)
        {
            Assert.Equal(expect.Ground, decision.LegalGround?.Id);
        }

        if (expect.PseudonymiseBsn is { } pseudonymise)
        {
            Assert.Equal(pseudonymise, decision.Obligations.PseudonymiseBsn);
        }

        if (expect.StripFields is { } strip)
        {
            Assert.Equal(strip, decision.Obligations.StripFields);
        }

        if (expect.RetentionDays is { } days)
        {
            Assert.Equal(TimeSpan.FromDays(days), decision.Obligations.Retention);
        }

        // The same question asked through Explain gives the same answer.
        Assert.Equal(decision, Repo.Shipped.Explain(request, at).Decision);
    }

    public sealed class CaseFile
    {
        public string At { get; set; } = string.Empty;

        public List<DecisionCase> Cases { get; set; } = [];
    }

    public sealed class DecisionCase
    {
        public string Name { get; set; } = string.Empty;

        public string Provider { get; set; } = string.Empty;

        public string Recipient { get; set; } = string.Empty;

        public string Category { get; set; } = string.Empty;

        public string Purpose { get; set; } = string.Empty;

        public CaseSpec? Case { get; set; }

        public string? At { get; set; }

        public Expectation Expect { get; set; } = new();
    }

    public sealed class CaseSpec
    {
        public string Reference { get; set; } = string.Empty;

        public string? Phase { get; set; }

        public List<string>? Participants { get; set; }
    }

    public sealed class Expectation
    {
        public string Decision { get; set; } = string.Empty;

        public string Reason { get; set; } = string.Empty;

        public string? Rule { get; set; }

        public string? Ground { get; set; }

        public bool? PseudonymiseBsn { get; set; }

        public List<string>? StripFields { get; set; }

        public int? RetentionDays { get; set; }
    }
}
