using ShareHub.Broker;
using ShareHub.Broker.Api;
using ShareHub.Broker.Health;
using ShareHub.Broker.Identity;

var builder = WebApplication.CreateBuilder(args);

builder.AddBroker();

var app = builder.Build();

app.UseBroker();
app.MapSignalsApi();
app.MapAuditApi();
app.MapHealthEndpoints();
app.MapDeliveriesApi();
app.MapCasesApi();
app.MapIdentityEndpoints();

await app.InitialiseBrokerAsync();
await app.RunAsync();

/// <summary>Entry point; public so integration tests can host the broker with WebApplicationFactory.</summary>
public partial class Program;
