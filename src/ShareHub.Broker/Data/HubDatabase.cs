using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using ShareHub.Broker.Configuration;

namespace ShareHub.Broker.Data;

/// <summary>Creates the schema and prepares the embedded SQLite file.</summary>
internal static class HubDatabase
{
    public static async Task EnsureReadyAsync(HubDbContext db, ShareHubOptions settings, CancellationToken cancellationToken)
    {
        if (settings.Database == DatabaseProvider.Sqlite)
        {
            var file = new SqliteConnectionStringBuilder(settings.ConnectionString).DataSource;
            var folder = Path.GetDirectoryName(Path.GetFullPath(file));
            if (!string.IsNullOrEmpty(folder))
            {
                Directory.CreateDirectory(folder);
            }
        }

        // Schema creation from the model. Versioned migrations per provider are tracked in the deploy issue.
        await db.Database.EnsureCreatedAsync(cancellationToken).ConfigureAwait(false);

        if (settings.Database == DatabaseProvider.Sqlite)
        {
            // WAL: readers do not block the single writer; full fsync on commit keeps durability.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken).ConfigureAwait(false);
        }
    }
}
