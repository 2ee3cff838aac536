using System.Collections.Frozen;
using System.Globalization;

namespace ShareHub.Policies;

/// <summary>
/// A loaded, validated, immutable policy set. <see cref="Decide"/> is thread-safe and fast: every
/// (provider, recipient, category, purpose) combination is indexed at load, and decisions without a case are cached
/// per combination for the time window in which no rule of that combination starts or ends (except a "not in force at
/// &lt;moment&gt;" denial, which names the moment).
/// </summary>
public sealed class PolicySet
{
    private readonly FrozenDictionary<string, int> _participantIndex;
    private readonly FrozenDictionary<string, int> _categoryIndex;
    private readonly FrozenDictionary<string, int> _purposeIndex;
    private readonly FrozenDictionary<string, LegalGround> _grounds;
    private readonly Cell?[] _cells;
    private readonly Decision?[] _noRule;
    private readonly int _participantCount;
    private readonly int _categoryCount;
    private readonly int _purposeCount;

    internal PolicySet(
        string version,
        string? label,
        string partnership,
        string? notice,
        IReadOnlyList<Participant> participants,
        IReadOnlyList<Purpose> purposes,
        IReadOnlyList<DataCategory> categories,
        IReadOnlyList<LegalGround> grounds,
        IReadOnlyList<PolicyRule> rules,
        IReadOnlyList<string> files)
    {
        Version = version;
        Label = label;
        Partnership = partnership;
        Notice = notice;
        Participants = participants;
        Purposes = purposes;
        Categories = categories;
        LegalGrounds = grounds;
        Rules = rules;
        Files = files;
        _participantIndex = participants.Select((p, i) => KeyValuePair.Create(p.Code, i)).ToFrozenDictionary(StringComparer.Ordinal);
        _categoryIndex = categories.Select((c, i) => KeyValuePair.Create(c.Code, i)).ToFrozenDictionary(StringComparer.Ordinal);
        _purposeIndex = purposes.Select((p, i) => KeyValuePair.Create(p.Code, i)).ToFrozenDictionary(StringComparer.Ordinal);
        _grounds = grounds.ToFrozenDictionary(g => g.Id, StringComparer.Ordinal);
        _participantCount = participants.Count;
        _categoryCount = categories.Count;
        _purposeCount = purposes.Count;

        var size = checked(_participantCount * _participantCount * _categoryCount * _purposeCount);
        _cells = new Cell?[size];
        _noRule = new Decision?[size];
        var denies = new List<PolicyRule>?[size];
        var permits = new List<PolicyRule>?[size];
        foreach (var rule in rules.OrderBy(r => r.Order))
        {
            var target = rule.Effect == RuleEffect.Deny ? denies : permits;
            foreach (var p in rule.ProviderIndexes)
            {
                foreach (var r in rule.RecipientIndexes)
                {
                    foreach (var c in rule.CategoryIndexes)
                    {
                        foreach (var u in rule.PurposeIndexes)
                        {
                            (target[Index(p, r, c, u)] ??= []).Add(rule);
                        }
                    }
                }
            }
        }

        for (var i = 0; i < size; i++)
        {
            if (denies[i] is not null || permits[i] is not null)
            {
                _cells[i] = new Cell([.. denies[i] ?? []], [.. permits[i] ?? []]);
            }
        }
    }

    /// <summary>Lowercase hex SHA-256 of the set's files (see <see cref="PolicyLoader.ComputeVersion"/>).</summary>
    public string Version { get; }

    /// <summary>Human version from <c>partnership.version</c>, e.g. <c>2025.1</c>; optional.</summary>
    public string? Label { get; }

    /// <summary>The partnership's name.</summary>
    public string Partnership { get; }

    /// <summary>The partnership's notice, e.g. that citations are still to be verified by its jurist.</summary>
    public string? Notice { get; }

    /// <summary>The participating organisations.</summary>
    public IReadOnlyList<Participant> Participants { get; }

    /// <summary>The purposes.</summary>
    public IReadOnlyList<Purpose> Purposes { get; }

    /// <summary>The data categories.</summary>
    public IReadOnlyList<DataCategory> Categories { get; }

