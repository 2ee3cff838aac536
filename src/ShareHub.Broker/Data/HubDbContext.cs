using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Audit;

namespace ShareHub.Broker.Data;

/// <summary>
/// The hub's database: signals, audit entries, outbox and acknowledgements. Inject this type everywhere; the instance
/// is always one of the provider-specific subclasses (<see cref="SqliteHubDbContext"/>, <see cref="PostgresHubDbContext"/>,
/// <see cref="SqlServerHubDbContext"/>), each with its own migrations under <c>Data/Migrations/&lt;provider&gt;</c>
/// (EF Core "Migrations with Multiple Providers": one context type per provider).
/// </summary>
public abstract class HubDbContext : DbContext
{
    /// <summary>For the provider-specific subclasses in this assembly only.</summary>
    private protected HubDbContext(DbContextOptions options)
        : base(options)
    {
        // SaveChanges inside a transaction that is already open (the audit chain interceptor opens one to lock the
        // chain head; the dispatcher's claim holds one) would otherwise wrap its batch in a savepoint: two extra round
        // trips per write. Nothing here continues a transaction after a failed SaveChanges — every caller rolls back —
        // so the savepoint never served a purpose.
        Database.AutoSavepointsEnabled = false;
    }

    /// <summary>Submitted signals.</summary>
    public DbSet<Signal> Signals => Set<Signal>();

    /// <summary>Append-only audit trail.</summary>
    public DbSet<AuditEntry> AuditEntries => Set<AuditEntry>();

    /// <summary>Transactional outbox of deliveries.</summary>
    public DbSet<OutboxMessage> Outbox => Set<OutboxMessage>();

    /// <summary>Recipients' acknowledgements.</summary>
    public DbSet<Acknowledgement> Acknowledgements => Set<Acknowledgement>();

    /// <summary>Cases (casussen) with their participants and linked signals.</summary>
    public DbSet<Case> Cases => Set<Case>();

    /// <summary>Signals linked to cases.</summary>
    public DbSet<CaseSignal> CaseSignals => Set<CaseSignal>();

    /// <summary>Hit/no-hit questions with one answer row per participant asked.</summary>
    public DbSet<HitNoHitQuestion> HitNoHitQuestions => Set<HitNoHitQuestion>();

    /// <summary>Answers to hit/no-hit questions.</summary>
    public DbSet<HitNoHitAnswer> HitNoHitAnswers => Set<HitNoHitAnswer>();

    /// <inheritdoc />
    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Signal>(e =>
        {
            e.ToTable("signals");
            e.HasKey(s => s.Id);
            e.Property(s => s.Provider).HasMaxLength(64);
            e.Property(s => s.SubmittedBy).HasMaxLength(128);
            e.Property(s => s.SubjectType).HasMaxLength(16);
            e.Property(s => s.SubjectId).HasMaxLength(256);
            e.Property(s => s.SubjectPseudonym).HasMaxLength(64);
            e.Property(s => s.Category).HasMaxLength(64);
            e.Property(s => s.Purpose).HasMaxLength(64);
            e.Property(s => s.CaseReference).HasMaxLength(64);
            e.Property(s => s.PolicyVersion).HasMaxLength(64);
            e.HasIndex(s => s.SubjectPseudonym);
            e.Property(s => s.IdempotencyKey).HasMaxLength(64);
            e.Property(s => s.RequestHash).HasMaxLength(64);
            e.HasIndex(s => new { s.Provider, s.IdempotencyKey }).IsUnique();
        });

        modelBuilder.Entity<AuditEntry>(e =>
        {
            e.ToTable("audit_entries");
            e.HasKey(a => a.Id);
            e.Property(a => a.Id).ValueGeneratedOnAdd();
            e.Property(a => a.Kind).HasMaxLength(32);
            e.Property(a => a.ActorOrganisation).HasMaxLength(64);
            e.Property(a => a.Actor).HasMaxLength(128);
            e.Property(a => a.Provider).HasMaxLength(64);
            e.Property(a => a.Recipient).HasMaxLength(64);
            e.Property(a => a.Category).HasMaxLength(64);
            e.Property(a => a.Purpose).HasMaxLength(64);
            e.Property(a => a.CaseReference).HasMaxLength(64);
            e.Property(a => a.SubjectType).HasMaxLength(16);
            e.Property(a => a.SubjectPseudonym).HasMaxLength(64);
            e.Property(a => a.Outcome).HasMaxLength(16);
            e.Property(a => a.ReasonCode).HasMaxLength(16);
            e.Property(a => a.RuleId).HasMaxLength(128);
            e.Property(a => a.PolicyVersion).HasMaxLength(64);
            e.Property(a => a.TraceId).HasMaxLength(32);
            // Every index costs each appended entry a write inside the group commit, so there is one per query that
            // needs it (docs/architecture.md, "Indexes"): a signal's entries (status, idempotent replay, case
            // workflow), a subject's (AVG art. 15), a case's history — only entries with a case reference are in that
            // one. No index on DeliveryId (no query looks entries up by it) nor on Provider/Recipient: the organisation
            // filter, Provider = x OR Recipient = x OR ActorOrganisation = x, could use them only together with a
            // third on ActorOrganisation, and walks the chain order (the Sequence index) instead.
            e.HasIndex(a => a.SignalId);
            e.HasIndex(a => a.SubjectPseudonym);
            e.HasIndex(a => a.CaseReference)
                .HasFilter(Database.IsSqlServer() ? "[CaseReference] IS NOT NULL" : "\"CaseReference\" IS NOT NULL");
        });

