using Microsoft.Extensions.Options;

namespace ShareHub.Broker.Configuration;

/// <summary>Which database the hub stores signals, audit entries and the outbox in.</summary>
public enum DatabaseProvider
{
    /// <summary>Embedded default: a SQLite file. For the demo and a single small installation.</summary>
    Sqlite,

    /// <summary>PostgreSQL via Npgsql: the real server tested in CI.</summary>
    Postgres,

    /// <summary>Microsoft SQL Server: a supported production provider.</summary>
    SqlServer,
}

/// <summary>Which message bus transport carries deliveries to partners.</summary>
public enum BusTransport
{
    /// <summary>Embedded default: MassTransit's in-memory transport (partners in the same process, demo only).</summary>
    InMemory,

    /// <summary>RabbitMQ: the real transport; each partner consumes its own durable queue.</summary>
    RabbitMq,
}

/// <summary>How API callers are authenticated.</summary>
public enum AuthenticationMode
{
    /// <summary>No authentication scheme is configured: every API call is refused with 401.</summary>
    None,

    /// <summary>
    /// OAuth 2.0 bearer access tokens issued by the hub's own authorization server (OpenIddict): the default.
    /// See docs/security.md.
    /// </summary>
    Tokens,

    /// <summary>
    /// DEVELOPMENT ONLY, explicit opt-in: the caller names its organisation in a request header. Refused at
    /// start-up in the Production environment. Tests and the demo use <see cref="Tokens"/>.
    /// </summary>
    Development,
}

/// <summary>Options of the <c>ShareHub</c> configuration section (environment: <c>ShareHub__Database</c>, …).</summary>
public sealed class ShareHubOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "ShareHub";

    /// <summary>Database provider (<c>ShareHub__Database</c>).</summary>
    public DatabaseProvider Database { get; set; } = DatabaseProvider.Sqlite;

    /// <summary>Connection string for <see cref="Database"/> (<c>ShareHub__ConnectionString</c>).</summary>
    public string ConnectionString { get; set; } = "Data Source=.data/sharehub.db";

    /// <summary>Bus transport (<c>ShareHub__Bus</c>).</summary>
    public BusTransport Bus { get; set; } = BusTransport.InMemory;

    /// <summary>RabbitMQ address, including vhost and credentials (<c>ShareHub__RabbitMqUri</c>).</summary>
    public string RabbitMqUri { get; set; } = "amqp://sharehub:sharehub-dev@127.0.0.1:5672/sharehub";

    /// <summary>
    /// Declare the hub's RabbitMQ receive endpoints as quorum queues (<c>ShareHub__RabbitMqQuorumQueues</c>). Use with
    /// a virtual host whose default queue type is quorum (see deploy/k8s and docs/architecture.md).
    /// </summary>
    public bool RabbitMqQuorumQueues { get; set; }

    /// <summary>Directory holding the policy set; relative paths are searched upwards from the working directory.</summary>
    public string PoliciesPath { get; set; } = "policies";

    /// <summary>
    /// Base64 secret (≥ 32 bytes) keying BSN pseudonyms (HMAC-SHA256). Shared by the partnership, never by a single
    /// partner. Required outside Development.
    /// </summary>
    public string? PartnershipKey { get; set; }

    /// <summary>Maximum size of a signal's payload in UTF-8 bytes.</summary>
    public int MaxPayloadBytes { get; set; } = 64 * 1024;

    /// <summary>Maximum number of intended recipients per signal.</summary>
    public int MaxRecipients { get; set; } = 32;

    /// <summary>
    /// Requests processed at once by this instance. Beyond it (and <see cref="MaxQueuedRequests"/>) the hub answers
    /// 503 at once instead of piling up work and memory.
    /// </summary>
    public int MaxConcurrentRequests { get; set; } = 256;

    /// <summary>Requests that may wait for a free slot before the hub answers 503.</summary>
    public int MaxQueuedRequests { get; set; } = 512;

    /// <summary>Authentication settings.</summary>
    public AuthenticationOptions Authentication { get; set; } = new();

    /// <summary>Outbox dispatcher settings.</summary>
    public DispatcherOptions Dispatcher { get; set; } = new();

    /// <summary>Authentication settings.</summary>
    public sealed class AuthenticationOptions
    {
        /// <summary>How callers are authenticated.</summary>
        public AuthenticationMode Mode { get; set; } = AuthenticationMode.Tokens;
    }

    /// <summary>Outbox dispatcher settings.</summary>
    public sealed class DispatcherOptions
    {
        /// <summary>Whether this instance publishes outbox rows. Off leaves deliveries waiting in the outbox.</summary>
        public bool Enabled { get; set; } = true;

        /// <summary>Rows read and published per round.</summary>
        public int BatchSize { get; set; } = 200;

        /// <summary>How often the sweep looks for rows the dispatcher did not publish at once.</summary>
        public int PollIntervalMilliseconds { get; set; } = 1000;

        /// <summary>
        /// Age in seconds (1–300) at which the sweep claims an undispatched outbox row. Younger rows belong to the
        /// instance that wrote them, which publishes them at once; instances' clocks must agree to well within it.
        /// </summary>
        public int SweepAfterSeconds { get; set; } = 10;

        /// <summary>
        /// Committed rows held in memory for publishing at once (1–100,000); beyond it only their keys are kept and the
        /// rows are read back when the queue is empty. About 4 KB each (the stored JSON and the message it was made
        /// from).
        /// </summary>
        public int HandOverCapacity { get; set; } = 4096;

        /// <summary>
        /// Loops on this instance (1–8) that publish committed rows at once: while one waits for its batch's publisher
        /// confirms, another publishes the next rows. (The sweep of rows left behind is one loop.)
        /// </summary>
        public int Concurrency { get; set; } = 2;

        /// <summary>
        /// Signal deliveries (1–500) to one recipient that the dispatcher publishes together in one message, a
        /// <see cref="Contracts.DeliverSignalBundle"/>, when it has several at hand (under load; a lone delivery still
        /// goes as a <see cref="Contracts.DeliverSignal"/>). 1 sends every delivery on its own: for partners whose
        /// consumers predate bundles (Partner SDK and raw AMQP consumers alike, docs/architecture.md).
        /// </summary>
        public int BundleSize { get; set; } = 100;
    }
}

