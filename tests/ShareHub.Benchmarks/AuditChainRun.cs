using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;
using ShareHub.Broker.Audit;
using ShareHub.Broker.Configuration;
using ShareHub.Broker.Data;

namespace ShareHub.Benchmarks;

/// <summary>
/// <c>--audit [entries]</c>: hashes a chain of synthetic but realistic audit entries in memory, then (when PostgreSQL is
/// reachable) bulk-loads them into a fresh database and times <see cref="AuditVerifier"/> reading them back.
/// Goals (issue #5): ≥ 1 M entries/s in memory, ≥ 300 k entries/s read from PostgreSQL.
/// </summary>
internal static class AuditChainRun
{
    public static async Task<int> RunAsync(TextWriter output, int count)
    {
        var inv = CultureInfo.InvariantCulture;
        var entries = Generate(count);
        using var chain = new AuditHashChain();
        var previous = AuditHashChain.Genesis;
        var hash = new byte[AuditHashChain.HashSize];

        // Warm-up, then three timed passes over the whole chain.
        for (var i = 0; i < Math.Min(count, 100_000); i++)
        {
            chain.Next(previous, entries[i], hash);
        }

        var best = double.MaxValue;
        for (var pass = 0; pass < 3; pass++)
        {
            previous = AuditHashChain.Genesis;
            var watch = Stopwatch.StartNew();
            foreach (var entry in entries)
            {
                chain.Next(previous, entry, entry.Hash);
                previous = entry.Hash;
            }

            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }

        var bytes = entries.Take(1000).Average(e => e.Explanation.Length + 300);
        output.WriteLine(string.Create(inv, $"in memory, append (sequential chain, one thread): {count:N0} entries (≈{bytes:F0} bytes each) in {best * 1000:F0} ms = {count / best:N0} entries/s (best of 3)"));

        // Verification checks each link against the stored predecessor hash: batches are encoded (one thread) and their
        // links hashed in parallel (AuditLinkBatch, as AuditVerifier does with the rows it reads).
        var batch = new AuditLinkBatch();
        var bestVerify = double.MaxValue;
        var bestLinks = double.MaxValue;
        for (var pass = 0; pass < 3; pass++)
        {
            var watch = Stopwatch.StartNew();
            var linkTicks = 0L;
            var ok = 0;
            var previousHash = AuditHashChain.Genesis;
            for (var offset = 0; offset < count; offset += AuditLinkBatch.Capacity)
            {
                batch.Clear();
                for (var i = offset; i < Math.Min(count, offset + AuditLinkBatch.Capacity); i++)
                {
                    batch.Add(entries[i], previousHash);
                    previousHash = entries[i].Hash;
                }

                var linkStart = Stopwatch.GetTimestamp();
                batch.CheckLinks();
                for (var i = 0; i < batch.Count; i++)
                {
                    ok += batch.LinkHolds(i) ? 1 : 0;
                }

                linkTicks += Stopwatch.GetTimestamp() - linkStart;
            }

            bestVerify = Math.Min(bestVerify, watch.Elapsed.TotalSeconds);
            bestLinks = Math.Min(bestLinks, (double)linkTicks / Stopwatch.Frequency);
            if (ok != count)
            {
                throw new InvalidOperationException("the generated chain does not verify");
            }
        }

        output.WriteLine(string.Create(inv, $"in memory, verify (encoded on one thread, links checked in parallel on {Environment.ProcessorCount} cores): {count / bestVerify:N0} entries/s (best of 3)"));
        output.WriteLine(string.Create(inv, $"in memory, link checks alone (encoded batches hashed on {Environment.ProcessorCount} cores, what follows the read): {count / bestLinks:N0} entries/s (best of 3)"));

        var admin = Environment.GetEnvironmentVariable("SHAREHUB_TEST_POSTGRES") ?? "Host=127.0.0.1;Port=5432;Database=sharehub;Username=sharehub;Password=sharehub-dev";
        var database = $"sharehub_bench_{Guid.NewGuid():N}"[..28];
        try
        {
            await using (var connection = new NpgsqlConnection(admin))
            {
                await connection.OpenAsync();
                await new NpgsqlCommand($"CREATE DATABASE \"{database}\"", connection).ExecuteNonQueryAsync();
            }
        }
        catch (NpgsqlException ex)
        {
            output.WriteLine($"PostgreSQL not reachable ({ex.Message}); start it with: bash eng/services.sh start");
            return 0;
        }

        var connectionString = new NpgsqlConnectionStringBuilder(admin) { Database = database }.ConnectionString;
        try
        {
            await using (var db = HubDatabase.CreateContext(DatabaseProvider.Postgres, connectionString))
            {
                await db.Database.MigrateAsync();
            }

            var load = Stopwatch.StartNew();
            await LoadAsync(connectionString, entries, previous);
            output.WriteLine(string.Create(inv, $"loaded into PostgreSQL with COPY in {load.Elapsed.TotalSeconds:F1} s"));

            var keyPath = Path.Combine(Path.GetTempPath(), $"sharehub-bench-{Guid.NewGuid():N}.pem");
            using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256))
            {
                await File.WriteAllTextAsync(keyPath, key.ExportPkcs8PrivateKeyPem());
            }

