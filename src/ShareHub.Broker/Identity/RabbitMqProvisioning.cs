using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ShareHub.Contracts;

namespace ShareHub.Broker.Identity;

/// <summary>One partner's RabbitMQ account.</summary>
/// <param name="Organisation">Organisation code.</param>
/// <param name="User">RabbitMQ user name.</param>
/// <param name="Password">Its password (keep it in the partner's secret store).</param>
public sealed record PartnerBusAccount(string Organisation, string User, string Password);

/// <summary>
/// Least-privilege RabbitMQ users for partners. Each partner's user may read (consume) exactly its own delivery queue
/// and nothing else: configure <c>^$</c> (declare/delete nothing), write <c>^$</c> (publish to no exchange, the hub's
/// included; acknowledgements go over HTTP), read <c>^sharehub\.deliveries\.&lt;org&gt;$</c>. The users are written as
/// a RabbitMQ definitions document, applied with <c>rabbitmqctl import_definitions</c> on the node or
/// <c>POST /api/definitions</c> of the management plugin. The hub declares the queues itself (DeliveryTopology).
/// </summary>
public static class RabbitMqProvisioning
{
    /// <summary>The read-permission pattern of a partner: its own delivery queue, anchored.</summary>
    public static string ReadPattern(string organisation) => "^" + Regex.Escape(QueueNames.Deliveries(organisation)) + "$";

    /// <summary>
    /// The definitions document: a user per account (password salted and hashed as RabbitMQ's
    /// <c>rabbit_password_hashing_sha256</c> does, so no clear password is in the file) and its permissions in
    /// <paramref name="vhost"/>.
    /// </summary>
    public static string Definitions(IEnumerable<PartnerBusAccount> accounts, string vhost)
    {
        var list = accounts.ToList();
        var document = new
        {
            users = list.Select(a => new { name = a.User, password_hash = HashPassword(a.Password), hashing_algorithm = "rabbit_password_hashing_sha256", tags = string.Empty }),
            permissions = list.Select(a => new { user = a.User, vhost, configure = "^$", write = "^$", read = ReadPattern(a.Organisation) }),
        };
        return JsonSerializer.Serialize(document, new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>RabbitMQ's SHA-256 password hash: base64(salt ‖ SHA-256(salt ‖ UTF-8 password)) with a 4-byte salt.</summary>
    public static string HashPassword(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(4);
        var hash = SHA256.HashData([.. salt, .. Encoding.UTF8.GetBytes(password)]);
        return Convert.ToBase64String([.. salt, .. hash]);
    }

    /// <summary>A new random password (256 bits, URL-safe).</summary>
    public static string NewPassword() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Applies definitions on the local node with <c>rabbitmqctl import_definitions</c>.</summary>
    public static async Task ImportWithRabbitMqCtlAsync(string definitionsJson, CancellationToken cancellationToken = default)
    {
        var file = Path.Combine(Path.GetTempPath(), $"sharehub-definitions-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, definitionsJson, cancellationToken).ConfigureAwait(false);
        try
        {
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            }

            var start = new ProcessStartInfo("rabbitmqctl") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var argument in new[] { "-q", "import_definitions", file })
            {
                start.ArgumentList.Add(argument);
            }

            using var process = Process.Start(start) ?? throw new InvalidOperationException("rabbitmqctl could not be started.");
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            await process.StandardOutput.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"rabbitmqctl import_definitions failed ({process.ExitCode}): {await stderr.ConfigureAwait(false)}");
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>Applies definitions through the management plugin's HTTP API (<c>POST /api/definitions</c>).</summary>
    public static async Task ImportWithManagementApiAsync(Uri managementUri, string user, string password, string definitionsJson, CancellationToken cancellationToken = default)
    {
        using var http = new HttpClient { BaseAddress = managementUri };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        using var content = new StringContent(definitionsJson, Encoding.UTF8, "application/json");
        using var response = await http.PostAsync(new Uri("api/definitions", UriKind.Relative), content, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"The RabbitMQ management API refused the definitions: HTTP {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}");
        }
    }
}
