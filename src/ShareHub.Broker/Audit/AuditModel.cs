using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Audit;

/// <summary>
/// The single row that holds the head of the audit hash chain. Every transaction that appends audit entries locks it
/// first (PostgreSQL <c>SELECT … FOR UPDATE</c>, SQL Server <c>UPDLOCK</c>, SQLite's single writer), so sequence order
/// equals commit order.
/// </summary>
public sealed class AuditChainHead
{
    /// <summary>Always <see cref="SingletonId"/>.</summary>
    public int Id { get; set; }

    /// <summary>Sequence of the last appended entry (0 for an empty chain).</summary>
    public long Sequence { get; set; }

    /// <summary>Hash of the last appended entry (32 zero bytes for an empty chain).</summary>
    public byte[] Hash { get; set; } = [];

    /// <summary>Id of the one row.</summary>
    public const int SingletonId = 1;
}

/// <summary>A signed statement by the hub: "the chain had <see cref="Sequence"/> entries with head <see cref="HeadHash"/> at <see cref="CreatedAt"/>".</summary>
public sealed class AuditCheckpoint
{
    /// <summary>Row id.</summary>
    public long Id { get; set; }

    /// <summary>Number of entries covered (the sequence of the last one).</summary>
    public long Sequence { get; set; }

    /// <summary>Chain hash of entry <see cref="Sequence"/>.</summary>
    public byte[] HeadHash { get; set; } = [];

    /// <summary>When the hub signed it (microsecond precision).</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>Identifies the signing key: first 8 bytes (hex) of SHA-256 over its SubjectPublicKeyInfo.</summary>
    public required string KeyId { get; set; }

    /// <summary>ECDSA P-256 / SHA-256 signature (IEEE P1363, r ‖ s) over <see cref="AuditHashChain.CheckpointPayload"/>.</summary>
    public byte[] Signature { get; set; } = [];
}

/// <summary>EF Core mapping of the audit chain, checkpoints and retention columns (called from <see cref="HubDbContext"/>).</summary>
public static class AuditModel
{
    /// <summary>
    /// SQLite has no date type and EF Core cannot compare its text dates in SQL: store microseconds since the Unix epoch
    /// (UTC) — exactly the precision the chain hashes, and sortable.
    /// </summary>
    internal static readonly ValueConverter<DateTimeOffset, long> UnixMicroseconds = new(
        v => (v.UtcTicks - 621355968000000000L) / 10,
        v => new DateTimeOffset((v * 10) + 621355968000000000L, TimeSpan.Zero));

    /// <summary>Adds the audit chain mapping to the hub's model.</summary>
    public static void ConfigureAudit(this ModelBuilder modelBuilder, bool isSqlite)
    {
        modelBuilder.Entity<AuditEntry>(e =>
        {
            e.HasIndex(a => a.Sequence).IsUnique();
            e.Property(a => a.Hash).HasMaxLength(AuditHashChain.HashSize);
            e.Property(a => a.SpanId).HasMaxLength(16);
            e.Property(a => a.ParentSpanId).HasMaxLength(16);
            e.Property(a => a.ForeignOperation).HasMaxLength(64);
            e.Property(a => a.ProcessingActivityId).HasMaxLength(256);
            e.Property(a => a.Kind).HasMaxLength(32);
            e.HasIndex(a => a.RecordedAt); // period searches and exports
            if (isSqlite)
            {
                // SQLite has no date type: stored as sortable integers so period searches translate to SQL.
                e.Property(a => a.RecordedAt).HasConversion(UnixMicroseconds);
            }
        });

        modelBuilder.Entity<Signal>(e =>
        {
            e.HasIndex(s => s.RetainUntil);
            if (isSqlite)
            {
                e.Property(s => s.RetainUntil).HasConversion(UnixMicroseconds);
            }
        });

        modelBuilder.Entity<AuditChainHead>(e =>
        {
            e.ToTable("audit_chain_head");
            e.HasKey(h => h.Id);
            e.Property(h => h.Id).ValueGeneratedNever();
            e.Property(h => h.Hash).HasMaxLength(AuditHashChain.HashSize);
            // The empty chain's head is created with the schema (by the migration), so the first writers of a new
            // database — several instances starting at once — queue on its row lock instead of racing to insert it.
            e.HasData(new AuditChainHead { Id = AuditChainHead.SingletonId, Sequence = 0, Hash = AuditHashChain.Genesis });
        });

        modelBuilder.Entity<AuditCheckpoint>(e =>
        {
            e.ToTable("audit_checkpoints");
            e.HasKey(c => c.Id);
            e.Property(c => c.Id).ValueGeneratedOnAdd();
            e.Property(c => c.HeadHash).HasMaxLength(AuditHashChain.HashSize);
            e.Property(c => c.KeyId).HasMaxLength(32);
            e.Property(c => c.Signature).HasMaxLength(128);
            e.HasIndex(c => c.Sequence);
        });
    }
}
