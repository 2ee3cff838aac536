namespace ShareHub.Policies;

/// <summary>How the decisions for one (provider, recipient, category, purpose) combination changed.</summary>
public enum DecisionChangeKind
{
    /// <summary>Denied in every context before; now permitted in at least one (deny → permit).</summary>
    Granted,

    /// <summary>Permitted in at least one context before; now denied in every context (permit → deny).</summary>
    Revoked,

    /// <summary>Permitted before and now, in more contexts now (e.g. no longer needs a case).</summary>
    Widened,

    /// <summary>Permitted before and now, in fewer contexts now (e.g. now needs a case, or fewer phases).</summary>
    Narrowed,

    /// <summary>Permitted in the same or an overlapping set of contexts, but by another rule, ground or with other obligations.</summary>
    Modified,
}

/// <summary>
/// Where a combination is permitted: without a case, and in which case phases (with provider and recipient both
/// participants of the case).
/// </summary>
/// <param name="WithoutCase">Permitted without a case reference.</param>
/// <param name="Phases">Case phases in which it is permitted.</param>
/// <param name="RuleIds">The permit rules that decide, in context order; empty when denied everywhere.</param>
/// <param name="DenyReason">When denied everywhere: the reason code of the decision without a case.</param>
public sealed record Availability(bool WithoutCase, IReadOnlyList<string> Phases, IReadOnlyList<string> RuleIds, string? DenyReason)
{
    /// <summary>True when permitted in some context.</summary>
    public bool IsPermitted => WithoutCase || Phases.Count > 0;

    /// <summary>Human summary, e.g. <c>permit without a case (RIEC-SIG-01)</c> or <c>deny (SH-P0001)</c>.</summary>
    public override string ToString()
    {
        if (!IsPermitted)
        {
            return $"deny ({DenyReason})";
        }

        var where = WithoutCase
            ? "without a case"
            : Phases.Count == CasePhases.All.Count ? "with a case in any phase" : $"only with a case in phase {string.Join(", ", Phases)}";
        return $"permit {where} ({string.Join(", ", RuleIds)})";
    }
}

/// <summary>A changed combination.</summary>
/// <param name="Provider">Provider code.</param>
/// <param name="Recipient">Recipient code.</param>
/// <param name="Category">Category code.</param>
/// <param name="Purpose">Purpose code.</param>
/// <param name="Kind">What kind of change.</param>
/// <param name="Before">Availability under the old set.</param>
/// <param name="After">Availability under the new set.</param>
public sealed record DecisionChange(string Provider, string Recipient, string Category, string Purpose, DecisionChangeKind Kind, Availability Before, Availability After);

/// <summary>A changed rule or definition, in words.</summary>
/// <param name="Kind"><c>added</c>, <c>removed</c> or <c>changed</c>.</param>
/// <param name="Subject">What changed, e.g. <c>rule RIEC-SIG-01</c> or <c>participant uwv</c>.</param>
/// <param name="Detail">What differs, for <c>changed</c>.</param>
public sealed record DefinitionChange(string Kind, string Subject, string? Detail);

/// <summary>The result of <see cref="PolicyDiff.Compare"/>.</summary>
/// <param name="OldVersion">Version hash of the old set.</param>
/// <param name="NewVersion">Version hash of the new set.</param>
/// <param name="Definitions">Added, removed and changed participants, purposes, categories, grounds and rules.</param>
/// <param name="Decisions">Every combination whose decisions changed, ordered by kind then codes.</param>
public sealed record PolicyDiffResult(string OldVersion, string NewVersion, IReadOnlyList<DefinitionChange> Definitions, IReadOnlyList<DecisionChange> Decisions)
{
    /// <summary>True when anything changed.</summary>
    public bool HasChanges => Definitions.Count > 0 || Decisions.Count > 0;
}

/// <summary>
/// Compares two policy sets by their effect. Every (provider, recipient, category, purpose) combination over the
/// union of both sets' participants, categories and purposes is decided in seven contexts: without a case, and with
/// a case in each phase in which provider and recipient are both participants (the most favourable case, so a
/// condition on participation never hides a change). A combination is reported when the contexts in which it is
/// permitted changed, or when the same contexts are permitted by another rule, ground or with other obligations.
/// </summary>
public static class PolicyDiff
{
    /// <summary>Compares <paramref name="old"/> with <paramref name="new"/> as they decide at <paramref name="at"/>.</summary>
    public static PolicyDiffResult Compare(PolicySet old, PolicySet @new, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(old);
        ArgumentNullException.ThrowIfNull(@new);

        var participants = Union(old.Participants.Select(p => p.Code), @new.Participants.Select(p => p.Code));
        var categories = Union(old.Categories.Select(c => c.Code), @new.Categories.Select(c => c.Code));
        var purposes = Union(old.Purposes.Select(p => p.Code), @new.Purposes.Select(p => p.Code));

        var changes = new List<DecisionChange>();
        foreach (var provider in participants)
        {
            foreach (var recipient in participants)
            {
                var caseContexts = CasePhases.All.Select(phase => new CaseContext("diff", phase, [provider, recipient])).ToArray();
                foreach (var category in categories)
                {
                    foreach (var purpose in purposes)
                    {
                        var before = Evaluate(old, provider, recipient, category, purpose, caseContexts, at);
                        var after = Evaluate(@new, provider, recipient, category, purpose, caseContexts, at);
                        if (Classify(before, after) is { } kind)
                        {
                            changes.Add(new DecisionChange(provider, recipient, category, purpose, kind, ToAvailability(before), ToAvailability(after)));
                        }
                    }
                }
            }
        }

        return new PolicyDiffResult(old.Version, @new.Version, CompareDefinitions(old, @new),
            [.. changes.OrderBy(c => c.Kind).ThenBy(c => c.Provider, StringComparer.Ordinal).ThenBy(c => c.Recipient, StringComparer.Ordinal)
                .ThenBy(c => c.Category, StringComparer.Ordinal).ThenBy(c => c.Purpose, StringComparer.Ordinal)]);
    }

