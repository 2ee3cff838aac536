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

/// <summary>
/// <c>POST /api/v1/signals/batch</c>: for partner systems that send many signals at once. Every item is validated and
/// decided exactly as <c>POST /api/v1/signals</c> would; the valid ones — signals, decision audit entries, outbox rows —
/// are stored in ONE transaction (all or nothing), the invalid ones are refused with their own problem details and
/// do not hold up the others. The answer is 200 with one result per item, in request order.
/// </summary>
internal static class SignalBatchApi
{
    /// <summary>
    /// Submits a batch. An <c>Idempotency-Key</c> (at most 60 characters) covers the whole batch: a retry returns the
    /// stored items' original answers; a key reused for a different batch is refused (422).
    /// </summary>
    internal static async Task<Results<Ok<SubmitSignalBatchResponse>, ProblemHttpResult>> SubmitAsync(
        SubmitSignalBatchRequest? request,
        [FromHeader(Name = Idempotency.Header)] string? idempotencyKey,
        ClaimsPrincipal user,
        IValidator<SignalSubmission> validator,
        PolicyStore policies,
        SignalIntake intake,
        HubDbContext db,
        CancellationToken cancellationToken)
    {
        var provider = user.GetOrganisation();
        if (!SignalsApi.IsParticipant(provider, policies, out var forbidden))
        {
            return forbidden;
        }

        if (request?.Signals is not { Count: > 0 } items)
        {
            return Problems.Malformed("The request body holds no signals; expected {\"signals\": [ … ]} with at least one signal.");
        }

        if (items.Count > SubmitSignalBatchRequest.MaxSignals)
        {
            return Problems.Create(StatusCodes.Status400BadRequest, ErrorCodes.InvalidBatch, "Batch too large",
                $"A batch holds at most {SubmitSignalBatchRequest.MaxSignals} signals; this one holds {items.Count}. Nothing was stored.");
        }

        if (idempotencyKey is not null && !Idempotency.IsValidBatchKey(idempotencyKey))
        {
            return Problems.Create(StatusCodes.Status400BadRequest, ErrorCodes.InvalidIdempotencyKey, "Invalid idempotency key",
                $"The Idempotency-Key header of a batch must be 1–{Idempotency.MaxBatchKeyLength} printable ASCII characters.");
        }

        // The request hashes matter only with a key (a retry must be the same batch); each costs a serialisation and a
        // SHA-256, so a batch without a key is not hashed.
        string[] hashes = idempotencyKey is null ? [] : [.. items.Select(i => i is null ? string.Empty : Idempotency.HashOf(i))];
        if (idempotencyKey is not null
            && await Idempotency.FindBatchAsync(db, provider, idempotencyKey, cancellationToken).ConfigureAwait(false) is { Count: > 0 } earlier)
        {
            return await ReplayAsync(db, provider, items, hashes, earlier, validator, cancellationToken).ConfigureAwait(false);
        }

        var results = new SignalBatchItemResult[items.Count];
        var staged = new List<(int Index, StagedSignal Signal)>();
        for (var i = 0; i < items.Count; i++)
        {
            if (await RefusalAsync(provider, items[i], validator, cancellationToken).ConfigureAwait(false) is { } problem)
            {
                results[i] = new SignalBatchItemResult(i, problem.Status, null, problem);
                continue;
            }

            // As for a single signal: decided with the named case's phase and participants; an unknown, closed or
            // foreign case refuses the item (audited) and stores nothing of it.
            var (caseOfSignal, refusal) = await intake.ResolveCaseAsync(provider, user.GetActor(), items[i], cancellationToken).ConfigureAwait(false);
            if (refusal is not null)
            {
                results[i] = new SignalBatchItemResult(i, refusal.Status, null,
                    new SignalProblem(ErrorCodes.TypeUri(refusal.Code), refusal.Title, refusal.Status, refusal.Detail, refusal.Code, null, null));
                continue;
            }

            var key = idempotencyKey is null ? ((string, string)?)null : (Idempotency.BatchItemKey(idempotencyKey, i), hashes[i]);
            staged.Add((i, intake.Stage(provider, user.GetActor(), items[i], caseOfSignal, key)));
        }

        if (staged.Count > 0)
        {
            try
            {
                // One unit: every accepted item of the batch commits together or not at all.
                await intake.CommitAsync([.. staged.Select(s => s.Signal)], cancellationToken).ConfigureAwait(false);
            }
            catch (DbUpdateException) when (idempotencyKey is not null)
            {
                // A concurrent retry with the same key committed first (unique index): answer with its items.
                db.ChangeTracker.Clear();
                var winner = await Idempotency.FindBatchAsync(db, provider, idempotencyKey, cancellationToken).ConfigureAwait(false);
                if (winner.Count == 0)
                {
                    throw;
                }

                return await ReplayAsync(db, provider, items, hashes, winner, validator, cancellationToken).ConfigureAwait(false);
            }
        }

        foreach (var (index, signal) in staged)
        {
            results[index] = new SignalBatchItemResult(index, StatusCodes.Status202Accepted, SignalIntake.Response(signal.Signal, signal.AuditEntries), null);
        }

        return TypedResults.Ok(new SubmitSignalBatchResponse(staged.Count, items.Count - staged.Count, results));
    }

