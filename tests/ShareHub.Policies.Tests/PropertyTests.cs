using System.Globalization;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace ShareHub.Policies.Tests;

/// <summary>
/// Property tests: the indexed, cached <see cref="PolicySet.Decide"/> agrees with a naive oracle that reads the rules'
/// own matchers, for random requests including codes outside the set, and for random policy sets.
/// </summary>
public class PropertyTests
{
    [Property(Arbitrary = [typeof(Generators)], MaxTest = 3000)]
    public bool Decide_ShippedSet_PermitsOnlyWhenAPermitRuleCoversAndNoDenyRuleDoes(Sample sample) =>
        AgreesWithOracle(Repo.Shipped, sample.Request, sample.At);

    [Property(Arbitrary = [typeof(Generators)], MaxTest = 1000)]
    public bool Decide_BijzonderePersoonsgegevens_IsNeverPermitted(Sample sample)
    {
        var request = sample.Request with { Category = "bijzondere-persoonsgegevens" };
        var decision = Repo.Shipped.Decide(request, sample.At);
        return !decision.IsPermitted && decision.ReasonCode is ReasonCodes.ExplicitDeny or ReasonCodes.Unknown;
    }

    [Property(Arbitrary = [typeof(Generators)], MaxTest = 1000)]
    public bool Decide_UnknownOrganisation_IsNeverPermittedAndSaysUnknown(Sample sample, bool unknownProvider, NonEmptyString name)
    {
        var stranger = "x-" + name.Get;
        var request = unknownProvider ? sample.Request with { Provider = stranger } : sample.Request with { Recipient = stranger };
        var decision = Repo.Shipped.Decide(request, sample.At);
        return !decision.IsPermitted && decision.ReasonCode == ReasonCodes.Unknown && decision.RuleId is null
            && decision.Explanation.Contains(stranger, StringComparison.Ordinal);
    }

    [Property(Arbitrary = [typeof(Generators)], MaxTest = 300)]
    public bool Decide_CachedAnswers_EqualAFreshlyLoadedSet(Sample[] samples)
    {
        // The shared set has cached many no-case decisions by now; a fresh set has none.
        var fresh = PolicyLoader.LoadDirectory(Repo.Policies, Repo.Now).Set!;
        return samples.All(s => Repo.Shipped.Decide(s.Request, s.At) == fresh.Decide(s.Request, s.At));
    }

    [Property(Arbitrary = [typeof(Generators)], MaxTest = 300)]
    public Property Decide_RandomPolicySet_AgreesWithOracle(RandomSet random)
    {
        var result = PolicyLoader.LoadFiles(random.Files, Repo.Now);
        if (!result.IsValid)
        {
            // Generated rules are well-formed by construction: the only possible error is a dead permit rule.
            return result.Errors.All(p => p.Code == ProblemCodes.DeadRule).Label("only dead-rule errors: " + string.Join("; ", result.Errors));
        }

        var set = result.Set!;
        return random.Requests.All(s => AgreesWithOracle(set, s.Request, s.At)).Label(random.ToString());
    }

    /// <summary>The naive reading of the rules: unknown → deny; deny in force covering → deny; first permit in force
    /// covering with conditions met → permit by that rule; otherwise deny.</summary>
    internal static bool AgreesWithOracle(PolicySet set, DecisionRequest request, DateTimeOffset at)
    {
        var decision = set.Decide(request, at);
        if (!set.IsParticipant(request.Provider) || !set.IsParticipant(request.Recipient) || !set.IsKnownCategory(request.Category) || !set.IsKnownPurpose(request.Purpose))
        {
            return !decision.IsPermitted && decision.ReasonCode == ReasonCodes.Unknown;
        }

        var covering = set.Rules.Where(r => r.IsInForce(at) && r.Covers(set, request.Provider, request.Recipient, request.Category, request.Purpose)).ToList();
        if (covering.FirstOrDefault(r => r.Effect == RuleEffect.Deny) is { } deny)
        {
            return !decision.IsPermitted && decision.ReasonCode == ReasonCodes.ExplicitDeny && decision.RuleId == deny.Id;
        }

        var permit = covering.Where(r => r.Effect == RuleEffect.Permit).OrderBy(r => r.Order).FirstOrDefault(r => ConditionsMet(r, request));
        if (permit is not null)
        {
            return decision.IsPermitted && decision.ReasonCode == ReasonCodes.Permitted && decision.RuleId == permit.Id
                && decision.LegalGround == permit.Ground && decision.Obligations == permit.Obligations && decision.PolicyVersion == set.Version;
        }

        return !decision.IsPermitted && decision.ReasonCode != ReasonCodes.Permitted && decision.Obligations == Obligations.None;
    }

    private static bool ConditionsMet(PolicyRule rule, DecisionRequest request)
    {
        var conditions = rule.Conditions;
        if (!conditions.Any)
        {
            return true;
        }

        if (request.Case is not { } c || string.IsNullOrWhiteSpace(c.Reference))
        {
            return false;
        }

        return (conditions.Phases.Count == 0 || conditions.Phases.Contains(c.Phase!))
            && (!conditions.RecipientInCase || c.Participants.Contains(request.Recipient));
    }

    public sealed record Sample(DecisionRequest Request, DateTimeOffset At)
    {
        public override string ToString() =>
            $"{Request.Provider} -> {Request.Recipient} '{Request.Category}'/'{Request.Purpose}' case={(Request.Case is { } c ? $"{c.Reference}/{c.Phase}/[{string.Join(",", c.Participants)}]" : "none")} at {At:O}";
    }

