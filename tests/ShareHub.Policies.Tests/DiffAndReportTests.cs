namespace ShareHub.Policies.Tests;

public class DiffAndReportTests
{
    private static PolicySet Load(params PolicyFile[] files)
    {
        var result = PolicyLoader.LoadFiles(files, Repo.Now);
        Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Problems));
        return result.Set!;
    }

    private static PolicySet WithRules(string rules) => Load(LoaderTests.MinimalSet(rules));

    private const string Base = """
        rules:
          - { id: SIG, effect: permit, providers: gemeente-a, recipients: riec, categories: identiteit, purposes: signaalweging, ground: wgs }
          - { id: CAS, effect: permit, providers: fiod, recipients: riec, categories: fiscaal, purposes: signaalweging, ground: wgs, conditions: { case-required: true } }
        """;

    [Fact]
    public void Diff_SameSet_HasNoChanges()
    {
        var diff = PolicyDiff.Compare(Repo.Shipped, Repo.Shipped, Repo.Now);

        Assert.False(diff.HasChanges);
        Assert.Contains("no changes", PolicyReport.FormatDiff(diff), StringComparison.Ordinal);
    }

    [Fact]
    public void Diff_RemovedRule_IsReportedAsRevokedPermitToDeny()
    {
        var old = WithRules(Base);
        var @new = WithRules(Base.Replace("  - { id: SIG", "  # - { id: SIG", StringComparison.Ordinal));

        var diff = PolicyDiff.Compare(old, @new, Repo.Now);

        var change = Assert.Single(diff.Decisions);
        Assert.Equal(("gemeente-a", "riec", "identiteit", "signaalweging"), (change.Provider, change.Recipient, change.Category, change.Purpose));
        Assert.Equal(DecisionChangeKind.Revoked, change.Kind);
        Assert.Equal("permit without a case (SIG)", change.Before.ToString());
        Assert.Equal("deny (SH-P0001)", change.After.ToString());
        Assert.Contains(diff.Definitions, d => d is { Kind: "removed", Subject: "rule SIG" });
    }

    [Fact]
    public void Diff_NewRule_IsReportedAsGrantedDenyToPermit()
    {
        var old = WithRules(Base);
        var @new = WithRules(Base + "\n  - { id: NEW, effect: permit, providers: riec, recipients: gemeente-a, categories: identiteit, purposes: signaalweging, ground: wgs, conditions: { case-phases: [interventie] } }\n");

        var diff = PolicyDiff.Compare(old, @new, Repo.Now);

        var change = Assert.Single(diff.Decisions);
        Assert.Equal(DecisionChangeKind.Granted, change.Kind);
        Assert.Equal(["interventie"], change.After.Phases);
        Assert.Equal("permit only with a case in phase interventie (NEW)", change.After.ToString());
        Assert.Contains(diff.Definitions, d => d is { Kind: "added", Subject: "rule NEW" });
    }

    [Fact]
    public void Diff_DroppedCaseCondition_IsWidened_AndAddedOneIsNarrowed()
    {
        var old = WithRules(Base);
        var dropped = WithRules(Base.Replace(", conditions: { case-required: true }", string.Empty, StringComparison.Ordinal));
        var added = WithRules(Base.Replace("purposes: signaalweging, ground: wgs }", "purposes: signaalweging, ground: wgs, conditions: { case-required: true } }", StringComparison.Ordinal));

        var widened = Assert.Single(PolicyDiff.Compare(old, dropped, Repo.Now).Decisions);
        var narrowed = Assert.Single(PolicyDiff.Compare(old, added, Repo.Now).Decisions);

        Assert.Equal(DecisionChangeKind.Widened, widened.Kind);
        Assert.Equal("permit with a case in any phase (CAS)", widened.Before.ToString());
        Assert.Equal("permit without a case (CAS)", widened.After.ToString());
        Assert.Equal(DecisionChangeKind.Narrowed, narrowed.Kind);
        Assert.Equal(("gemeente-a", "identiteit"), (narrowed.Provider, narrowed.Category));
    }

    [Fact]
    public void Diff_ChangedObligations_IsModified()
    {
        var old = WithRules(Base);
        var @new = WithRules(Base.Replace("id: SIG, effect: permit,", "id: SIG, effect: permit, obligations: { pseudonymise-bsn: true },", StringComparison.Ordinal));

        var change = Assert.Single(PolicyDiff.Compare(old, @new, Repo.Now).Decisions);

        Assert.Equal(DecisionChangeKind.Modified, change.Kind);
    }

    [Fact]
    public void Diff_NewDenyRule_RevokesWhatItCovers()
    {
        var old = Repo.Shipped;
        var files = PolicyLoader.EnumeratePolicyFiles(Repo.Policies)
            .Select(f => new PolicyFile(f, File.ReadAllText(Path.Combine(Repo.Policies, f))))
            .Append(new PolicyFile("rules/95-extra.yaml", """
                rules:
                  - { id: DENY-AMSTELVEEN-VASTGOED, effect: deny, providers: gemeente-amstelveen, recipients: riec-amsterdam, categories: vastgoed, purposes: signaalweging }
                """))
            .ToArray();

        var diff = PolicyDiff.Compare(old, Load(files), Repo.Now);

        var change = Assert.Single(diff.Decisions);
        Assert.Equal(("gemeente-amstelveen", "riec-amsterdam", "vastgoed", "signaalweging", DecisionChangeKind.Revoked), (change.Provider, change.Recipient, change.Category, change.Purpose, change.Kind));
        Assert.Equal("deny (SH-P0002)", change.After.ToString());
        var text = PolicyReport.FormatDiff(diff);
        Assert.Contains("revoked (permit → deny):", text, StringComparison.Ordinal);
        Assert.Contains("gemeente-amstelveen → riec-amsterdam  'vastgoed' for 'signaalweging': permit without a case (RIEC-SIG-01) ⇒ deny (SH-P0002)", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Report_ValidSet_SummarisesVersionLabelAndNotice()
    {
        var text = PolicyReport.FormatLoadResult(PolicyLoader.LoadDirectory(Repo.Policies, Repo.Now), "policies");

        Assert.Contains("policy set 'RIEC Amsterdam-Amstelland' in policies is valid:", text, StringComparison.Ordinal);
        Assert.Contains($"version {Repo.Shipped.Version} (label 2026.1-concept)", text, StringComparison.Ordinal);
        Assert.Contains("notice: CONCEPT", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Report_InvalidSet_ListsEveryProblemCompilerStyle()
    {
        var text = PolicyReport.FormatLoadResult(PolicyLoader.LoadDirectory(Repo.Fixture("broken-references"), Repo.Now), "broken-references");

        var lines = text.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(8, lines.Length);
        Assert.Equal("rules/signaal.yaml(5,17): error SH-P1010: unknown participant 'fiot' in rule 'R1' recipients (did you mean 'fiod'?)", lines[1]);
        Assert.Equal("policy set in broken-references is INVALID: 7 error(s), 0 warning(s)", lines[^1]);
    }

    [Fact]
    public void Report_Decision_ShowsReasonGroundObligationsAndCoveringRules()
    {
        var request = new DecisionRequest("politie", "uwv", "politiegegevens", "casusanalyse", new CaseContext("RIEC-2026-0042", "casusoverleg", ["politie", "om"]));

        var text = PolicyReport.FormatDecision(Repo.Shipped, Repo.Shipped.Explain(request, Repo.Now));

        Assert.Contains("decision:    DENY  SH-P0005 (recipient not a participant of the case)", text, StringComparison.Ordinal);
        Assert.Contains("rule:        RIEC-CAS-03", text, StringComparison.Ordinal);
        Assert.Contains("politiegegevens is criminal-law data (AVG art. 10)", text, StringComparison.Ordinal);
        Assert.Contains("RIEC-CAS-03              permit condition not met", text, StringComparison.Ordinal);
        Assert.Contains("(rules/30-casus.yaml:", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Report_PermitDecision_ShowsCitationAndObligations()
    {
        var request = new DecisionRequest("gemeente-amsterdam", "riec-amsterdam", "vastgoed", "signaalweging");

        var text = PolicyReport.FormatDecision(Repo.Shipped, Repo.Shipped.Explain(request, Repo.Now));

        Assert.Contains("decision:    PERMIT  SH-P0000", text, StringComparison.Ordinal);
        Assert.Contains("ground:      AVG art. 6 lid 1 sub e", text, StringComparison.Ordinal);
        Assert.Contains("obligations: pseudonymise BSN; strip melder.naam, melder.telefoon; retention 180 days", text, StringComparison.Ordinal);
    }
}
