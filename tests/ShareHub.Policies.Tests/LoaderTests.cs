namespace ShareHub.Policies.Tests;

/// <summary>Broken policy fixtures: every problem is reported, each with its file, line, column and code.</summary>
public class LoaderTests
{
    private static PolicyLoadResult Load(string fixture) => PolicyLoader.LoadDirectory(Repo.Fixture(fixture), Repo.Now);

    private static void AssertProblem(PolicyLoadResult result, string file, int line, int column, string code, string messagePart, ProblemSeverity severity = ProblemSeverity.Error)
    {
        var match = result.Problems.SingleOrDefault(p => p.File == file && p.Line == line && p.Code == code);
        Assert.True(match is not null, $"expected {code} at {file}({line}); got:{Environment.NewLine}{string.Join(Environment.NewLine, result.Problems)}");
        Assert.Equal(column, match.Column);
        Assert.Contains(messagePart, match.Message, StringComparison.Ordinal);
        Assert.Equal(severity, match.Severity);
    }

    [Fact]
    public void Load_MalformedYaml_ReportsEveryBrokenFileWithPosition()
    {
        var result = Load("broken-yaml");

        Assert.False(result.IsValid);
        Assert.Null(result.Set);
        Assert.Equal(3, result.Problems.Count);
        AssertProblem(result, "rules/duplicate-key.yaml", 3, 5, ProblemCodes.MalformedYaml, "Duplicate key id");
        AssertProblem(result, "rules/indent.yaml", 4, 4, ProblemCodes.MalformedYaml, "did not find expected '-' indicator");
        AssertProblem(result, "rules/signaal.yaml", 4, 16, ProblemCodes.MalformedYaml, "unclosed '['");
    }

    [Fact]
    public void Load_UnknownReferences_ReportsEachWithSuggestion()
    {
        var result = Load("broken-references");

        Assert.False(result.IsValid);
        Assert.Equal(7, result.Problems.Count);
        AssertProblem(result, "rules/signaal.yaml", 4, 16, ProblemCodes.UnknownRole, "unknown role 'gemeenten' in rule 'R1' providers: no participant has it (did you mean 'gemeente'?)");
        AssertProblem(result, "rules/signaal.yaml", 5, 17, ProblemCodes.UnknownParticipant, "unknown participant 'fiot' in rule 'R1' recipients (did you mean 'fiod'?)");
        AssertProblem(result, "rules/signaal.yaml", 6, 30, ProblemCodes.UnknownCategory, "unknown category 'fiskaal' in rule 'R1' categories (did you mean 'fiscaal'?)");
        AssertProblem(result, "rules/signaal.yaml", 7, 15, ProblemCodes.UnknownPurpose, "unknown purpose 'signaalwegen' in rule 'R1' purposes (did you mean 'signaalweging'?)");
        AssertProblem(result, "rules/signaal.yaml", 8, 13, ProblemCodes.UndefinedGround, "rule 'R1' cites legal ground 'wgs-riec', which is not defined under 'grounds'");
        AssertProblem(result, "rules/signaal.yaml", 9, 5, ProblemCodes.PermitWithoutGround, "permit rule 'R2' cites no legal ground");
        AssertProblem(result, "rules/signaal.yaml", 16, 21, ProblemCodes.UnknownPhase, "unknown case phase 'overleg' in rule 'R2'");
    }

    [Fact]
    public void Load_DuplicateIds_AcrossFiles_PointsAtSecondDefinitionAndNamesTheFirst()
    {
        var result = Load("broken-duplicates");

        Assert.Equal(2, result.Problems.Count);
        AssertProblem(result, "rules/b.yaml", 2, 5, ProblemCodes.DuplicateId, "duplicate participant code 'riec' (first defined at partnership.yaml:6)");
        AssertProblem(result, "rules/b.yaml", 4, 9, ProblemCodes.DuplicateId, "duplicate rule id 'R1' (first defined at rules/a.yaml:2)");
    }

