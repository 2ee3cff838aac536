using Microsoft.Extensions.DependencyInjection;
using ShareHub.Broker.Data;
using ShareHub.Broker.Delivery;

namespace ShareHub.Broker.Tests.Component;

/// <summary>The order in which the group commit takes queued units (<see cref="GroupCommitWriter"/>).</summary>
public sealed class GroupCommitOrderTests
{
    [Fact]
    public async Task UrgentUnit_QueuedAfterASubmission_IsWrittenBeforeIt_AndBothCommit()
    {
        await using var hub = new ComponentHub(new() { ["ShareHub:Dispatcher:Enabled"] = "false" });
        var writer = hub.Factory.Services.GetRequiredService<GroupCommitWriter>();
        var written = new List<string>();
        using var gate = new ManualResetEventSlim();

        // The committer is busy with a first group (its unit holds it) while a submission and then an urgent unit queue.
        var busy = writer.CommitAsync(new ProbeUnit("busy", urgent: false, written, gate), CancellationToken.None);
        Assert.True(SpinWait.SpinUntil(() => { lock (written) { return written.Count == 1; } }, TimeSpan.FromSeconds(30)));
        var submission = writer.CommitAsync(new ProbeUnit("submission", urgent: false, written), CancellationToken.None);
        var urgent = writer.CommitAsync(new ProbeUnit("urgent", urgent: true, written), CancellationToken.None);
        gate.Set();

        await Task.WhenAll(busy, submission, urgent).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(["busy", "urgent", "submission"], written);
    }

    /// <summary>A unit that writes no rows and records when the committer takes it; <paramref name="gate"/> holds the committer.</summary>
    private sealed class ProbeUnit(string name, bool urgent, List<string> written, ManualResetEventSlim? gate = null) : WriteUnit
    {
        internal override string Kind => "probe";

        internal override int Rows => 1;

        internal override bool Urgent => urgent;

        internal override IEnumerable<AuditEntry> AuditEntries => [];

        internal override void AddTo(GroupRows rows)
        {
            lock (written)
            {
                written.Add(name);
            }

            gate?.Wait(TimeSpan.FromSeconds(30));
        }
    }
}
