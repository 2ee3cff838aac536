using System.Text.Json.Serialization;

namespace ShareHub.Contracts;

/// <summary>
/// Body of <c>POST /api/v1/deliveries/{id}/acknowledgement</c>: a recipient says it processed a delivery. The
/// recipient is the caller's organisation (from its access token), never the body.
/// </summary>
/// <param name="AcknowledgedAt">When the recipient processed it (recipient's clock); the hub's time when absent.</param>
public sealed record AcknowledgeDeliveryRequest(DateTimeOffset? AcknowledgedAt);

/// <summary>
/// Body of <c>POST /api/v1/deliveries/acknowledgements</c>: a recipient says it processed several deliveries, recorded
/// in one transaction. The recipient is the caller's organisation (from its access token), never the body. A delivery
/// named more than once counts once.
/// </summary>
/// <param name="Deliveries">1 to <see cref="MaxDeliveries"/> acknowledgements.</param>
public sealed record AcknowledgeDeliveriesRequest(IReadOnlyList<DeliveryAcknowledgementItem>? Deliveries)
{
    /// <summary>
    /// Acknowledgements per request, at most: 500 keeps the body small (≈ 40 KB) and the transaction — one
    /// chain-head lock for its audit entries — short, while far exceeding what a partner has in flight at once.
    /// </summary>
    public const int MaxDeliveries = 500;
}

/// <summary>One acknowledgement of an <see cref="AcknowledgeDeliveriesRequest"/>.</summary>
/// <param name="DeliveryId">The delivery processed (<c>DeliveryId</c> of the delivered message).</param>
/// <param name="AcknowledgedAt">When the recipient processed it (recipient's clock); the hub's time when absent.</param>
public sealed record DeliveryAcknowledgementItem(Guid DeliveryId, DateTimeOffset? AcknowledgedAt);

/// <summary>What the hub did with one acknowledgement.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<AcknowledgementOutcome>))]
public enum AcknowledgementOutcome
{
    /// <summary>Recorded now (and audited).</summary>
    [JsonStringEnumMemberName("acknowledged")]
    Acknowledged,

    /// <summary>Recorded earlier (an earlier request, or the same delivery acknowledged concurrently); nothing new was recorded.</summary>
    [JsonStringEnumMemberName("already-acknowledged")]
    AlreadyAcknowledged,

    /// <summary>
    /// No delivery with this id is addressed to the caller's organisation — unknown, or another organisation's: the
    /// same answer for both, so a partner learns nothing about others' deliveries. The attempt is audited.
    /// </summary>
    [JsonStringEnumMemberName("not-found")]
    NotFound,
}

/// <summary>The outcome of one acknowledgement, in request order.</summary>
/// <param name="DeliveryId">The delivery the item named.</param>
/// <param name="Outcome">What the hub did with it.</param>
public sealed record DeliveryAcknowledgementResult(Guid DeliveryId, AcknowledgementOutcome Outcome);

/// <summary>
/// Response (200) of <c>POST /api/v1/deliveries/acknowledgements</c>, sent only after the acknowledgements committed.
/// </summary>
/// <param name="Results">One result per request item, in request order (a repeated delivery id repeats its outcome).</param>
public sealed record AcknowledgeDeliveriesResponse(IReadOnlyList<DeliveryAcknowledgementResult> Results);

/// <summary>Paths and scopes of the hub's HTTP API that partner systems use.</summary>
public static class HubApi
{
    /// <summary>The token endpoint (OAuth 2.0 client credentials, RFC 6749 §4.4).</summary>
    public const string TokenPath = "/connect/token";

    /// <summary>Scope needed to acknowledge deliveries.</summary>
    public const string DeliveriesScope = "deliveries:read";

    /// <summary>The acknowledgement resource of one delivery.</summary>
    public static string AcknowledgementPath(Guid deliveryId) => $"/api/v1/deliveries/{deliveryId}/acknowledgement";

    /// <summary>The batch acknowledgement resource (<see cref="AcknowledgeDeliveriesRequest"/>; same scope).</summary>
    public const string AcknowledgementsPath = "/api/v1/deliveries/acknowledgements";

    /// <summary>The answer resource of one hit/no-hit question (same scope as acknowledgements).</summary>
    public static string AnswerPath(Guid questionId) => $"/api/v1/questions/{questionId}/answer";
}