    [Fact]
    public void Load_InvalidValues_ReportsEffectKeysRetentionDatesAndConditionalDeny()
    {
        var result = Load("broken-values");

        Assert.Equal(7, result.Problems.Count);
        AssertProblem(result, "rules/signaal.yaml", 3, 13, ProblemCodes.InvalidValue, "invalid effect 'allow' in rule 'R1': write permit or deny");
        AssertProblem(result, "rules/signaal.yaml", 5, 5, ProblemCodes.UnknownKey, "unknown key 'recipient' in a rule (did you mean 'recipients'?)");
        AssertProblem(result, "rules/signaal.yaml", 2, 5, ProblemCodes.MissingField, "rule 'R1' has no 'recipients'");
        AssertProblem(result, "rules/signaal.yaml", 17, 18, ProblemCodes.InvalidRetention, "invalid retention 'P2X' in rule 'R2'");
        AssertProblem(result, "rules/signaal.yaml", 20, 14, ProblemCodes.InvalidValidity, "rule 'R2' is valid until 2025-12-31, which is not after its start 2026-01-01");
        AssertProblem(result, "rules/signaal.yaml", 27, 5, ProblemCodes.DenyWithConditions, "deny rule 'R3' has conditions or obligations");
        AssertProblem(result, "rules/signaal.yaml", 37, 13, ProblemCodes.InvalidValidity, "invalid date '1 maart 2025' in rule 'R4'");
    }

    [Fact]
    public void Load_PermitFullyCoveredByDeny_IsReportedAsDeadRule()
    {
        var result = Load("broken-dead-rule");

        var problem = Assert.Single(result.Problems);
        AssertProblem(result, "rules/signaal.yaml", 2, 5, ProblemCodes.DeadRule, "permit rule 'PERMIT-FISCAAL' can never apply: deny rule 'DENY-FISCAAL' (rules/signaal.yaml:9) covers everything it permits");
        Assert.Equal("rules/signaal.yaml(2,5): error SH-P1021: " + problem.Message, problem.ToString());
    }