    private static Decision[] Evaluate(PolicySet set, string provider, string recipient, string category, string purpose, CaseContext[] cases, DateTimeOffset at)
    {
        var decisions = new Decision[cases.Length + 1];
        decisions[0] = set.Decide(new DecisionRequest(provider, recipient, category, purpose), at);
        for (var i = 0; i < cases.Length; i++)
        {
            decisions[i + 1] = set.Decide(new DecisionRequest(provider, recipient, category, purpose, cases[i]), at);
        }

        return decisions;
    }

    private static DecisionChangeKind? Classify(Decision[] before, Decision[] after)
    {
        var wasPermitted = before.Any(d => d.IsPermitted);
        var isPermitted = after.Any(d => d.IsPermitted);
        if (!wasPermitted && !isPermitted)
        {
            return null;
        }

        if (!wasPermitted)
        {
            return DecisionChangeKind.Granted;
        }

        if (!isPermitted)
        {
            return DecisionChangeKind.Revoked;
        }

        var gained = false;
        var lost = false;
        var modified = false;
        for (var i = 0; i < before.Length; i++)
        {
            if (before[i].IsPermitted && after[i].IsPermitted)
            {
                modified |= before[i].RuleId != after[i].RuleId || before[i].LegalGround != after[i].LegalGround || !before[i].Obligations.Equals(after[i].Obligations);
            }
            else
            {
                gained |= after[i].IsPermitted;
                lost |= before[i].IsPermitted;
            }
        }

        return (gained, lost) switch
        {
            (true, false) => DecisionChangeKind.Widened,
            (false, true) => DecisionChangeKind.Narrowed,
            (true, true) => DecisionChangeKind.Modified,
            _ => modified ? DecisionChangeKind.Modified : null,
        };
    }

    private static Availability ToAvailability(Decision[] decisions)
    {
        var phases = new List<string>();
        for (var i = 1; i < decisions.Length; i++)
        {
            if (decisions[i].IsPermitted)
            {
                phases.Add(CasePhases.All[i - 1]);
            }
        }

        var rules = decisions.Where(d => d.IsPermitted && d.RuleId is not null).Select(d => d.RuleId!).Distinct().ToList();
        return new Availability(decisions[0].IsPermitted, phases, rules, decisions.Any(d => d.IsPermitted) ? null : decisions[0].ReasonCode);
    }

    private static List<DefinitionChange> CompareDefinitions(PolicySet old, PolicySet @new)
    {
        var result = new List<DefinitionChange>();
        CompareBy(result, "participant", old.Participants, @new.Participants, p => p.Code, p => $"role {p.Role}, name {p.Name}");
        CompareBy(result, "purpose", old.Purposes, @new.Purposes, p => p.Code, p => p.Description);
        CompareBy(result, "category", old.Categories, @new.Categories, c => c.Code, c => $"{c.Description}; special {c.IsSpecial}; criminal {c.IsCriminal}");
        CompareBy(result, "legal ground", old.LegalGrounds, @new.LegalGrounds, g => g.Id, g => $"{g.Citation}; {g.Note}");
        CompareBy(result, "rule", old.Rules, @new.Rules, r => r.Id, Describe);
        return result;
    }

    private static void CompareBy<T>(List<DefinitionChange> into, string what, IEnumerable<T> old, IEnumerable<T> @new, Func<T, string> key, Func<T, string> describe)
    {
        var before = old.ToDictionary(key, StringComparer.Ordinal);
        var after = @new.ToDictionary(key, StringComparer.Ordinal);
        foreach (var (id, item) in before.OrderBy(x => x.Key, StringComparer.Ordinal))
        {
            if (!after.TryGetValue(id, out var now))
            {
                into.Add(new DefinitionChange("removed", $"{what} {id}", null));
            }
            else if (describe(item) != describe(now))
            {
                into.Add(new DefinitionChange("changed", $"{what} {id}", $"was: {describe(item)} | now: {describe(now)}"));
            }
        }

        foreach (var id in after.Keys.Where(k => !before.ContainsKey(k)).Order(StringComparer.Ordinal))
        {
            into.Add(new DefinitionChange("added", $"{what} {id}", describe(after[id])));
        }
    }

    /// <summary>A rule's meaning in one line (position in the files excluded, so moving a rule is no change).</summary>
    internal static string Describe(PolicyRule rule)
    {
        var validity = rule.ValidFrom is null && rule.ValidUntil is null ? string.Empty : "; " + PolicySet.Validity(rule);
        return $"{rule.Effect.ToString().ToLowerInvariant()} [{string.Join(", ", rule.Providers)}] → [{string.Join(", ", rule.Recipients)}]"
            + $" categories [{string.Join(", ", rule.Categories)}] purposes [{string.Join(", ", rule.Purposes)}]"
            + (rule.Ground is { } g ? $"; ground {g.Id}" : string.Empty)
            + (rule.Conditions.Any ? $"; conditions: {rule.Conditions}" : string.Empty)
            + (rule.Obligations.IsNone ? string.Empty : $"; obligations: {rule.Obligations}")
            + validity;
    }

    private static List<string> Union(IEnumerable<string> a, IEnumerable<string> b) => [.. a.Union(b, StringComparer.Ordinal)];
}
