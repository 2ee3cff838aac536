using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using ShareHub.Broker.Configuration;

namespace ShareHub.Broker.Api;

/// <summary>
/// Back-pressure: a global concurrency limit with a bounded wait queue. Under overload the hub answers 503 with a
/// ProblemDetails body and <c>Retry-After</c> (RFC 9110 §10.2.3) immediately, instead of accepting work it cannot finish
/// and growing memory without bound. Together with the request body limit this bounds the memory requests can take.
/// </summary>
internal static class BackPressure
{
    public static IServiceCollection AddBackPressure(this IServiceCollection services, ShareHubOptions settings)
    {
        services.AddRateLimiter(options =>
        {
            options.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(_ => RateLimitPartition.GetConcurrencyLimiter(
                "global",
                _ => new ConcurrencyLimiterOptions
                {
                    PermitLimit = settings.MaxConcurrentRequests,
                    QueueLimit = settings.MaxQueuedRequests,
                    QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
                }));
            options.RejectionStatusCode = StatusCodes.Status503ServiceUnavailable;
            options.OnRejected = async (context, cancellationToken) =>
            {
                var http = context.HttpContext;
                http.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                http.Response.Headers.RetryAfter = "1";
                await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = http,
                    ProblemDetails =
                    {
                        Status = StatusCodes.Status503ServiceUnavailable,
                        Title = "Overloaded",
                        Detail = "The hub is at its limit of concurrent requests. Nothing was done; retry after the indicated delay.",
                        Type = ErrorCodes.TypeUri(ErrorCodes.Overloaded),
                        Extensions = { ["code"] = ErrorCodes.Overloaded },
                    },
                }).ConfigureAwait(false);
            };
        });
        return services;
    }
}
