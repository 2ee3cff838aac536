using FluentValidation;
using ShareHub.Contracts;

namespace ShareHub.Broker.Api;

/// <summary>
/// Input validation for <c>POST /api/v1/deliveries/acknowledgements</c>: 1 to
/// <see cref="AcknowledgeDeliveriesRequest.MaxDeliveries"/> items, each naming a delivery. Every failure carries
/// <see cref="ErrorCodes.InvalidAcknowledgements"/>; an invalid request records nothing.
/// </summary>
internal sealed class AcknowledgementsValidator : AbstractValidator<AcknowledgeDeliveriesRequest>
{
    public AcknowledgementsValidator()
    {
        RuleFor(r => r.Deliveries)
            .NotEmpty()
            .WithErrorCode(ErrorCodes.InvalidAcknowledgements)
            .WithMessage("At least one acknowledgement is required: { \"deliveries\": [ { \"deliveryId\": \"…\" } ] }.")
            .Must(d => d is null || d.Count <= AcknowledgeDeliveriesRequest.MaxDeliveries)
            .WithErrorCode(ErrorCodes.InvalidAcknowledgements)
            .WithMessage(r => $"At most {AcknowledgeDeliveriesRequest.MaxDeliveries} acknowledgements per request; this one holds {r.Deliveries!.Count}.")
            .OverridePropertyName("deliveries");

        // Items are checked only in a batch of acceptable size: a huge batch gets one message, not thousands.
        When(r => r.Deliveries is { Count: <= AcknowledgeDeliveriesRequest.MaxDeliveries }, () =>
            RuleForEach(r => r.Deliveries)
                .Must(d => d is not null && d.DeliveryId != Guid.Empty)
                .WithErrorCode(ErrorCodes.InvalidAcknowledgements)
                .WithMessage("Each acknowledgement names a delivery: a non-empty deliveryId.")
                .OverridePropertyName("deliveries"));
    }
}
