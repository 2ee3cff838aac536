namespace ShareHub.Contracts;

/// <summary>
/// Body of <c>POST /api/v1/deliveries/{id}/acknowledgement</c>: a recipient says it processed a delivery. The
/// recipient is the caller's organisation (from its access token), never the body.
/// </summary>
/// <param name="AcknowledgedAt">When the recipient processed it (recipient's clock); the hub's time when absent.</param>
public sealed record AcknowledgeDeliveryRequest(DateTimeOffset? AcknowledgedAt);

/// <summary>Paths and scopes of the hub's HTTP API that partner systems use.</summary>
public static class HubApi
{
    /// <summary>The token endpoint (OAuth 2.0 client credentials, RFC 6749 §4.4).</summary>
    public const string TokenPath = "/connect/token";

    /// <summary>Scope needed to acknowledge deliveries.</summary>
    public const string DeliveriesScope = "deliveries:read";

    /// <summary>The acknowledgement resource of one delivery.</summary>
    public static string AcknowledgementPath(Guid deliveryId) => $"/api/v1/deliveries/{deliveryId}/acknowledgement";

    /// <summary>The answer resource of one hit/no-hit question (same scope as acknowledgements).</summary>
    public static string AnswerPath(Guid questionId) => $"/api/v1/questions/{questionId}/answer";
}
