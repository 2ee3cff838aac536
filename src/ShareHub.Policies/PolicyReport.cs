using System.Globalization;
using System.Text;

namespace ShareHub.Policies;

/// <summary>
/// Human-readable renderings of load results, decisions and diffs, as printed by <c>sharehub policy</c>. Kept here
/// (not in the CLI) so they are tested with the engine.
/// </summary>
public static class PolicyReport
{
    /// <summary>
    /// Renders a load result: every problem on its own line (compiler style: <c>file(line,col): error CODE: message</c>),
    /// then a summary line.
    /// </summary>
    /// <param name="result">The load result.</param>
    /// <param name="directory">The directory that was loaded, for the summary.</param>
    public static string FormatLoadResult(PolicyLoadResult result, string directory)
    {
        ArgumentNullException.ThrowIfNull(result);
        var text = new StringBuilder();
        foreach (var problem in result.Problems)
        {
            text.AppendLine(problem.ToString());
        }

        var errors = result.Errors.Count();
        var warnings = result.Warnings.Count();
        if (result.Set is { } set)
        {
            text.AppendLine(Invariant($"policy set '{set.Partnership}' in {directory} is valid: {set.Files.Count} file(s), {set.Participants.Count} participants, {set.Purposes.Count} purposes, {set.Categories.Count} categories, {set.LegalGrounds.Count} legal grounds, {set.Rules.Count} rules, {warnings} warning(s)"));
            text.AppendLine($"version {set.Version}{(set.Label is null ? string.Empty : $" (label {set.Label})")}");
            if (set.Notice is not null)
            {
                text.AppendLine("notice: " + set.Notice);
            }
        }
        else
        {
            text.AppendLine(Invariant($"policy set in {directory} is INVALID: {errors} error(s), {warnings} warning(s)"));
        }

        return text.ToString();
    }

    /// <summary>Renders a decision with the evaluation of every rule that covers (part of) the request.</summary>
    /// <param name="set">The set that decided.</param>
    /// <param name="trace">The trace from <see cref="PolicySet.Explain"/>.</param>
    public static string FormatDecision(PolicySet set, DecisionTrace trace)
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(trace);
        var d = trace.Decision;
        var r = trace.Request;
        var text = new StringBuilder();
        text.AppendLine($"decision:    {(d.IsPermitted ? "PERMIT" : "DENY")}  {d.ReasonCode} ({Meaning(d.ReasonCode)})");
        text.AppendLine($"explanation: {d.Explanation}");
        text.AppendLine($"rule:        {d.RuleId ?? "(no rule)"}");
        if (d.LegalGround is { } ground)
        {
            text.AppendLine($"ground:      {ground.Citation} [{ground.Id}]");
            if (ground.Note is not null)
            {
                text.AppendLine($"             {ground.Note}");
            }
        }

        text.AppendLine($"obligations: {d.Obligations}");
        text.AppendLine($"request:     {r.Provider} → {r.Recipient}, category '{r.Category}', purpose '{r.Purpose}', "
            + (r.Case is { } c ? $"case {c.Reference} (phase {c.Phase ?? "unknown"}, participants: {(c.Participants.Count == 0 ? "none given" : string.Join(", ", c.Participants))})" : "no case")
            + $", at {PolicySet.FormatMoment(trace.At)}");
        if (set.FindCategory(r.Category) is { } category && (category.IsSpecial || category.IsCriminal))
        {
            text.AppendLine($"category:    {category.Code} is {(category.IsSpecial ? "a special category (AVG art. 9)" : "criminal-law data (AVG art. 10)")}");
        }

        text.AppendLine($"policy:      {set.Partnership} {set.Label} ({d.PolicyVersion})");
        var relevant = trace.Rules.Where(e => e.Outcome != RuleOutcome.NotCovered).ToList();
        text.AppendLine(Invariant($"rules covering the request: {relevant.Count} of {trace.Rules.Count}"));
        foreach (var evaluation in relevant)
        {
            text.AppendLine($"  {evaluation.Rule.Id,-24} {evaluation.Rule.Effect.ToString().ToLowerInvariant(),-6} {OutcomeWord(evaluation.Outcome),-18} {evaluation.Detail}  ({evaluation.Rule.File}:{evaluation.Rule.Line})");
        }

        return text.ToString();
    }

    /// <summary>Renders a diff: definition changes, then decision changes grouped by kind.</summary>
    /// <param name="diff">The diff.</param>
    public static string FormatDiff(PolicyDiffResult diff)
    {
        ArgumentNullException.ThrowIfNull(diff);
        var text = new StringBuilder();
        text.AppendLine($"old version {diff.OldVersion}");
        text.AppendLine($"new version {diff.NewVersion}");
        if (!diff.HasChanges)
        {
            text.AppendLine("no changes in definitions or decisions");
            return text.ToString();
        }

        if (diff.Definitions.Count > 0)
        {
            text.AppendLine();
            text.AppendLine(Invariant($"definitions ({diff.Definitions.Count} change(s)):"));
            foreach (var change in diff.Definitions)
            {
                text.AppendLine($"  {change.Kind,-8} {change.Subject}{(change.Detail is null ? string.Empty : ": " + change.Detail)}");
            }
        }

        text.AppendLine();
        text.AppendLine(Invariant($"decisions ({diff.Decisions.Count} combination(s) changed):"));
        foreach (var group in diff.Decisions.GroupBy(c => c.Kind))
        {
            text.AppendLine($"  {KindHeading(group.Key)}:");
            foreach (var change in group)
            {
                text.AppendLine($"    {change.Provider} → {change.Recipient}  '{change.Category}' for '{change.Purpose}': {change.Before} ⇒ {change.After}");
            }
        }

        return text.ToString();
    }

    /// <summary>The one-line meaning of a reason code, or <c>unknown code</c>.</summary>
    public static string Meaning(string reasonCode) =>
        ReasonCodes.All.FirstOrDefault(x => x.Code == reasonCode).Meaning ?? "unknown code";

    private static string OutcomeWord(RuleOutcome outcome) => outcome switch
    {
        RuleOutcome.Applies => "applies",
        RuleOutcome.ConditionNotMet => "condition not met",
        RuleOutcome.NotInForce => "not in force",
        _ => "not covered",
    };

    private static string KindHeading(DecisionChangeKind kind) => kind switch
    {
        DecisionChangeKind.Granted => "granted (deny → permit)",
        DecisionChangeKind.Revoked => "revoked (permit → deny)",
        DecisionChangeKind.Widened => "widened (permitted in more contexts)",
        DecisionChangeKind.Narrowed => "narrowed (permitted in fewer contexts)",
        _ => "modified (other rule, ground or obligations)",
    };

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