            using var signing = new AuditSigningKey(Options.Create(new AuditOptions { SigningKeyPath = keyPath }), NullLogger<AuditSigningKey>.Instance);
            var verifier = new AuditVerifier(signing, TimeProvider.System);
            await VerifyPassesAsync(output, verifier, connectionString, "without checkpoints");

            // The hub signs a checkpoint every 1,000 entries (AuditOptions.CheckpointEveryEntries): verify with those too.
            await using (var db = HubDatabase.CreateContext(DatabaseProvider.Postgres, connectionString))
            {
                for (var at = 1000; at <= count; at += 1000)
                {
                    var createdAt = AuditHashChain.TruncateToMicroseconds(entries[at - 1].RecordedAt);
                    db.Add(new AuditCheckpoint
                    {
                        Sequence = at,
                        HeadHash = entries[at - 1].Hash,
                        CreatedAt = createdAt,
                        KeyId = signing.KeyId,
                        Signature = signing.Sign(AuditHashChain.CheckpointPayload(at, entries[at - 1].Hash, createdAt, signing.KeyId)),
                    });
                }

                await db.SaveChangesAsync();
            }

            await VerifyPassesAsync(output, verifier, connectionString, $"with {count / 1000:N0} signed checkpoints");
            File.Delete(keyPath);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await using var connection = new NpgsqlConnection(admin);
            await connection.OpenAsync();
            await new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{database}\"", connection).ExecuteNonQueryAsync();
        }

        return 0;
    }

    private static async Task VerifyPassesAsync(TextWriter output, AuditVerifier verifier, string connectionString, string what)
    {
        for (var pass = 1; pass <= 3; pass++)
        {
            await using var db = HubDatabase.CreateContext(DatabaseProvider.Postgres, connectionString);
            var watch = Stopwatch.StartNew();
            var result = await verifier.VerifyAsync(db, CancellationToken.None);
            var seconds = watch.Elapsed.TotalSeconds;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"verify from PostgreSQL {what}, pass {pass}: {result.Entries:N0} entries, valid={result.Valid}, {seconds * 1000:F0} ms = {result.Entries / seconds:N0} entries/s"));
            if (!result.Valid)
            {
                throw new InvalidOperationException(result.Problem);
            }
        }
    }

    private static List<AuditEntry> Generate(int count)
    {
        var random = new Random(42);
        string[] organisations = ["gemeente-amsterdam", "belastingdienst", "fiod", "riec-amsterdam", "politie", "uwv"];
        string[] categories = ["kvk-ubo", "identiteit", "fiscaal", "politiegegevens", "vastgoed"];
        var start = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);
        var entries = new List<AuditEntry>(count);
        for (var i = 0; i < count; i++)
        {
            var permit = random.Next(3) > 0;
            var provider = organisations[random.Next(organisations.Length)];
            var recipient = organisations[random.Next(organisations.Length)];
            entries.Add(new AuditEntry
            {
                Sequence = i + 1,
                Kind = "signal.decision",
                RecordedAt = AuditHashChain.TruncateToMicroseconds(start.AddTicks(i * 12_345L)),
                ActorOrganisation = provider,
                Actor = "dev:" + provider,
                SignalId = Guid.CreateVersion7(start.AddSeconds(i)),
                DeliveryId = permit ? Guid.CreateVersion7(start.AddSeconds(i)) : null,
                Provider = provider,
                Recipient = recipient,
                Category = categories[random.Next(categories.Length)],
                Purpose = "signaalweging",
                SubjectType = "bsn",
                SubjectPseudonym = "psn:" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)),
                Outcome = permit ? "permit" : "deny",
                ReasonCode = permit ? "SH-P0000" : "SH-P0001",
                Explanation = permit ? $"Rule RIEC-SIG-01 permits '{provider}' to share with '{recipient}' for 'signaalweging'." : $"No rule permits '{provider}' to share with '{recipient}'; refused by default.",
                RuleId = permit ? "RIEC-SIG-01" : null,
                LegalGround = permit ? "AVG art. 6 lid 1 sub e jo. Gemeentewet art. 160 en 172, jo. WGS" : null,
                Obligations = permit ? "pseudonymise-bsn: subject BSN and 1 payload value(s) replaced by keyed pseudonym" : null,
                PolicyVersion = "0d0e0fad516f7354a33e4b689c3da345161ed1a41fbbfcd6750cc21bb12b8854",
                TraceId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)),
                SpanId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)),
                ProcessingActivityId = "urn:sharehub:verwerkingsregister:signaalweging@0d0e0fad516f",
                Hash = new byte[AuditHashChain.HashSize],
            });
        }

        return entries;
    }

    private static async Task LoadAsync(string connectionString, List<AuditEntry> entries, byte[] head)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using (var copy = await connection.BeginBinaryImportAsync(
            "COPY audit_entries (\"Kind\", \"RecordedAt\", \"ActorOrganisation\", \"Actor\", \"SignalId\", \"DeliveryId\", \"Provider\", \"Recipient\", \"Category\", \"Purpose\", \"CaseReference\", \"SubjectType\", \"SubjectPseudonym\", \"Outcome\", \"ReasonCode\", \"Explanation\", \"RuleId\", \"LegalGround\", \"Obligations\", \"PolicyVersion\", \"TraceId\", \"Sequence\", \"Hash\", \"SpanId\", \"ParentSpanId\", \"ForeignOperation\", \"ProcessingActivityId\") FROM STDIN (FORMAT BINARY)"))
        {
            foreach (var e in entries)
            {
                await copy.StartRowAsync();
                await copy.WriteAsync(e.Kind, NpgsqlDbType.Varchar);
                await copy.WriteAsync(e.RecordedAt, NpgsqlDbType.TimestampTz);
                await copy.WriteAsync(e.ActorOrganisation, NpgsqlDbType.Varchar);
                await copy.WriteAsync(e.Actor, NpgsqlDbType.Varchar);
                await WriteAsync(copy, e.SignalId);
                await WriteAsync(copy, e.DeliveryId);
                foreach (var text in new[] { e.Provider, e.Recipient, e.Category, e.Purpose, e.CaseReference, e.SubjectType, e.SubjectPseudonym, e.Outcome, e.ReasonCode, e.Explanation, e.RuleId, e.LegalGround, e.Obligations, e.PolicyVersion, e.TraceId })
                {
                    await WriteAsync(copy, text);
                }

                await copy.WriteAsync(e.Sequence, NpgsqlDbType.Bigint);
                await copy.WriteAsync(e.Hash, NpgsqlDbType.Bytea);
                foreach (var text in new[] { e.SpanId, e.ParentSpanId, e.ForeignOperation, e.ProcessingActivityId })
                {
                    await WriteAsync(copy, text);
                }
            }

            await copy.CompleteAsync();
        }

        // The migration created the empty chain's head row: move it to the loaded chain's head.
        await using var update = new NpgsqlCommand("UPDATE audit_chain_head SET \"Sequence\" = @s, \"Hash\" = @h WHERE \"Id\" = 1", connection);
        update.Parameters.AddWithValue("s", (long)entries.Count);
        update.Parameters.AddWithValue("h", head);
        await update.ExecuteNonQueryAsync();
    }

    private static async Task WriteAsync(NpgsqlBinaryImporter copy, string? value)
    {
        if (value is null)
        {
            await copy.WriteNullAsync();
        }
        else
        {
            await copy.WriteAsync(value, NpgsqlDbType.Text);
        }
    }

    private static async Task WriteAsync(NpgsqlBinaryImporter copy, Guid? value)
    {
        if (value is { } guid)
        {
            await copy.WriteAsync(guid, NpgsqlDbType.Uuid);
        }
        else
        {
            await copy.WriteNullAsync();
        }
    }
}
