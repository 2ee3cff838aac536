using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;

namespace ShareHub.Broker.Security;

/// <summary>
/// DEVELOPMENT ONLY. Trusts the caller to name its own organisation in the <c>X-ShareHub-Dev-Organisation</c>
/// header (and roles in <c>X-ShareHub-Dev-Roles</c>). It exists so the exchange path can be built and demonstrated
/// before OpenIddict tokens land; <see cref="Configuration.ShareHubOptionsValidator"/> refuses to start the hub with
/// this scheme in the Production environment, and production configuration leaves it off.
/// </summary>
internal sealed class DevelopmentAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ShareHubDevelopment";
    public const string OrganisationHeader = "X-ShareHub-Dev-Organisation";
    public const string RolesHeader = "X-ShareHub-Dev-Roles";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var organisation = Request.Headers[OrganisationHeader].ToString();
        if (string.IsNullOrWhiteSpace(organisation))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        if (organisation.Length > 64 || !organisation.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-'))
        {
            return Task.FromResult(AuthenticateResult.Fail("The development organisation header must be a lowercase organisation code."));
        }

        var claims = new List<Claim>
        {
            new(HubClaims.Organisation, organisation),
            new(ClaimTypes.NameIdentifier, $"dev:{organisation}"),
        };
        foreach (var role in Request.Headers[RolesHeader].ToString().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            claims.Add(new Claim(ClaimTypes.Role, role));
        }

        var identity = new ClaimsIdentity(claims, SchemeName);
        // The scopes the named roles would get in a real token (no roles: a partner system).
        var roles = claims.Where(c => c.Type == ClaimTypes.Role).Select(c => c.Value).DefaultIfEmpty(Identity.HubScopes.PartnerSystemRole);
        identity.SetScopes(Identity.HubScopes.DefaultScopes(roles));
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }
}
