namespace ShareHub.Policies.Tests;

/// <summary>Named behaviours of the shipped set that the demo and the broker rely on.</summary>
public class DecideTests
{
    private static readonly PolicySet Set = Repo.Shipped;

    private static Decision Decide(string from, string to, string category, string purpose, CaseContext? c = null) =>
        Set.Decide(new DecisionRequest(from, to, category, purpose, c), Repo.Now);

    [Fact]
    public void Decide_GemeenteFiscaalToFiod_IsDeniedWithNoRule()
    {
        var decision = Decide("gemeente-amsterdam", "fiod", "fiscaal", "casusanalyse");

        Assert.False(decision.IsPermitted);
        Assert.Equal(ReasonCodes.NoRule, decision.ReasonCode);
        Assert.Null(decision.RuleId);
        Assert.Equal("denied: no rule lets gemeente-amsterdam share 'fiscaal' with fiod for purpose 'casusanalyse'", decision.Explanation);
    }

    [Fact]
    public void Decide_GemeenteVastgoedToRiecForSignaalweging_IsPermittedWithoutCaseAndPseudonymised()
    {
        var decision = Decide("gemeente-amsterdam", "riec-amsterdam", "vastgoed", "signaalweging");

        Assert.True(decision.IsPermitted);
        Assert.Equal(ReasonCodes.Permitted, decision.ReasonCode);
        Assert.Equal("RIEC-SIG-01", decision.RuleId);
        Assert.Equal("gemeente-avg", decision.LegalGround!.Id);
        Assert.True(decision.Obligations.PseudonymiseBsn);
        Assert.StartsWith("permitted: rule RIEC-SIG-01 lets gemeente-amsterdam share 'vastgoed' with riec-amsterdam for purpose 'signaalweging' on the ground of AVG art. 6 lid 1 sub e", decision.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Decide_AnyoneBijzonderePersoonsgegevens_IsDeniedByExplicitRule()
    {
        foreach (var from in Set.Participants)
        {
            foreach (var to in Set.Participants)
            {
                foreach (var purpose in Set.Purposes)
                {
                    var decision = Decide(from.Code, to.Code, "bijzondere-persoonsgegevens", purpose.Code, new CaseContext("C-1", CasePhases.Casusoverleg, [from.Code, to.Code]));
                    Assert.Equal((false, ReasonCodes.ExplicitDeny, "DENY-ART9"), (decision.IsPermitted, decision.ReasonCode, decision.RuleId));
                }
            }
        }
    }

    [Fact]
    public void Decide_SpecialCategory_IsFlaggedAsAvgArticle9()
    {
        Assert.True(Set.FindCategory("bijzondere-persoonsgegevens")!.IsSpecial);
        Assert.True(Set.FindCategory("strafvorderlijk")!.IsCriminal);
        Assert.False(Set.FindCategory("vastgoed")!.IsSpecial);
    }

    [Fact]
    public void Decide_CaseReferenceWithoutPhase_AsTheBrokerSendsIt_PermitsCaseRequiredRules()
    {
        var decision = Decide("politie", "riec-amsterdam", "politiegegevens", "casusanalyse", new CaseContext("RIEC-2026-0042", null, []));

        Assert.True(decision.IsPermitted);
        Assert.Equal("RIEC-CAS-02", decision.RuleId);
    }

    [Fact]
    public void Decide_WhitespaceCaseReference_CountsAsNoCase()
    {
        var decision = Decide("om", "riec-amsterdam", "strafvorderlijk", "signaalweging", new CaseContext("  ", CasePhases.Casusoverleg, ["om"]));

        Assert.Equal(ReasonCodes.CaseReferenceRequired, decision.ReasonCode);
    }

    [Fact]
    public void Decide_NoCaseDecision_IsCachedButRespectsValidityBoundaries()
    {
        var request = new DecisionRequest("gemeente-amsterdam", "riec-amsterdam", "uitkering-arbeid", "signaalweging");
        var during = new DateTimeOffset(2027, 12, 31, 23, 59, 59, TimeSpan.Zero);
        var after = new DateTimeOffset(2028, 1, 1, 0, 0, 0, TimeSpan.Zero);

        var first = Set.Decide(request, during);
        var second = Set.Decide(request, during);
        var later = Set.Decide(request, after);
        var back = Set.Decide(request, during);

        Assert.Same(first, second);
        Assert.True(first.IsPermitted);
        Assert.Equal(ReasonCodes.RuleNotInForce, later.ReasonCode);
        Assert.True(back.IsPermitted);
    }

    [Fact]
    public void Decide_AfterPilotEnds_ExplainsTheValidityAsWrittenInTheFile()
    {
        var decision = Set.Decide(new DecisionRequest("gemeente-amsterdam", "riec-amsterdam", "uitkering-arbeid", "signaalweging"), new DateTimeOffset(2028, 1, 2, 0, 0, 0, TimeSpan.Zero));

        Assert.Equal(ReasonCodes.RuleNotInForce, decision.ReasonCode);
        Assert.EndsWith("but it is not in force at 2028-01-02 (valid from 2025-03-01 through 2027-12-31)", decision.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Decide_NotInForce_NamesTheMomentAskedAboutEvenWhenAnotherMomentOfItsWindowWasAskedFirst()
    {
        var set = PolicyLoader.LoadDirectory(Repo.Policies, Repo.Now).Set!;
        var request = new DecisionRequest("gemeente-amsterdam", "riec-amsterdam", "uitkering-arbeid", "signaalweging");

        var first = set.Decide(request, new DateTimeOffset(2028, 1, 2, 0, 0, 0, TimeSpan.Zero));
        var second = set.Decide(request, new DateTimeOffset(2031, 6, 1, 0, 0, 0, TimeSpan.Zero));

        Assert.Contains("not in force at 2028-01-02", first.Explanation, StringComparison.Ordinal);
        Assert.Equal(ReasonCodes.RuleNotInForce, second.ReasonCode);
        Assert.Contains("not in force at 2031-06-01", second.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Decide_NullCodes_AreUnknownNotExceptions()
    {
        var decision = Set.Decide(new DecisionRequest(null!, null!, null!, null!), Repo.Now);

        Assert.Equal(ReasonCodes.Unknown, decision.ReasonCode);
    }

    [Fact]
    public void ShippedSet_HasTheRequiredCodes()
    {
        string[] participants = ["gemeente-amsterdam", "belastingdienst", "fiod", "politie", "om", "riec-amsterdam", "uwv", "douane"];
        string[] purposes = ["signaalweging", "bevraging", "casusanalyse", "bestuurlijke-interventie", "strafrechtelijke-interventie", "fiscale-interventie"];
        string[] categories = ["identiteit", "bsn", "kvk-ubo", "vastgoed", "fiscaal", "uitkering-arbeid", "vergunning-bibob", "politiegegevens", "strafvorderlijk", "bijzondere-persoonsgegevens"];

        Assert.All(participants, p => Assert.True(Set.IsParticipant(p), p));
        Assert.All(purposes, p => Assert.True(Set.IsKnownPurpose(p), p));
        Assert.All(categories, c => Assert.True(Set.IsKnownCategory(c), c));
        Assert.All(Set.Rules.Where(r => r.Effect == RuleEffect.Permit), r => Assert.NotNull(r.Ground));
    }
}
