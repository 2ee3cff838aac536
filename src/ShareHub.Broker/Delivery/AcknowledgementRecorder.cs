using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Data;
using ShareHub.Contracts;

namespace ShareHub.Broker.Delivery;

/// <summary>
/// One recipient's claim that it processed a delivery, as the bus or the deliveries API received it.
/// </summary>
/// <param name="DeliveryId">The delivery acknowledged.</param>
/// <param name="Recipient">The acknowledging organisation (the token's, or the hub-sent message's).</param>
/// <param name="Actor">Who acknowledged, for the audit trail (<c>bus:&lt;org&gt;</c> or the API client).</param>
/// <param name="AcknowledgedAt">When the recipient processed it.</param>
internal sealed record AcknowledgementClaim(Guid DeliveryId, string Recipient, string Actor, DateTimeOffset AcknowledgedAt);

/// <summary>
/// Records recipients' acknowledgements, once per delivery, for both paths that take them: the bus consumer
/// (<see cref="DeliveryAcknowledgedConsumer"/>) and the batch endpoint (<c>POST /api/v1/deliveries/acknowledgements</c>).
/// One query for the deliveries and their earlier acknowledgements — none for deliveries this instance published and
/// has not seen acknowledged (<see cref="PublishedDeliveries"/>) — and ONE unit of the group commit
/// (<see cref="GroupCommitWriter"/>: one transaction, one chain-head lock, shared with concurrent writes) for all the
/// rows and audit entries: an <c>acknowledged</c> entry (SH-D0001) and an <see cref="Acknowledgement"/> row per
/// delivery of the claimant's own, a <c>rejected</c> entry (SH-D0002) and no row for an unknown delivery or another
/// organisation's. A delivery recorded already (earlier, or by an earlier claim of the same batch) is absorbed.
/// </summary>
/// <param name="db">The scope's context, for the lookups.</param>
/// <param name="writer">Commits the rows and audit entries.</param>
/// <param name="published">This instance's published deliveries that need no lookup.</param>
/// <param name="time">The hub's clock (ReceivedAt, audit time, default AcknowledgedAt).</param>
/// <param name="logger">Debug notes about absorbed duplicates.</param>
/// <param name="namesOtherRecipient">
/// Whether a rejection entry names the organisation the delivery was really addressed to. The bus is the hub's own
/// (partners cannot publish on it), so its rejections may say; a rejection of an API caller says only "another
/// organisation", as the caller's privacy officer reads its organisation's audit entries.
/// </param>
internal sealed class AcknowledgementRecorder(HubDbContext db, GroupCommitWriter writer, PublishedDeliveries published, TimeProvider time, ILogger logger, bool namesOtherRecipient)
{
    /// <summary>
    /// Records <paramref name="claims"/> and returns one outcome per claim, in order. Committed when it returns. A
    /// concurrent duplicate (another instance, the other path) that commits first spoils the transaction on the
    /// unique key: it is rolled back and every claim recorded on its own, the duplicate answered as already
    /// acknowledged. Any other storage failure is thrown.
    /// </summary>
    public async Task<IReadOnlyList<AcknowledgementOutcome>> RecordAsync(IReadOnlyList<AcknowledgementClaim> claims, CancellationToken cancellationToken)
    {
        // Deliveries this instance published and nobody acknowledged here yet need no lookup (PublishedDeliveries); the
        // others — duplicates, another instance's, anything forgotten — are read with their earlier acknowledgement.
        var deliveries = new Dictionary<Guid, AcknowledgedDelivery>(claims.Count);
        var lookup = new List<Guid>();
        foreach (var id in claims.Select(a => a.DeliveryId).Distinct())
        {
            if (published.TryTake(id, out var delivery))
            {
                deliveries.Add(id, delivery);
            }
            else
            {
                lookup.Add(id);
            }
        }

        var recorded = new HashSet<Guid>();
        if (lookup.Count > 0)
        {
            foreach (var (delivery, isRecorded) in await Lookup(db)(db, lookup).ToListAsync(cancellationToken).ConfigureAwait(false))
            {
                deliveries.Add(delivery.DeliveryId, delivery);
                if (isRecorded)
                {
                    recorded.Add(delivery.DeliveryId);
                }
            }
        }

        var now = time.GetUtcNow();
        var outcomes = new AcknowledgementOutcome[claims.Count];
        var unit = new AcknowledgementUnit();

        for (var i = 0; i < claims.Count; i++)
        {
            var claim = claims[i];
            deliveries.TryGetValue(claim.DeliveryId, out var delivery);
            if (delivery is null || delivery.Recipient != claim.Recipient)
            {
                unit.Entries.Add(Rejected(claim.DeliveryId, claim.Recipient, claim.Actor,
                    delivery is null ? null : namesOtherRecipient ? $"'{delivery.Recipient}'" : AnotherOrganisation, now));
                outcomes[i] = AcknowledgementOutcome.NotFound;
                continue;
            }

            if (!recorded.Add(claim.DeliveryId))
            {
                logger.LogDebug("Duplicate acknowledgement of {DeliveryId} absorbed", claim.DeliveryId);
                outcomes[i] = AcknowledgementOutcome.AlreadyAcknowledged;
                continue;
            }

            unit.Acknowledgements.Add(new Acknowledgement
            {
                DeliveryId = claim.DeliveryId,
                Recipient = claim.Recipient,
                AcknowledgedAt = claim.AcknowledgedAt,
                ReceivedAt = now,
            });
            var acknowledged = AuditRecords.Acknowledged(delivery, claim.Recipient, now);
            acknowledged.Actor = claim.Actor;
            unit.Entries.Add(acknowledged);
            outcomes[i] = AcknowledgementOutcome.Acknowledged;
        }

        if (unit.Rows == 0)
        {
            return outcomes;
        }

        try
        {
            await writer.CommitAsync(unit, cancellationToken).ConfigureAwait(false);
            return outcomes;
        }
        catch (DbUpdateException) when (claims.Count > 1)
        {
            // A concurrent duplicate recorded one of them first and spoiled the batch's transaction, which rolled
            // back: record each on its own, so the others are not held up.
            for (var i = 0; i < claims.Count; i++)
            {
                outcomes[i] = (await RecordAsync([claims[i]], cancellationToken).ConfigureAwait(false))[0];
            }

            return outcomes;
        }
        catch (DbUpdateException)
        {
            if (!await IsAlreadyAcknowledgedAsync(claims[0].DeliveryId).ConfigureAwait(false))
            {
                throw; // a real storage failure
            }

            // A concurrent duplicate won the race: the acknowledgement is recorded exactly once.
            logger.LogDebug("Concurrent duplicate acknowledgement of {DeliveryId} absorbed", claims[0].DeliveryId);
            return [AcknowledgementOutcome.AlreadyAcknowledged];
        }
    }

