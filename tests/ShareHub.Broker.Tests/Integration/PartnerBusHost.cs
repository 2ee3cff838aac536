using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using ShareHub.Broker.Identity;
using ShareHub.Broker.Tests.Infrastructure;
using ShareHub.Contracts;
using ShareHub.Partner;

namespace ShareHub.Broker.Tests.Integration;

/// <summary>
/// Partner systems as they run in production: each organisation consumes its own queue with its OWN least-privilege
/// RabbitMQ user (provisioned like <c>sharehub partners provision</c> does: read on its queue, no write, no configure)
/// through the Partner SDK's <see cref="RabbitMqDeliveryListener"/>, and acknowledges over HTTP with a real access
/// token of a partner-system client of its organisation.
/// </summary>
public sealed class PartnerBusHost : IAsyncDisposable
{
    private readonly List<RabbitMqDeliveryListener> _listeners = [];

    private PartnerBusHost(PartnerRecorder recorder, Func<string, HubTokenClient> tokens)
    {
        Recorder = recorder;
        Tokens = tokens;
    }

    public PartnerRecorder Recorder { get; }

    /// <summary>The hub the partners acknowledge to (a test may swap it for a restarted instance).</summary>
    public HubFactory Hub
    {
        set => Tokens = organisation => value.TokenClientFor(organisation);
    }

    /// <summary>Where each organisation gets its access token for acknowledgements.</summary>
    public Func<string, HubTokenClient> Tokens { get; set; }

    /// <summary>Provisions the partners' RabbitMQ users in the test's vhost and starts a listener per organisation.</summary>
    public static Task<PartnerBusHost> StartAsync(RealServers servers, HubFactory hub, PartnerRecorder recorder, params string[] organisations)
    {
        _ = hub.Server; // the hub declares every participant's queue at start; partners cannot
        return StartAsync(servers, organisation => hub.TokenClientFor(organisation), recorder, organisations);
    }

    /// <summary>
    /// Partners of broker processes: the queues must have been declared by a running broker; acknowledgements use
    /// <paramref name="tokens"/>.
    /// </summary>
    public static async Task<PartnerBusHost> StartAsync(RealServers servers, Func<string, HubTokenClient> tokens, PartnerRecorder recorder, params string[] organisations)
    {
        var accounts = await PartnerAccounts.ProvisionAsync(servers, organisations);
        var host = new PartnerBusHost(recorder, tokens);
        foreach (var account in accounts)
        {
            var options = new PartnerOptions
            {
                Organisation = account.Organisation,
                RabbitMqUri = PartnerAccounts.UriFor(servers, account),
                RetryIntervals = [TimeSpan.FromMilliseconds(50)],
            };
            var processor = new DeliveryProcessor(account.Organisation, recorder.HandlerFor(account.Organisation), recorder.InboxFor(account.Organisation), NullLogger.Instance);
            var listener = new RabbitMqDeliveryListener(options, processor, host.Acknowledge(account.Organisation), TimeProvider.System, NullLogger.Instance);
            await listener.StartAsync();
            host._listeners.Add(listener);
        }

        return host;
    }

    /// <summary>One acknowledgement batcher per token client, so concurrent acknowledgements share requests as in production.</summary>
    private readonly ConcurrentDictionary<HubTokenClient, Func<Guid, CancellationToken, Task>> _acknowledgements = new();

    private Func<Guid, CancellationToken, Task> Acknowledge(string organisation) => (deliveryId, cancellationToken) =>
        _acknowledgements.GetOrAdd(Tokens(organisation), tokens => RabbitMqDeliveryListener.HttpAcknowledgement(tokens, TimeProvider.System))(deliveryId, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        foreach (var listener in _listeners)
        {
            await listener.DisposeAsync();
        }
    }
}

/// <summary>Per-partner RabbitMQ users for integration tests, provisioned with the product's own definitions.</summary>
public static class PartnerAccounts
{
    /// <summary>
    /// Test users are named <c>it.&lt;org&gt;</c> with a fixed test password, so concurrent test runs on the shared node
    /// agree; their permissions exist only in the test's own vhost (dropped with it).
    /// </summary>
    public static async Task<IReadOnlyList<PartnerBusAccount>> ProvisionAsync(RealServers servers, params string[] organisations)
    {
        var accounts = organisations.Select(o => new PartnerBusAccount(o, $"it.{o}", $"it-{o}-password")).ToList();
        await RabbitMqProvisioning.ImportWithRabbitMqCtlAsync(RabbitMqProvisioning.Definitions(accounts, servers.VirtualHost));
        return accounts;
    }

    /// <summary>The AMQP address of the test vhost with a partner's credentials.</summary>
    public static Uri UriFor(RealServers servers, PartnerBusAccount account) =>
        new UriBuilder(servers.RabbitMqUri) { UserName = Uri.EscapeDataString(account.User), Password = Uri.EscapeDataString(account.Password) }.Uri;

    /// <summary>The delivery queue of an organisation.</summary>
    public static string Queue(string organisation) => QueueNames.Deliveries(organisation);
}