    /// <summary>The legal grounds rules may cite.</summary>
    public IReadOnlyList<LegalGround> LegalGrounds { get; }

    /// <summary>All rules in evaluation order.</summary>
    public IReadOnlyList<PolicyRule> Rules { get; }

    /// <summary>The files the set was loaded from (relative paths, ordinal order).</summary>
    public IReadOnlyList<string> Files { get; }

    /// <summary>True when <paramref name="code"/> is a participant's organisation code.</summary>
    public bool IsParticipant(string code) => code is not null && _participantIndex.ContainsKey(code);

    /// <summary>True when <paramref name="code"/> is a defined data category.</summary>
    public bool IsKnownCategory(string code) => code is not null && _categoryIndex.ContainsKey(code);

    /// <summary>True when <paramref name="code"/> is a defined purpose.</summary>
    public bool IsKnownPurpose(string code) => code is not null && _purposeIndex.ContainsKey(code);

    /// <summary>The participant with <paramref name="code"/>, or null.</summary>
    public Participant? FindParticipant(string code) =>
        code is not null && _participantIndex.TryGetValue(code, out var i) ? Participants[i] : null;

    /// <summary>The category with <paramref name="code"/>, or null.</summary>
    public DataCategory? FindCategory(string code) =>
        code is not null && _categoryIndex.TryGetValue(code, out var i) ? Categories[i] : null;

    /// <summary>The legal ground with <paramref name="id"/>, or null.</summary>
    public LegalGround? FindGround(string id) => id is not null && _grounds.TryGetValue(id, out var g) ? g : null;

    /// <summary>
    /// Decides whether the exchange in <paramref name="request"/> is permitted at <paramref name="at"/>. Default deny;
    /// an explicit deny rule in force wins over any permit rule; otherwise the first permit rule (in set order) whose
    /// conditions are met decides. A denial is a value, never an exception.
    /// </summary>
    /// <param name="request">Who shares what with whom, for which purpose, in which case.</param>
    /// <param name="at">The moment of the exchange (validity periods are checked against it).</param>
    public Decision Decide(DecisionRequest request, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(request);
        var known = _participantIndex.TryGetValue(request.Provider ?? string.Empty, out var p)
            & _participantIndex.TryGetValue(request.Recipient ?? string.Empty, out var r)
            & _categoryIndex.TryGetValue(request.Category ?? string.Empty, out var c)
            & _purposeIndex.TryGetValue(request.Purpose ?? string.Empty, out var u);
        if (!known)
        {
            return UnknownDecision(request);
        }

        var index = Index(p, r, c, u);
        var cell = _cells[index];
        if (cell is null)
        {
            return _noRule[index] ??= Deny(ReasonCodes.NoRule, $"denied: no rule lets {request.Provider} share '{request.Category}' with {request.Recipient} for purpose '{request.Purpose}'", null);
        }

        var caseContext = request.Case is { Reference: { } reference } && !string.IsNullOrWhiteSpace(reference) ? request.Case : null;
        if (caseContext is null)
        {
            var cached = cell.NoCase;
            if (cached is not null && at >= cached.From && at < cached.Until)
            {
                return cached.Decision;
            }

            var decision = Evaluate(cell, request, null, at);
            if (decision.ReasonCode != ReasonCodes.RuleNotInForce)
            {
                // "Not in force at <moment>" names this moment: sharing it with the rest of the window would put the
                // wrong moment in other exchanges' audit explanations.
                cell.NoCase = new CachedDecision(decision, cell.WindowStart(at), cell.WindowEnd(at));
            }

            return decision;
        }

        return Evaluate(cell, request, caseContext, at);
    }

    /// <summary>
    /// Decides like <see cref="Decide"/> and also says, for every rule of the set, whether it covers the request and
    /// why (not). For <c>sharehub policy explain</c> and for privacy officers; not for the hot path.
    /// </summary>
    /// <param name="request">The request.</param>
    /// <param name="at">The moment of the exchange.</param>
    public DecisionTrace Explain(DecisionRequest request, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(request);
        var decision = Decide(request, at);
        var evaluations = new List<RuleEvaluation>(Rules.Count);
        foreach (var rule in Rules)
        {
            evaluations.Add(EvaluateForTrace(rule, request, at));
        }

        return new DecisionTrace(request, at, decision, evaluations);
    }

