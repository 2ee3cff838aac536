using System.Security.Claims;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Data;
using ShareHub.Broker.Security;
using ShareHub.Contracts;

namespace ShareHub.Broker.Api;

/// <summary>Query parameters of the audit search endpoints.</summary>
public sealed class AuditSearchParameters
{
    /// <summary>bsn (default), kvk, address or pseudonym.</summary>
    [FromQuery] public string? SubjectType { get; set; }

    /// <summary>The subject's identifier (a BSN is pseudonymised on the server) or a <c>psn:</c> pseudonym.</summary>
    [FromQuery] public string? Subject { get; set; }

    /// <summary>Provider, recipient or actor organisation.</summary>
    [FromQuery] public string? Organisation { get; set; }

    /// <summary>Recorded at or after (ISO 8601; UTC when no offset is given). Empty = no bound.</summary>
    [FromQuery] public string? From { get; set; }

    /// <summary>Recorded before (ISO 8601; UTC when no offset is given). Empty = no bound.</summary>
    [FromQuery] public string? To { get; set; }

    /// <summary>Data category.</summary>
    [FromQuery] public string? Category { get; set; }

    /// <summary>Purpose.</summary>
    [FromQuery] public string? Purpose { get; set; }

    /// <summary>Outcome / decision: permit, deny, dispatched, acknowledged, …</summary>
    [FromQuery] public string? Decision { get; set; }

    /// <summary>Entry kind.</summary>
    [FromQuery] public string? Kind { get; set; }

    /// <summary>Signal.</summary>
    [FromQuery] public Guid? SignalId { get; set; }

    /// <summary>Paging: entries after this chain sequence.</summary>
    [FromQuery] public long? AfterSequence { get; set; }

    /// <summary>Legacy paging: entries after this id.</summary>
    [FromQuery] public long? AfterId { get; set; }

    /// <summary>Page size (1–1000, default 100).</summary>
    [FromQuery] public int? Limit { get; set; }

    /// <summary>Export format: csv or json.</summary>
    [FromQuery] public string? Format { get; set; }

    /// <summary>The filter, or false with a problem when the period cannot be read.</summary>
    public bool TryToFilter(out AuditFilter filter, out string? problem, int defaultLimit = 100)
    {
        filter = new(SubjectType, Subject, Organisation, null, null, Category, Purpose, Decision, Kind, SignalId, AfterSequence, Limit ?? defaultLimit);
        problem = null;
        if (!TryParseTime(From, out var from) || !TryParseTime(To, out var to))
        {
            problem = "from and to must be ISO 8601 dates or times, e.g. 2026-03-01 or 2026-03-01T09:00:00Z.";
            return false;
        }

        filter = filter with { From = from, To = to };
        return true;
    }

    private static bool TryParseTime(string? text, out DateTimeOffset? value)
    {
        value = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            return true;
        }

        if (DateTimeOffset.TryParse(text.Trim(), System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AdjustToUniversal, out var parsed))
        {
            value = parsed;
            return true;
        }

        return false;
    }
}

/// <summary>
/// The privacy officers' API: search, export, the AVG art. 15 report, chain verification, checkpoints and the retention
/// purge. A partner privacy officer sees entries where their organisation is provider, recipient or actor; the
/// partnership's privacy officer sees all. Every read is itself audited.
/// </summary>
public static class AuditApi
{
    /// <summary>Rows one export call returns at most; page on with <c>afterSequence</c>.</summary>
    public const int MaxExport = 100_000;

