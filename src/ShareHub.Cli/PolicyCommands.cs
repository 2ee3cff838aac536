using System.CommandLine;
using System.Globalization;
using ShareHub.Policies;

namespace ShareHub.Cli;

/// <summary>
/// <c>sharehub policy check|explain|diff</c>: lets a jurist or privacy officer validate a policy directory, ask why a
/// given exchange is permitted or denied, and see what a change to the policy files does to the decisions.
/// The rendering lives in <see cref="PolicyReport"/> so it is tested with the engine.
/// </summary>
public static class PolicyCommands
{
    /// <summary>Exit code: success (check: valid; explain: decision printed; diff: compared).</summary>
    public const int ExitOk = 0;

    /// <summary>Exit code: the policy set is invalid (or has warnings under <c>--strict</c>).</summary>
    public const int ExitInvalidPolicy = 1;

    /// <summary>Exit code: the command's input is invalid (unknown codes, unknown phase, bad date).</summary>
    public const int ExitInvalidInput = 2;

    /// <summary>Creates the <c>policy</c> command with its three subcommands.</summary>
    public static Command Create()
    {
        var policy = new Command("policy", "Validate, explain and compare policy sets (see docs/policies.md).");
        policy.Subcommands.Add(CreateCheck());
        policy.Subcommands.Add(CreateExplain());
        policy.Subcommands.Add(CreateDiff());
        return policy;
    }

    private static Option<string?> AtOption() => new("--at")
    {
        Description = "Moment to evaluate validity periods at (ISO 8601, e.g. 2026-12-01T12:00:00Z); default: now.",
    };

    private static Command CreateCheck()
    {
        var directory = new Argument<string>("dir") { Description = "The policy directory.", DefaultValueFactory = _ => "policies" };
        var strict = new Option<bool>("--strict") { Description = "Treat warnings (e.g. expired rules) as errors." };
        var at = AtOption();
        var command = new Command("check", "Validate a policy directory and report every problem with file, line and column. Exit 0 valid, 1 invalid.")
        {
            directory,
            strict,
            at,
        };
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            if (!TryParseAt(parse.GetValue(at), parse, out var now))
            {
                return ExitInvalidInput;
            }

            var dir = parse.GetValue(directory)!;
            var result = PolicyLoader.LoadDirectory(dir, now);
            output.Write(PolicyReport.FormatLoadResult(result, dir));
            return result.IsValid && !(parse.GetValue(strict) && result.Warnings.Any()) ? ExitOk : ExitInvalidPolicy;
        });
        return command;
    }

    private static Command CreateExplain()
    {
        var policies = new Option<string>("--policies") { Description = "The policy directory.", DefaultValueFactory = _ => "./policies" };
        var from = new Option<string>("--from") { Description = "Provider organisation code, e.g. gemeente-amsterdam.", Required = true };
        var to = new Option<string>("--to") { Description = "Recipient organisation code, e.g. riec-amsterdam.", Required = true };
        var category = new Option<string>("--category") { Description = "Data category code, e.g. vastgoed.", Required = true };
        var purpose = new Option<string>("--purpose") { Description = "Purpose code, e.g. signaalweging.", Required = true };
        var caseReference = new Option<string?>("--case") { Description = "Case reference, e.g. RIEC-2026-0042." };
        var phase = new Option<string?>("--phase") { Description = $"Case phase: {string.Join(", ", CasePhases.All)}." };
        var participants = new Option<string?>("--case-participants") { Description = "Comma-separated organisation codes taking part in the case." };
        var at = AtOption();
        var command = new Command("explain", "Decide one exchange and explain why, rule by rule. Exit 0 when the inputs are valid, whatever the decision.")
        {
            policies, from, to, category, purpose, caseReference, phase, participants, at,
        };
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            if (!TryParseAt(parse.GetValue(at), parse, out var now))
            {
                return ExitInvalidInput;
            }

            var dir = parse.GetValue(policies)!;
            var result = PolicyLoader.LoadDirectory(dir, now);
            if (result.Set is not { } set)
            {
                error.Write(PolicyReport.FormatLoadResult(result, dir));
                return ExitInvalidPolicy;
            }

            var reference = parse.GetValue(caseReference);
            var casePhase = parse.GetValue(phase);
            var caseParticipants = (parse.GetValue(participants) ?? string.Empty)
                .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (reference is null && (casePhase is not null || caseParticipants.Length > 0))
            {
                error.WriteLine("--phase and --case-participants need --case REF.");
                return ExitInvalidInput;
            }

            if (casePhase is not null && !CasePhases.IsKnown(casePhase))
            {
                error.WriteLine($"unknown phase '{casePhase}'; phases are {string.Join(", ", CasePhases.All)}.");
                return ExitInvalidInput;
            }

            var request = new DecisionRequest(parse.GetValue(from)!, parse.GetValue(to)!, parse.GetValue(category)!, parse.GetValue(purpose)!,
                reference is null ? null : new CaseContext(reference, casePhase, caseParticipants));
            var trace = set.Explain(request, now);
            output.Write(PolicyReport.FormatDecision(set, trace));
            if (trace.Decision.ReasonCode == ReasonCodes.Unknown)
            {
                error.WriteLine($"known participants: {string.Join(", ", set.Participants.Select(p => p.Code))}");
                error.WriteLine($"known categories:   {string.Join(", ", set.Categories.Select(c => c.Code))}");
                error.WriteLine($"known purposes:     {string.Join(", ", set.Purposes.Select(p => p.Code))}");
                return ExitInvalidInput;
            }

            return ExitOk;
        });
        return command;
    }

    private static Command CreateDiff()
    {
        var oldDir = new Argument<string>("old") { Description = "The current policy directory." };
        var newDir = new Argument<string>("new") { Description = "The proposed policy directory." };
        var at = AtOption();
        var command = new Command("diff", "List every (provider, recipient, category, purpose) whose decision changes between two policy sets. Exit 0 when both are valid.")
        {
            oldDir,
            newDir,
            at,
        };
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            if (!TryParseAt(parse.GetValue(at), parse, out var now))
            {
                return ExitInvalidInput;
            }

            var before = PolicyLoader.LoadDirectory(parse.GetValue(oldDir)!, now);
            var after = PolicyLoader.LoadDirectory(parse.GetValue(newDir)!, now);
            if (before.Set is null || after.Set is null)
            {
                foreach (var (result, dir) in new[] { (before, parse.GetValue(oldDir)!), (after, parse.GetValue(newDir)!) })
                {
                    if (!result.IsValid)
                    {
                        error.Write(PolicyReport.FormatLoadResult(result, dir));
                    }
                }

                return ExitInvalidPolicy;
            }

            output.Write(PolicyReport.FormatDiff(PolicyDiff.Compare(before.Set, after.Set, now)));
            return ExitOk;
        });
        return command;
    }

    private static bool TryParseAt(string? text, ParseResult parse, out DateTimeOffset at)
    {
        if (text is null)
        {
            at = TimeProvider.System.GetUtcNow();
            return true;
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out at))
        {
            return true;
        }

        parse.InvocationConfiguration.Error.WriteLine($"invalid --at '{text}': write an ISO 8601 moment such as 2026-12-01T12:00:00Z.");
        return false;
    }
}
