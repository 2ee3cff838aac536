using System.Security.Claims;
using MassTransit;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Data;
using ShareHub.Broker.Identity;
using ShareHub.Broker.Security;
using ShareHub.Contracts;

namespace ShareHub.Broker.Api;

/// <summary>
/// The deliveries API: <c>POST /api/v1/deliveries/{id}/acknowledgement</c>. Partners acknowledge over HTTP with a
/// <c>deliveries:read</c> token rather than over the bus, so their RabbitMQ user needs no write permission at all and
/// the acknowledging organisation is the token's, not a field the sender fills in (docs/security.md).
/// </summary>
public static class DeliveriesApi
{
    /// <summary>Maps the deliveries endpoints.</summary>
    public static IEndpointRouteBuilder MapDeliveriesApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/v1/deliveries/{id:guid}/acknowledgement", AcknowledgeAsync).RequireAuthorization(IdentityExtensions.DeliveriesPolicy);
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
            db.AuditEntries.Add(new AuditEntry
            {
                Kind = AuditKinds.Acknowledgement,
                RecordedAt = now,
                ActorOrganisation = organisation,
                Actor = user.GetActor(),
                DeliveryId = id,
                Recipient = organisation,
                Outcome = "rejected",
                ReasonCode = ErrorCodes.AcknowledgementRejected,
                Explanation = recipient is null
                    ? $"'{organisation}' acknowledged delivery {id}, which the hub never queued."
                    : $"'{organisation}' acknowledged delivery {id}, which was addressed to another organisation.",
            });
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            return Problems.Create(StatusCodes.Status404NotFound, IdentityCodes.NotYourDelivery, "Not found", $"No delivery {id} addressed to '{organisation}'.");
        }

        var endpoint = await bus.GetSendEndpoint(new Uri($"queue:{QueueNames.Acknowledgements}")).ConfigureAwait(false);
        await endpoint.Send(new DeliveryAcknowledged(id, organisation, request?.AcknowledgedAt ?? now), cancellationToken).ConfigureAwait(false);
        return TypedResults.Accepted((string?)null);
    }
}
