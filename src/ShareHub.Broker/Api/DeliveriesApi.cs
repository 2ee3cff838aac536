using System.Security.Claims;
using MassTransit;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Data;
using ShareHub.Broker.Delivery;
using ShareHub.Broker.Identity;
using ShareHub.Broker.Security;
using ShareHub.Contracts;

namespace ShareHub.Broker.Api;

/// <summary>
/// The deliveries API: <c>POST /api/v1/deliveries/{id}/acknowledgement</c> (one delivery, recorded via the bus) and
/// <c>POST /api/v1/deliveries/acknowledgements</c> (many, recorded directly in one transaction). Partners acknowledge over HTTP with a
/// <c>deliveries:read</c> token rather than over the bus, so their RabbitMQ user needs no write permission at all and
/// the acknowledging organisation is the token's, not a field the sender fills in (docs/security.md).
/// </summary>
public static class DeliveriesApi
{
    /// <summary>Maps the deliveries endpoints.</summary>
    public static IEndpointRouteBuilder MapDeliveriesApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/v1/deliveries/{id:guid}/acknowledgement", AcknowledgeAsync).RequireAuthorization(IdentityExtensions.DeliveriesPolicy);
        app.MapPost(HubApi.AcknowledgementsPath, AcknowledgeManyAsync).RequireAuthorization(IdentityExtensions.DeliveriesPolicy);
        return app;
    }

    /// <summary>
    /// Accepts the acknowledgement of a delivery addressed to the caller's organisation (202) and hands it to the
    /// acknowledgement consumer, which records it once. Another organisation's or an unknown delivery is 404 — the
    /// same answer for both, so a partner learns nothing about others' deliveries — and the attempt is audited.
    /// </summary>
    internal static async Task<Results<Accepted, ProblemHttpResult>> AcknowledgeAsync(
        Guid id,
        AcknowledgeDeliveryRequest? request,
        ClaimsPrincipal user,
        HubDbContext db,
        ISendEndpointProvider bus,
        TimeProvider time,
        CancellationToken cancellationToken)
    {
        var organisation = user.GetOrganisation()!;
        var recipient = await db.Outbox.AsNoTracking().Where(o => o.DeliveryId == id).Select(o => o.Recipient)
            .SingleOrDefaultAsync(cancellationToken).ConfigureAwait(false);
        var now = time.GetUtcNow();
        if (recipient != organisation)
        {
            db.AuditEntries.Add(AcknowledgementRecorder.Rejected(id, organisation, user.GetActor(), recipient is null ? null : AcknowledgementRecorder.AnotherOrganisation, now));
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            return Problems.Create(StatusCodes.Status404NotFound, IdentityCodes.NotYourDelivery, "Not found", $"No delivery {id} addressed to '{organisation}'.");
        }

        var endpoint = await bus.GetSendEndpoint(new Uri($"queue:{QueueNames.Acknowledgements}")).ConfigureAwait(false);
        await endpoint.Send(new DeliveryAcknowledged(id, organisation, request?.AcknowledgedAt ?? now), cancellationToken).ConfigureAwait(false);
        return TypedResults.Accepted((string?)null);
    }

    /// <summary>Validation of batch acknowledgements (no dependencies: FluentValidation compiles its rules once).</summary>
    private static readonly AcknowledgementsValidator Validator = new();

    /// <summary>
    /// Records the acknowledgements of deliveries addressed to the caller's organisation and answers 200 — only after
    /// the commit — with one result per item, in request order. Unlike the single endpoint there is no bus hop: one
    /// query for the deliveries and their earlier acknowledgements and one transaction for all rows and audit entries,
    /// shared with concurrent writes (<see cref="AcknowledgementRecorder"/>). Another organisation's and an unknown delivery are both answered
    /// "not-found" — a partner learns nothing about others' deliveries — and each attempt is audited as rejected
    /// (SH-D0002). A delivery named twice counts once; one recorded earlier, or concurrently by another request or
    /// the bus consumer, is "already-acknowledged". Against the per-client rate limit the batch is one request.
    /// </summary>
    internal static async Task<Results<Ok<AcknowledgeDeliveriesResponse>, ValidationProblem>> AcknowledgeManyAsync(
        AcknowledgeDeliveriesRequest? request,
        ClaimsPrincipal user,
        HubDbContext db,
        GroupCommitWriter writer,
        PublishedDeliveries published,
        TimeProvider time,
        ILogger<AcknowledgementRecorder> logger,
        CancellationToken cancellationToken)
    {
        request ??= new AcknowledgeDeliveriesRequest(null);
        var validation = await Validator.ValidateAsync(request, cancellationToken).ConfigureAwait(false);
        if (!validation.IsValid)
        {
            return Problems.Validation(validation, ErrorCodes.InvalidAcknowledgements, "Invalid acknowledgements", "The acknowledgements were not accepted and nothing was recorded.");
        }

        var organisation = user.GetOrganisation()!;
        var actor = user.GetActor();
        var now = time.GetUtcNow();
        // A delivery named twice counts once (the first item's time), and every item naming it gets its outcome.
        var claims = request.Deliveries!.DistinctBy(d => d.DeliveryId)
            .Select(d => new AcknowledgementClaim(d.DeliveryId, organisation, actor, d.AcknowledgedAt ?? now))
            .ToList();
        var outcomes = await new AcknowledgementRecorder(db, writer, published, time, logger, namesOtherRecipient: false)
            .RecordAsync(claims, cancellationToken).ConfigureAwait(false);
        var byDelivery = claims.Select((c, i) => (c.DeliveryId, Outcome: outcomes[i])).ToDictionary(c => c.DeliveryId, c => c.Outcome);
        return TypedResults.Ok(new AcknowledgeDeliveriesResponse(
            [.. request.Deliveries!.Select(d => new DeliveryAcknowledgementResult(d.DeliveryId, byDelivery[d.DeliveryId]))]));
    }
}
