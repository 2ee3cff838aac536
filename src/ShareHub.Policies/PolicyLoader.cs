using System.Security.Cryptography;
using System.Text;

namespace ShareHub.Policies;

/// <summary>One policy file's content, with its path relative to the policy directory ('/' separators).</summary>
/// <param name="Path">Relative path, e.g. <c>rules/10-signaal.yaml</c>.</param>
/// <param name="Content">The file's text.</param>
public sealed record PolicyFile(string Path, string Content);

/// <summary>
/// Loads and validates a policy set. Loading never throws for a bad policy: every problem is reported with file,
/// line and column in <see cref="PolicyLoadResult.Problems"/>, and the set is returned only when there are no errors.
/// </summary>
public static class PolicyLoader
{
    /// <summary>The subdirectory whose YAML files (at any depth) belong to the set, besides the top-level files.</summary>
    public const string RulesDirectory = "rules";

    /// <summary>
    /// Loads the policy set in <paramref name="directory"/>: every <c>*.yaml</c>/<c>*.yml</c> file directly in it and
    /// every one under <c>rules/</c>. Other subdirectories (such as <c>tests/</c> with decision cases) are not part of
    /// the set.
    /// </summary>
    /// <param name="directory">The policy directory.</param>
    /// <param name="now">The moment of loading (for expiry warnings); pass the injected clock's time.</param>
    public static PolicyLoadResult LoadDirectory(string directory, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Directory.Exists(directory))
        {
            return Failed(directory, $"policy directory '{directory}' does not exist");
        }

        var files = new List<PolicyFile>();
        var problems = new List<PolicyProblem>();
        foreach (var relative in EnumeratePolicyFiles(directory))
        {
            try
            {
                var bytes = File.ReadAllBytes(Path.Combine(directory, relative));
                files.Add(new PolicyFile(relative, DecodeUtf8(bytes)));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or DecoderFallbackException)
            {
                problems.Add(new PolicyProblem(relative, 0, 0, ProblemCodes.NoPolicyFiles, $"cannot read the file: {ex.Message}"));
            }
        }

        if (files.Count == 0 && problems.Count == 0)
        {
            return Failed(directory, $"no policy files (*.yaml) found in '{directory}'");
        }

        var result = LoadFiles(files, now);
        return problems.Count == 0 ? result : new PolicyLoadResult(null, [.. problems, .. result.Problems]);
    }

    /// <summary>Loads a policy set from in-memory files (same rules as <see cref="LoadDirectory"/>).</summary>
    /// <param name="files">The files; their order does not matter (they are sorted by path).</param>
    /// <param name="now">The moment of loading (for expiry warnings).</param>
    public static PolicyLoadResult LoadFiles(IEnumerable<PolicyFile> files, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(files);
        var sorted = files.OrderBy(f => f.Path, StringComparer.Ordinal).ToList();
        if (sorted.Count == 0)
        {
            return Failed("(set)", "no policy files");
        }

        var parser = new PolicyParser(now);
        foreach (var file in sorted)
        {
            parser.ParseFile(file);
        }

        var set = parser.Build(ComputeVersion(sorted), [.. sorted.Select(f => f.Path)]);
        var problems = parser.Problems
            .Select((p, i) => (p, i))
            .OrderBy(x => x.p.File, StringComparer.Ordinal).ThenBy(x => x.p.Line).ThenBy(x => x.p.Column).ThenBy(x => x.i)
            .Select(x => x.p)
            .ToList();
        return new PolicyLoadResult(problems.Any(p => p.Severity == ProblemSeverity.Error) ? null : set, problems);
    }

    /// <summary>The relative paths ('/' separators, ordinal order) of the files that make up the set in <paramref name="directory"/>.</summary>
    public static IReadOnlyList<string> EnumeratePolicyFiles(string directory)
    {
        var result = new List<string>();
        AddYaml(directory, directory, SearchOption.TopDirectoryOnly, result);
        var rules = Path.Combine(directory, RulesDirectory);
        if (Directory.Exists(rules))
        {
            AddYaml(directory, rules, SearchOption.AllDirectories, result);
        }

        result.Sort(StringComparer.Ordinal);
        return result;
    }

    /// <summary>
    /// The set's version: lowercase hex SHA-256 over, for each file in ordinal path order, the UTF-8 bytes of
    /// <c>path + "\n" + byteLength + "\n"</c> followed by the file's UTF-8 bytes. Renaming, moving or editing any file
    /// changes it; nothing else (timestamps, directory listing order) does.
    /// </summary>
    public static string ComputeVersion(IEnumerable<PolicyFile> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in files.OrderBy(f => f.Path, StringComparer.Ordinal))
        {
            var content = Encoding.UTF8.GetBytes(file.Content);
            hash.AppendData(Encoding.UTF8.GetBytes(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{file.Path}\n{content.Length}\n")));
            hash.AppendData(content);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static void AddYaml(string root, string directory, SearchOption option, List<string> into)
    {
        foreach (var path in Directory.EnumerateFiles(directory, "*", option))
        {
            if (path.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".yml", StringComparison.OrdinalIgnoreCase))
            {
                into.Add(Path.GetRelativePath(root, path).Replace('\\', '/'));
            }
        }
    }

    private static string DecodeUtf8(byte[] bytes)
    {
        var strict = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
        var span = bytes.AsSpan();
        if (span.StartsWith("\uFEFF"u8))
        {
            span = span[3..];
        }

        return strict.GetString(span);
    }

    private static PolicyLoadResult Failed(string file, string message) =>
        new(null, [new PolicyProblem(file, 0, 0, ProblemCodes.NoPolicyFiles, message)]);
}
