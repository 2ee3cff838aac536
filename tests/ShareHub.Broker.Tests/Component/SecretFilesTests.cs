using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using ShareHub.Broker.Configuration;

namespace ShareHub.Broker.Tests.Component;

/// <summary>Settings from container secrets: one file per key in <c>ShareHub__SecretsPath</c>.</summary>
public sealed class SecretFilesTests
{
    [Fact]
    public async Task SecretFile_SetsThePartnershipKey_AndWinsOverOtherSources()
    {
        var folder = Directory.CreateTempSubdirectory("sharehub-secrets-");
        try
        {
            var key = Convert.ToBase64String(Enumerable.Range(1, 32).Select(i => (byte)i).ToArray());
            // As `kubectl create secret --from-file` or a compose secret file would hold it: with a trailing newline.
            await File.WriteAllTextAsync(Path.Combine(folder.FullName, "ShareHub__PartnershipKey"), key + "\n");

            await using var hub = new ComponentHub(new()
            {
                [SecretFiles.PathKey] = folder.FullName,
                ["ShareHub:Authentication:Mode"] = "None",
            }, "Production");
            var options = hub.Factory.Services.GetRequiredService<IOptions<ShareHubOptions>>().Value;

            Assert.Equal(key, options.PartnershipKey?.Trim());
            Assert.True(ShareHubOptionsValidator.TryDecodeKey(options.PartnershipKey!, out var bytes));
            Assert.Equal(32, bytes.Length);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
