using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Data;
using ShareHub.Broker.Tests.Infrastructure;

namespace ShareHub.Broker.Tests.Component;

/// <summary>The running broker picks up a valid policy change, refuses an invalid one, and audits both.</summary>
public sealed class PolicyReloadTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task ChangedPolicySet_ValidIsActivatedWithoutRestart_InvalidIsRefusedAndOldStays()
    {
        var policies = CopyShippedPolicies();
        await using var hub = new ComponentHub(new() { ["ShareHub:PoliciesPath"] = policies });
        var client = hub.ClientFor(Signals.Gemeente);

        var before = await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));
        Assert.True(before.Decisions.Single().Permitted);

        // A jurist withdraws the signal rule for gemeenten: replace the rule's effect in the file on disk.
        var signalRules = Path.Combine(policies, "rules", "10-signaal.yaml");
        var original = await File.ReadAllTextAsync(signalRules);
        var withdrawn = original.Replace("  - id: RIEC-SIG-01\n", "  - id: RIEC-SIG-01-WITHDRAWN\n", StringComparison.Ordinal)
            .Replace("    providers: role:gemeente\n    recipients: riec-amsterdam\n    categories: [identiteit, kvk-ubo, vastgoed, vergunning-bibob]",
                     "    providers: role:gemeente\n    recipients: riec-amsterdam\n    categories: [identiteit, vastgoed, vergunning-bibob]", StringComparison.Ordinal);
        Assert.NotEqual(original, withdrawn);
        await File.WriteAllTextAsync(signalRules, withdrawn);

        Assert.True(await PartnerRecorder.WaitUntilAsync(
            () => hub.Factory.WithDbAsync(db => db.AuditEntries.CountAsync(a => a.Kind == AuditKinds.PolicyActivated).ContinueWith(t => t.Result == 2)), Patience));
        var after = await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));
        Assert.False(after.Decisions.Single().Permitted);
        Assert.NotEqual(before.PolicyVersion, after.PolicyVersion);

        // A broken edit (a rule citing an undefined ground) is refused; the last valid set stays active.
        await File.WriteAllTextAsync(signalRules, withdrawn.Replace("ground: gemeente-avg", "ground: no-such-ground", StringComparison.Ordinal));
        Assert.True(await PartnerRecorder.WaitUntilAsync(
            () => hub.Factory.WithDbAsync(db => db.AuditEntries.AnyAsync(a => a.Kind == AuditKinds.PolicyRejected)), Patience));
        var rejected = await hub.Factory.WithDbAsync(db => db.AuditEntries.SingleAsync(a => a.Kind == AuditKinds.PolicyRejected));
        Assert.Contains("no-such-ground", rejected.Explanation, StringComparison.Ordinal);

        var still = await client.SubmitAcceptedAsync(Signals.KvkSignal(Signals.Riec));
        Assert.Equal(after.PolicyVersion, still.PolicyVersion);
    }

    private static string CopyShippedPolicies()
    {
        var source = Broker.Policies.PolicyStore.ResolveDirectory("policies", AppContext.BaseDirectory);
        var target = Path.Combine(Path.GetTempPath(), "sharehub-tests", "policies-" + Guid.NewGuid().ToString("N"));
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var destination = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination);
        }

        return target;
    }
}
