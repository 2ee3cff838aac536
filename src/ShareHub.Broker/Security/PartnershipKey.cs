using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using ShareHub.Broker.Configuration;

namespace ShareHub.Broker.Security;

/// <summary>
/// The partnership's secret that keys BSN pseudonyms (HMAC-SHA256). With the key, the hub (and only the hub) can
/// recompute a pseudonym from a BSN — which is what an AVG art. 15 search needs — while recipients and audit readers
/// cannot reverse it.
/// </summary>
public sealed class PartnershipKey
{
    /// <summary>Reads the key from options; in Development without a key, derives a fixed, clearly marked dev key.</summary>
    public PartnershipKey(IOptions<ShareHubOptions> options, ILogger<PartnershipKey> logger)
    {
        if (options.Value.PartnershipKey is { } configured && ShareHubOptionsValidator.TryDecodeKey(configured, out var key))
        {
            Key = key;
        }
        else
        {
            // Only reachable in Development: the options validator refuses a missing key elsewhere.
            logger.LogWarning("ShareHub:PartnershipKey is not set: using the public DEVELOPMENT key. Pseudonyms are not secret.");
            Key = SHA256.HashData(Encoding.UTF8.GetBytes("sharehub-development-partnership-key"));
        }
    }

    /// <summary>The key bytes.</summary>
    public byte[] Key { get; }
}