    private RuleEvaluation EvaluateForTrace(PolicyRule rule, DecisionRequest request, DateTimeOffset at)
    {
        string? miss = null;
        if (!PolicyRule.MatchesOrganisation(this, rule.Providers, request.Provider))
        {
            miss = $"provider {request.Provider} is not one of [{string.Join(", ", rule.Providers)}]";
        }
        else if (!PolicyRule.MatchesOrganisation(this, rule.Recipients, request.Recipient))
        {
            miss = $"recipient {request.Recipient} is not one of [{string.Join(", ", rule.Recipients)}]";
        }
        else if (!PolicyRule.MatchesCode(rule.Categories, request.Category, IsKnownCategory))
        {
            miss = $"category '{request.Category}' is not one of [{string.Join(", ", rule.Categories)}]";
        }
        else if (!PolicyRule.MatchesCode(rule.Purposes, request.Purpose, IsKnownPurpose))
        {
            miss = $"purpose '{request.Purpose}' is not one of [{string.Join(", ", rule.Purposes)}]";
        }

        if (miss is not null)
        {
            return new RuleEvaluation(rule, RuleOutcome.NotCovered, miss);
        }

        if (!rule.IsInForce(at))
        {
            return new RuleEvaluation(rule, RuleOutcome.NotInForce, $"covers the request but is not in force at {FormatMoment(at)} ({Validity(rule)})");
        }

        if (rule.Effect == RuleEffect.Deny)
        {
            return new RuleEvaluation(rule, RuleOutcome.Applies, "deny rule covers the request");
        }

        var caseContext = request.Case is { Reference: { } reference } && !string.IsNullOrWhiteSpace(reference) ? request.Case : null;
        var failure = CheckConditions(rule, request, caseContext);
        return failure is null
            ? new RuleEvaluation(rule, RuleOutcome.Applies, rule.Conditions.Any ? $"permit rule covers the request and its conditions are met ({rule.Conditions})" : "permit rule covers the request")
            : new RuleEvaluation(rule, RuleOutcome.ConditionNotMet, failure.Value.Sentence);
    }

    private Decision Evaluate(Cell cell, DecisionRequest request, CaseContext? caseContext, DateTimeOffset at)
    {
        for (var i = 0; i < cell.Denies.Length; i++)
        {
            var deny = cell.Denies[i];
            if (deny.IsInForce(at))
            {
                return cell.DenyDecisions[i] ??= Deny(ReasonCodes.ExplicitDeny,
                    $"denied: deny rule {deny.Id} forbids {request.Provider} to share '{request.Category}' with {request.Recipient} for purpose '{request.Purpose}'"
                    + (deny.Ground is { } g ? $" ({g.Citation})" : string.Empty),
                    deny.Id);
            }
        }

        (PolicyRule Rule, int Level, string Code, string Sentence)? bestFailure = null;
        PolicyRule? notInForce = null;
        for (var i = 0; i < cell.Permits.Length; i++)
        {
            var permit = cell.Permits[i];
            if (!permit.IsInForce(at))
            {
                notInForce ??= permit;
                continue;
            }

            var failure = CheckConditions(permit, request, caseContext);
            if (failure is null)
            {
                return cell.PermitDecisions[i] ??= Permit(permit, request);
            }

            if (bestFailure is null || failure.Value.Level > bestFailure.Value.Level)
            {
                bestFailure = (permit, failure.Value.Level, failure.Value.Code, failure.Value.Sentence);
            }
        }

        if (bestFailure is { } f)
        {
            return Deny(f.Code, $"denied: rule {f.Rule.Id} lets {request.Provider} share '{request.Category}' with {request.Recipient} for purpose '{request.Purpose}' {f.Sentence}", f.Rule.Id);
        }

        if (notInForce is not null)
        {
            return Deny(ReasonCodes.RuleNotInForce,
                $"denied: rule {notInForce.Id} would let {request.Provider} share '{request.Category}' with {request.Recipient} for purpose '{request.Purpose}', but it is not in force at {FormatMoment(at)} ({Validity(notInForce)})",
                notInForce.Id);
        }

        return Deny(ReasonCodes.NoRule, $"denied: no rule in force lets {request.Provider} share '{request.Category}' with {request.Recipient} for purpose '{request.Purpose}'", null);
    }

