using MassTransit;

namespace ShareHub.Broker.Observability;

/// <summary>
/// <c>ShareHub:RabbitMqQuorumQueues</c>: declares the hub's own receive endpoints (<c>sharehub.acknowledgements</c>)
/// as RabbitMQ quorum queues (<c>x-queue-type: quorum</c>, replicated over the cluster's nodes).
/// A queue's type is fixed when it is declared and every client that declares it must agree: partners declare their
/// delivery queues and the hub declares them again on first send, both without a type. Turn this on together with
/// the virtual host's default queue type <c>quorum</c> (RabbitMQ 3.13/4.x, see deploy/k8s), which makes those
/// type-less declarations quorum queues too; on a virtual host whose default is classic, a partner's declaration of
/// the acknowledgement queue would be refused (PRECONDITION_FAILED, inequivalent arg 'x-queue-type').
/// </summary>
internal static class QuorumQueues
{
    public static void Configure(IRegistrationContext context, string name, IReceiveEndpointConfigurator endpoint)
    {
        if (endpoint is IRabbitMqReceiveEndpointConfigurator rabbit)
        {
            rabbit.SetQuorumQueue();
        }
    }
}
