using System.Diagnostics.CodeAnalysis;

namespace ShareHub.Contracts;

/// <summary>
/// A Dutch citizen service number (burgerservicenummer): nine digits that pass the elfproef
/// 9·d1 + 8·d2 + … + 2·d8 − 1·d9 ≡ 0 (mod 11). A <see cref="Bsn"/> value can only be obtained
/// through <see cref="TryParse"/> or <see cref="Parse"/>, so an invalid BSN is unrepresentable.
/// </summary>
public readonly record struct Bsn
{
    private Bsn(string value) => Value = value;

    /// <summary>The nine digits.</summary>
    public string Value { get; }

    /// <summary>Parses nine digits that pass the elfproef; anything else returns <c>false</c>.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out Bsn bsn)
    {
        bsn = default;
        if (text is null || text.Length != 9)
        {
            return false;
        }

        var sum = 0;
        for (var i = 0; i < 9; i++)
        {
            var c = text[i];
            if (c is < '0' or > '9')
            {
                return false;
            }

            var weight = i == 8 ? -1 : 9 - i;
            sum += weight * (c - '0');
        }

        // All zeros passes the arithmetic but is never issued.
        if (sum % 11 != 0 || text == "000000000")
        {
            return false;
        }

        bsn = new Bsn(text);
        return true;
    }

    /// <summary>Parses a BSN or throws <see cref="FormatException"/>.</summary>
    public static Bsn Parse(string text) =>
        TryParse(text, out var bsn) ? bsn : throw new FormatException("Not a valid BSN (nine digits passing the elfproef).");

    /// <summary>Never the digits: a BSN must not leak into logs through string formatting.</summary>
    public override string ToString() => "Bsn(***)";
}