        modelBuilder.Entity<OutboxMessage>(e =>
        {
            e.ToTable("outbox");
            e.HasKey(o => o.Id);
            e.Property(o => o.Id).ValueGeneratedOnAdd();
            e.Property(o => o.Recipient).HasMaxLength(64);
            e.Property(o => o.MessageType).HasMaxLength(32);
            e.HasIndex(o => o.DeliveryId).IsUnique();
            e.HasIndex(o => o.SignalId);
            // Only case events and questions have a CaseId (the purge of a closed case looks for them): signal
            // deliveries stay out of this index, on insert and again on the dispatched mark.
            e.HasIndex(o => o.CaseId)
                .HasFilter(Database.IsSqlServer() ? "[CaseId] IS NOT NULL" : "\"CaseId\" IS NOT NULL");
            // The rows still to publish, in outbox order: the sweep's claim reads this index and stops after one batch.
            // A plain index on DispatchedAt would hold every row ever marked (each update adds an entry; the old one
            // stays until VACUUM), and bitmap scans of its NULL range read all of them on every sweep.
            e.HasIndex(o => o.Id, "IX_outbox_Pending")
                .HasFilter(Database.IsSqlServer() ? "[DispatchedAt] IS NULL" : "\"DispatchedAt\" IS NULL");
            // Restrict: an audit entry is never deleted to make room for (or because of) a delivery.
            e.HasOne(o => o.AuditEntry).WithMany().HasForeignKey(o => o.AuditEntryId).OnDelete(DeleteBehavior.Restrict);
        });

        modelBuilder.Entity<Identity.UsedClientAssertion>(e =>
        {
            e.ToTable("used_client_assertions");
            e.HasKey(u => u.Id);
            e.Property(u => u.Id).HasMaxLength(400);
            e.HasIndex(u => u.ExpiresAt);
        });

        modelBuilder.Entity<Acknowledgement>(e =>
        {
            e.ToTable("acknowledgements");
            e.HasKey(a => a.DeliveryId);
            e.Property(a => a.Recipient).HasMaxLength(64);
        });

        modelBuilder.Entity<Case>(e =>
        {
            e.ToTable("cases");
            e.HasKey(c => c.Id);
            e.Property(c => c.Reference).HasMaxLength(64);
            e.HasIndex(c => c.Reference).IsUnique();
            e.Property(c => c.Owner).HasMaxLength(64);
            e.Property(c => c.OpenedBy).HasMaxLength(128);
            e.Property(c => c.Phase).HasMaxLength(16);
            e.Property(c => c.Weighing).HasMaxLength(2000);
            e.Property(c => c.Revision).IsConcurrencyToken();
            e.HasIndex(c => c.ClosedAt);
            e.HasIndex(c => c.RetainUntil);
            if (Database.IsSqlite())
            {
                e.Property(c => c.RetainUntil).HasConversion(AuditModel.UnixMicroseconds); // comparable in SQL (see AuditModel)
            }

            e.HasMany(c => c.Participants).WithOne().HasForeignKey(p => p.CaseId).OnDelete(DeleteBehavior.Cascade);
            e.HasMany(c => c.Signals).WithOne().HasForeignKey(s => s.CaseId).OnDelete(DeleteBehavior.Cascade);
        });

        modelBuilder.Entity<CaseParticipant>(e =>
        {
            e.ToTable("case_participants");
            e.HasKey(p => new { p.CaseId, p.Organisation });
            e.Property(p => p.Organisation).HasMaxLength(64);
        });

        modelBuilder.Entity<CaseSignal>(e =>
        {
            e.ToTable("case_signals");
            e.HasKey(s => new { s.CaseId, s.SignalId });
            e.HasIndex(s => s.SignalId);
            e.HasOne<Signal>().WithMany().HasForeignKey(s => s.SignalId).OnDelete(DeleteBehavior.Restrict);
        });

        modelBuilder.Entity<HitNoHitQuestion>(e =>
        {
            e.ToTable("hit_no_hit_questions");
            e.HasKey(q => q.Id);
            e.Property(q => q.AskedBy).HasMaxLength(64);
            e.Property(q => q.SubjectType).HasMaxLength(16);
            e.Property(q => q.SubjectPseudonym).HasMaxLength(64);
            e.Property(q => q.Category).HasMaxLength(64);
            e.HasIndex(q => q.CaseId);
            e.HasOne<Case>().WithMany().HasForeignKey(q => q.CaseId).OnDelete(DeleteBehavior.Restrict);
            e.HasMany(q => q.Answers).WithOne().HasForeignKey(a => a.QuestionId).OnDelete(DeleteBehavior.Cascade);
        });

        modelBuilder.Entity<HitNoHitAnswer>(e =>
        {
            e.ToTable("hit_no_hit_answers");
            e.HasKey(a => new { a.QuestionId, a.Organisation });
            e.Property(a => a.Organisation).HasMaxLength(64);
            // Concurrency token: an answer is final, so two answers racing for one pending row cannot both be stored.
            e.Property(a => a.State).HasMaxLength(16).IsConcurrencyToken();
        });

        // Hash chain, signed checkpoints and retention columns (docs/audit.md).
        modelBuilder.ConfigureAudit(Database.IsSqlite());
    }
}
