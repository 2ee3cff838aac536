using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using ShareHub.Broker.Configuration;

namespace ShareHub.Broker.Api;

/// <summary>
/// Back-pressure: a global concurrency limit with a bounded wait queue, before any other work is done. Under overload
/// the hub answers 503 with a ProblemDetails body and <c>Retry-After</c> (RFC 9110 §10.2.3) immediately, instead of
/// accepting work it cannot finish and growing memory without bound. Together with the request body limit this bounds
/// the memory requests can take. (The per-client rate limit, 429, is separate: see Identity.)
/// </summary>
internal sealed class BackPressureMiddleware(RequestDelegate next, ConcurrencyLimiter limiter)
{
    public async Task InvokeAsync(HttpContext context)
    {
        using var lease = await limiter.AcquireAsync(1, context.RequestAborted).ConfigureAwait(false);
        if (!lease.IsAcquired)
        {
            context.Response.Headers.RetryAfter = "1";
            await context.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(Problems.For(context, StatusCodes.Status503ServiceUnavailable,
                ErrorCodes.Overloaded, "Overloaded", "The hub is at its limit of concurrent requests. Nothing was done; retry after the indicated delay.")).ConfigureAwait(false);
            return;
        }

        await next(context).ConfigureAwait(false);
    }
}

/// <summary>Registration of <see cref="BackPressureMiddleware"/>.</summary>
internal static class BackPressure
{
    public static IServiceCollection AddBackPressure(this IServiceCollection services)
    {
        services.AddSingleton(sp =>
        {
            var settings = sp.GetRequiredService<IOptions<ShareHubOptions>>().Value;
            return new ConcurrencyLimiter(new ConcurrencyLimiterOptions
            {
                PermitLimit = settings.MaxConcurrentRequests,
                QueueLimit = settings.MaxQueuedRequests,
                QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            });
        });
        return services;
    }

    public static IApplicationBuilder UseBackPressure(this IApplicationBuilder app) => app.UseMiddleware<BackPressureMiddleware>();
}
