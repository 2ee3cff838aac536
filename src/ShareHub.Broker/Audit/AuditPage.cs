using System.Globalization;
using System.Security.Claims;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Api;
using ShareHub.Broker.Data;
using ShareHub.Broker.Security;
using ShareHub.Contracts;

namespace ShareHub.Broker.Audit;

/// <summary>
/// The privacy officer's web page: search, the AVG art. 15 report and the chain verification status, rendered on the
/// server. Same authorisation policy and scoping as the audit API; every view of entries is audited. All text is
/// HTML-encoded (it shows data that partners supplied) and the page carries a Content-Security-Policy without any
/// script source, so even a missed encoding could not run script.
/// </summary>
public static class AuditPage
{
    /// <summary>Where the page is served.</summary>
    public const string Path = "/privacy";

    private static readonly HtmlEncoder Html = HtmlEncoder.Default;

    /// <summary>Renders the page for the query string's view (search, art15 or verify).</summary>
    internal static async Task<ContentHttpResult> RenderAsync(
        HttpContext context, ClaimsPrincipal user, AuditQuery query, AuditTrail trail, AuditVerifier verifier, HubDbContext db,
        [AsParameters] AuditSearchParameters parameters, string? view, CancellationToken cancellationToken)
    {
        context.Response.Headers.ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";
        context.Response.Headers.XContentTypeOptions = "nosniff";
        var page = new StringBuilder();
        var scope = AuditScope.For(user);
        page.Append("<!DOCTYPE html><html lang=\"nl\"><head><meta charset=\"utf-8\"><title>ShareHub — audit trail</title>")
            .Append("<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:2px 6px;font-size:13px;vertical-align:top}")
            .Append(".error{color:#a00}.ok{color:#070}nav a{margin-right:1em}fieldset{margin-bottom:1em}</style></head><body>")
            .Append("<h1>ShareHub audit trail</h1><p id=\"who\">Signed in as <b>").Append(E(user.GetActor())).Append("</b> (")
            .Append(E(user.GetOrganisation())).Append("), scope: <b id=\"scope\">").Append(E(scope.Describe())).Append("</b></p>")
            .Append("<nav><a id=\"nav-search\" href=\"?view=search\">Search</a><a id=\"nav-art15\" href=\"?view=art15\">AVG art. 15 report</a><a id=\"nav-verify\" href=\"?view=verify\">Verify chain</a></nav>");

        switch (view)
        {
            case "art15":
                await Art15Async(page, user, scope, query, trail, parameters, cancellationToken).ConfigureAwait(false);
                break;
            case "verify":
                await VerifyAsync(page, user, verifier, trail, db, cancellationToken).ConfigureAwait(false);
                break;
            default:
                await SearchAsync(page, user, scope, query, trail, parameters, cancellationToken).ConfigureAwait(false);
                break;
        }

        page.Append("</body></html>");
        return TypedResults.Content(page.ToString(), "text/html; charset=utf-8");
    }

