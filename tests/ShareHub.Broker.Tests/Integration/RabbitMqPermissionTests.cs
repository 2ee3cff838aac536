using System.Text;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;
using ShareHub.Broker.Identity;
using ShareHub.Broker.Tests.Infrastructure;

namespace ShareHub.Broker.Tests.Integration;

/// <summary>
/// Least privilege on the real RabbitMQ node: a partner's user (provisioned as <c>sharehub partners provision</c>
/// does) reads its own delivery queue and nothing else — no other partner's queue, no publishing, no topology.
/// </summary>
[Collection(RealServersCollection.Name)]
public sealed class RabbitMqPermissionTests
{
    private const ushort AccessRefused = 403;

    [Fact]
    public async Task PartnerUser_ConsumingAnotherPartnersQueue_GetsAccessRefused_WhileItsOwnQueueWorks()
    {
        await using var servers = await RealServers.CreateAsync();
        await DeliveryTopology.DeclareAsync(servers.RabbitMqUri, [Signals.Fiod, Signals.Politie]);
        var accounts = await PartnerAccounts.ProvisionAsync(servers, Signals.Fiod, Signals.Politie);
        var fiod = accounts.Single(a => a.Organisation == Signals.Fiod);

        await using var connection = await new ConnectionFactory { Uri = PartnerAccounts.UriFor(servers, fiod) }.CreateConnectionAsync();

        // Its own queue: consuming is allowed.
        await using (var own = await connection.CreateChannelAsync())
        {
            var tag = await own.BasicConsumeAsync(PartnerAccounts.Queue(Signals.Fiod), autoAck: false, new AsyncEventingBasicConsumer(own));
            Assert.False(string.IsNullOrEmpty(tag));
        }

        // Another partner's queue: the broker refuses.
        await using var other = await connection.CreateChannelAsync();
        var refused = await Assert.ThrowsAsync<OperationInterruptedException>(() =>
            other.BasicConsumeAsync(PartnerAccounts.Queue(Signals.Politie), autoAck: false, new AsyncEventingBasicConsumer(other)));
        Assert.Equal(AccessRefused, refused.ShutdownReason?.ReplyCode);
        Assert.Contains("ACCESS_REFUSED", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PartnerUser_CannotDeclareDeleteOrPurgeQueues()
    {
        await using var servers = await RealServers.CreateAsync();
        await DeliveryTopology.DeclareAsync(servers.RabbitMqUri, [Signals.Fiod]);
        var fiod = (await PartnerAccounts.ProvisionAsync(servers, Signals.Fiod)).Single();
        await using var connection = await new ConnectionFactory { Uri = PartnerAccounts.UriFor(servers, fiod) }.CreateConnectionAsync();

        async Task AssertRefusedAsync(Func<IChannel, Task> operation)
        {
            await using var channel = await connection.CreateChannelAsync();
            var error = await Assert.ThrowsAsync<OperationInterruptedException>(() => operation(channel));
            Assert.Equal(AccessRefused, error.ShutdownReason?.ReplyCode);
        }

        await AssertRefusedAsync(c => c.QueueDeclareAsync("sharehub.deliveries.fiod.copy", durable: true, exclusive: false, autoDelete: false));
        await AssertRefusedAsync(c => c.ExchangeDeclareAsync("sharehub.sniffer", ExchangeType.Fanout));
        await AssertRefusedAsync(c => c.QueueDeleteAsync(PartnerAccounts.Queue(Signals.Fiod)));
        await AssertRefusedAsync(c => c.QueueBindAsync(PartnerAccounts.Queue(Signals.Fiod), PartnerAccounts.Queue(Signals.Politie), string.Empty));
    }

    [Theory]
    [InlineData("sharehub.deliveries.politie")] // another partner's delivery exchange
    [InlineData("sharehub.acknowledgements")] // the hub's acknowledgement exchange
    [InlineData("")] // the default exchange (straight into any queue)
    public async Task PartnerUser_PublishingToAnyExchange_GetsAccessRefused(string exchange)
    {
        await using var servers = await RealServers.CreateAsync();
        await DeliveryTopology.DeclareAsync(servers.RabbitMqUri, [Signals.Fiod, Signals.Politie]);
        await using (var admin = await new ConnectionFactory { Uri = servers.RabbitMqUri }.CreateConnectionAsync())
        await using (var channel = await admin.CreateChannelAsync())
        {
            await channel.ExchangeDeclareAsync("sharehub.acknowledgements", ExchangeType.Fanout, durable: true);
        }

        var fiod = (await PartnerAccounts.ProvisionAsync(servers, Signals.Fiod)).Single();
        await using var connection = await new ConnectionFactory { Uri = PartnerAccounts.UriFor(servers, fiod) }.CreateConnectionAsync();
        await using var publisher = await connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));

        var error = await Assert.ThrowsAnyAsync<Exception>(async () =>
            await publisher.BasicPublishAsync(exchange, exchange.Length == 0 ? PartnerAccounts.Queue(Signals.Politie) : string.Empty, Encoding.UTF8.GetBytes("{\"forged\":true}")));

        Assert.True(publisher.CloseReason?.ReplyCode == AccessRefused, $"expected ACCESS_REFUSED, got {publisher.CloseReason} ({error.GetType().Name}: {error.Message})");
    }
}