    /// <summary>The item's problem when it cannot be accepted; null when it is valid.</summary>
    private static async Task<SignalProblem?> RefusalAsync(string provider, SubmitSignalRequest? item, IValidator<SignalSubmission> validator, CancellationToken cancellationToken)
    {
        if (item is null)
        {
            return new SignalProblem(ErrorCodes.TypeUri(ErrorCodes.MalformedBody), "Malformed request", StatusCodes.Status400BadRequest,
                "The item is empty; expected a signal as JSON.", ErrorCodes.MalformedBody, null, null);
        }

        var validation = await validator.ValidateAsync(new SignalSubmission(provider, item), cancellationToken).ConfigureAwait(false);
        return validation.IsValid ? null : Problems.ValidationItem(validation);
    }

    /// <summary>
    /// The answer to a retried batch: the stored items' original decisions, the refused items refused again. Any
    /// difference from the stored batch means the key was reused for another request (422, nothing stored).
    /// </summary>
    private static async Task<Results<Ok<SubmitSignalBatchResponse>, ProblemHttpResult>> ReplayAsync(
        HubDbContext db, string provider, IReadOnlyList<SubmitSignalRequest> items, string[] hashes, Dictionary<int, Signal> earlier,
        IValidator<SignalSubmission> validator, CancellationToken cancellationToken)
    {
        var reused = Problems.Create(StatusCodes.Status422UnprocessableEntity, ErrorCodes.IdempotencyKeyReused, "Idempotency key reused",
            "This Idempotency-Key was already used by your organisation for a different batch; nothing was stored.");
        if (earlier.Any(e => e.Key >= items.Count || e.Value.RequestHash != hashes[e.Key]))
        {
            return reused;
        }

        var results = new SignalBatchItemResult[items.Count];
        for (var i = 0; i < items.Count; i++)
        {
            if (earlier.TryGetValue(i, out var signal))
            {
                results[i] = new SignalBatchItemResult(i, StatusCodes.Status202Accepted, await Idempotency.ReplayAsync(db, signal, cancellationToken).ConfigureAwait(false), null);
            }
            else if (await RefusalAsync(provider, items[i], validator, cancellationToken).ConfigureAwait(false) is { } problem)
            {
                results[i] = new SignalBatchItemResult(i, problem.Status, null, problem);
            }
            else
            {
                return reused; // valid now, but not stored then: not the batch that was submitted with this key
            }
        }

        return TypedResults.Ok(new SubmitSignalBatchResponse(earlier.Count, items.Count - earlier.Count, results));
    }
}
