using ShareHub.Contracts;

namespace ShareHub.Partner;

/// <summary>
/// Answers a hit/no-hit question (bevraging) of a case. The partner looks the question's subject up in its own systems
/// and answers with the bit only, quoting the question's subject pseudonym — never content. Content follows only after
/// a follow-up information request, as a signal with the case reference that the policy decides again.
/// </summary>
public static class HitNoHit
{
    /// <summary>
    /// Sends the answer to the hub (<c>POST /api/v1/questions/{id}/answer</c> with the <c>deliveries:read</c> token).
    /// Throws <see cref="HttpRequestException"/> when the hub refuses it (e.g. the case moved past bevraging).
    /// </summary>
    public static async Task AnswerAsync(this HubTokenClient hub, DeliverCaseEvent question, bool hit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(hub);
        ArgumentNullException.ThrowIfNull(question);
        if (question.Kind != CaseEventKinds.HitNoHitAsked || question.QuestionId is not { } id)
        {
            throw new ArgumentException($"Case event {question.DeliveryId} is not a hit/no-hit question.", nameof(question));
        }

        using var response = await hub.PostAsJsonAsync(HubApi.AnswerPath(id), new AnswerHitNoHitRequest(question.SubjectPseudonym, hit), cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"The hub refused the answer to question {id}: HTTP {(int)response.StatusCode}", null, response.StatusCode);
        }
    }
}
