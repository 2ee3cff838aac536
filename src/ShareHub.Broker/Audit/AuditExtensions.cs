using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace ShareHub.Broker.Audit;

/// <summary>Wiring of the audit trail, checkpoints and retention (called from <see cref="BrokerExtensions.AddBroker"/>).</summary>
public static class AuditExtensions
{
    /// <summary>Registers the hash chain, checkpoint signing, verification, queries, retention purge and failure auditing.</summary>
    public static WebApplicationBuilder AddAudit(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddOptions<AuditOptions>().Bind(builder.Configuration.GetSection(AuditOptions.Section)).ValidateOnStart();
        services.AddOptions<RetentionOptions>().Bind(builder.Configuration.GetSection(RetentionOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<AuditOptions>, AuditOptionsValidator>();
        services.AddSingleton<IValidateOptions<RetentionOptions>, AuditOptionsValidator>();
        services.AddHttpContextAccessor();
        services.AddSingleton<AuditChainInterceptor>();
        services.AddSingleton<AuditSigningKey>();
        services.AddSingleton<AuditVerifier>();
        services.AddScoped<AuditTrail>();
        services.AddScoped<AuditQuery>();
        services.AddScoped<CaseHistory>();
        services.AddScoped<RetentionPurger>();
        services.AddSingleton<AuditCheckpointer>();
        services.AddHostedService(sp => sp.GetRequiredService<AuditCheckpointer>());
        services.AddSingleton<RetentionPurgeService>();
        services.AddHostedService(sp => sp.GetRequiredService<RetentionPurgeService>());
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, AuditingAuthorizationResultHandler>();
        return builder;
    }
}