    /// <summary>Maps the audit endpoints, the retention endpoint and the privacy officer's web page.</summary>
    public static IEndpointRouteBuilder MapAuditApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/audit").RequireAuthorization(HubClaims.AuditPolicy);
        group.MapGet("/", ListAsync);
        group.MapGet("/search", SearchAsync);
        group.MapGet("/export", ExportAsync);
        group.MapGet("/art15", Art15Async);
        group.MapGet("/verify", VerifyAsync);
        group.MapPost("/checkpoints", CheckpointAsync);
        app.MapPost("/api/v1/retention/purge", PurgeAsync).RequireAuthorization(HubClaims.AuditPolicy);
        app.MapGet(AuditPage.Path, AuditPage.RenderAsync).RequireAuthorization(HubClaims.AuditPolicy);
        return app;
    }

    /// <summary>Audit entries in recording order (the first API shape; see <c>/search</c> for the full record).</summary>
    internal static async Task<Results<Ok<IReadOnlyList<AuditEntryDto>>, ProblemHttpResult>> ListAsync(
        ClaimsPrincipal user, AuditQuery query, AuditTrail trail, [AsParameters] AuditSearchParameters parameters, CancellationToken cancellationToken)
    {
        if (!parameters.TryToFilter(out var filter, out var invalid))
        {
            return InvalidQuery(invalid!);
        }

        if (!query.TryResolveSubject(filter.SubjectType, filter.Subject, out _, out var pseudonym, out _))
        {
            return InvalidSubject();
        }

        var entries = await query.Query(AuditScope.For(user), filter, pseudonym)
            .Where(a => parameters.AfterId == null || a.Id > parameters.AfterId)
            .Take(Math.Clamp(filter.Limit, 1, AuditQuery.MaxPage))
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        await AuditReadAsync(trail, user, "listed", filter, entries, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok<IReadOnlyList<AuditEntryDto>>([.. entries.Select(a => new AuditEntryDto(a.Id, a.Kind, a.RecordedAt, a.ActorOrganisation, a.Actor,
            a.SignalId, a.DeliveryId, a.Provider, a.Recipient, a.Category, a.Purpose, a.CaseReference, a.SubjectType, a.SubjectPseudonym, a.Outcome,
            a.ReasonCode, a.Explanation, a.RuleId, a.LegalGround, a.Obligations, a.PolicyVersion, a.TraceId))]);
    }

    /// <summary>One page of matching entries with chain position and Logius fields.</summary>
    internal static async Task<Results<Ok<AuditSearchResponse>, ProblemHttpResult>> SearchAsync(
        ClaimsPrincipal user, AuditQuery query, AuditTrail trail, [AsParameters] AuditSearchParameters parameters, CancellationToken cancellationToken)
    {
        if (!parameters.TryToFilter(out var filter, out var invalid))
        {
            return InvalidQuery(invalid!);
        }

        if (!query.TryResolveSubject(filter.SubjectType, filter.Subject, out _, out var pseudonym, out _))
        {
            return InvalidSubject();
        }

        var entries = await query.SearchAsync(AuditScope.For(user), filter, pseudonym, cancellationToken).ConfigureAwait(false);
        await AuditReadAsync(trail, user, "searched", filter, entries, cancellationToken).ConfigureAwait(false);
        var limit = Math.Clamp(filter.Limit, 1, AuditQuery.MaxPage);
        return TypedResults.Ok(new AuditSearchResponse([.. entries.Select(AuditQuery.ToRecord)], entries.Count == limit ? entries[^1].Sequence : null));
    }

    /// <summary>Matching entries as CSV (RFC 4180) or JSON, at most <see cref="MaxExport"/> per call.</summary>
    internal static async Task<Results<FileContentHttpResult, ProblemHttpResult>> ExportAsync(
        ClaimsPrincipal user, AuditQuery query, AuditTrail trail, [AsParameters] AuditSearchParameters parameters, CancellationToken cancellationToken)
    {
        var format = (parameters.Format ?? "csv").ToLowerInvariant();
        if (format is not ("csv" or "json"))
        {
            return InvalidQuery("format must be csv or json.");
        }

        if (!parameters.TryToFilter(out var filter, out var invalid))
        {
            return InvalidQuery(invalid!);
        }

        if (!query.TryResolveSubject(filter.SubjectType, filter.Subject, out _, out var pseudonym, out _))
        {
            return InvalidSubject();
        }

        var entries = await query.Query(AuditScope.For(user), filter, pseudonym).Take(MaxExport).ToListAsync(cancellationToken).ConfigureAwait(false);
        await AuditReadAsync(trail, user, $"exported ({format})", filter, entries, cancellationToken).ConfigureAwait(false);
        var records = entries.Select(AuditQuery.ToRecord).ToList();
        return format == "csv"
            ? TypedResults.File(Encoding.UTF8.GetBytes(AuditCsv.Write(records)), "text/csv; charset=utf-8", "sharehub-audit.csv")
            : TypedResults.File(JsonSerializer.SerializeToUtf8Bytes(records, AuditCsv.Json), "application/json", "sharehub-audit.json");
    }

    /// <summary>AVG art. 15 report for one data subject.</summary>
    internal static async Task<Results<Ok<Art15ReportDto>, ProblemHttpResult>> Art15Async(
        ClaimsPrincipal user, AuditQuery query, AuditTrail trail, string? subjectType, string? subject, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(subject) || !query.TryResolveSubject(subjectType, subject, out var type, out var pseudonym, out _))
        {
            return InvalidSubject();
        }

        var report = await query.Art15Async(AuditScope.For(user), type, pseudonym!, cancellationToken).ConfigureAwait(false);
        await trail.RecordAccessAsync(user, AuditKinds.AuditAccessed, "read", ErrorCodes.AuditRead,
            $"AVG art. 15 report ({report.Scope}): {report.Disclosures.Count} disclosure(s), {report.Refusals.Count} refusal(s).",
            [(report.SubjectType, pseudonym)], cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(report);
    }

    /// <summary>Recomputes the hash chain and checks the signed checkpoints; the check is audited.</summary>
    internal static async Task<Ok<AuditVerificationDto>> VerifyAsync(
        ClaimsPrincipal user, HubDbContext db, AuditVerifier verifier, AuditTrail trail, CancellationToken cancellationToken)
    {
        var result = await verifier.VerifyAsync(db, cancellationToken).ConfigureAwait(false);
        await trail.RecordAccessAsync(user, AuditKinds.AuditVerified, result.Valid ? "verified" : "failed",
            result.Valid ? ErrorCodes.AuditVerified : ErrorCodes.AuditVerificationFailed,
            result.Valid ? $"Hash chain of {result.Entries} entries and {result.CheckpointsVerified} signed checkpoint(s) verified." : $"Verification failed: {result.Problem}",
            [], cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(result);
    }

    /// <summary>Signs a checkpoint of the current chain head now (partnership privacy officer only).</summary>
    internal static async Task<Results<Ok<AuditCheckpointDto>, NoContent, ProblemHttpResult>> CheckpointAsync(
        ClaimsPrincipal user, AuditCheckpointer checkpointer, CancellationToken cancellationToken)
    {
        if (!user.IsInRole(HubClaims.PartnershipPrivacyOfficerRole))
        {
            return Problems.Forbidden("Only the partnership's privacy officer may request a checkpoint.");
        }

        var made = await checkpointer.CheckpointAsync(cancellationToken).ConfigureAwait(false);
        return made is null
            ? TypedResults.NoContent()
            : TypedResults.Ok(new AuditCheckpointDto(made.Sequence, Convert.ToHexStringLower(made.HeadHash), made.CreatedAt, made.KeyId, Convert.ToBase64String(made.Signature)));
    }

    /// <summary>Runs the retention purge now (partnership privacy officer only); the purge is audited.</summary>
    internal static async Task<Results<Ok<RetentionPurgeResultDto>, ProblemHttpResult>> PurgeAsync(
        ClaimsPrincipal user, RetentionPurger purger, CancellationToken cancellationToken)
    {
        if (!user.IsInRole(HubClaims.PartnershipPrivacyOfficerRole))
        {
            return Problems.Forbidden("Only the partnership's privacy officer may run the retention purge on demand.");
        }

        return TypedResults.Ok(await purger.PurgeAsync(user.GetOrganisation() ?? AuditTrail.HubOrganisation, user.GetActor(), cancellationToken).ConfigureAwait(false));
    }

    internal static ProblemHttpResult InvalidQuery(string detail) => Problems.Create(StatusCodes.Status400BadRequest, ErrorCodes.AuditInvalidQuery, "Invalid audit query", detail);

    internal static ProblemHttpResult InvalidSubject() => Problems.Create(StatusCodes.Status400BadRequest, ErrorCodes.AuditInvalidSubject, "Invalid subject",
        "subject must be a BSN passing the elfproef (subjectType=bsn), an 8-digit KvK number (kvk), an address (address) or a psn: pseudonym.");

    internal static Task AuditReadAsync(AuditTrail trail, ClaimsPrincipal user, string verb, AuditFilter filter, IReadOnlyCollection<AuditEntry> entries, CancellationToken cancellationToken) =>
        trail.RecordAccessAsync(user, AuditKinds.AuditAccessed, "read", ErrorCodes.AuditRead,
            $"Audit trail {verb} ({AuditScope.For(user).Describe()}; {Describe(filter)}): {entries.Count} entr{(entries.Count == 1 ? "y" : "ies")}.",
            entries.Select(e => (e.SubjectType, e.SubjectPseudonym)), cancellationToken);

    /// <summary>The filter in words, for the access entry — never the BSN itself.</summary>
    public static string Describe(AuditFilter filter)
    {
        var parts = new List<string>();
        if (!string.IsNullOrWhiteSpace(filter.Subject))
        {
            parts.Add($"subject of type {filter.SubjectType ?? "bsn"}");
        }

        void Add(string name, object? value)
        {
            if (value is not null && (value is not string s || !string.IsNullOrWhiteSpace(s)))
            {
                var text = value is DateTimeOffset d ? d.ToString("O", System.Globalization.CultureInfo.InvariantCulture) : value.ToString()!;
                parts.Add($"{name}={(text.Length > 64 ? text[..64] : text)}");
            }
        }

        Add("organisation", filter.Organisation);
        Add("from", filter.From);
        Add("to", filter.To);
        Add("category", filter.Category);
        Add("purpose", filter.Purpose);
        Add("decision", filter.Outcome);
        Add("kind", filter.Kind);
        Add("signal", filter.SignalId);
        return parts.Count == 0 ? "no filter" : string.Join(", ", parts);
    }
}
