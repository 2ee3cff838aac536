using System.Data.Common;
using FluentValidation.Results;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using ShareHub.Contracts;

namespace ShareHub.Broker.Api;

/// <summary>
/// RFC 9457 problem details with stable codes: the code is in <c>type</c> (<c>urn:sharehub:error:SH-…</c>) and in the
/// <c>code</c> extension member, so clients and audit readers can rely on it.
/// </summary>
internal static class Problems
{
    public static ProblemHttpResult Forbidden(string detail) => Create(StatusCodes.Status403Forbidden, ErrorCodes.Forbidden, "Forbidden", detail);

    public static ProblemHttpResult NotFound(string detail) => Create(StatusCodes.Status404NotFound, ErrorCodes.NotFound, "Not found", detail);

    public static ProblemHttpResult Malformed(string detail) => Create(StatusCodes.Status400BadRequest, ErrorCodes.MalformedBody, "Malformed request", detail);

    public static ProblemHttpResult Create(int status, string code, string title, string detail) =>
        TypedResults.Problem(detail, statusCode: status, title: title, type: ErrorCodes.TypeUri(code),
            extensions: new Dictionary<string, object?> { ["code"] = code });

    /// <summary>A 400 listing every failed field, each with its message and stable code.</summary>
    public static ValidationProblem Validation(ValidationResult result) =>
        Validation(result, ErrorCodes.InvalidSignal, InvalidSignalTitle, InvalidSignalDetail);

    /// <summary>A 400 with the stable <paramref name="code"/>, listing every failed field with its message and code.</summary>
    public static ValidationProblem Validation(ValidationResult result, string code, string title, string detail)
    {
        var (errors, codes) = Fields(result);
        return TypedResults.ValidationProblem(errors,
            detail: detail,
            title: title,
            type: ErrorCodes.TypeUri(code),
            extensions: new Dictionary<string, object?> { ["code"] = code, ["codes"] = codes });
    }

    /// <summary>The same problem as <see cref="Validation(ValidationResult)"/>, as one refused item of a batch submission.</summary>
    public static SignalProblem ValidationItem(ValidationResult result)
    {
        var (errors, codes) = Fields(result);
        return new SignalProblem(ErrorCodes.TypeUri(ErrorCodes.InvalidSignal), InvalidSignalTitle, StatusCodes.Status400BadRequest,
            InvalidSignalDetail, ErrorCodes.InvalidSignal, errors, codes);
    }

    private const string InvalidSignalTitle = "Invalid signal";
    private const string InvalidSignalDetail = "The signal was not accepted and nothing was stored.";

    private static (Dictionary<string, string[]> Errors, Dictionary<string, string[]> Codes) Fields(ValidationResult result) =>
        (result.Errors.GroupBy(e => e.PropertyName).ToDictionary(g => g.Key, g => g.Select(e => e.ErrorMessage).Distinct().ToArray()),
         result.Errors.GroupBy(e => e.PropertyName).ToDictionary(g => g.Key, g => g.Select(e => e.ErrorCode).Distinct().ToArray()));

    /// <summary>
    /// The problem response written outside endpoint code (middleware, exception handlers, status code pages): sets the
    /// status and builds the body with the stable code in <c>type</c> and in the <c>code</c> member, like
    /// <see cref="Create"/> does for endpoints.
    /// </summary>
    public static ProblemDetailsContext For(HttpContext http, int status, string code, string? title = null, string? detail = null, Exception? exception = null)
    {
        http.Response.StatusCode = status;
        return new ProblemDetailsContext
        {
            HttpContext = http,
            Exception = exception,
            ProblemDetails = new ProblemDetails
            {
                Status = status,
                Title = title,
                Detail = detail,
                Type = ErrorCodes.TypeUri(code),
                Extensions = { ["code"] = code },
            },
        };
    }

    /// <summary>
    /// Status codes produced outside endpoint code (authentication challenges, body binding failures, request size
    /// limits) get a problem body with a stable code too.
    /// </summary>
    public static string CodeForStatus(int status) => status switch
    {
        StatusCodes.Status400BadRequest => ErrorCodes.MalformedBody,
        StatusCodes.Status401Unauthorized => ErrorCodes.Unauthenticated,
        StatusCodes.Status403Forbidden => ErrorCodes.Forbidden,
        StatusCodes.Status404NotFound => ErrorCodes.NotFound,
        StatusCodes.Status413PayloadTooLarge => ErrorCodes.BodyTooLarge,
        StatusCodes.Status415UnsupportedMediaType => ErrorCodes.UnsupportedMediaType,
        StatusCodes.Status503ServiceUnavailable => ErrorCodes.Overloaded,
        _ => $"SH-H{status:D4}",
    };
}

/// <summary>
/// Maps an unreachable or failing database to 503 with a ProblemDetails body: the transaction did not commit, so
/// nothing was stored and the client may retry.
/// </summary>
internal sealed class StorageUnavailableHandler(IProblemDetailsService problems, ILogger<StorageUnavailableHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not (DbException or DbUpdateException or TimeoutException) && exception.InnerException is not DbException)
        {
            return false;
        }

        logger.LogError(exception, "Storage unavailable; request refused with 503");
        httpContext.Response.Headers.RetryAfter = "5";
        return await problems.TryWriteAsync(Problems.For(httpContext, StatusCodes.Status503ServiceUnavailable, ErrorCodes.StorageUnavailable,
            "Storage unavailable", "The hub cannot reach its database. Nothing was stored; retry later.", exception)).ConfigureAwait(false);
    }
}
