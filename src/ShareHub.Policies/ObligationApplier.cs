using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace ShareHub.Policies;

/// <summary>The recipient's view of a signal after the obligations were applied.</summary>
/// <param name="SubjectId">The subject identifier as the recipient may see it (a pseudonym when the BSN was pseudonymised).</param>
/// <param name="Payload">A new payload tree with the obligations applied; the input is never modified.</param>
/// <param name="Applied">What was applied, in words, for the audit trail; empty when nothing was obliged.</param>
public sealed record AppliedObligations(string SubjectId, JsonNode? Payload, IReadOnlyList<string> Applied);

/// <summary>
/// Applies a decision's <see cref="Obligations"/> to a payload before it is delivered. Pure: no I/O, no clock,
/// deterministic for a given key.
/// </summary>
public static partial class ObligationApplier
{
    /// <summary>The prefix of every pseudonym.</summary>
    public const string PseudonymPrefix = "psn:";

    /// <summary>
    /// Returns the payload as the recipient may see it.
    /// <list type="bullet">
    /// <item><description>StripFields: each entry is a property name or a dotted path (<c>a.b.c</c>); through arrays,
    /// the path applies to every element.</description></item>
    /// <item><description>PseudonymiseBsn: when <paramref name="subjectType"/> is <c>bsn</c>, the subject identifier
    /// becomes <see cref="Pseudonymise"/>'s pseudonym, and so does every occurrence of that BSN in payload strings,
    /// numbers and property names. Any other 9-digit number in a string that passes the BSN elfproef is
    /// pseudonymised too, so a co-subject's BSN (e.g. a partner's) does not leak.</description></item>
    /// </list>
    /// </summary>
    /// <param name="obligations">The decision's obligations.</param>
    /// <param name="subjectType">The subject's identifier type (<c>bsn</c>, <c>kvk</c>, ...).</param>
    /// <param name="subjectId">The subject's identifier.</param>
    /// <param name="payload">The provider's payload; cloned, never modified.</param>
    /// <param name="partnershipKey">The partnership's HMAC key.</param>
    public static AppliedObligations Apply(Obligations obligations, string subjectType, string subjectId, JsonNode? payload, ReadOnlySpan<byte> partnershipKey)
    {
        ArgumentNullException.ThrowIfNull(obligations);
        ArgumentNullException.ThrowIfNull(subjectType);
        ArgumentNullException.ThrowIfNull(subjectId);
        var copy = payload?.DeepClone();
        var applied = new List<string>();

        if (obligations.StripFields.Count > 0)
        {
            var removed = new List<string>();
            foreach (var path in obligations.StripFields)
            {
                if (copy is not null && Strip(copy, path.Split('.')) > 0)
                {
                    removed.Add(path);
                }
            }

            applied.Add(removed.Count > 0
                ? $"strip-fields: removed {string.Join(", ", removed)}"
                : $"strip-fields: none of {string.Join(", ", obligations.StripFields)} present");
        }

        var resultSubject = subjectId;
        if (obligations.PseudonymiseBsn)
        {
            var isBsn = string.Equals(subjectType, "bsn", StringComparison.OrdinalIgnoreCase);
            var key = partnershipKey.ToArray();
            var counter = new Counter();
            if (isBsn)
            {
                resultSubject = Pseudonymise("bsn", subjectId, key);
            }

            if (copy is not null)
            {
                copy = PseudonymiseNode(copy, isBsn ? subjectId : null, key, counter);
            }

            applied.Add(isBsn
                ? $"pseudonymise-bsn: subject BSN and {counter.Count} payload value(s) replaced by keyed pseudonym"
                : $"pseudonymise-bsn: subject is not a BSN ({subjectType}); {counter.Count} payload value(s) replaced by keyed pseudonym");
        }

        if (obligations.Retention is { } retention)
        {
            applied.Add($"retention: {RetentionPeriod.Describe(retention)}");
        }

        return new AppliedObligations(resultSubject, copy, applied);
    }

    /// <summary>
    /// The keyed pseudonym of an identifier: <c>"psn:"</c> + lowercase hex of the first 16 bytes of
    /// HMAC-SHA256(<paramref name="key"/>, lowercase(<paramref name="identifierType"/>) + ":" + identifier).
    /// Without the key it cannot be reversed or recomputed; with it, the hub can find a subject's records again
    /// (AVG art. 15 requests).
    /// </summary>
    /// <param name="identifierType">The identifier type, e.g. <c>bsn</c>.</param>
    /// <param name="identifier">The identifier, used as given (trimmed).</param>
    /// <param name="key">The partnership's key.</param>
    public static string Pseudonymise(string identifierType, string identifier, ReadOnlySpan<byte> key)
    {
        ArgumentNullException.ThrowIfNull(identifierType);
        ArgumentNullException.ThrowIfNull(identifier);
        var input = Encoding.UTF8.GetBytes(identifierType.Trim().ToLowerInvariant() + ":" + identifier.Trim());
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(key, input, mac);
        return PseudonymPrefix + Convert.ToHexStringLower(mac[..16]);
    }

