using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Cases;
using ShareHub.Broker.Identity;
using ShareHub.Broker.Security;
using ShareHub.Contracts;

namespace ShareHub.Broker.Api;

/// <summary>
/// The case API (issue #9). Analysts (<c>cases:manage</c>) of the RIEC bureau open and advance cases, ask hit/no-hit
/// questions and read the bits; partner systems answer questions with their <c>deliveries:read</c> token, like
/// acknowledgements; the privacy officer reads a case's whole exchange history under <c>/api/v1/audit/cases</c>.
/// </summary>
public static class CasesApi
{
    /// <summary>Maps the case endpoints.</summary>
    public static IEndpointRouteBuilder MapCasesApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/cases").RequireAuthorization(IdentityExtensions.CasesPolicy);
        group.MapPost("/", OpenAsync);
        group.MapGet("/{reference}", GetAsync);
        group.MapPost("/{reference}/phase", (string reference, ChangeCasePhaseRequest request, ClaimsPrincipal user, CaseWorkflow cases, CancellationToken ct) =>
            Respond(cases.ChangePhaseAsync(Caller(user), user.GetActor(), reference, request, ct)));
        group.MapPost("/{reference}/participants", (string reference, CaseParticipantRequest request, ClaimsPrincipal user, CaseWorkflow cases, CancellationToken ct) =>
            Respond(cases.AddParticipantAsync(Caller(user), user.GetActor(), reference, request, ct)));
        group.MapDelete("/{reference}/participants/{organisation}", (string reference, string organisation, [FromQuery] string? reason, ClaimsPrincipal user, CaseWorkflow cases, CancellationToken ct) =>
            Respond(cases.RemoveParticipantAsync(Caller(user), user.GetActor(), reference, organisation, reason, ct)));
        group.MapPost("/{reference}/requests", (string reference, CaseTaskRequest request, ClaimsPrincipal user, CaseWorkflow cases, CancellationToken ct) =>
            Respond(cases.RequestInformationAsync(Caller(user), user.GetActor(), reference, request, ct)));
        group.MapPost("/{reference}/interventions", (string reference, CaseTaskRequest request, ClaimsPrincipal user, CaseWorkflow cases, CancellationToken ct) =>
            Respond(cases.AssignInterventionAsync(Caller(user), user.GetActor(), reference, request, ct)));
        group.MapPost("/{reference}/questions", (string reference, AskHitNoHitRequest request, ClaimsPrincipal user, CaseWorkflow cases, CancellationToken ct) =>
            Respond(cases.AskAsync(Caller(user), user.GetActor(), reference, request, ct)));
        group.MapGet("/{reference}/questions/{id:guid}", (string reference, Guid id, ClaimsPrincipal user, CaseWorkflow cases, CancellationToken ct) =>
            Respond(cases.QuestionAsync(Caller(user), reference, id, ct)));

        app.MapPost("/api/v1/questions/{id:guid}/answer", AnswerAsync).RequireAuthorization(IdentityExtensions.DeliveriesPolicy);
        app.MapGet("/api/v1/audit/cases/{reference}", HistoryAsync).RequireAuthorization(HubClaims.AuditPolicy);
        return app;
    }

    /// <summary>Opens a case from signals (201 with the case and who was told).</summary>
    internal static async Task<Results<Created<CaseCommandResponse>, ProblemHttpResult>> OpenAsync(
        OpenCaseRequest? request, ClaimsPrincipal user, CaseWorkflow cases, CancellationToken cancellationToken)
    {
        if (request is null)
        {
            return Problems.Malformed("The request body is empty; expected a case as JSON.");
        }

        var outcome = await cases.OpenAsync(Caller(user), user.GetActor(), request, cancellationToken).ConfigureAwait(false);
        return outcome.Refusal is { } refusal ? ToProblem(refusal) : TypedResults.Created($"/api/v1/cases/{outcome.Value!.Case.Reference}", outcome.Value);
    }

    /// <summary>A case, for an analyst of one of its participants; 404 for anybody else.</summary>
    internal static async Task<Results<Ok<CaseDto>, ProblemHttpResult>> GetAsync(string reference, ClaimsPrincipal user, CaseWorkflow cases, CancellationToken cancellationToken)
    {
        var caller = Caller(user);
        var c = await cases.FindAsync(reference, cancellationToken).ConfigureAwait(false);
        return c is null || c.Participants.All(p => p.Organisation != caller)
            ? Problems.NotFound($"No case {reference} in which '{caller}' takes part.")
            : TypedResults.Ok(CaseWorkflow.ToDto(c));
    }

    /// <summary>A partner's hit/no-hit answer (202, no body: the partner learns nothing back).</summary>
    internal static async Task<Results<Accepted, ProblemHttpResult>> AnswerAsync(
        Guid id, AnswerHitNoHitRequest? request, ClaimsPrincipal user, CaseWorkflow cases, CancellationToken cancellationToken)
    {
        if (request is null)
        {
            return Problems.Malformed("The request body is empty; expected { \"subjectPseudonym\": \"psn:…\", \"hit\": true|false }.");
        }

        var refusal = await cases.AnswerAsync(Caller(user), user.GetActor(), id, request, cancellationToken).ConfigureAwait(false);
        return refusal is null ? TypedResults.Accepted((string?)null) : ToProblem(refusal);
    }

    /// <summary>
    /// The privacy officer's view of a case: the case and every audit entry naming it (the partnership FG sees all,
    /// a partner's privacy officer the entries of its own organisation). The read is itself audited.
    /// </summary>
    internal static async Task<Results<Ok<CaseHistoryDto>, ProblemHttpResult>> HistoryAsync(
        string reference, ClaimsPrincipal user, CaseHistory history, CancellationToken cancellationToken)
    {
        var result = await history.ReadAsync(AuditScope.For(user), user.GetOrganisation() ?? AuditTrail.HubOrganisation, user.GetActor(), reference, cancellationToken).ConfigureAwait(false);
        return result is null ? Problems.NotFound($"No case {reference} in the audit trail visible to you.") : TypedResults.Ok(result);
    }

    private static string Caller(ClaimsPrincipal user) => user.GetOrganisation()!;

    private static async Task<Results<Ok<T>, ProblemHttpResult>> Respond<T>(Task<CaseOutcome<T>> command)
        where T : class
    {
        CaseOutcome<T> outcome;
        try
        {
            outcome = await command.ConfigureAwait(false);
        }
        catch (DbUpdateConcurrencyException)
        {
            // Case.Revision: another command changed the case between this one reading and committing it. Nothing of
            // this command was stored (case rows, audit entries and outbox rows share the transaction).
            return Problems.Create(StatusCodes.Status409Conflict, ErrorCodes.CaseChangedConcurrently, "Case changed concurrently",
                "The case was changed by another command at the same time; nothing was stored. Read the case and try again.");
        }

        return outcome.Refusal is { } refusal ? ToProblem(refusal) : TypedResults.Ok(outcome.Value!);
    }

    internal static ProblemHttpResult ToProblem(CaseRefusal refusal) => Problems.Create(refusal.Status, refusal.Code, refusal.Title, refusal.Detail);
}