    [Fact]
    public void Load_PermitPartlyCoveredByDeny_IsNotDead()
    {
        var files = MinimalSet("""
            rules:
              - { id: P, effect: permit, providers: "*", recipients: riec, categories: [identiteit, fiscaal], purposes: signaalweging, ground: wgs }
              - { id: D, effect: deny, providers: "*", recipients: "*", categories: fiscaal, purposes: "*" }
            """);

        var result = PolicyLoader.LoadFiles(files, Repo.Now);

        Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Problems));
    }

    [Fact]
    public void Load_ExpiredRule_IsAWarningAndTheSetStaysValid()
    {
        var result = Load("expired-rule");

        Assert.True(result.IsValid);
        Assert.NotNull(result.Set);
        AssertProblem(result, "rules/signaal.yaml", 11, 14, ProblemCodes.ExpiredRule, "rule 'OLD-PILOT' expired on 2025-12-31", ProblemSeverity.Warning);
        Assert.Empty(result.Errors);
    }

    [Fact]
    public void Load_ExpiredRule_IsNoProblemBeforeItsEnd()
    {
        var result = PolicyLoader.LoadDirectory(Repo.Fixture("expired-rule"), new DateTimeOffset(2025, 12, 31, 23, 0, 0, TimeSpan.Zero));

        Assert.Empty(result.Problems);
    }

    [Fact]
    public void Load_WithoutPartnershipSection_IsInvalid()
    {
        var result = Load("broken-no-partnership");

        var problem = Assert.Single(result.Problems);
        Assert.Equal(ProblemCodes.MissingField, problem.Code);
        Assert.Equal("rules.yaml", problem.File);
        Assert.Contains("no 'partnership' section", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingDirectory_IsAProblemNotAnException()
    {
        var result = PolicyLoader.LoadDirectory(Path.Combine(Repo.Root, "does-not-exist"), Repo.Now);

        Assert.False(result.IsValid);
        Assert.Equal(ProblemCodes.NoPolicyFiles, Assert.Single(result.Problems).Code);
    }

    [Fact]
    public void Load_ShippedSet_IgnoresTheTestsSubdirectory()
    {
        Assert.DoesNotContain(Repo.Shipped.Files, f => f.StartsWith("tests/", StringComparison.Ordinal));
        Assert.Contains("partnership.yaml", Repo.Shipped.Files);
        Assert.Contains(Repo.Shipped.Files, f => f.StartsWith("rules/", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_ShippedSet_HasNoProblemsAtAll()
    {
        var result = PolicyLoader.LoadDirectory(Repo.Policies, Repo.Now);

        Assert.Empty(result.Problems);
    }

    [Fact]
    public void Version_IsStableSha256OverNamesAndContents_IndependentOfOrder()
    {
        PolicyFile[] files = [new("b.yaml", "x: 1\n"), new("a.yaml", "y: 2\n")];

        var forward = PolicyLoader.ComputeVersion(files);
        var backward = PolicyLoader.ComputeVersion(files.Reverse());
        var renamed = PolicyLoader.ComputeVersion([new("c.yaml", "x: 1\n"), new("a.yaml", "y: 2\n")]);
        var edited = PolicyLoader.ComputeVersion([new("b.yaml", "x: 2\n"), new("a.yaml", "y: 2\n")]);

        Assert.Matches("^[0-9a-f]{64}$", forward);
        Assert.Equal(forward, backward);
        Assert.NotEqual(forward, renamed);
        Assert.NotEqual(forward, edited);
    }

    [Fact]
    public void Version_OfShippedSet_EqualsHashOfItsFiles()
    {
        var files = PolicyLoader.EnumeratePolicyFiles(Repo.Policies)
            .Select(f => new PolicyFile(f, File.ReadAllText(Path.Combine(Repo.Policies, f))));

        Assert.Equal(PolicyLoader.ComputeVersion(files), Repo.Shipped.Version);
        Assert.Equal("2026.1-concept", Repo.Shipped.Label);
        Assert.Equal("RIEC Amsterdam-Amstelland", Repo.Shipped.Partnership);
    }

    [Fact]
    public void Load_ShippedSet_CarriesTheJuristReviewNotice()
    {
        Assert.Contains("verified by the partnership's jurist", Repo.Shipped.Notice, StringComparison.Ordinal);
        foreach (var file in Repo.Shipped.Files)
        {
            var text = File.ReadAllText(Path.Combine(Repo.Policies, file));
            Assert.True(text.Contains("jurist", StringComparison.OrdinalIgnoreCase), $"{file} lacks the jurist-review marker");
        }
    }

    [Theory]
    [InlineData("P2Y", 730)]
    [InlineData("P6M", 180)]
    [InlineData("P1Y6M", 545)]
    [InlineData("P2W", 14)]
    [InlineData("P90D", 90)]
    [InlineData("90 days", 90)]
    [InlineData("1 day", 1)]
    public void RetentionPeriod_AcceptedForms_ParseToDays(string text, int days)
    {
        Assert.True(RetentionPeriod.TryParse(text, out var period));
        Assert.Equal(TimeSpan.FromDays(days), period);
    }

    [Theory]
    [InlineData("P")]
    [InlineData("P0D")]
    [InlineData("2 years")]
    [InlineData("PT5H")]
    [InlineData("-P1Y")]
    [InlineData("")]
    public void RetentionPeriod_InvalidForms_AreRejected(string text)
    {
        Assert.False(RetentionPeriod.TryParse(text, out _));
    }

    internal static PolicyFile[] MinimalSet(string rules) =>
    [
        new("partnership.yaml", File.ReadAllText(Path.Combine(Repo.Fixture("expired-rule"), "partnership.yaml"))),
        new("rules/r.yaml", rules),
    ];
}