    /// <summary>Null when the rule's conditions are met; else how far the request got (higher = closer) and why not.</summary>
    private static (int Level, string Code, string Sentence)? CheckConditions(PolicyRule rule, DecisionRequest request, CaseContext? caseContext)
    {
        var conditions = rule.Conditions;
        if (!conditions.Any)
        {
            return null;
        }

        if (caseContext is null)
        {
            return (1, ReasonCodes.CaseReferenceRequired, "only within a case, and no case reference was given");
        }

        if (conditions.Phases.Count > 0 && !ContainsPhase(conditions.Phases, caseContext.Phase))
        {
            var allowed = string.Join(" or ", conditions.Phases);
            return caseContext.Phase is null
                ? (2, ReasonCodes.CasePhaseNotAllowed, $"only in case phase {allowed}, and the phase of case {caseContext.Reference} is not known")
                : (2, ReasonCodes.CasePhaseNotAllowed, $"only in case phase {allowed}, and case {caseContext.Reference} is in phase '{caseContext.Phase}'");
        }

        if (conditions.RecipientInCase && !ContainsParticipant(caseContext.Participants, request.Recipient))
        {
            return (3, ReasonCodes.RecipientNotInCase, $"only to a participant of the case, and {request.Recipient} is not a participant of case {caseContext.Reference}");
        }

        return null;
    }

