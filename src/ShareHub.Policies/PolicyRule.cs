namespace ShareHub.Policies;

/// <summary>Whether a rule permits or denies.</summary>
public enum RuleEffect
{
    /// <summary>The rule permits the exchanges it covers, when its conditions are met.</summary>
    Permit,

    /// <summary>The rule forbids the exchanges it covers; a deny rule always wins over a permit rule.</summary>
    Deny,
}

/// <summary>
/// One rule of a policy set, as written in its file. Matchers are organisation codes, <c>role:ROLE</c> or <c>*</c>
/// (providers and recipients), and codes or <c>*</c> (categories and purposes).
/// </summary>
public sealed class PolicyRule
{
    internal PolicyRule(
        string id,
        RuleEffect effect,
        string? description,
        IReadOnlyList<string> providers,
        IReadOnlyList<string> recipients,
        IReadOnlyList<string> categories,
        IReadOnlyList<string> purposes,
        LegalGround? ground,
        RuleConditions conditions,
        Obligations obligations,
        DateTimeOffset? validFrom,
        DateTimeOffset? validUntil,
        string file,
        int line,
        int order)
    {
        Id = id;
        Effect = effect;
        Description = description;
        Providers = providers;
        Recipients = recipients;
        Categories = categories;
        Purposes = purposes;
        Ground = ground;
        Conditions = conditions;
        Obligations = obligations;
        ValidFrom = validFrom;
        ValidUntil = validUntil;
        File = file;
        Line = line;
        Order = order;
    }

    /// <summary>Stable rule id, e.g. <c>RIEC-SIG-01</c>.</summary>
    public string Id { get; }

    /// <summary>Permit or deny.</summary>
    public RuleEffect Effect { get; }

    /// <summary>What the rule is for, in words a privacy officer can check.</summary>
    public string? Description { get; }

    /// <summary>Provider matchers as written.</summary>
    public IReadOnlyList<string> Providers { get; }

    /// <summary>Recipient matchers as written.</summary>
    public IReadOnlyList<string> Recipients { get; }

    /// <summary>Category matchers as written.</summary>
    public IReadOnlyList<string> Categories { get; }

    /// <summary>Purpose matchers as written.</summary>
    public IReadOnlyList<string> Purposes { get; }

    /// <summary>The cited legal ground (always set for permit rules).</summary>
    public LegalGround? Ground { get; }

    /// <summary>Case conditions (permit rules only).</summary>
    public RuleConditions Conditions { get; }

    /// <summary>Obligations applied when this rule permits.</summary>
    public Obligations Obligations { get; }

    /// <summary>Start of validity (inclusive); null = always.</summary>
    public DateTimeOffset? ValidFrom { get; }

    /// <summary>End of validity (exclusive); null = open-ended. A date-only <c>until</c> in the file includes that whole (UTC) day.</summary>
    public DateTimeOffset? ValidUntil { get; }

    /// <summary>File the rule is defined in, relative to the policy directory.</summary>
    public string File { get; }

    /// <summary>1-based line of the rule in <see cref="File"/>.</summary>
    public int Line { get; }

    /// <summary>Position in the set (files in ordinal path order, then top to bottom); earlier permit rules are tried first.</summary>
    public int Order { get; }

    internal int[] ProviderIndexes { get; set; } = [];

    internal int[] RecipientIndexes { get; set; } = [];

    internal int[] CategoryIndexes { get; set; } = [];

    internal int[] PurposeIndexes { get; set; } = [];

    /// <summary>True when the rule is in force at <paramref name="at"/>.</summary>
    public bool IsInForce(DateTimeOffset at) => (ValidFrom is not { } from || at >= from) && (ValidUntil is not { } until || at < until);

    /// <summary>
    /// True when the rule's matchers (as written, not the precomputed index) cover the four codes. Used by
    /// <see cref="PolicySet.Explain"/> and as an independent oracle in tests. Conditions and validity are not checked.
    /// </summary>
    /// <param name="set">The set the rule belongs to (to resolve <c>role:</c> matchers).</param>
    /// <param name="provider">Provider code.</param>
    /// <param name="recipient">Recipient code.</param>
    /// <param name="category">Category code.</param>
    /// <param name="purpose">Purpose code.</param>
    public bool Covers(PolicySet set, string provider, string recipient, string category, string purpose)
    {
        ArgumentNullException.ThrowIfNull(set);
        return MatchesOrganisation(set, Providers, provider)
            && MatchesOrganisation(set, Recipients, recipient)
            && MatchesCode(Categories, category, set.IsKnownCategory)
            && MatchesCode(Purposes, purpose, set.IsKnownPurpose);
    }

    internal static bool MatchesOrganisation(PolicySet set, IReadOnlyList<string> matchers, string code)
    {
        var participant = set.FindParticipant(code);
        if (participant is null)
        {
            return false; // '*' means every participant, never an unknown organisation
        }

        foreach (var matcher in matchers)
        {
            if (matcher == "*" || matcher == code || (matcher.StartsWith("role:", StringComparison.Ordinal) && matcher.AsSpan(5).SequenceEqual(participant.Role)))
            {
                return true;
            }
        }

        return false;
    }

    internal static bool MatchesCode(IReadOnlyList<string> matchers, string code, Func<string, bool> isKnown)
    {
        if (!isKnown(code))
        {
            return false;
        }

        foreach (var matcher in matchers)
        {
            if (matcher == "*" || matcher == code)
            {
                return true;
            }
        }

        return false;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Id} ({Effect.ToString().ToLowerInvariant()}, {File}:{Line})";
}

/// <summary>Case conditions of a permit rule.</summary>
/// <param name="CaseRequired">A case reference must be given (implied by the other two).</param>
/// <param name="Phases">The case must be in one of these phases; empty = any phase.</param>
/// <param name="RecipientInCase">The recipient must be a participant of the case.</param>
public sealed record RuleConditions(bool CaseRequired, IReadOnlyList<string> Phases, bool RecipientInCase)
{
    /// <summary>No conditions.</summary>
    public static RuleConditions None { get; } = new(false, [], false);

    /// <summary>True when any condition is set.</summary>
    public bool Any => CaseRequired || Phases.Count > 0 || RecipientInCase;

    /// <summary>Value equality including the phases.</summary>
    public bool Equals(RuleConditions? other) =>
        other is not null && CaseRequired == other.CaseRequired && RecipientInCase == other.RecipientInCase
        && Phases.SequenceEqual(other.Phases, StringComparer.Ordinal);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(CaseRequired, RecipientInCase, Phases.Count);

    /// <summary>Human summary, e.g. <c>case required; phase casusoverleg or interventie; recipient in case</c>.</summary>
    public override string ToString()
    {
        if (!Any)
        {
            return "none";
        }

        var parts = new List<string> { "case reference required" };
        if (Phases.Count > 0)
        {
            parts.Add("case phase " + string.Join(" or ", Phases));
        }

        if (RecipientInCase)
        {
            parts.Add("recipient is a participant of the case");
        }

        return string.Join("; ", parts);
    }
}