    private static async Task SearchAsync(StringBuilder page, ClaimsPrincipal user, AuditScope scope, AuditQuery query, AuditTrail trail, AuditSearchParameters p, CancellationToken cancellationToken)
    {
        page.Append("<h2>Search</h2><form id=\"search\" method=\"get\"><input type=\"hidden\" name=\"view\" value=\"search\"><fieldset>")
            .Append(Input("subject", "Subject (BSN, KvK or psn:…)", p.Subject))
            .Append(Select("subjectType", "Type", p.SubjectType, ["bsn", "kvk", "address", "pseudonym"]))
            .Append(Input("organisation", "Organisation", p.Organisation))
            .Append(Input("from", "From (ISO 8601)", p.From))
            .Append(Input("to", "To", p.To))
            .Append(Input("category", "Category", p.Category))
            .Append(Input("purpose", "Purpose", p.Purpose))
            .Append(Select("decision", "Decision", p.Decision, ["", "permit", "deny", "dispatched", "acknowledged", "rejected", "purged", "read"]))
            .Append("<button id=\"search-button\" type=\"submit\">Search</button></fieldset></form>");

        if (!p.TryToFilter(out var filter, out var invalid, 200))
        {
            page.Append("<p class=\"error\" id=\"problem\">").Append(E(ErrorCodes.AuditInvalidQuery)).Append(": ").Append(E(invalid)).Append("</p>");
            return;
        }

        if (!query.TryResolveSubject(filter.SubjectType, filter.Subject, out _, out var pseudonym, out _))
        {
            page.Append("<p class=\"error\" id=\"problem\">").Append(E(ErrorCodes.AuditInvalidSubject)).Append(": not a valid BSN, KvK number, address or pseudonym.</p>");
            return;
        }

        var entries = await query.SearchAsync(scope, filter, pseudonym, cancellationToken).ConfigureAwait(false);
        await AuditApi.AuditReadAsync(trail, user, "viewed on the web page", filter, entries, cancellationToken).ConfigureAwait(false);
        page.Append("<p id=\"count\">").Append(entries.Count).Append(" entr").Append(entries.Count == 1 ? "y" : "ies").Append("</p>")
            .Append("<table id=\"results\"><thead><tr><th>#</th><th>when (UTC)</th><th>what</th><th>outcome</th><th>provider</th><th>recipient</th><th>category</th><th>purpose</th><th>subject</th><th>legal ground</th><th>rule</th><th>reason</th><th>actor</th><th>explanation</th></tr></thead><tbody>");
        foreach (var e in entries)
        {
            page.Append("<tr class=\"entry\" data-sequence=\"").Append(e.Sequence).Append("\">")
                .Append(Td(e.Sequence.ToString(CultureInfo.InvariantCulture))).Append(Td(Time(e.RecordedAt))).Append(Td(e.Kind)).Append(Td(e.Outcome))
                .Append(Td(e.Provider)).Append(Td(e.Recipient)).Append(Td(e.Category)).Append(Td(e.Purpose))
                .Append(Td(e.SubjectPseudonym is null ? null : $"{e.SubjectType}:{e.SubjectPseudonym}"))
                .Append(Td(e.LegalGround)).Append(Td(e.RuleId)).Append(Td(e.ReasonCode)).Append(Td($"{e.ActorOrganisation} / {e.Actor}")).Append(Td(e.Explanation))
                .Append("</tr>");
        }

        page.Append("</tbody></table>");
    }

    private static async Task Art15Async(StringBuilder page, ClaimsPrincipal user, AuditScope scope, AuditQuery query, AuditTrail trail, AuditSearchParameters p, CancellationToken cancellationToken)
    {
        page.Append("<h2>AVG art. 15 report</h2><form id=\"art15-form\" method=\"get\"><input type=\"hidden\" name=\"view\" value=\"art15\"><fieldset>")
            .Append(Input("subject", "Subject (BSN, KvK or psn:…)", p.Subject))
            .Append(Select("subjectType", "Type", p.SubjectType, ["bsn", "kvk", "address", "pseudonym"]))
            .Append("<button id=\"art15-button\" type=\"submit\">Report</button></fieldset></form>");
        if (string.IsNullOrWhiteSpace(p.Subject))
        {
            return;
        }

        if (!query.TryResolveSubject(p.SubjectType, p.Subject, out var type, out var pseudonym, out _))
        {
            page.Append("<p class=\"error\" id=\"problem\">").Append(E(ErrorCodes.AuditInvalidSubject)).Append(": not a valid BSN, KvK number, address or pseudonym.</p>");
            return;
        }

        var report = await query.Art15Async(scope, type, pseudonym!, cancellationToken).ConfigureAwait(false);
        await trail.RecordAccessAsync(user, AuditKinds.AuditAccessed, "read", ErrorCodes.AuditRead,
            $"AVG art. 15 report viewed on the web page ({report.Scope}): {report.Disclosures.Count} disclosure(s), {report.Refusals.Count} refusal(s).",
            [(report.SubjectType, pseudonym)], cancellationToken).ConfigureAwait(false);

        page.Append("<section id=\"art15\"><p>Subject <b>").Append(E(report.SubjectType)).Append(':').Append(E(report.SubjectPseudonym))
            .Append("</b>, scope ").Append(E(report.Scope)).Append(", made ").Append(E(Time(report.GeneratedAt))).Append(" UTC.</p>")
            .Append("<h3>Disclosed (").Append(report.Disclosures.Count).Append(")</h3><table id=\"disclosures\"><thead><tr><th>decided</th><th>provider</th><th>recipient</th><th>category</th><th>purpose</th><th>legal ground</th><th>rule</th><th>case</th><th>dispatched</th><th>acknowledged</th><th>hub copies deleted</th></tr></thead><tbody>");
        foreach (var d in report.Disclosures)
        {
            page.Append("<tr class=\"disclosure\">").Append(Td(Time(d.DecidedAt))).Append(Td(d.Provider)).Append(Td(d.Recipient)).Append(Td(d.Category))
                .Append(Td(d.Purpose)).Append(Td(d.LegalGround)).Append(Td(d.RuleId)).Append(Td(d.CaseReference))
                .Append(Td(Time(d.DispatchedAt))).Append(Td(Time(d.AcknowledgedAt))).Append(Td(Time(d.PurgedAt))).Append("</tr>");
        }

        page.Append("</tbody></table><h3>Refused (").Append(report.Refusals.Count).Append(")</h3><table id=\"refusals\"><thead><tr><th>decided</th><th>provider</th><th>recipient</th><th>category</th><th>purpose</th><th>reason</th></tr></thead><tbody>");
        foreach (var r in report.Refusals)
        {
            page.Append("<tr class=\"refusal\">").Append(Td(Time(r.DecidedAt))).Append(Td(r.Provider)).Append(Td(r.Recipient)).Append(Td(r.Category))
                .Append(Td(r.Purpose)).Append(Td(r.ReasonCode)).Append("</tr>");
        }

        page.Append("</tbody></table></section>");
    }

