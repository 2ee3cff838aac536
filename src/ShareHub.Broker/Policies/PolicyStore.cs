using Microsoft.Extensions.Options;
using ShareHub.Broker.Configuration;
using ShareHub.Broker.Data;
using ShareHub.Policies;

namespace ShareHub.Broker.Policies;

/// <summary>
/// Holds the active policy set. Decisions always read one immutable <see cref="PolicySet"/> snapshot, so a
/// signal is decided for all its recipients by the same version. A changed policy directory is reloaded without
/// restart; an invalid set never replaces the active one, and every switch (or refusal) is audited.
/// </summary>
public sealed class PolicyStore : IDisposable
{
    private readonly IServiceScopeFactory _scopes;
    private readonly TimeProvider _time;
    private readonly ILogger<PolicyStore> _logger;
    private readonly SemaphoreSlim _reloadLock = new(1, 1);
    private FileSystemWatcher? _watcher;
    private ITimer? _debounce;
    private volatile PolicySet? _current;

    /// <summary>Creates the store; call <see cref="LoadInitialAsync"/> before serving requests.</summary>
    public PolicyStore(IOptions<ShareHubOptions> options, IHostEnvironment environment, IServiceScopeFactory scopes, TimeProvider time, ILogger<PolicyStore> logger)
    {
        _scopes = scopes;
        _time = time;
        _logger = logger;
        Directory = ResolveDirectory(options.Value.PoliciesPath, environment.ContentRootPath);
    }

    /// <summary>The directory the policy set is read from.</summary>
    public string Directory { get; }

    /// <summary>The active policy set.</summary>
    public PolicySet Current => _current ?? throw new InvalidOperationException("The policy set has not been loaded yet.");

    /// <summary>
    /// Loads the policy set at start-up. An invalid set stops the hub: it must never run without valid policies.
    /// </summary>
    public async Task LoadInitialAsync(CancellationToken cancellationToken)
    {
        var result = PolicyLoader.LoadDirectory(Directory, _time.GetUtcNow());
        if (!result.IsValid || result.Set is null)
        {
            var problems = string.Join(Environment.NewLine, result.Problems.Select(p => "  " + p));
            throw new InvalidOperationException($"The policy set in '{Directory}' is invalid; the hub refuses to start:{Environment.NewLine}{problems}");
        }

        await ActivateAsync(result.Set, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Starts watching the policy directory for changes.</summary>
    public void Watch()
    {
        _watcher = new FileSystemWatcher(Directory)
        {
            IncludeSubdirectories = true,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.DirectoryName | NotifyFilters.Size,
            EnableRaisingEvents = true,
        };
        _watcher.Changed += (_, _) => ScheduleReload();
        _watcher.Created += (_, _) => ScheduleReload();
        _watcher.Deleted += (_, _) => ScheduleReload();
        _watcher.Renamed += (_, _) => ScheduleReload();
    }

    /// <summary>
    /// Re-reads the directory. A valid, different set becomes active and is audited; an invalid set is refused,
    /// audited and logged, and the active set stays.
    /// </summary>
    /// <returns>True when a new set was activated.</returns>
    public async Task<bool> ReloadAsync(CancellationToken cancellationToken)
    {
        await _reloadLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var result = PolicyLoader.LoadDirectory(Directory, _time.GetUtcNow());
            if (!result.IsValid || result.Set is null)
            {
                var problems = string.Join("; ", result.Problems.Select(p => p.ToString()));
                _logger.LogError("Changed policy set in {Directory} is invalid and was NOT activated; {Version} stays active. Problems: {Problems}", Directory, _current?.Version, problems);
                await AuditAsync(AuditKinds.PolicyRejected, "rejected", ErrorCodes.PolicySetRejected,
                    $"A changed policy set was refused ({result.Problems.Count} problem(s)); version {_current?.Version} stays active. First problem: {result.Problems.FirstOrDefault()}",
                    _current?.Version, cancellationToken).ConfigureAwait(false);
                return false;
            }

            if (result.Set.Version == _current?.Version)
            {
                return false;
            }

            await ActivateAsync(result.Set, cancellationToken).ConfigureAwait(false);
            return true;
        }
        finally
        {
            _reloadLock.Release();
        }
    }

    private async Task ActivateAsync(PolicySet set, CancellationToken cancellationToken)
    {
        var previous = _current?.Version;
        // Audit first: a policy set is never in force without an audit entry saying so.
        await AuditAsync(AuditKinds.PolicyActivated, "activated", ErrorCodes.PolicySetActivated,
            previous is null
                ? $"Policy set '{set.Partnership}' version {set.Version} activated at start-up."
                : $"Policy set '{set.Partnership}' version {set.Version} replaced version {previous}.",
            set.Version, cancellationToken).ConfigureAwait(false);
        _current = set;
        _logger.LogInformation("Policy set {Partnership} {Version} ({Label}) is active", set.Partnership, set.Version, set.Label);
    }

    private async Task AuditAsync(string kind, string outcome, string code, string explanation, string? version, CancellationToken cancellationToken)
    {
        using var scope = _scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<HubDbContext>();
        db.AuditEntries.Add(new AuditEntry
        {
            Kind = kind,
            RecordedAt = _time.GetUtcNow(),
            ActorOrganisation = "sharehub",
            Actor = "policy-store",
            Outcome = outcome,
            ReasonCode = code,
            Explanation = explanation,
            PolicyVersion = version,
        });
        await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
    }

    private void ScheduleReload()
    {
        // Editors write a file in several steps: wait until the directory has been quiet for a moment.
        _debounce?.Dispose();
        _debounce = _time.CreateTimer(_ => _ = ReloadFromWatcherAsync(), null, TimeSpan.FromMilliseconds(500), Timeout.InfiniteTimeSpan);
    }

    private async Task ReloadFromWatcherAsync()
    {
        try
        {
            await ReloadAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or Microsoft.EntityFrameworkCore.DbUpdateException)
        {
            _logger.LogError(ex, "Reloading the policy set from {Directory} failed; the active set stays", Directory);
        }
    }

    /// <summary>
    /// Finds the policy directory: absolute as given, else relative to the working directory, the content root, or
    /// any parent of those and of the application's base directory (so the hub finds the repository's
    /// <c>policies/</c> whether started from the repository root, a project folder or a test's bin folder).
    /// </summary>
    internal static string ResolveDirectory(string path, string contentRoot)
    {
        if (Path.IsPathRooted(path))
        {
            return path;
        }

        foreach (var start in new[] { System.IO.Directory.GetCurrentDirectory(), contentRoot, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, path);
                if (System.IO.Directory.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        throw new DirectoryNotFoundException($"Policy directory '{path}' was not found from '{System.IO.Directory.GetCurrentDirectory()}' or its parents. Set ShareHub:PoliciesPath.");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _watcher?.Dispose();
        _debounce?.Dispose();
        _reloadLock.Dispose();
    }
}
