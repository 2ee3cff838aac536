using System.CommandLine;
using ShareHub.Partner;

namespace ShareHub.Cli;

/// <summary><c>sharehub deliveries errors|replay-errors</c>: operator tools for a partner's error queue.</summary>
internal static class DeliveryCommands
{
    public static Command Create()
    {
        var organisation = new Option<string>("--organisation") { Description = "Organisation code whose delivery queue is meant.", Required = true };
        var rabbitMq = new Option<Uri>("--rabbitmq")
        {
            Description = "RabbitMQ address with operator credentials, e.g. amqp://user:pass@127.0.0.1:5672/sharehub.",
            DefaultValueFactory = _ => new Uri(Environment.GetEnvironmentVariable("ShareHub__RabbitMqUri") ?? "amqp://sharehub:sharehub-dev@127.0.0.1:5672/sharehub"),
        };

        var errors = new Command("errors", "Show how many deliveries wait in the organisation's error queue.") { organisation, rabbitMq };
        errors.SetAction(async (parse, cancellationToken) =>
        {
            var org = parse.GetValue(organisation)!;
            Console.WriteLine($"{ErrorQueue.NameFor(org)}: {await ErrorQueue.CountAsync(parse.GetValue(rabbitMq)!, org, cancellationToken)} message(s)");
            return 0;
        });

        var replay = new Command("replay-errors", "Move the organisation's failed deliveries from its error queue back to its delivery queue.") { organisation, rabbitMq };
        replay.SetAction(async (parse, cancellationToken) =>
        {
            var org = parse.GetValue(organisation)!;
            var moved = await ErrorQueue.ReplayAsync(parse.GetValue(rabbitMq)!, org, cancellationToken);
            Console.WriteLine($"moved {moved} delivery message(s) from {ErrorQueue.NameFor(org)} back to its delivery queue");
            return 0;
        });

        return new Command("deliveries", "Operate on delivery queues.") { errors, replay };
    }
}
