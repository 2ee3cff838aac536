using System.CommandLine;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ShareHub.Broker;
using ShareHub.Broker.Configuration;
using ShareHub.Broker.Data;
using ShareHub.Broker.Identity;
using ShareHub.Policies;

namespace ShareHub.Cli;

/// <summary>
/// Operator commands for identity and bus access: <c>sharehub partners provision|register|revoke|list|keygen</c> and
/// <c>sharehub keys rotate</c>. Commands that touch the hub's database read the hub's own configuration
/// (<c>ShareHub__Database</c>, <c>ShareHub__ConnectionString</c>, …) and audit what they change.
/// </summary>
internal static class PartnerCommands
{
    public static Command Create()
    {
        var partners = new Command("partners", "Register and revoke partner clients; provision least-privilege RabbitMQ users (docs/security.md).");
        partners.Subcommands.Add(CreateProvision());
        partners.Subcommands.Add(CreateRegister());
        partners.Subcommands.Add(CreateRevoke());
        partners.Subcommands.Add(CreateList());
        partners.Subcommands.Add(CreateKeygen());
        return partners;
    }

    public static Command CreateKeys()
    {
        var keys = new Command("keys", "The hub's token signing keys.");
        var dir = new Option<string>("--dir") { Description = "The signing key directory (ShareHub:Identity:SigningKeysPath).", Required = true };
        var rotate = new Command("rotate", "Create a new signing key, keep one predecessor, audit the rotation. Restart the hub to sign with it.") { dir };
        rotate.SetAction((parse, cancellationToken) => WithHubAsync(async services =>
        {
            var db = services.GetRequiredService<HubDbContext>();
            var keyId = await SigningKeys.RotateAsync(parse.GetValue(dir)!, db, TimeProvider.System, Operator(), cancellationToken);
            Console.WriteLine($"New signing key {keyId}; restart the hub to sign with it (the previous key stays published).");
            return 0;
        }));
        keys.Subcommands.Add(rotate);
        return keys;
    }