    /// <summary>A delivery that claims name, with what its acknowledgement entry repeats, and whether it is acknowledged already.</summary>
    private sealed record Found(AcknowledgedDelivery Delivery, bool Recorded);

    /// <summary>The lookup, compiled once per model (<see cref="Lookup"/>).</summary>
    private static readonly ConditionalWeakTable<IModel, Func<HubDbContext, List<Guid>, IAsyncEnumerable<Found>>> Lookups = [];

    /// <summary>
    /// One query for the deliveries, their decision entries and whether each is acknowledged already. A join, not
    /// EXISTS: PostgreSQL may run an EXISTS in the select list as a hashed subplan that reads the whole table. Only the
    /// columns an acknowledgement entry repeats: reading the whole outbox row (its message) and decision entry was the
    /// broker's largest source of strings (allocation ticks at 500 signals/s, docs/benchmarks.md session 15).
    /// Compiled, so a call builds and inspects no expression tree (3 % of the broker's CPU at 1,100 signals/s, perf),
    /// and once per model because EF Core refuses a compiled query on a context of another model (each database
    /// provider has its own).
    /// </summary>
    private static Func<HubDbContext, List<Guid>, IAsyncEnumerable<Found>> Lookup(HubDbContext db) =>
        Lookups.GetValue(db.Model, static _ => EF.CompileAsyncQuery((HubDbContext context, List<Guid> ids) =>
            from o in context.Outbox.AsNoTracking()
            where ids.Contains(o.DeliveryId)
            join a in context.Acknowledgements on o.DeliveryId equals a.DeliveryId into earlier
            from a in earlier.DefaultIfEmpty()
            select new Found(
                new AcknowledgedDelivery(
                    o.DeliveryId,
                    o.Recipient,
                    o.SignalId,
                    o.AuditEntry!.Provider,
                    o.AuditEntry.Category,
                    o.AuditEntry.Purpose,
                    o.AuditEntry.CaseReference,
                    o.AuditEntry.SubjectType,
                    o.AuditEntry.SubjectPseudonym,
                    o.AuditEntry.RuleId,
                    o.AuditEntry.LegalGround,
                    o.AuditEntry.PolicyVersion,
                    o.AuditEntry.TraceId),
                a != null)));

    /// <summary>How a rejection told to the claimant's side names the delivery's real recipient: not at all.</summary>
    internal const string AnotherOrganisation = "another organisation";

    /// <summary>
    /// The audit entry of a refused acknowledgement: <paramref name="organisation"/> acknowledged a delivery the hub
    /// never queued (<paramref name="addressedTo"/> null) or one addressed to <paramref name="addressedTo"/>.
    /// </summary>
    internal static AuditEntry Rejected(Guid deliveryId, string organisation, string actor, string? addressedTo, DateTimeOffset now) => new()
    {
        Kind = AuditKinds.Acknowledgement,
        RecordedAt = now,
        ActorOrganisation = organisation,
        Actor = actor,
        DeliveryId = deliveryId,
        Recipient = organisation,
        Outcome = "rejected",
        ReasonCode = ErrorCodes.AcknowledgementRejected,
        Explanation = addressedTo is null
            ? $"'{organisation}' acknowledged delivery {deliveryId}, which the hub never queued."
            : $"'{organisation}' acknowledged delivery {deliveryId}, which was addressed to {addressedTo}.",
    };

    private Task<bool> IsAlreadyAcknowledgedAsync(Guid deliveryId) =>
        db.Acknowledgements.AnyAsync(a => a.DeliveryId == deliveryId);

    /// <summary>One claim batch's acknowledgement rows and audit entries (acknowledged and rejected).</summary>
    private sealed class AcknowledgementUnit : WriteUnit
    {
        internal override string Kind => "acknowledgements";

        /// <inheritdoc />
        internal override bool Urgent => true;

        public List<Acknowledgement> Acknowledgements { get; } = [];

        public List<AuditEntry> Entries { get; } = [];

        internal override int Rows => Acknowledgements.Count + Entries.Count;

        internal override IEnumerable<AuditEntry> AuditEntries => Entries;

        internal override void AddTo(GroupRows rows)
        {
            rows.Acknowledgements.AddRange(Acknowledgements);
            rows.AuditEntries.AddRange(Entries);
        }
    }
}
