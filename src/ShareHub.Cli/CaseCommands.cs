using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ShareHub.Broker;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Cases;
using ShareHub.Broker.Data;
using ShareHub.Contracts;
using static ShareHub.Cli.AuditCommands;

namespace ShareHub.Cli;

/// <summary>
/// <c>sharehub cases show|history</c> on the hub's database (same settings and partnership scope as
/// <c>sharehub audit</c>; every read is audited with actor <c>cli:&lt;user&gt;</c>). Cases are opened and advanced
/// through the API by analysts (docs/architecture.md), not with the CLI.
/// </summary>
internal static class CaseCommands
{
    public static Command Create()
    {
        var cases = new Command("cases", "Show a case (phase, participants, weighing, hit/no-hit bits) or its full exchange history (privacy officer).");
        cases.Subcommands.Add(CreateShow());
        cases.Subcommands.Add(CreateHistory());
        return cases;
    }

    private static Command CreateShow()
    {
        var reference = new Argument<string>("reference") { Description = "Case reference, e.g. RIEC-2026-017." };
        var command = new Command("show", "Show a case: phase, participants, weighing decision, linked signals and the bits of its hit/no-hit questions.") { reference };
        command.SetAction((parse, cancellationToken) => WithHubAsync(parse, async (services, output) =>
        {
            using var scope = services.CreateScope();
            var db = scope.ServiceProvider.GetRequiredService<HubDbContext>();
            var c = await scope.ServiceProvider.GetRequiredService<CaseWorkflow>().FindAsync(parse.GetValue(reference)!, cancellationToken);
            if (c is null)
            {
                output.WriteLine($"{ErrorCodes.NotFound}: no case {parse.GetValue(reference)}.");
                return ExitInvalidInput;
            }

            var questions = await db.HitNoHitQuestions.AsNoTracking().Include(q => q.Answers).Where(q => q.CaseId == c.Id).ToListAsync(cancellationToken);
            questions = [.. questions.OrderBy(q => q.AskedAt)]; // SQLite cannot order by DateTimeOffset in SQL
            await scope.ServiceProvider.GetRequiredService<AuditTrail>().RecordAccessAsync(CliOrganisation, Actor, AuditKinds.AuditAccessed, "read", ErrorCodes.AuditRead,
                $"Case {c.Reference} shown with the CLI.", questions.Select(q => ((string?)q.SubjectType, (string?)q.SubjectPseudonym)), cancellationToken);
            output.Write(Describe(CaseWorkflow.ToDto(c), questions.Select(q => (q.Id, q.SubjectType, q.SubjectPseudonym, q.Answers.ToDictionary(a => a.Organisation, a => a.State)))));
            return ExitOk;
        }));
        return command;
    }

    private static Command CreateHistory()
    {
        var reference = new Argument<string>("reference") { Description = "Case reference." };
        var json = new Option<bool>("--json") { Description = "Print the history as JSON (Logius field names per entry)." };
        var command = new Command("history", "The case's full exchange history for the privacy officer: every audit entry naming the case, and when its signals' payloads are deleted.") { reference, json };
        command.SetAction((parse, cancellationToken) => WithHubAsync(parse, async (services, output) =>
        {
            using var scope = services.CreateScope();
            var history = await scope.ServiceProvider.GetRequiredService<CaseHistory>()
                .ReadAsync(AuditScope.Partnership, CliOrganisation, Actor, parse.GetValue(reference)!, cancellationToken);
            if (history is null)
            {
                output.WriteLine($"{ErrorCodes.NotFound}: no case {parse.GetValue(reference)} in the audit trail.");
                return ExitInvalidInput;
            }

            output.Write(parse.GetValue(json) ? JsonSerializer.Serialize(history, Json) + Environment.NewLine : HistoryText(history));
            return ExitOk;
        }));
        return command;
    }

    /// <summary>A case as text (also printed by <c>sharehub demo</c>).</summary>
    public static string Describe(CaseDto c, IEnumerable<(Guid Id, string SubjectType, string SubjectPseudonym, Dictionary<string, string> Answers)> questions)
    {
        var text = new System.Text.StringBuilder();
        var closed = c.ClosedAt is { } at ? string.Create(CultureInfo.InvariantCulture, $", closed {at:yyyy-MM-dd HH:mm:ss}") : string.Empty;
        text.AppendLine(CultureInfo.InvariantCulture, $"Case {c.Reference} (owner {c.Owner}), phase {c.Phase}; opened {c.OpenedAt:yyyy-MM-dd HH:mm:ss}{closed}");
        text.AppendLine(CultureInfo.InvariantCulture, $"  participants: {string.Join(", ", c.Participants)}");
        text.AppendLine(CultureInfo.InvariantCulture, $"  weighing: {c.Weighing}");
        text.AppendLine(CultureInfo.InvariantCulture, $"  signals: {string.Join(", ", c.SignalIds)}");
        foreach (var (id, type, pseudonym, answers) in questions)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  question {id} about {type}:{pseudonym}: {string.Join(", ", answers.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => $"{a.Key} {a.Value}"))}");
        }

        return text.ToString();
    }

    /// <summary>A case history as text (also printed by <c>sharehub demo</c>).</summary>
    /// <param name="history">The history.</param>
    /// <param name="compact">Leave out the dispatch and acknowledgement entries (counted instead).</param>
    public static string HistoryText(CaseHistoryDto history, bool compact = false)
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Exchange history of case {history.Case?.Reference ?? history.Entries.FirstOrDefault()?.CaseReference} (scope: {history.Scope}, {history.Entries.Count} entries)");
        var delivery = new HashSet<string>(StringComparer.Ordinal) { AuditKinds.Dispatched, AuditKinds.Acknowledgement };
        foreach (var e in history.Entries.Where(e => !compact || !delivery.Contains(e.Kind)))
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"  #{e.Sequence,-4} {e.RecordedAt:HH:mm:ss.fff} {e.Kind,-21} {e.Outcome,-13} {e.Provider ?? e.ActorOrganisation} → {e.Recipient ?? "-"}  {e.Category}/{e.Purpose}{(e.SubjectPseudonym is null ? string.Empty : $"  {e.SubjectType}:{e.SubjectPseudonym}")}  [{e.ReasonCode}]{(e.RuleId is null ? string.Empty : " " + e.RuleId)}");
        }

        if (compact)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  … and {history.Entries.Count(e => delivery.Contains(e.Kind))} delivery.dispatched / delivery.acknowledged entries (`sharehub cases history` shows all)");
        }

        foreach (var (signal, until) in history.SignalsRetainedUntil)
        {
            var fate = until is { } at ? string.Create(CultureInfo.InvariantCulture, $"deleted on or after {at:yyyy-MM-dd}") : "kept while the case is open";
            text.AppendLine(CultureInfo.InvariantCulture, $"  signal {signal}: payload {fate}");
        }

        return text.ToString();
    }
}
