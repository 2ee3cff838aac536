namespace ShareHub.Policies.Tests;

/// <summary>Paths in the repository, found from the test's bin folder.</summary>
internal static class Repo
{
    /// <summary>A fixed moment for all tests: decisions and expiry warnings never depend on the wall clock.</summary>
    public static readonly DateTimeOffset Now = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    private static readonly Lazy<string> RootPath = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "policies", "partnership.yaml")) && Directory.Exists(Path.Combine(dir.FullName, "src")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("Repository root (with policies/partnership.yaml) not found above " + AppContext.BaseDirectory);
    });

    public static string Root => RootPath.Value;

    public static string Policies => Path.Combine(Root, "policies");

    public static string Fixture(string name) => Path.Combine(Root, "tests", "ShareHub.Policies.Tests", "Fixtures", name);

    private static readonly Lazy<PolicySet> ShippedSet = new(() =>
    {
        var result = PolicyLoader.LoadDirectory(Policies, Now);
        Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Problems));
        return result.Set!;
    });

    /// <summary>The shipped RIEC policy set, loaded once.</summary>
    public static PolicySet Shipped => ShippedSet.Value;
}
