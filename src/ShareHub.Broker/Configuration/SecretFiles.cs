namespace ShareHub.Broker.Configuration;

/// <summary>
/// Reads settings from one file per key, as container orchestrators hand out secrets: Docker/compose secrets and
/// Kubernetes Secret volumes. A file <c>ShareHub__PartnershipKey</c> in the directory named by
/// <c>ShareHub__SecretsPath</c> (environment) sets <c>ShareHub:PartnershipKey</c>, so the partnership key,
/// connection strings and bus credentials never have to be environment variables (which leak into process
/// listings, crash dumps and <c>docker inspect</c>). Files win over every other source. Unset: nothing is read.
/// </summary>
public static class SecretFiles
{
    /// <summary>Configuration key of the secrets directory (environment <c>ShareHub__SecretsPath</c>).</summary>
    public const string PathKey = "ShareHub:SecretsPath";

    /// <summary>Adds the key-per-file source when <see cref="PathKey"/> is set.</summary>
    public static WebApplicationBuilder AddSecretFiles(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var directory = builder.Configuration[PathKey];
        if (!string.IsNullOrWhiteSpace(directory))
        {
            // Optional: a missing directory means "no secrets mounted", and the options validation then names
            // whatever required setting is still missing.
            builder.Configuration.AddKeyPerFile(directory, optional: true);
        }

        return builder;
    }
}
