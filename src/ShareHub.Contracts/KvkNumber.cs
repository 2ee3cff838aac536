using System.Diagnostics.CodeAnalysis;

namespace ShareHub.Contracts;

/// <summary>A Chamber of Commerce registration number (KvK-nummer): exactly eight digits.</summary>
public readonly record struct KvkNumber
{
    private KvkNumber(string value) => Value = value;

    /// <summary>The eight digits.</summary>
    public string Value { get; }

    /// <summary>Parses exactly eight ASCII digits.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out KvkNumber number)
    {
        number = default;
        if (text is null || text.Length != 8 || !text.All(char.IsAsciiDigit))
        {
            return false;
        }

        number = new KvkNumber(text);
        return true;
    }

    /// <inheritdoc />
    public override string ToString() => Value;
}
