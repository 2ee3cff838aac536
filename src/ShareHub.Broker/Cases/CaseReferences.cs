using System.Text.RegularExpressions;

namespace ShareHub.Broker.Cases;

/// <summary>The format of a case reference (casusnummer), for signals and cases alike.</summary>
public static partial class CaseReferences
{
    /// <summary>1–64 characters: letters, digits and <c>. _ -</c> (no <c>/</c>: references appear in URL paths), starting with a letter or digit.</summary>
    public static bool IsValid(string? reference) => reference is not null && Pattern().IsMatch(reference);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
