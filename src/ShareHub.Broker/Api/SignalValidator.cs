using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using FluentValidation;
using Microsoft.Extensions.Options;
using ShareHub.Broker.Configuration;
using ShareHub.Broker.Policies;
using ShareHub.Contracts;

namespace ShareHub.Broker.Api;

/// <summary>A submission as the broker sees it: the request plus the authenticated provider.</summary>
/// <param name="Provider">Organisation code from the caller's identity.</param>
/// <param name="Request">The request body.</param>
internal sealed record SignalSubmission(string Provider, SubmitSignalRequest Request);

/// <summary>
/// Input validation for a submitted signal. Every failure carries a stable error code. Codes, categories,
/// purposes and recipients are checked against the active policy set, so a typo is a 400 rather than a silent deny.
/// </summary>
internal sealed partial class SignalValidator : AbstractValidator<SignalSubmission>
{
    public SignalValidator(PolicyStore policies, IOptions<ShareHubOptions> options)
    {
        var limits = options.Value;

        RuleFor(s => s.Request.Subject).NotNull().WithErrorCode(ErrorCodes.UnknownSubjectType)
            .WithMessage("A subject is required: { \"type\": \"bsn\" | \"kvk\" | \"address\", \"id\": \"…\" }.");

        When(s => s.Request.Subject is not null, () =>
        {
            RuleFor(s => s.Request.Subject!.Type)
                .Must(t => t is not null && SubjectTypes.Submittable.Contains(t))
                .WithErrorCode(ErrorCodes.UnknownSubjectType)
                .WithMessage("Subject type must be one of: bsn, kvk, address.")
                .OverridePropertyName("subject.type");

            RuleFor(s => s.Request.Subject!.Id)
                .Must(id => Bsn.TryParse(id, out _))
                .When(s => s.Request.Subject!.Type == SubjectTypes.Bsn)
                .WithErrorCode(ErrorCodes.InvalidBsn)
                .WithMessage("A BSN must be nine digits that pass the elfproef.")
                .OverridePropertyName("subject.id");

            RuleFor(s => s.Request.Subject!.Id)
                .Must(id => KvkNumber.TryParse(id, out _))
                .When(s => s.Request.Subject!.Type == SubjectTypes.Kvk)
                .WithErrorCode(ErrorCodes.InvalidKvk)
                .WithMessage("A KvK number must be exactly eight digits.")
                .OverridePropertyName("subject.id");

            RuleFor(s => s.Request.Subject!.Id)
                .Must(id => !string.IsNullOrWhiteSpace(id) && id.Length <= 200 && !id.Any(char.IsControl))
                .When(s => s.Request.Subject!.Type == SubjectTypes.Address)
                .WithErrorCode(ErrorCodes.InvalidAddress)
                .WithMessage("An address must be non-empty text of at most 200 characters without control characters.")
                .OverridePropertyName("subject.id");
        });

        RuleFor(s => s.Request.Category)
            .Must(c => c is not null && policies.Current.IsKnownCategory(c))
            .WithErrorCode(ErrorCodes.UnknownCategory)
            .WithMessage(s => $"Category '{Shorten(s.Request.Category)}' is not defined in the policy set.")
            .OverridePropertyName("category");

        RuleFor(s => s.Request.Purpose)
            .Must(p => p is not null && policies.Current.IsKnownPurpose(p))
            .WithErrorCode(ErrorCodes.UnknownPurpose)
            .WithMessage(s => $"Purpose '{Shorten(s.Request.Purpose)}' is not defined in the policy set.")
            .OverridePropertyName("purpose");

        RuleFor(s => s.Request.CaseReference)
            .Must(r => r is null || Cases.CaseReferences.IsValid(r))
            .WithErrorCode(ErrorCodes.InvalidCaseReference)
            .WithMessage("A case reference is 1–64 characters: letters, digits and . _ - (starting with a letter or digit).")
            .OverridePropertyName("caseReference");

        RuleFor(s => s.Request.Recipients)
            .NotEmpty()
            .WithErrorCode(ErrorCodes.InvalidRecipients)
            .WithMessage("At least one intended recipient is required.")
            .OverridePropertyName("recipients");

        When(s => s.Request.Recipients is { Count: > 0 }, () =>
        {
            RuleFor(s => s.Request.Recipients!)
                .Must(r => r.Count <= limits.MaxRecipients)
                .WithErrorCode(ErrorCodes.InvalidRecipients)
                .WithMessage($"At most {limits.MaxRecipients} recipients per signal.")
                .Must(r => r.Distinct(StringComparer.Ordinal).Count() == r.Count)
                .WithErrorCode(ErrorCodes.InvalidRecipients)
                .WithMessage("Each recipient may be named only once.")
                .Must((s, r) => !r.Contains(s.Provider, StringComparer.Ordinal))
                .WithErrorCode(ErrorCodes.InvalidRecipients)
                .WithMessage("The submitting organisation cannot be its own recipient.")
                .OverridePropertyName("recipients");

            RuleForEach(s => s.Request.Recipients)
                .Must(r => r is not null && policies.Current.IsParticipant(r))
                .WithErrorCode(ErrorCodes.InvalidRecipients)
                .WithMessage((_, r) => $"Recipient '{Shorten(r)}' is not a participant of the partnership.")
                .OverridePropertyName("recipients");
        });

        RuleFor(s => s.Request.Payload)
            .Must(p => p is { ValueKind: JsonValueKind.Object })
            .WithErrorCode(ErrorCodes.InvalidPayload)
            .WithMessage("The payload must be a JSON object.")
            // The payload's bytes as the request carried them, read in place (no copy of it as a string).
            .Must(p => p is null || JsonMarshal.GetRawUtf8Value(p.Value).Length <= limits.MaxPayloadBytes)
            .WithErrorCode(ErrorCodes.InvalidPayload)
            .WithMessage($"The payload may be at most {limits.MaxPayloadBytes} bytes.")
            .OverridePropertyName("payload");
    }

    /// <summary>Echoes untrusted input in a message only in shortened form.</summary>
    private static string Shorten(string? text) => text is null ? "(none)" : text.Length <= 40 ? text : text[..40] + "…";
}