    private static async Task VerifyAsync(StringBuilder page, ClaimsPrincipal user, AuditVerifier verifier, AuditTrail trail, HubDbContext db, CancellationToken cancellationToken)
    {
        var result = await verifier.VerifyAsync(db, cancellationToken).ConfigureAwait(false);
        await trail.RecordAccessAsync(user, AuditKinds.AuditVerified, result.Valid ? "verified" : "failed",
            result.Valid ? ErrorCodes.AuditVerified : ErrorCodes.AuditVerificationFailed,
            result.Valid ? $"Hash chain of {result.Entries} entries verified on the web page." : $"Verification on the web page failed: {result.Problem}",
            [], cancellationToken).ConfigureAwait(false);
        page.Append("<h2>Verify chain</h2><p id=\"verify-status\" data-valid=\"").Append(result.Valid ? "true" : "false").Append("\" class=\"")
            .Append(result.Valid ? "ok" : "error").Append("\">")
            .Append(result.Valid ? "INTACT: " : "BROKEN: ")
            .Append(E(result.Valid ? $"{result.Entries} entries and {result.CheckpointsVerified} of {result.Checkpoints} signed checkpoint(s) verified in {result.Milliseconds} ms." : result.Problem))
            .Append("</p><dl><dt>first bad entry</dt><dd id=\"first-bad\">").Append(E(result.FirstBadSequence?.ToString(CultureInfo.InvariantCulture) ?? "—"))
            .Append("</dd><dt>head hash</dt><dd><code>").Append(E(result.HeadHash)).Append("</code></dd><dt>latest checkpoint</dt><dd>")
            .Append(E(result.LastCheckpointSequence is null ? "none yet" : $"{result.LastCheckpointSequence} entries, signed {Time(result.LastCheckpointAt)} UTC with key {result.KeyId}"))
            .Append("</dd></dl>");
    }

    private static string E(string? value) => Html.Encode(value ?? string.Empty);

    private static string Td(string? value) => "<td>" + E(value) + "</td>";

    private static string Time(DateTimeOffset? value) => value?.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) ?? string.Empty;

    private static string Input(string name, string label, string? value) =>
        $"<label>{E(label)} <input name=\"{name}\" id=\"{name}\" value=\"{E(value)}\"></label> ";

    private static string Select(string name, string label, string? value, string[] options)
    {
        var html = new StringBuilder($"<label>{E(label)} <select name=\"{name}\" id=\"{name}\">");
        foreach (var option in options)
        {
            html.Append("<option value=\"").Append(E(option)).Append('"').Append(option == (value ?? string.Empty) ? " selected" : string.Empty).Append('>')
                .Append(E(option.Length == 0 ? "any" : option)).Append("</option>");
        }

        return html.Append("</select></label> ").ToString();
    }
}
