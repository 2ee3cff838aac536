using ShareHub.Policies;

namespace ShareHub.Benchmarks;

/// <summary>The shipped policy set and a reproducible mix of requests over it.</summary>
public static class Workload
{
    /// <summary>A fixed decision moment (no wall clock in measurements either).</summary>
    public static readonly DateTimeOffset At = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    /// <summary>Loads <c>policies/</c>, found from the working directory or the binary's folder upwards.</summary>
    public static PolicySet LoadShippedSet()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "policies");
                if (File.Exists(Path.Combine(candidate, "partnership.yaml")))
                {
                    var result = PolicyLoader.LoadDirectory(candidate, At);
                    return result.Set ?? throw new InvalidOperationException("The shipped policy set is invalid: " + string.Join("; ", result.Problems));
                }
            }
        }

        throw new DirectoryNotFoundException("policies/partnership.yaml not found above the working directory.");
    }

    /// <summary>
    /// <paramref name="count"/> requests drawn uniformly over all (provider, recipient, category, purpose)
    /// combinations; 40% carry a case in a random phase with a random half of the participants; 2% use an unknown code.
    /// </summary>
    public static DecisionRequest[] Mix(PolicySet set, int count, int seed)
    {
        var random = new Random(seed);
        var participants = set.Participants.Select(p => p.Code).ToArray();
        var categories = set.Categories.Select(c => c.Code).ToArray();
        var purposes = set.Purposes.Select(p => p.Code).ToArray();
        var requests = new DecisionRequest[count];
        for (var i = 0; i < count; i++)
        {
            CaseContext? caseContext = null;
            if (random.NextDouble() < 0.4)
            {
                var members = participants.Where(_ => random.NextDouble() < 0.5).ToArray();
                caseContext = new CaseContext("RIEC-2026-" + i, CasePhases.All[random.Next(CasePhases.All.Count)], members);
            }

            var provider = random.NextDouble() < 0.02 ? "onbekend" : participants[random.Next(participants.Length)];
            requests[i] = new DecisionRequest(provider, participants[random.Next(participants.Length)], categories[random.Next(categories.Length)], purposes[random.Next(purposes.Length)], caseContext);
        }

        return requests;
    }
}
