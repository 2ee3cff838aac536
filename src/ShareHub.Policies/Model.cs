namespace ShareHub.Policies;

/// <summary>An organisation taking part in the partnership (samenwerkingsverband).</summary>
/// <param name="Code">Stable organisation code, e.g. <c>gemeente-amsterdam</c>.</param>
/// <param name="Role">The kind of organisation, e.g. <c>gemeente</c>; rules may match on it with <c>role:gemeente</c>.</param>
/// <param name="Name">Display name.</param>
public sealed record Participant(string Code, string Role, string Name);

/// <summary>A purpose (doel) for which data may be shared; the unit of purpose limitation (doelbinding, AVG art. 5(1)(b)).</summary>
/// <param name="Code">Stable code, e.g. <c>signaalweging</c>.</param>
/// <param name="Description">What the purpose covers, in the partnership's own words.</param>
public sealed record Purpose(string Code, string Description);

/// <summary>A category of data a signal can carry.</summary>
/// <param name="Code">Stable code, e.g. <c>vastgoed</c>.</param>
/// <param name="Description">What the category contains.</param>
/// <param name="IsSpecial">Special category of personal data (AVG art. 9).</param>
/// <param name="IsCriminal">Personal data relating to criminal convictions and offences (AVG art. 10).</param>
public sealed record DataCategory(string Code, string Description, bool IsSpecial, bool IsCriminal);

/// <summary>A legal ground (grondslag) a rule cites.</summary>
/// <param name="Id">Stable id used by rules, e.g. <c>wpg-20</c>.</param>
/// <param name="Citation">The citation as a jurist writes it, e.g. <c>Wpg art. 20</c>.</param>
/// <param name="Note">Why the ground applies, or what must be verified.</param>
public sealed record LegalGround(string Id, string Citation, string? Note);

/// <summary>One question to the policy engine: may <paramref name="Provider"/> share data of <paramref name="Category"/>
/// with <paramref name="Recipient"/> for <paramref name="Purpose"/>?</summary>
/// <param name="Provider">Organisation code of the provider (from its authenticated identity).</param>
/// <param name="Recipient">Organisation code of the intended recipient.</param>
/// <param name="Category">Data category code.</param>
/// <param name="Purpose">Purpose code.</param>
/// <param name="Case">The case (casus) the exchange belongs to, if any.</param>
public sealed record DecisionRequest(string Provider, string Recipient, string Category, string Purpose, CaseContext? Case = null);

/// <summary>The case (casus) an exchange belongs to.</summary>
/// <param name="Reference">The case reference; empty or whitespace counts as no reference.</param>
/// <param name="Phase">The case's current phase (see <see cref="CasePhases"/>), or null when unknown.</param>
/// <param name="Participants">Organisation codes taking part in the case.</param>
public sealed record CaseContext(string Reference, string? Phase, IReadOnlyCollection<string> Participants);

/// <summary>The phases of the RIEC process a case goes through.</summary>
public static class CasePhases
{
    /// <summary>A signal has been received and is being assessed.</summary>
    public const string Signaal = "signaal";

    /// <summary>Partners are asked whether they know the subject (hit/no-hit).</summary>
    public const string Bevraging = "bevraging";

    /// <summary>Weighing and prioritising (weging/prioritering).</summary>
    public const string Weging = "weging";

    /// <summary>The case is discussed by the partners involved.</summary>
    public const string Casusoverleg = "casusoverleg";

    /// <summary>Each partner carries out its own intervention.</summary>
    public const string Interventie = "interventie";

    /// <summary>Evaluated and closed.</summary>
    public const string Afgesloten = "afgesloten";

    /// <summary>All phases in process order.</summary>
    public static IReadOnlyList<string> All { get; } = [Signaal, Bevraging, Weging, Casusoverleg, Interventie, Afgesloten];

    /// <summary>True when <paramref name="phase"/> is one of <see cref="All"/> (ordinal, case-sensitive).</summary>
    public static bool IsKnown(string? phase) => phase is not null && All.Contains(phase, StringComparer.Ordinal);
}

/// <summary>
/// What a permitted exchange obliges the hub to do before the recipient sees the data.
/// </summary>
/// <param name="PseudonymiseBsn">Replace the subject's BSN by a keyed pseudonym (see <see cref="ObligationApplier"/>).</param>
/// <param name="StripFields">Payload properties (names or dotted paths) removed before delivery.</param>
/// <param name="Retention">How long the recipient may keep the data, counted from delivery; null when the rule sets none.</param>
public sealed record Obligations(bool PseudonymiseBsn, IReadOnlyList<string> StripFields, TimeSpan? Retention)
{
    /// <summary>No obligations.</summary>
    public static Obligations None { get; } = new(false, [], null);

    /// <summary>True when nothing is obliged.</summary>
    public bool IsNone => !PseudonymiseBsn && StripFields.Count == 0 && Retention is null;

    /// <summary>Value equality including the contents of <see cref="StripFields"/>.</summary>
    public bool Equals(Obligations? other) =>
        other is not null
        && PseudonymiseBsn == other.PseudonymiseBsn
        && Retention == other.Retention
        && StripFields.SequenceEqual(other.StripFields, StringComparer.Ordinal);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(PseudonymiseBsn);
        hash.Add(Retention);
        foreach (var field in StripFields)
        {
            hash.Add(field, StringComparer.Ordinal);
        }

        return hash.ToHashCode();
    }

    /// <summary>Human summary, e.g. <c>pseudonymise BSN; strip bron, informant; retention 730 days</c>, or <c>none</c>.</summary>
    public override string ToString()
    {
        if (IsNone)
        {
            return "none";
        }

        var parts = new List<string>(3);
        if (PseudonymiseBsn)
        {
            parts.Add("pseudonymise BSN");
        }

        if (StripFields.Count > 0)
        {
            parts.Add("strip " + string.Join(", ", StripFields));
        }

        if (Retention is { } retention)
        {
            parts.Add("retention " + RetentionPeriod.Describe(retention));
        }

        return string.Join("; ", parts);
    }
}

/// <summary>The outcome of <see cref="PolicySet.Decide"/>. A denial is a value, never an exception (STYLE §8).</summary>
/// <param name="IsPermitted">True when the exchange is permitted.</param>
/// <param name="ReasonCode">Stable reason code (see <see cref="ReasonCodes"/>).</param>
/// <param name="Explanation">One human sentence, starting with <c>permitted:</c> or <c>denied:</c>.</param>
/// <param name="RuleId">The deciding rule: the permit rule applied, the deny rule that matched, or the permit rule
/// whose case condition was not met; null when no rule applies.</param>
/// <param name="LegalGround">The legal ground of the permit rule; null for denials.</param>
/// <param name="Obligations">What the hub must apply before delivery; <see cref="Obligations.None"/> for denials.</param>
/// <param name="PolicyVersion">The SHA-256 content hash of the policy set that decided.</param>
public sealed record Decision(bool IsPermitted, string ReasonCode, string Explanation, string? RuleId, LegalGround? LegalGround, Obligations Obligations, string PolicyVersion);