/// <summary>
/// Refuses to start a misconfigured hub, with a message that says what to fix (STYLE.md §5).
/// </summary>
internal sealed class ShareHubOptionsValidator(IHostEnvironment environment) : IValidateOptions<ShareHubOptions>
{
    public ValidateOptionsResult Validate(string? name, ShareHubOptions options)
    {
        var failures = new List<string>();

        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            failures.Add("ShareHub:ConnectionString is empty: set the connection string for the configured ShareHub:Database.");
        }

        if (options.Bus == BusTransport.RabbitMq && !Uri.TryCreate(options.RabbitMqUri, UriKind.Absolute, out _))
        {
            failures.Add($"ShareHub:RabbitMqUri '{options.RabbitMqUri}' is not an absolute amqp:// URI.");
        }

        if (options.Authentication.Mode == AuthenticationMode.Development && environment.IsProduction())
        {
            failures.Add("ShareHub:Authentication:Mode=Development lets a caller name its own organisation and is refused in Production.");
        }

        if (options.PartnershipKey is null)
        {
            if (!environment.IsDevelopment())
            {
                failures.Add("ShareHub:PartnershipKey is missing: set a base64 secret of at least 32 bytes (it keys BSN pseudonyms).");
            }
        }
        else if (!TryDecodeKey(options.PartnershipKey, out _))
        {
            failures.Add("ShareHub:PartnershipKey must be base64 and at least 32 bytes long.");
        }

        if (options.MaxPayloadBytes is < 1 or > 16 * 1024 * 1024)
        {
            failures.Add("ShareHub:MaxPayloadBytes must be between 1 and 16 MiB.");
        }

        if (options.MaxConcurrentRequests < 1 || options.MaxQueuedRequests < 0)
        {
            failures.Add("ShareHub:MaxConcurrentRequests must be at least 1 and ShareHub:MaxQueuedRequests at least 0.");
        }

        if (options.Dispatcher.Concurrency is < 1 or > 8)
        {
            failures.Add("ShareHub:Dispatcher:Concurrency must be between 1 and 8.");
        }

        if (options.MaxRecipients < 1)
        {
            failures.Add("ShareHub:MaxRecipients must be at least 1.");
        }

        if (options.Dispatcher.BatchSize < 1 || options.Dispatcher.PollIntervalMilliseconds < 10)
        {
            failures.Add("ShareHub:Dispatcher needs BatchSize ≥ 1 and PollIntervalMilliseconds ≥ 10.");
        }

        if (options.Dispatcher.SweepAfterSeconds is < 1 or > 300)
        {
            failures.Add("ShareHub:Dispatcher:SweepAfterSeconds must be between 1 and 300.");
        }

        if (options.Dispatcher.HandOverCapacity is < 1 or > 100_000)
        {
            failures.Add("ShareHub:Dispatcher:HandOverCapacity must be between 1 and 100000.");
        }

        if (options.Dispatcher.BundleSize is < 1 or > 500)
        {
            failures.Add("ShareHub:Dispatcher:BundleSize must be between 1 (one message per delivery) and 500.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    internal static bool TryDecodeKey(string text, out byte[] key)
    {
        key = [];
        var buffer = new byte[text.Length];
        if (!Convert.TryFromBase64String(text, buffer, out var written) || written < 32)
        {
            return false;
        }

        key = buffer[..written];
        return true;
    }
}
