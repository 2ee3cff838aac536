using System.Globalization;
using System.Text.RegularExpressions;

namespace ShareHub.Policies;

/// <summary>
/// Parses retention periods written as an ISO 8601 duration of whole years, months, weeks and days
/// (<c>P2Y</c>, <c>P6M</c>, <c>P1Y6M</c>, <c>P90D</c>, <c>P2W</c>) or as <c>N days</c>. A retention period is a
/// span from the moment of delivery, so calendar units are fixed: a year counts 365 days, a month 30 days.
/// </summary>
public static partial class RetentionPeriod
{
    /// <summary>Parses <paramref name="text"/>; false when it is not a positive period in one of the accepted forms.</summary>
    public static bool TryParse(string? text, out TimeSpan period)
    {
        period = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var trimmed = text.Trim();
        var days = DaysPattern().Match(trimmed);
        long total;
        if (days.Success)
        {
            if (!long.TryParse(days.Groups["n"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out total))
            {
                return false;
            }
        }
        else
        {
            var iso = IsoPattern().Match(trimmed);
            if (!iso.Success || trimmed.Length == 1)
            {
                return false;
            }

            total = 0;
            foreach (var (group, factor) in new[] { ("y", 365L), ("m", 30L), ("w", 7L), ("d", 1L) })
            {
                if (iso.Groups[group].Success)
                {
                    if (!long.TryParse(iso.Groups[group].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > 100_000)
                    {
                        return false;
                    }

                    total += n * factor;
                }
            }
        }

        // Upper bound keeps TimeSpan arithmetic safe; no retention decree comes near a century.
        if (total <= 0 || total > 36_500)
        {
            return false;
        }

        period = TimeSpan.FromDays(total);
        return true;
    }

    /// <summary>Renders a period as whole days, e.g. <c>730 days</c>.</summary>
    public static string Describe(TimeSpan period)
    {
        var days = (long)Math.Round(period.TotalDays);
        return days == 1 ? "1 day" : string.Create(CultureInfo.InvariantCulture, $"{days} days");
    }

    [GeneratedRegex(@"^(?<n>\d{1,6})\s*(day|days|d)$", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex DaysPattern();

    [GeneratedRegex(@"^P(?:(?<y>\d{1,6})Y)?(?:(?<m>\d{1,6})M)?(?:(?<w>\d{1,6})W)?(?:(?<d>\d{1,6})D)?$", RegexOptions.CultureInvariant)]
    private static partial Regex IsoPattern();
}
