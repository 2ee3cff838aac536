namespace ShareHub.Broker.Tests.Integration;

/// <summary>
/// Integration tests against real PostgreSQL and RabbitMQ processes (started by <c>eng/services.sh</c>). They run one
/// at a time: each creates its own database and virtual host, but shares the two server processes.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RealServersCollection
{
    public const string Name = "Real PostgreSQL + RabbitMQ";
}