    private static Command CreateProvision()
    {
        var policies = new Option<string>("--policies") { Description = "Policy directory (its participants get users).", DefaultValueFactory = _ => "policies" };
        var vhost = new Option<string>("--vhost") { Description = "RabbitMQ virtual host.", DefaultValueFactory = _ => "sharehub" };
        var secrets = new Option<string>("--secrets-dir") { Description = "Folder of the partners' passwords (<org>.rabbitmq-password, created if missing, mode 600).", Required = true };
        var prefix = new Option<string>("--user-prefix") { Description = "Prefix of the RabbitMQ user names.", DefaultValueFactory = _ => string.Empty };
        var management = new Option<Uri?>("--management-url") { Description = "RabbitMQ management API (e.g. https://mq.example:15671/); default: rabbitmqctl on this node." };
        var managementUser = new Option<string?>("--management-user") { Description = "Management API user (administrator)." };
        var managementPassword = new Option<string?>("--management-password") { Description = "Management API password (or RABBITMQ_MANAGEMENT_PASSWORD)." };
        var output = new Option<string?>("--definitions-out") { Description = "Only write the definitions file (password hashes, no clear passwords) and apply nothing." };
        var command = new Command("provision", "Create a RabbitMQ user per participant that may only read its own delivery queue (no write, no configure).")
        {
            policies, vhost, secrets, prefix, management, managementUser, managementPassword, output,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var load = PolicyLoader.LoadDirectory(parse.GetValue(policies)!, TimeProvider.System.GetUtcNow());
            if (load.Set is not { } set)
            {
                foreach (var problem in load.Problems)
                {
                    Console.Error.WriteLine(problem);
                }

                return 1;
            }

            var folder = Directory.CreateDirectory(parse.GetValue(secrets)!);
            var accounts = new List<PartnerBusAccount>();
            foreach (var participant in set.Participants)
            {
                var file = Path.Combine(folder.FullName, participant.Code + ".rabbitmq-password");
                if (!File.Exists(file))
                {
                    await File.WriteAllTextAsync(file, RabbitMqProvisioning.NewPassword(), cancellationToken);
                    if (!OperatingSystem.IsWindows())
                    {
                        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                    }
                }

                accounts.Add(new PartnerBusAccount(participant.Code, parse.GetValue(prefix) + participant.Code, (await File.ReadAllTextAsync(file, cancellationToken)).Trim()));
            }

            var definitions = RabbitMqProvisioning.Definitions(accounts, parse.GetValue(vhost)!);
            if (parse.GetValue(output) is { } path)
            {
                await File.WriteAllTextAsync(path, definitions, cancellationToken);
                Console.WriteLine($"Definitions for {accounts.Count} partner users written to {path}.");
            }
            else if (parse.GetValue(management) is { } url)
            {
                var password = parse.GetValue(managementPassword) ?? Environment.GetEnvironmentVariable("RABBITMQ_MANAGEMENT_PASSWORD") ?? string.Empty;
                await RabbitMqProvisioning.ImportWithManagementApiAsync(url, parse.GetValue(managementUser) ?? "admin", password, definitions, cancellationToken);
            }
            else
            {
                await RabbitMqProvisioning.ImportWithRabbitMqCtlAsync(definitions, cancellationToken);
            }

            foreach (var account in accounts)
            {
                Console.WriteLine($"{account.Organisation,-22} user {account.User,-24} configure ^$  write ^$  read {RabbitMqProvisioning.ReadPattern(account.Organisation)}");
            }

            Console.WriteLine($"Passwords are in {folder.FullName}; hand each partner its own. The hub declares the queues at start.");
            return 0;
        });
        return command;
    }

    private static Command CreateRegister()
    {
        var clientId = new Option<string>("--client-id") { Required = true, Description = "OAuth client id." };
        var organisation = new Option<string>("--organisation") { Required = true, Description = "Organisation code (a participant in the policy set)." };
        var roles = new Option<string[]>("--role") { Required = true, Description = "Role (repeatable): analyst, partner-system, privacy-officer, policy-admin, partnership-privacy-officer." };
        var scopes = new Option<string[]>("--scope") { Description = "Scope (repeatable) to narrow the roles' defaults." };
        var publicKey = new Option<FileInfo?>("--public-key") { Description = "The partner's public key (PEM) for private_key_jwt." };
        var secret = new Option<string?>("--secret") { Description = "DEVELOPMENT FALLBACK: a client secret (needs ShareHub:Identity:AllowClientSecrets)." };
        var policies = new Option<string>("--policies") { Description = "Policy directory.", DefaultValueFactory = _ => "policies" };
        var command = new Command("register", "Register (or re-register) a partner client; audited.") { clientId, organisation, roles, scopes, publicKey, secret, policies };
        command.SetAction((parse, cancellationToken) => WithHubAsync(async services =>
        {
            var org = parse.GetValue(organisation)!;
            var set = PolicyLoader.LoadDirectory(parse.GetValue(policies)!, TimeProvider.System.GetUtcNow()).Set;
            if (set is null || !set.IsParticipant(org))
            {
                Console.Error.WriteLine($"'{org}' is not a participant of the policy set.");
                return 2;
            }

            var pem = parse.GetValue(publicKey) is { } file ? await File.ReadAllTextAsync(file.FullName, cancellationToken) : null;
            var registration = new PartnerClientRegistration(parse.GetValue(clientId)!, org, parse.GetValue(roles)!, parse.GetValue(scopes), pem, parse.GetValue(secret));
            await services.GetRequiredService<PartnerClientRegistry>().RegisterAsync(registration, Operator(), cancellationToken);
            Console.WriteLine($"Client '{registration.ClientId}' of '{org}' registered.");
            return 0;
        }));
        return command;
    }

    private static Command CreateRevoke()
    {
        var clientId = new Option<string>("--client-id") { Required = true, Description = "OAuth client id." };
        var reason = new Option<string?>("--reason") { Description = "Why (recorded in the audit trail)." };
        var command = new Command("revoke", "Revoke a client: no new tokens, and its issued tokens are refused at once; audited.") { clientId, reason };
        command.SetAction((parse, cancellationToken) => WithHubAsync(async services =>
        {
            var revoked = await services.GetRequiredService<PartnerClientRegistry>().RevokeAsync(parse.GetValue(clientId)!, Operator(), parse.GetValue(reason), cancellationToken);
            Console.WriteLine(revoked ? "Revoked." : "No such client.");
            return revoked ? 0 : 1;
        }));
        return command;
    }

    private static Command CreateList()
    {
        var command = new Command("list", "List registered clients.");
        command.SetAction((parse, cancellationToken) => WithHubAsync(async services =>
        {
            foreach (var client in await services.GetRequiredService<PartnerClientRegistry>().ListAsync(cancellationToken))
            {
                Console.WriteLine($"{client.ClientId,-32} {client.Organisation,-22} roles [{string.Join(", ", client.Roles)}] scopes [{string.Join(", ", client.Scopes)}]");
            }

            return 0;
        }));
        return command;
    }

    private static Command CreateKeygen()
    {
        var output = new Option<string>("--out") { Required = true, Description = "File prefix: writes <out>.key.pem (keep private) and <out>.pub.pem (give to the hub)." };
        var command = new Command("keygen", "Create a partner's key pair for private_key_jwt (run it on the partner's side).") { output };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var prefix = parse.GetValue(output)!;
            using var rsa = RSA.Create(3072);
            await File.WriteAllTextAsync(prefix + ".key.pem", rsa.ExportPkcs8PrivateKeyPem(), cancellationToken);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(prefix + ".key.pem", UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            await File.WriteAllTextAsync(prefix + ".pub.pem", rsa.ExportSubjectPublicKeyInfoPem(), cancellationToken);
            Console.WriteLine($"Private key {prefix}.key.pem (keep it), public key {prefix}.pub.pem (register it with the hub).");
            return 0;
        });
        return command;
    }

    /// <summary>Runs <paramref name="action"/> with the hub's services (from its configuration), without starting it.</summary>
    private static async Task<int> WithHubAsync(Func<IServiceProvider, Task<int>> action)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Configuration.AddEnvironmentVariables();
        builder.Logging.ClearProviders();
        builder.AddBroker();
        await using var app = builder.Build();
        using var scope = app.Services.CreateScope();
        await HubDatabase.MigrateAsync(scope.ServiceProvider.GetRequiredService<HubDbContext>(), app.Services.GetRequiredService<IOptions<ShareHubOptions>>().Value, TimeProvider.System, CancellationToken.None);
        return await action(scope.ServiceProvider);
    }

    private static string Operator() => $"operator:{Environment.UserName}";
}
