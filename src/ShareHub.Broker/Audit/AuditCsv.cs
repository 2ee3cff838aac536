using System.Globalization;
using System.Text;
using System.Text.Json;
using ShareHub.Contracts;

namespace ShareHub.Broker.Audit;

/// <summary>CSV (RFC 4180) and JSON export of audit records.</summary>
public static class AuditCsv
{
    /// <summary>JSON settings of exports (web defaults: camelCase).</summary>
    public static JsonSerializerOptions Json { get; } = new(JsonSerializerDefaults.Web) { WriteIndented = false };

    /// <summary>The header row: Logius names where the standard has one.</summary>
    public static readonly string[] Columns =
    [
        "sequence", "id", "name", "start_time", "end_time", "status_code", "outcome", "actor_organisation", "actor",
        "signal_id", "delivery_id", "provider", "recipient", "category", "purpose", "case_reference",
        "dpl.core.data_subject_id_type", "dpl.core.data_subject_id", "reason_code", "explanation", "rule_id", "legal_ground",
        "obligations", "policy_version", "dpl.core.processing_activity_id", "trace_id", "span_id", "parent_span_id",
        "foreign_operation", "hash",
    ];

    /// <summary>Writes records as CSV with a header row; CRLF line ends, fields quoted when needed.</summary>
    public static string Write(IEnumerable<AuditRecordDto> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        var text = new StringBuilder();
        text.AppendJoin(',', Columns).Append("\r\n");
        foreach (var r in records)
        {
            var time = r.RecordedAt.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
            string?[] fields =
            [
                r.Sequence.ToString(CultureInfo.InvariantCulture), r.Id.ToString(CultureInfo.InvariantCulture), r.Kind, time, time, r.StatusCode,
                r.Outcome, r.ActorOrganisation, r.Actor, r.SignalId?.ToString(), r.DeliveryId?.ToString(), r.Provider, r.Recipient, r.Category,
                r.Purpose, r.CaseReference, r.SubjectType, r.SubjectPseudonym, r.ReasonCode, r.Explanation, r.RuleId, r.LegalGround,
                r.Obligations, r.PolicyVersion, r.ProcessingActivityId, r.TraceId, r.SpanId, r.ParentSpanId, r.ForeignOperation, r.Hash,
            ];
            for (var i = 0; i < fields.Length; i++)
            {
                if (i > 0)
                {
                    text.Append(',');
                }

                text.Append(Field(fields[i]));
            }

            text.Append("\r\n");
        }

        return text.ToString();
    }

    /// <summary>
    /// One field. Values from partners could start with = + - @ and be run as formulas by a spreadsheet (CSV
    /// injection): such a value is prefixed with an apostrophe.
    /// </summary>
    private static string Field(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return string.Empty;
        }

        if (value[0] is '=' or '+' or '-' or '@' or '\t' or '\r')
        {
            value = "'" + value;
        }

        return value.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;
    }
}
