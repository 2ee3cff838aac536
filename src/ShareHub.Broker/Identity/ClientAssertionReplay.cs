using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.JsonWebTokens;
using ShareHub.Broker.Data;

namespace ShareHub.Broker.Identity;

/// <summary>A client assertion's <c>jti</c>, remembered until the assertion expires (RFC 7523 §3, item 7).</summary>
public sealed class UsedClientAssertion
{
    /// <summary><c>client_id:jti</c> — the primary key makes a second use fail, also across broker instances.</summary>
    public required string Id { get; set; }

    /// <summary>When the assertion expires (Unix seconds: comparable on every provider, SQLite included).</summary>
    public long ExpiresAt { get; set; }
}

/// <summary>Refuses a replayed client assertion: each <c>jti</c> is accepted once per client.</summary>
internal static class ClientAssertionReplay
{
    /// <summary>Records the assertion's jti; false when it has none or was seen before.</summary>
    public static async Task<bool> TryUseAsync(HubDbContext db, string clientId, string assertion, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // Signature, issuer, audience and lifetime were checked by OpenIddict before the endpoint ran: only read.
        var token = new JsonWebTokenHandler().ReadJsonWebToken(assertion);
        if (string.IsNullOrEmpty(token.Id) || token.Id.Length > 200)
        {
            return false;
        }

        var expires = token.ValidTo == DateTime.MinValue ? now.AddMinutes(10) : new DateTimeOffset(token.ValidTo, TimeSpan.Zero);
        var nowSeconds = now.ToUnixTimeSeconds();
        await db.Set<UsedClientAssertion>().Where(u => u.ExpiresAt < nowSeconds).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        db.Set<UsedClientAssertion>().Add(new UsedClientAssertion { Id = $"{clientId}:{token.Id}", ExpiresAt = expires.ToUnixTimeSeconds() });
        try
        {
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (DbUpdateException)
        {
            db.ChangeTracker.Clear();
            return false; // the primary key exists: a replay (or a concurrent twin of one)
        }
    }
}
