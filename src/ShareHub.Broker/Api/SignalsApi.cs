using System.Diagnostics.CodeAnalysis;
using System.Security.Claims;
using FluentValidation;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Data;
using ShareHub.Broker.Delivery;
using ShareHub.Broker.Policies;
using ShareHub.Broker.Security;
using ShareHub.Contracts;

namespace ShareHub.Broker.Api;

/// <summary>The signals API: <c>POST /api/v1/signals</c>, <c>POST /api/v1/signals/batch</c> and <c>GET /api/v1/signals/{id}</c>.</summary>
public static class SignalsApi
{
    /// <summary>Maps the signals endpoints.</summary>
    public static IEndpointRouteBuilder MapSignalsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/signals").RequireAuthorization(HubClaims.SubmitPolicy);
        group.MapPost("/", SubmitAsync);
        group.MapPost("/batch", SignalBatchApi.SubmitAsync);
        group.MapGet("/{id:guid}", GetAsync);
        return app;
    }

    /// <summary>
    /// Submits a signal. The provider is the caller's organisation. Invalid input is a 400 ProblemDetails and
    /// nothing is stored; otherwise 202 with the per-recipient decisions (deliveries follow asynchronously).
    /// </summary>
    internal static async Task<Results<Accepted<SubmitSignalResponse>, ValidationProblem, ProblemHttpResult>> SubmitAsync(
        SubmitSignalRequest? request,
        [FromHeader(Name = Idempotency.Header)] string? idempotencyKey,
        ClaimsPrincipal user,
        IValidator<SignalSubmission> validator,
        PolicyStore policies,
        SignalIntake intake,
        HubDbContext db,
        CancellationToken cancellationToken)
    {
        var provider = user.GetOrganisation();
        if (!IsParticipant(provider, policies, out var forbidden))
        {
            return forbidden;
        }

        if (request is null)
        {
            return Problems.Malformed("The request body is empty; expected a signal as JSON.");
        }

        var submission = new SignalSubmission(provider, request);
        var validation = await validator.ValidateAsync(submission, cancellationToken).ConfigureAwait(false);
        if (!validation.IsValid)
        {
            return Problems.Validation(validation);
        }

        if (idempotencyKey is not null && !Idempotency.IsValidKey(idempotencyKey))
        {
            return Problems.Create(StatusCodes.Status400BadRequest, ErrorCodes.InvalidIdempotencyKey, "Invalid idempotency key",
                "The Idempotency-Key header must be 1–64 printable ASCII characters.");
        }

        // A retry is answered from what was stored, before anything else is decided: the named case may have moved on
        // or closed since, and the submitter must still learn that its signal was stored.
        var hash = idempotencyKey is null ? null : Idempotency.HashOf(request);
        var earlier = idempotencyKey is null ? null : await Idempotency.FindAsync(db, provider, idempotencyKey, cancellationToken).ConfigureAwait(false);
        if (earlier is null)
        {
            // A signal naming a case is decided with the case's real phase and participants; a case that does not
            // exist, is closed, or in which the provider takes no part is refused before anything is stored (audited).
            var (caseOfSignal, refusal) = await intake.ResolveCaseAsync(provider, user.GetActor(), request, cancellationToken).ConfigureAwait(false);
            if (refusal is not null)
            {
                return CasesApi.ToProblem(refusal);
            }

            try
            {
                var response = await intake.SubmitAsync(provider, user.GetActor(), request, caseOfSignal, idempotencyKey is null ? null : (idempotencyKey, hash!), cancellationToken).ConfigureAwait(false);
                return TypedResults.Accepted($"/api/v1/signals/{response.SignalId}", response);
            }
            catch (DbUpdateException) when (idempotencyKey is not null)
            {
                // A concurrent retry with the same key committed first (unique index): answer with that signal.
                db.ChangeTracker.Clear();
                earlier = await Idempotency.FindAsync(db, provider, idempotencyKey, cancellationToken).ConfigureAwait(false);
                if (earlier is null)
                {
                    throw;
                }
            }
        }

        if (earlier.RequestHash != hash)
        {
            return Problems.Create(StatusCodes.Status422UnprocessableEntity, ErrorCodes.IdempotencyKeyReused, "Idempotency key reused",
                "This Idempotency-Key was already used by your organisation for a different signal; nothing was stored.");
        }

        var replay = await Idempotency.ReplayAsync(db, earlier, cancellationToken).ConfigureAwait(false);
        return TypedResults.Accepted($"/api/v1/signals/{replay.SignalId}", replay);
    }

    /// <summary>Whether the caller's organisation is a participant of the partnership; if not, the 403 to answer.</summary>
    internal static bool IsParticipant([NotNullWhen(true)] string? provider, PolicyStore policies, [NotNullWhen(false)] out ProblemHttpResult? forbidden)
    {
        forbidden = provider is null || !policies.Current.IsParticipant(provider)
            ? Problems.Forbidden($"Organisation '{provider}' is not a participant of the partnership and cannot submit signals.")
            : null;
        return forbidden is null;
    }

    /// <summary>The decisions and delivery progress of a signal; only its provider may see it.</summary>
    internal static async Task<Results<Ok<SignalStatusResponse>, ProblemHttpResult>> GetAsync(
        Guid id,
        ClaimsPrincipal user,
        HubDbContext db,
        CancellationToken cancellationToken)
    {
        var provider = user.GetOrganisation();
        var signal = await db.Signals.AsNoTracking().SingleOrDefaultAsync(s => s.Id == id, cancellationToken).ConfigureAwait(false);
        if (signal is null || signal.Provider != provider)
        {
            // Same answer for "absent" and "not yours": a partner learns nothing about others' signals.
            return Problems.NotFound($"No signal {id} submitted by '{provider}'.");
        }

        var decisions = await db.AuditEntries.AsNoTracking()
            .Where(a => a.SignalId == id && a.Kind == AuditKinds.Decision)
            .OrderBy(a => a.Id)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        var outbox = await db.Outbox.AsNoTracking().Where(o => o.SignalId == id)
            .ToDictionaryAsync(o => o.DeliveryId, cancellationToken).ConfigureAwait(false);
        var deliveryIds = outbox.Keys.ToList();
        var acks = await db.Acknowledgements.AsNoTracking().Where(a => deliveryIds.Contains(a.DeliveryId))
            .ToDictionaryAsync(a => a.DeliveryId, cancellationToken).ConfigureAwait(false);

        var recipients = decisions.Select(d =>
        {
            OutboxMessage? row = null;
            Acknowledgement? ack = null;
            if (d.DeliveryId is { } deliveryId)
            {
                outbox.TryGetValue(deliveryId, out row);
                acks.TryGetValue(deliveryId, out ack);
            }

            var state = d.Outcome != "permit" ? "refused"
                : ack is not null ? "acknowledged"
                : row?.DispatchedAt is not null ? "dispatched"
                : "queued";
            return new RecipientStatusDto(d.Recipient!, d.Outcome == "permit", d.ReasonCode, d.Explanation, d.RuleId, d.LegalGround, d.Obligations, state, row?.DispatchedAt, ack?.AcknowledgedAt);
        }).ToList();

        return TypedResults.Ok(new SignalStatusResponse(signal.Id, signal.Provider, signal.Category, signal.Purpose, signal.CaseReference, signal.SubmittedAt, signal.PolicyVersion, recipients));
    }
}