    /// <summary>True when <paramref name="value"/> is 9 digits passing the BSN elfproef (9·d1 + 8·d2 + … + 2·d8 − d9 ≡ 0 mod 11).</summary>
    public static bool IsValidBsn(ReadOnlySpan<char> value)
    {
        if (value.Length != 9)
        {
            return false;
        }

        var sum = 0;
        for (var i = 0; i < 9; i++)
        {
            var digit = value[i] - '0';
            if (digit is < 0 or > 9)
            {
                return false;
            }

            sum += i < 8 ? (9 - i) * digit : -digit;
        }

        return sum % 11 == 0 && !value.SequenceEqual("000000000");
    }

    private static int Strip(JsonNode node, ReadOnlySpan<string> path)
    {
        switch (node)
        {
            case JsonArray array:
                var total = 0;
                foreach (var element in array)
                {
                    if (element is not null)
                    {
                        total += Strip(element, path);
                    }
                }

                return total;
            case JsonObject obj when path.Length == 1:
                return obj.Remove(path[0]) ? 1 : 0;
            case JsonObject obj:
                return obj[path[0]] is { } child ? Strip(child, path[1..]) : 0;
            default:
                return 0;
        }
    }

    private static JsonNode PseudonymiseNode(JsonNode node, string? subjectBsn, byte[] key, Counter counter)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var name in obj.Select(p => p.Key).ToList())
                {
                    var child = obj[name];
                    var newName = ReplaceBsns(name, subjectBsn, key, counter);
                    var newChild = child is null ? null : PseudonymiseNode(child, subjectBsn, key, counter);
                    if (!ReferenceEquals(newName, name))
                    {
                        obj.Remove(name);
                        obj[newName] = newChild;
                    }
                    else if (!ReferenceEquals(newChild, child))
                    {
                        obj[name] = newChild;
                    }
                }

                return obj;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    if (array[i] is { } element)
                    {
                        var replaced = PseudonymiseNode(element, subjectBsn, key, counter);
                        if (!ReferenceEquals(replaced, element))
                        {
                            array[i] = replaced;
                        }
                    }
                }

                return array;
            case JsonValue value when value.TryGetValue(out string? text):
                var newText = ReplaceBsns(text, subjectBsn, key, counter);
                return ReferenceEquals(newText, text) ? value : JsonValue.Create(newText);
            case JsonValue value when value.GetValueKind() == System.Text.Json.JsonValueKind.Number:
                // A BSN sent as a JSON number (leading zeros lost); compare its digits padded to 9.
                var raw = value.ToJsonString();
                if (subjectBsn is not null && raw.All(char.IsAsciiDigit) && raw.Length <= 9
                    && raw.PadLeft(9, '0') == subjectBsn.Trim())
                {
                    counter.Count++;
                    return JsonValue.Create(Pseudonymise("bsn", subjectBsn, key));
                }

                if (raw.Length == 9 && IsValidBsn(raw))
                {
                    counter.Count++;
                    return JsonValue.Create(Pseudonymise("bsn", raw, key));
                }

                return value;
            default:
                return node;
        }
    }

    /// <summary>Returns the same instance when nothing was replaced.</summary>
    private static string ReplaceBsns(string text, string? subjectBsn, byte[] key, Counter counter)
    {
        var result = text;
        var subject = subjectBsn?.Trim();

        // First the standalone 9-digit runs of the original text (the subject's BSN or any valid BSN), then the
        // subject's BSN inside longer digit runs. Inserted pseudonyms are never scanned again: their hex could
        // contain a 9-digit run by chance.
        if (result.Length >= 9 && NineDigits().IsMatch(result))
        {
            result = NineDigits().Replace(result, match =>
            {
                if (!string.Equals(match.Value, subject, StringComparison.Ordinal) && !IsValidBsn(match.ValueSpan))
                {
                    return match.Value;
                }

                counter.Count++;
                return Pseudonymise("bsn", match.Value, key);
            });
        }

        if (!string.IsNullOrEmpty(subject) && result.Contains(subject, StringComparison.Ordinal))
        {
            counter.Count += CountOccurrences(result, subject);
            result = result.Replace(subject, Pseudonymise("bsn", subject, key), StringComparison.Ordinal);
        }

        return string.Equals(result, text, StringComparison.Ordinal) ? text : result;
    }

    private static int CountOccurrences(string text, string value)
    {
        var count = 0;
        for (var i = text.IndexOf(value, StringComparison.Ordinal); i >= 0; i = text.IndexOf(value, i + value.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    // Nine digits not part of a longer digit run: a BSN written inside free text ("BSN 123456782 gezien").
    [GeneratedRegex(@"(?<!\d)\d{9}(?!\d)", RegexOptions.CultureInvariant)]
    private static partial Regex NineDigits();

    private sealed class Counter
    {
        public int Count { get; set; }
    }
}
