namespace ShareHub.Policies;

/// <summary>
/// Stable reason codes of decisions (STYLE §7). They appear in the decision, the audit entry and ProblemDetails, and
/// are documented in <c>docs/policies.md</c>. Never renumber a code; add new ones.
/// </summary>
public static class ReasonCodes
{
    /// <summary>Permitted by a permit rule whose conditions are met and that no deny rule overrides.</summary>
    public const string Permitted = "SH-P0000";

    /// <summary>Denied by default: no permit rule covers provider, recipient, category and purpose.</summary>
    public const string NoRule = "SH-P0001";

    /// <summary>Denied by an explicit deny rule (a deny rule always wins over a permit rule).</summary>
    public const string ExplicitDeny = "SH-P0002";

    /// <summary>A permit rule covers the exchange only within a case, and no case reference was given.</summary>
    public const string CaseReferenceRequired = "SH-P0003";

    /// <summary>A permit rule covers the exchange only in certain case phases, and the case is in another (or an unknown) phase.</summary>
    public const string CasePhaseNotAllowed = "SH-P0004";

    /// <summary>A permit rule covers the exchange only towards a participant of the case, and the recipient is not one.</summary>
    public const string RecipientNotInCase = "SH-P0005";

    /// <summary>The provider, recipient, category or purpose is not defined in the policy set.</summary>
    public const string Unknown = "SH-P0006";

    /// <summary>A permit rule covers the exchange but is not in force at the moment of the decision.</summary>
    public const string RuleNotInForce = "SH-P0007";

    /// <summary>Every decision reason code with a one-line meaning, in code order (for docs and CLI help).</summary>
    public static IReadOnlyList<(string Code, string Meaning)> All { get; } =
    [
        (Permitted, "permitted by a permit rule"),
        (NoRule, "no rule permits (default deny)"),
        (ExplicitDeny, "explicit deny rule"),
        (CaseReferenceRequired, "case reference required"),
        (CasePhaseNotAllowed, "case phase not allowed"),
        (RecipientNotInCase, "recipient not a participant of the case"),
        (Unknown, "unknown provider, recipient, category or purpose"),
        (RuleNotInForce, "the covering rule is not in force at this moment"),
    ];
}

/// <summary>Stable codes of problems found while loading a policy set.</summary>
public static class ProblemCodes
{
    /// <summary>The policy directory does not exist, holds no policy files, or a file cannot be read.</summary>
    public const string NoPolicyFiles = "SH-P1000";

    /// <summary>The YAML is not well-formed.</summary>
    public const string MalformedYaml = "SH-P1001";

    /// <summary>A key that the format does not define (often a typo).</summary>
    public const string UnknownKey = "SH-P1002";

    /// <summary>A required key is missing.</summary>
    public const string MissingField = "SH-P1003";

    /// <summary>A value has the wrong shape or is not one of the allowed values.</summary>
    public const string InvalidValue = "SH-P1004";

    /// <summary>Two definitions share an id or code.</summary>
    public const string DuplicateId = "SH-P1005";

    /// <summary>A section that may be defined once is defined again.</summary>
    public const string DuplicateSection = "SH-P1006";

    /// <summary>A rule names an organisation that is not a participant.</summary>
    public const string UnknownParticipant = "SH-P1010";

    /// <summary>A rule names a role that no participant has.</summary>
    public const string UnknownRole = "SH-P1011";

    /// <summary>A rule names an undefined data category.</summary>
    public const string UnknownCategory = "SH-P1012";

    /// <summary>A rule names an undefined purpose.</summary>
    public const string UnknownPurpose = "SH-P1013";

    /// <summary>A rule cites a legal ground that is not defined.</summary>
    public const string UndefinedGround = "SH-P1014";

    /// <summary>A permit rule cites no legal ground.</summary>
    public const string PermitWithoutGround = "SH-P1015";

    /// <summary>A retention period is not a valid positive duration.</summary>
    public const string InvalidRetention = "SH-P1016";

    /// <summary>A validity date is malformed, or the period ends before it starts.</summary>
    public const string InvalidValidity = "SH-P1017";

    /// <summary>A rule names an unknown case phase.</summary>
    public const string UnknownPhase = "SH-P1018";

    /// <summary>A deny rule carries conditions or obligations (deny rules are unconditional).</summary>
    public const string DenyWithConditions = "SH-P1019";

    /// <summary>A rule's validity period has ended (warning: the rule no longer applies and should be removed).</summary>
    public const string ExpiredRule = "SH-P1020";

    /// <summary>A permit rule can never apply because a deny rule fully covers it.</summary>
    public const string DeadRule = "SH-P1021";
}

/// <summary>How serious a load problem is.</summary>
public enum ProblemSeverity
{
    /// <summary>The set is invalid and must not be activated.</summary>
    Error,

    /// <summary>The set is valid, but something needs attention (e.g. an expired rule).</summary>
    Warning,
}

/// <summary>One problem found while loading a policy set, with its position.</summary>
/// <param name="File">Path relative to the policy directory, with '/' separators.</param>
/// <param name="Line">1-based line, or 0 when the problem concerns the whole file or set.</param>
/// <param name="Column">1-based column, or 0.</param>
/// <param name="Code">Stable problem code (see <see cref="ProblemCodes"/>).</param>
/// <param name="Message">What is wrong, and where possible how to fix it.</param>
/// <param name="Severity">Error (blocks activation) or warning.</param>
public sealed record PolicyProblem(string File, int Line, int Column, string Code, string Message, ProblemSeverity Severity = ProblemSeverity.Error)
{
    /// <summary>Compiler-style rendering: <c>rules/10-signaal.yaml(12,7): error SH-P1012: ...</c>.</summary>
    public override string ToString()
    {
        var position = Line > 0 ? $"({Line},{Column})" : string.Empty;
        var severity = Severity == ProblemSeverity.Error ? "error" : "warning";
        return $"{File}{position}: {severity} {Code}: {Message}";
    }
}

/// <summary>The result of loading a policy set: the set when valid, and every problem found.</summary>
public sealed class PolicyLoadResult
{
    internal PolicyLoadResult(PolicySet? set, IReadOnlyList<PolicyProblem> problems)
    {
        Set = set;
        Problems = problems;
    }

    /// <summary>True when no problem of severity <see cref="ProblemSeverity.Error"/> was found.</summary>
    public bool IsValid => Set is not null;

    /// <summary>The loaded set; null when invalid.</summary>
    public PolicySet? Set { get; }

    /// <summary>Every problem found, errors and warnings, in file and line order.</summary>
    public IReadOnlyList<PolicyProblem> Problems { get; }

    /// <summary>Only the errors.</summary>
    public IEnumerable<PolicyProblem> Errors => Problems.Where(p => p.Severity == ProblemSeverity.Error);

    /// <summary>Only the warnings.</summary>
    public IEnumerable<PolicyProblem> Warnings => Problems.Where(p => p.Severity == ProblemSeverity.Warning);
}