    private static bool ContainsPhase(IReadOnlyList<string> phases, string? phase)
    {
        if (phase is null)
        {
            return false;
        }

        for (var i = 0; i < phases.Count; i++)
        {
            if (string.Equals(phases[i], phase, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private static bool ContainsParticipant(IReadOnlyCollection<string>? participants, string recipient)
    {
        if (participants is null)
        {
            return false;
        }

        if (participants is ICollection<string> collection)
        {
            return collection.Contains(recipient);
        }

        foreach (var participant in participants)
        {
            if (string.Equals(participant, recipient, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private Decision UnknownDecision(DecisionRequest request)
    {
        var unknown = new List<string>(4);
        if (!IsParticipant(request.Provider))
        {
            unknown.Add($"provider '{request.Provider}' is not a participant");
        }

        if (!IsParticipant(request.Recipient))
        {
            unknown.Add($"recipient '{request.Recipient}' is not a participant");
        }

        if (!IsKnownCategory(request.Category))
        {
            unknown.Add($"category '{request.Category}' is not defined");
        }

        if (!IsKnownPurpose(request.Purpose))
        {
            unknown.Add($"purpose '{request.Purpose}' is not defined");
        }

        return Deny(ReasonCodes.Unknown, $"denied: {string.Join(", and ", unknown)} in policy set '{Partnership}'", null);
    }

    private Decision Permit(PolicyRule rule, DecisionRequest request)
    {
        var obligations = rule.Obligations.IsNone ? string.Empty : $"; obligations: {rule.Obligations}";
        return new Decision(true, ReasonCodes.Permitted,
            $"permitted: rule {rule.Id} lets {request.Provider} share '{request.Category}' with {request.Recipient} for purpose '{request.Purpose}' on the ground of {rule.Ground?.Citation}{obligations}",
            rule.Id, rule.Ground, rule.Obligations, Version);
    }

    private Decision Deny(string code, string explanation, string? ruleId) =>
        new(false, code, explanation, ruleId, null, Obligations.None, Version);

    internal static string Validity(PolicyRule rule) =>
        (rule.ValidFrom, rule.ValidUntil) switch
        {
            ({ } from, { } until) => $"valid from {FormatMoment(from)} {FormatUntil(until)}",
            ({ } from, null) => $"valid from {FormatMoment(from)}",
            (null, { } until) => $"valid {FormatUntil(until)}",
            _ => "always valid",
        };

    /// <summary>An exclusive end at midnight UTC reads as "through" the day before, as it was written in the file.</summary>
    internal static string FormatUntil(DateTimeOffset until) =>
        until.ToUniversalTime().TimeOfDay == TimeSpan.Zero && until > DateTimeOffset.MinValue.AddDays(1)
            ? $"through {FormatMoment(until.AddDays(-1))}"
            : $"until {FormatMoment(until)}";

    internal static string FormatMoment(DateTimeOffset moment) =>
        moment.ToUniversalTime().TimeOfDay == TimeSpan.Zero
            ? moment.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)
            : moment.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private int Index(int provider, int recipient, int category, int purpose) =>
        (((provider * _participantCount) + recipient) * _categoryCount + category) * _purposeCount + purpose;

    /// <summary>The rules of one (provider, recipient, category, purpose) combination, with cached decisions.</summary>
    private sealed class Cell
    {
        private readonly DateTimeOffset[] _boundaries;

        public Cell(PolicyRule[] denies, PolicyRule[] permits)
        {
            Denies = denies;
            Permits = permits;
            DenyDecisions = new Decision?[denies.Length];
            PermitDecisions = new Decision?[permits.Length];
            _boundaries = [.. denies.Concat(permits)
                .SelectMany(r => new[] { r.ValidFrom, r.ValidUntil })
                .OfType<DateTimeOffset>()
                .Distinct()
                .Order()];
        }

        public PolicyRule[] Denies { get; }

        public PolicyRule[] Permits { get; }

        public Decision?[] DenyDecisions { get; }

        public Decision?[] PermitDecisions { get; }

        /// <summary>The decision without a case, valid while no rule of the cell starts or ends. Replaced atomically.</summary>
        public CachedDecision? NoCase { get; set; }

        /// <summary>The latest validity boundary at or before <paramref name="at"/>.</summary>
        public DateTimeOffset WindowStart(DateTimeOffset at)
        {
            var start = DateTimeOffset.MinValue;
            foreach (var boundary in _boundaries)
            {
                if (boundary <= at)
                {
                    start = boundary;
                }
            }

            return start;
        }

        /// <summary>The first validity boundary after <paramref name="at"/>.</summary>
        public DateTimeOffset WindowEnd(DateTimeOffset at)
        {
            foreach (var boundary in _boundaries)
            {
                if (boundary > at)
                {
                    return boundary;
                }
            }

            return DateTimeOffset.MaxValue;
        }
    }

    private sealed record CachedDecision(Decision Decision, DateTimeOffset From, DateTimeOffset Until);
}

/// <summary>How one rule relates to a request (see <see cref="PolicySet.Explain"/>).</summary>
public enum RuleOutcome
{
    /// <summary>The rule's providers, recipients, categories or purposes do not cover the request.</summary>
    NotCovered,

    /// <summary>The rule covers the request but is not in force at that moment.</summary>
    NotInForce,

    /// <summary>A permit rule covers the request but one of its case conditions is not met.</summary>
    ConditionNotMet,

    /// <summary>The rule covers the request and applies (a permit whose conditions are met, or a deny).</summary>
    Applies,
}

/// <summary>One rule's relation to a request.</summary>
/// <param name="Rule">The rule.</param>
/// <param name="Outcome">Whether it covers and applies.</param>
/// <param name="Detail">Why, in words.</param>
public sealed record RuleEvaluation(PolicyRule Rule, RuleOutcome Outcome, string Detail);

/// <summary>A decision with the evaluation of every rule that led to it.</summary>
/// <param name="Request">The request.</param>
/// <param name="At">The moment decided for.</param>
/// <param name="Decision">The decision, identical to <see cref="PolicySet.Decide"/>'s.</param>
/// <param name="Rules">Every rule of the set, in order, with its outcome.</param>
public sealed record DecisionTrace(DecisionRequest Request, DateTimeOffset At, Decision Decision, IReadOnlyList<RuleEvaluation> Rules);
