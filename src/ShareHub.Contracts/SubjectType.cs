namespace ShareHub.Contracts;

/// <summary>
/// How the data subject of a signal is identified. The wire values are the lowercase strings in
/// <see cref="SubjectTypes"/>.
/// </summary>
public static class SubjectTypes
{
    /// <summary>A natural person identified by BSN (<see cref="Bsn"/>).</summary>
    public const string Bsn = "bsn";

    /// <summary>An organisation identified by KvK number (<see cref="KvkNumber"/>).</summary>
    public const string Kvk = "kvk";

    /// <summary>An address (postcode + house number, free text allowed).</summary>
    public const string Address = "address";

    /// <summary>A keyed pseudonym of a BSN, as seen by recipients that must not see the BSN itself.</summary>
    public const string Pseudonym = "pseudonym";

    /// <summary>The subject types a submitter may use.</summary>
    public static IReadOnlyList<string> Submittable { get; } = [Bsn, Kvk, Address];

    /// <summary>
    /// True when <paramref name="id"/> is a valid identifier of submittable type <paramref name="type"/>: a BSN passing
    /// the elfproef, an 8-digit KvK number, or an address of 1–200 characters without control characters.
    /// </summary>
    public static bool IsValidId(string? type, string? id) => type switch
    {
        Bsn => Contracts.Bsn.TryParse(id, out _),
        Kvk => KvkNumber.TryParse(id, out _),
        Address => !string.IsNullOrWhiteSpace(id) && id.Length <= 200 && !id.Any(char.IsControl),
        _ => false,
    };
}
