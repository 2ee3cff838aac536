using System.Reflection;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;

namespace ShareHub.Broker.Identity;

/// <summary>
/// Keeps OpenIddict's authorization server out of the hub's own API calls. <c>UseAuthentication()</c> hands every
/// request to every request-handling scheme first; for OpenIddict's server that is a transaction and a dispatch of
/// its request event through its whole handler list, only to find that <c>/api/v1/signals</c> is not one of its
/// endpoints — about 6 % of the broker's CPU at load (docs/benchmarks.md, session 21). The server now sees only
/// requests outside <c>/api</c> (its token endpoint, <c>/connect/token</c>, and anything else it might serve); the
/// validation scheme, which bearer-token checks need, still sees every request.
/// </summary>
/// <remarks>
/// Nothing is authenticated differently: on an API path the server's request handler only ever concluded "not my
/// endpoint", and no API endpoint authenticates, challenges or signs in with the server's scheme. An OpenIddict server
/// endpoint configured under <c>/api</c> would no longer be reached, so the hub refuses to start with one
/// (<see cref="EndpointsUnderApi"/>).
/// </remarks>
internal static class ServerRequestScope
{
    /// <summary>The hub's own API, which no OpenIddict server endpoint may share.</summary>
    internal const string ApiPrefix = "/api";

    /// <summary>Whether <paramref name="path"/> lies under <see cref="ApiPrefix"/>, ignoring case as routing does.</summary>
    internal static bool IsApi(PathString path) => path.StartsWithSegments(ApiPrefix, StringComparison.OrdinalIgnoreCase);

    private static string ServerScheme => OpenIddictServerAspNetCoreDefaults.AuthenticationScheme;

    /// <summary>Registers the scheme provider and the start-up check. Call after <c>AddAuthentication</c>.</summary>
    public static IServiceCollection AddServerRequestScope(this IServiceCollection services)
    {
        services.Replace(ServiceDescriptor.Singleton<IAuthenticationSchemeProvider, SchemeProvider>());
        services.AddOptions<OpenIddictServerOptions>()
            .Validate(options => !EndpointsUnderApi(options).Any(),
                $"An OpenIddict server endpoint lies under {ApiPrefix}, where OpenIddict's server does not see requests (Identity/ServerRequestScope.cs).")
            .ValidateOnStart();
        return services;
    }

    /// <summary>
    /// Authentication for every request: OpenIddict's server request handler outside <c>/api</c>, as
    /// <c>UseAuthentication()</c> would run it (first; it may answer the request itself), then <c>UseAuthentication()</c>
    /// with the other schemes.
    /// </summary>
    public static IApplicationBuilder UseHubAuthentication(this IApplicationBuilder app)
    {
        app.Use(async (http, next) =>
        {
            if (!IsApi(http.Request.Path)
                && await http.RequestServices.GetRequiredService<IAuthenticationHandlerProvider>().GetHandlerAsync(http, ServerScheme).ConfigureAwait(false)
                    is IAuthenticationRequestHandler server
                && await server.HandleRequestAsync().ConfigureAwait(false))
            {
                return;
            }

            await next(http).ConfigureAwait(false);
        });
        return app.UseAuthentication();
    }

    /// <summary>
    /// The server's endpoint addresses (every <c>…EndpointUris</c> list of its options, so endpoints a later OpenIddict
    /// adds are covered too) that lie under <see cref="ApiPrefix"/>.
    /// </summary>
    internal static IEnumerable<Uri> EndpointsUnderApi(OpenIddictServerOptions options) =>
        typeof(OpenIddictServerOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.Name.EndsWith("EndpointUris", StringComparison.Ordinal) && typeof(IEnumerable<Uri>).IsAssignableFrom(p.PropertyType))
            .SelectMany(p => (IEnumerable<Uri>?)p.GetValue(options) ?? [])
            .Where(uri => IsApi(new PathString("/" + (uri.IsAbsoluteUri ? uri.AbsolutePath : uri.OriginalString).TrimStart('/'))));

    /// <summary>The registered schemes, with OpenIddict's server left out of the request handlers that <c>UseAuthentication()</c> runs.</summary>
    private sealed class SchemeProvider(IOptions<AuthenticationOptions> options) : AuthenticationSchemeProvider(options)
    {
        private Filtered? _handlers;

        public override async Task<IEnumerable<AuthenticationScheme>> GetRequestHandlerSchemesAsync()
        {
            // The base class keeps one list until a scheme is added or removed: filter each list once.
            var all = await base.GetRequestHandlerSchemesAsync().ConfigureAwait(false);
            var handlers = _handlers;
            if (handlers is null || !ReferenceEquals(handlers.All, all))
            {
                handlers = new Filtered(all, [.. all.Where(s => !string.Equals(s.Name, ServerScheme, StringComparison.Ordinal))]);
                _handlers = handlers;
            }

            return handlers.WithoutServer;
        }

        private sealed record Filtered(IEnumerable<AuthenticationScheme> All, AuthenticationScheme[] WithoutServer);
    }
}
