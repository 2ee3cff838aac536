using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ShareHub.Broker.Identity;
using ShareHub.Broker.Tests.Infrastructure;

namespace ShareHub.Broker.Tests.Component;

/// <summary>Replayed credentials (issue #6, bad input): a captured client assertion or access token buys nothing extra.</summary>
public sealed class ReplayTests
{
    [Fact]
    public async Task TokenRequest_ReplayingTheSameClientAssertion_IsRefused_AndAudited()
    {
        await using var hub = new ComponentHub();
        var tokens = hub.Factory.TokenClientFor(Signals.Gemeente);
        var assertion = tokens.CreateClientAssertion(); // one assertion, captured by an eavesdropper
        var client = hub.Factory.CreateClient();

        using var first = await client.PostAsync("/connect/token", Form(assertion));
        using var replay = await client.PostAsync("/connect/token", Form(assertion));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.True(replay.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.Unauthorized, $"replay answered {(int)replay.StatusCode}");
        Assert.Contains("invalid_client", await replay.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var refused = await hub.Factory.WithDbAsync(db => db.AuditEntries.Where(a => a.Kind == IdentityAuditKinds.AuthenticationFailed && a.ReasonCode == IdentityCodes.TokenRequestRefused).ToListAsync());
        Assert.Contains(refused, a => a.Explanation.Contains("already used", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Submit_WithAnAccessTokenOfARevokedClient_Is401_AndNothingStored()
    {
        await using var hub = new ComponentHub();
        var client = hub.ClientFor(Signals.Gemeente); // holds a valid token
        await client.SubmitAcceptedAsync(Signals.KvkSignal());
        using (var scope = hub.Factory.Services.CreateScope())
        {
            await scope.ServiceProvider.GetRequiredService<PartnerClientRegistry>().RevokeAsync("test-gemeente-amsterdam-partner-system", "test", "token captured");
        }

        using var replayed = await client.SubmitAsync(Signals.KvkSignal());

        Assert.Equal(HttpStatusCode.Unauthorized, replayed.StatusCode);
        Assert.Equal(1, await hub.Factory.WithDbAsync(db => db.Signals.CountAsync()));
    }

    private static FormUrlEncodedContent Form(string assertion) => new(new Dictionary<string, string>
    {
        ["grant_type"] = "client_credentials",
        ["client_id"] = "test-gemeente-amsterdam-partner-system",
        ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ["client_assertion"] = assertion,
    });
}
