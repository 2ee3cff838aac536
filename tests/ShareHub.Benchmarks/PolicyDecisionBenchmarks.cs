using BenchmarkDotNet.Attributes;
using ShareHub.Policies;

namespace ShareHub.Benchmarks;

/// <summary>
/// <see cref="PolicySet.Decide"/> over the shipped RIEC set (policies/). Goal (issue #3): p99 ≤ 5 µs and
/// ≥ 1M decisions/s on one core.
/// </summary>
[MemoryDiagnoser]
public class PolicyDecisionBenchmarks
{
    private PolicySet _set = null!;
    private DecisionRequest[] _mix = [];
    private DecisionRequest _noCasePermit = null!;
    private DecisionRequest _noCaseNoRule = null!;
    private DecisionRequest _explicitDeny = null!;
    private DecisionRequest _casePermit = null!;
    private DecisionRequest _casePhaseDenied = null!;
    private DecisionRequest _unknown = null!;

    [GlobalSetup]
    public void Setup()
    {
        _set = Workload.LoadShippedSet();
        _mix = Workload.Mix(_set, 4096, seed: 42);
        var casus = new CaseContext("RIEC-2026-0042", CasePhases.Casusoverleg, ["politie", "om", "riec-amsterdam"]);
        _noCasePermit = new DecisionRequest("gemeente-amsterdam", "riec-amsterdam", "vastgoed", "signaalweging");
        _noCaseNoRule = new DecisionRequest("gemeente-amsterdam", "fiod", "fiscaal", "casusanalyse");
        _explicitDeny = new DecisionRequest("gemeente-amsterdam", "riec-amsterdam", "bijzondere-persoonsgegevens", "signaalweging");
        _casePermit = new DecisionRequest("politie", "om", "politiegegevens", "casusanalyse", casus);
        _casePhaseDenied = new DecisionRequest("politie", "om", "politiegegevens", "casusanalyse", casus with { Phase = CasePhases.Signaal });
        _unknown = new DecisionRequest("woningcorporatie", "riec-amsterdam", "vastgoed", "signaalweging");
    }

    [Benchmark(Description = "permit, no case (cached)")]
    public Decision NoCasePermit() => _set.Decide(_noCasePermit, Workload.At);

    [Benchmark(Description = "deny SH-P0001 no rule")]
    public Decision NoCaseNoRule() => _set.Decide(_noCaseNoRule, Workload.At);

    [Benchmark(Description = "deny SH-P0002 explicit")]
    public Decision ExplicitDeny() => _set.Decide(_explicitDeny, Workload.At);

    [Benchmark(Description = "permit, case in phase + participant")]
    public Decision CasePermit() => _set.Decide(_casePermit, Workload.At);

    [Benchmark(Description = "deny SH-P0004 phase (builds sentence)")]
    public Decision CasePhaseDenied() => _set.Decide(_casePhaseDenied, Workload.At);

    [Benchmark(Description = "deny SH-P0006 unknown (builds sentence)")]
    public Decision Unknown() => _set.Decide(_unknown, Workload.At);

    /// <summary>4,096 mixed requests (all combinations' kinds, ~40% with a case); reported per decision.</summary>
    [Benchmark(Description = "mixed workload, per decision", OperationsPerInvoke = 4096)]
    public int Mixed()
    {
        var permitted = 0;
        foreach (var request in _mix)
        {
            if (_set.Decide(request, Workload.At).IsPermitted)
            {
                permitted++;
            }
        }

        return permitted;
    }
}