    public sealed record RandomSet(PolicyFile[] Files, Sample[] Requests)
    {
        public override string ToString() => Files[1].Content;
    }

    public static class Generators
    {
        private static readonly string[] Outsiders = ["", "unknown-org", "GEMEENTE-AMSTERDAM", "role:gemeente", "*", "gemeente-amsterdam "];
        private static readonly DateTimeOffset[] Moments =
        [
            new(2025, 2, 28, 23, 59, 59, TimeSpan.Zero),
            new(2025, 3, 1, 0, 0, 0, TimeSpan.Zero),
            new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero),
            new(2027, 12, 31, 23, 59, 59, TimeSpan.Zero),
            new(2028, 1, 1, 0, 0, 0, TimeSpan.Zero),
            new(2031, 6, 1, 0, 0, 0, TimeSpan.Zero),
        ];

        public static Arbitrary<Sample> Sample() => Arb.From(SampleGen(Repo.Shipped));

        public static Arbitrary<RandomSet> RandomSet() => Arb.From(RandomSetGen());

        internal static Gen<Sample> SampleGen(PolicySet set)
        {
            var participants = set.Participants.Select(p => p.Code).ToArray();
            var organisation = Gen.Frequency((9, Gen.Elements(participants)), (1, Gen.Elements(Outsiders)));
            var category = Gen.Frequency((9, Gen.Elements(set.Categories.Select(c => c.Code).ToArray())), (1, Gen.Elements(Outsiders)));
            var purpose = Gen.Frequency((9, Gen.Elements(set.Purposes.Select(p => p.Code).ToArray())), (1, Gen.Elements(Outsiders)));
            var phase = Gen.Frequency((6, Gen.Elements(CasePhases.All.ToArray()).Select(p => (string?)p)), (1, Gen.Constant((string?)null)), (1, Gen.Constant((string?)"onbekend")));
            var caseGen =
                from reference in Gen.Elements("RIEC-2026-0042", "", "  ")
                from p in phase
                from members in Gen.SubListOf(participants.Append("x-unknown").ToArray())
                select (CaseContext?)new CaseContext(reference, p, [.. members]);
            var maybeCase = Gen.Frequency((2, Gen.Constant((CaseContext?)null)), (3, caseGen));
            return from provider in organisation
                   from recipient in organisation
                   from c in category
                   from u in purpose
                   from k in maybeCase
                   from at in Gen.Elements(Moments)
                   select new Sample(new DecisionRequest(provider, recipient, c, u, k), at);
        }

        private static Gen<RandomSet> RandomSetGen()
        {
            string[] organisations = ["gemeente-a", "fiod", "riec", "role:gemeente", "role:riec", "*"];
            string[] categories = ["identiteit", "fiscaal", "*"];
            string[] purposes = ["signaalweging", "*"];
            string[] validity = ["", "valid: { from: 2026-01-01 }", "valid: { until: 2026-06-30 }", "valid: { from: 2026-06-01, until: 2027-12-31 }"];
            string[] conditions = ["", "conditions: { case-required: true }", "conditions: { case-phases: [casusoverleg, interventie] }", "conditions: { recipient-in-case: true }", "conditions: { case-phases: [weging], recipient-in-case: true }"];
            static Gen<string> NonEmptySubset(string[] items) =>
                Gen.SubListOf(items).Where(l => l.Count > 0).Select(l => "[" + string.Join(", ", l.Select(x => $"\"{x}\"")) + "]");

            var rule =
                from permit in Gen.Frequency((3, Gen.Constant(true)), (1, Gen.Constant(false)))
                from providers in NonEmptySubset(organisations)
                from recipients in NonEmptySubset(organisations)
                from c in NonEmptySubset(categories)
                from u in NonEmptySubset(purposes)
                from condition in Gen.Elements(conditions)
                from valid in Gen.Elements(validity)
                from pseudonymise in Gen.Elements(true, false)
                select (permit, providers, recipients, c, u, condition, valid, pseudonymise);
            var rules = Gen.ListOf(rule).Where(l => l.Count is > 0 and <= 8);

            return from list in rules
                   from requests in Gen.ArrayOf(SampleGen(Fixture.Value), 60)
                   select new RandomSet(LoaderTests.MinimalSet(Render(list)), requests);

            static string Render(IEnumerable<(bool Permit, string Providers, string Recipients, string Categories, string Purposes, string Condition, string Valid, bool Pseudonymise)> list)
            {
                var text = new StringBuilder("rules:\n");
                var i = 0;
                foreach (var r in list)
                {
                    text.Append(CultureInfo.InvariantCulture, $"  - id: R{i++}\n    effect: {(r.Permit ? "permit" : "deny")}\n");
                    text.Append(CultureInfo.InvariantCulture, $"    providers: {r.Providers}\n    recipients: {r.Recipients}\n    categories: {r.Categories}\n    purposes: {r.Purposes}\n");
                    if (r.Permit)
                    {
                        text.Append("    ground: wgs\n");
                        if (r.Condition.Length > 0)
                        {
                            text.Append("    ").Append(r.Condition).Append('\n');
                        }

                        text.Append(CultureInfo.InvariantCulture, $"    obligations: {{ pseudonymise-bsn: {(r.Pseudonymise ? "true" : "false")} }}\n");
                    }

                    if (r.Valid.Length > 0)
                    {
                        text.Append("    ").Append(r.Valid).Append('\n');
                    }
                }

                return text.ToString();
            }
        }

        private static readonly Lazy<PolicySet> Fixture = new(() =>
            PolicyLoader.LoadFiles(LoaderTests.MinimalSet("rules: []\n"), Repo.Now).Set!);
    }
}
