using System.Globalization;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace ShareHub.Policies;

/// <summary>
/// Reads policy files through YamlDotNet's representation model (not plain deserialisation) so that every problem
/// can be reported with the line and column of the node it concerns.
/// </summary>
internal sealed partial class PolicyParser(DateTimeOffset now)
{
    private static readonly string[] RootKeys = ["partnership", "participants", "purposes", "categories", "grounds", "rules"];
    private static readonly string[] PartnershipKeys = ["name", "version", "notice", "description"];
    private static readonly string[] ParticipantKeys = ["code", "role", "name"];
    private static readonly string[] PurposeKeys = ["code", "description"];
    private static readonly string[] CategoryKeys = ["code", "description", "special", "criminal"];
    private static readonly string[] GroundKeys = ["id", "citation", "note"];
    private static readonly string[] RuleKeys = ["id", "description", "effect", "providers", "recipients", "categories", "purposes", "ground", "conditions", "obligations", "valid"];
    private static readonly string[] ConditionKeys = ["case-required", "case-phases", "recipient-in-case"];
    private static readonly string[] ObligationKeys = ["pseudonymise-bsn", "strip-fields", "retention"];
    private static readonly string[] ValidKeys = ["from", "until"];

    private readonly List<PolicyProblem> _problems = [];
    private readonly List<(string Name, string? Version, string? Notice, Pos Pos)> _partnerships = [];
    private readonly List<(Participant Value, Pos Pos)> _participants = [];
    private readonly List<(Purpose Value, Pos Pos)> _purposes = [];
    private readonly List<(DataCategory Value, Pos Pos)> _categories = [];
    private readonly List<(LegalGround Value, Pos Pos)> _grounds = [];
    private readonly List<RawRule> _rules = [];
    private string _file = string.Empty;

    public IReadOnlyList<PolicyProblem> Problems => _problems;

    public void ParseFile(PolicyFile file)
    {
        _file = file.Path;
        var stream = new YamlStream();
        var parser = new TrackingParser(new Parser(new StringReader(file.Content)));
        try
        {
            stream.Load(parser);
        }
        catch (YamlException ex)
        {
            _problems.Add(new PolicyProblem(_file, (int)ex.Start.Line, (int)ex.Start.Column, ProblemCodes.MalformedYaml, "malformed YAML: " + StripMark(ex.Message)));
            return;
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner throws this (instead of a YamlException) for some unterminated constructs at the
            // end of the input, e.g. an unclosed '['. Report it after the last event that was read.
            _problems.Add(new PolicyProblem(_file, (int)parser.LastMark.Line, (int)parser.LastMark.Column, ProblemCodes.MalformedYaml,
                "malformed YAML: unexpected end of the file after this point (an unclosed '[', '{' or quote?)"));
            return;
        }

        foreach (var document in stream.Documents)
        {
            var root = document.RootNode;
            if (root is YamlScalarNode { Value: null or "" })
            {
                continue; // an empty document (e.g. a file with only comments)
            }

            var map = Map(root, "a policy file", RootKeys);
            if (map is null)
            {
                continue;
            }

            foreach (var (key, (_, value)) in map)
            {
                switch (key)
                {
                    case "partnership": ParsePartnership(value); break;
                    case "participants": ForEachItem(value, "participants", ParseParticipant); break;
                    case "purposes": ForEachItem(value, "purposes", ParsePurpose); break;
                    case "categories": ForEachItem(value, "categories", ParseCategory); break;
                    case "grounds": ForEachItem(value, "grounds", ParseGround); break;
                    case "rules": ForEachItem(value, "rules", ParseRule); break;
                }
            }
        }
    }

    public PolicySet? Build(string version, IReadOnlyList<string> files)
    {
        if (_partnerships.Count == 0)
        {
            _problems.Add(new PolicyProblem(files.FirstOrDefault() ?? "(set)", 0, 0, ProblemCodes.MissingField,
                "no 'partnership' section found; one file (e.g. partnership.yaml) must name the partnership"));
        }

        foreach (var extra in _partnerships.Skip(1))
        {
            Report(extra.Pos, ProblemCodes.DuplicateSection, $"the 'partnership' section is defined again (first at {_partnerships[0].Pos})");
        }

        var participants = Distinct(_participants, p => p.Code, "participant code");
        var purposes = Distinct(_purposes, p => p.Code, "purpose code");
        var categories = Distinct(_categories, c => c.Code, "category code");
        var grounds = Distinct(_grounds, g => g.Id, "legal ground id");
        if (participants.Count == 0)
        {
            _problems.Add(new PolicyProblem(files.FirstOrDefault() ?? "(set)", 0, 0, ProblemCodes.MissingField, "no participants defined"));
        }

        var resolver = new Resolver(participants, purposes, categories);
        var groundById = grounds.ToDictionary(g => g.Id, StringComparer.Ordinal);
        var seenRuleIds = new Dictionary<string, Pos>(StringComparer.Ordinal);
        var rules = new List<PolicyRule>();
        foreach (var raw in _rules)
        {
            if (raw.Id is { } id)
            {
                if (seenRuleIds.TryGetValue(id.Value, out var first))
                {
                    Report(id.Pos, ProblemCodes.DuplicateId, $"duplicate rule id '{id.Value}' (first defined at {first})");
                }
                else
                {
                    seenRuleIds[id.Value] = id.Pos;
                }
            }

            if (BuildRule(raw, resolver, groundById, rules.Count) is { } rule)
            {
                rules.Add(rule);
            }
        }

        FindDeadRules(rules, _rules);

        if (_problems.Any(p => p.Severity == ProblemSeverity.Error) || _partnerships.Count == 0)
        {
            return null;
        }

        var partnership = _partnerships[0];
        return new PolicySet(version, partnership.Version, partnership.Name, partnership.Notice, participants, purposes, categories, grounds, rules, files);
    }

    private PolicyRule? BuildRule(RawRule raw, Resolver resolver, Dictionary<string, LegalGround> grounds, int order)
    {
        var name = raw.Id is { } id ? $"rule '{id.Value}'" : "rule";
        var before = _problems.Count;
        if (raw.Id is null)
        {
            Report(raw.Pos, ProblemCodes.MissingField, "missing required key 'id' in rule");
        }

        if (raw.Effect is null && !raw.EffectInvalid)
        {
            Report(raw.Pos, ProblemCodes.MissingField, $"missing required key 'effect' in {name} (permit or deny)");
        }

        var providers = ResolveOrganisations(raw.Providers, "providers", name, raw.Pos, resolver);
        var recipients = ResolveOrganisations(raw.Recipients, "recipients", name, raw.Pos, resolver);
        var categories = ResolveCodes(raw.Categories, "categories", name, raw.Pos, resolver.Categories, ProblemCodes.UnknownCategory, "category");
        var purposes = ResolveCodes(raw.Purposes, "purposes", name, raw.Pos, resolver.Purposes, ProblemCodes.UnknownPurpose, "purpose");

        LegalGround? ground = null;
        if (raw.Ground is { } groundRef)
        {
            if (!grounds.TryGetValue(groundRef.Value, out ground))
            {
                Report(groundRef.Pos, ProblemCodes.UndefinedGround, $"{name} cites legal ground '{groundRef.Value}', which is not defined under 'grounds'{Suggest(groundRef.Value, grounds.Keys)}");
            }
        }
        else if (raw.Effect?.Value == RuleEffect.Permit)
        {
            Report(raw.Pos, ProblemCodes.PermitWithoutGround, $"permit {name} cites no legal ground: add 'ground: <id>' naming one of the grounds");
        }

        foreach (var phase in raw.Phases)
        {
            if (!CasePhases.IsKnown(phase.Value))
            {
                Report(phase.Pos, ProblemCodes.UnknownPhase, $"unknown case phase '{phase.Value}' in {name}; phases are {string.Join(", ", CasePhases.All)}");
            }
        }

        TimeSpan? retention = null;
        if (raw.Retention is { } retentionText)
        {
            if (RetentionPeriod.TryParse(retentionText.Value, out var period))
            {
                retention = period;
            }
            else
            {
                Report(retentionText.Pos, ProblemCodes.InvalidRetention, $"invalid retention '{retentionText.Value}' in {name}: write an ISO 8601 duration such as P2Y, P6M or P90D, or 'N days'");
            }
        }

        var from = ParseMoment(raw.ValidFrom, isUntil: false, name);
        var until = ParseMoment(raw.ValidUntil, isUntil: true, name);
        if (from is { } f && until is { } u && u <= f)
        {
            Report(raw.ValidUntil!.Pos, ProblemCodes.InvalidValidity, $"{name} is valid until {raw.ValidUntil.Value}, which is not after its start {raw.ValidFrom!.Value}");
        }
        else if (until is { } end && end <= now)
        {
            Report(raw.ValidUntil!.Pos, ProblemCodes.ExpiredRule, $"{name} expired on {raw.ValidUntil.Value}; it no longer applies and should be removed", ProblemSeverity.Warning);
        }

        var conditions = new RuleConditions(raw.CaseRequired || raw.Phases.Count > 0 || raw.RecipientInCase, [.. raw.Phases.Select(p => p.Value)], raw.RecipientInCase);
        var obligations = new Obligations(raw.PseudonymiseBsn, [.. raw.StripFields.Select(s => s.Value)], retention);
        if (raw.Effect?.Value == RuleEffect.Deny && (conditions.Any || raw.HasObligations))
        {
            Report(raw.ConditionsPos ?? raw.ObligationsPos ?? raw.Pos, ProblemCodes.DenyWithConditions,
                $"deny {name} has conditions or obligations; deny rules are unconditional (restrict what a permit rule covers instead)");
        }

        if (_problems.Skip(before).Any(p => p.Severity == ProblemSeverity.Error) || raw.Id is null || raw.Effect is null)
        {
            return null;
        }

        return new PolicyRule(raw.Id.Value, raw.Effect.Value, raw.Description, [.. raw.Providers.Select(p => p.Value)], [.. raw.Recipients.Select(p => p.Value)],
            [.. raw.Categories.Select(c => c.Value)], [.. raw.Purposes.Select(p => p.Value)], ground, conditions, obligations, from, until, raw.Pos.File, raw.Pos.Line, order)
        {
            ProviderIndexes = providers,
            RecipientIndexes = recipients,
            CategoryIndexes = categories,
            PurposeIndexes = purposes,
        };
    }

    /// <summary>
    /// A permit rule is dead when one deny rule covers every (provider, recipient, category, purpose) it covers for
    /// its whole validity period: it can never permit anything, which is always an authoring mistake.
    /// </summary>
    private void FindDeadRules(List<PolicyRule> rules, List<RawRule> raws)
    {
        var denies = rules.Where(r => r.Effect == RuleEffect.Deny).ToList();
        foreach (var permit in rules.Where(r => r.Effect == RuleEffect.Permit))
        {
            foreach (var deny in denies)
            {
                if (Superset(deny.ProviderIndexes, permit.ProviderIndexes) && Superset(deny.RecipientIndexes, permit.RecipientIndexes)
                    && Superset(deny.CategoryIndexes, permit.CategoryIndexes) && Superset(deny.PurposeIndexes, permit.PurposeIndexes)
                    && (deny.ValidFrom is null || (permit.ValidFrom is { } pf && pf >= deny.ValidFrom))
                    && (deny.ValidUntil is null || (permit.ValidUntil is { } pu && pu <= deny.ValidUntil)))
                {
                    var raw = raws.First(r => r.Id?.Value == permit.Id && r.Pos.File == permit.File && r.Pos.Line == permit.Line);
                    Report(raw.Pos, ProblemCodes.DeadRule,
                        $"permit rule '{permit.Id}' can never apply: deny rule '{deny.Id}' ({deny.File}:{deny.Line}) covers everything it permits");
                    break;
                }
            }
        }

        static bool Superset(int[] outer, int[] inner) => inner.All(i => Array.IndexOf(outer, i) >= 0);
    }

    private int[] ResolveOrganisations(List<Located<string>> matchers, string key, string rule, Pos rulePos, Resolver resolver)
    {
        if (matchers.Count == 0)
        {
            Report(rulePos, ProblemCodes.MissingField, $"{rule} has no '{key}' (use an organisation code, role:ROLE or *)");
            return [];
        }

        var result = new SortedSet<int>();
        foreach (var matcher in matchers)
        {
            if (matcher.Value == "*")
            {
                result.UnionWith(Enumerable.Range(0, resolver.Participants.Count));
            }
            else if (matcher.Value.StartsWith("role:", StringComparison.Ordinal))
            {
                var role = matcher.Value[5..];
                var members = resolver.Participants.Select((p, i) => (p, i)).Where(x => x.p.Role == role).Select(x => x.i).ToList();
                if (members.Count == 0)
                {
                    Report(matcher.Pos, ProblemCodes.UnknownRole, $"unknown role '{role}' in {rule} {key}: no participant has it{Suggest(role, resolver.Participants.Select(p => p.Role).Distinct())}");
                }

                result.UnionWith(members);
            }
            else if (resolver.ParticipantIndex.TryGetValue(matcher.Value, out var index))
            {
                result.Add(index);
            }
            else
            {
                Report(matcher.Pos, ProblemCodes.UnknownParticipant, $"unknown participant '{matcher.Value}' in {rule} {key}{Suggest(matcher.Value, resolver.ParticipantIndex.Keys)}");
            }
        }

        return [.. result];
    }

    private int[] ResolveCodes(List<Located<string>> matchers, string key, string rule, Pos rulePos, Dictionary<string, int> known, string code, string what)
    {
        if (matchers.Count == 0)
        {
            Report(rulePos, ProblemCodes.MissingField, $"{rule} has no '{key}' (list {what} codes or *)");
            return [];
        }

        var result = new SortedSet<int>();
        foreach (var matcher in matchers)
        {
            if (matcher.Value == "*")
            {
                result.UnionWith(known.Values);
            }
            else if (known.TryGetValue(matcher.Value, out var index))
            {
                result.Add(index);
            }
            else
            {
                Report(matcher.Pos, code, $"unknown {what} '{matcher.Value}' in {rule} {key}{Suggest(matcher.Value, known.Keys)}");
            }
        }

        return [.. result];
    }

    private DateTimeOffset? ParseMoment(Located<string>? text, bool isUntil, string rule)
    {
        if (text is null)
        {
            return null;
        }

        if (DateOnly.TryParseExact(text.Value, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
        {
            // A date-only 'until' includes that whole day (UTC), as a jurist reads "geldig tot en met".
            var moment = new DateTimeOffset(date.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
            return isUntil ? moment.AddDays(1) : moment;
        }

        if (text.Value.Contains('T', StringComparison.Ordinal)
            && DateTimeOffset.TryParse(text.Value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var exact))
        {
            return exact;
        }

        Report(text.Pos, ProblemCodes.InvalidValidity, $"invalid date '{text.Value}' in {rule}: write YYYY-MM-DD or an ISO 8601 timestamp with offset");
        return null;
    }

    private List<T> Distinct<T>(List<(T Value, Pos Pos)> items, Func<T, string> key, string what)
    {
        var seen = new Dictionary<string, Pos>(StringComparer.Ordinal);
        var result = new List<T>();
        foreach (var (value, pos) in items)
        {
            if (seen.TryGetValue(key(value), out var first))
            {
                Report(pos, ProblemCodes.DuplicateId, $"duplicate {what} '{key(value)}' (first defined at {first})");
                continue;
            }

            seen[key(value)] = pos;
            result.Add(value);
        }

        return result;
    }

    private void ParsePartnership(YamlNode node)
    {
        var map = Map(node, "the partnership section", PartnershipKeys);
        if (map is null)
        {
            return;
        }

        var name = Required(map, node, "name", "the partnership section");
        if (name is null)
        {
            return;
        }

        _partnerships.Add((name, OptionalString(map, "version"), OptionalString(map, "notice"), PosOf(node)));
    }

    private void ParseParticipant(YamlNode node)
    {
        var map = Map(node, "a participant", ParticipantKeys);
        if (map is null)
        {
            return;
        }

        var code = RequiredCode(map, node, "code", "participant");
        var role = RequiredCode(map, node, "role", $"participant '{code}'");
        if (code is not null && role is not null)
        {
            _participants.Add((new Participant(code, role, OptionalString(map, "name") ?? code), PosOf(node)));
        }
    }

    private void ParsePurpose(YamlNode node)
    {
        var map = Map(node, "a purpose", PurposeKeys);
        if (map is null)
        {
            return;
        }

        var code = RequiredCode(map, node, "code", "purpose");
        var description = Required(map, node, "description", $"purpose '{code}'");
        if (code is not null && description is not null)
        {
            _purposes.Add((new Purpose(code, description), PosOf(node)));
        }
    }

    private void ParseCategory(YamlNode node)
    {
        var map = Map(node, "a category", CategoryKeys);
        if (map is null)
        {
            return;
        }

        var code = RequiredCode(map, node, "code", "category");
        var description = Required(map, node, "description", $"category '{code}'");
        var special = OptionalBool(map, "special");
        var criminal = OptionalBool(map, "criminal");
        if (code is not null && description is not null)
        {
            _categories.Add((new DataCategory(code, description, special, criminal), PosOf(node)));
        }
    }

    private void ParseGround(YamlNode node)
    {
        var map = Map(node, "a legal ground", GroundKeys);
        if (map is null)
        {
            return;
        }

        var id = RequiredCode(map, node, "id", "legal ground");
        var citation = Required(map, node, "citation", $"legal ground '{id}'");
        if (id is not null && citation is not null)
        {
            _grounds.Add((new LegalGround(id, citation, OptionalString(map, "note")), PosOf(node)));
        }
    }

    private void ParseRule(YamlNode node)
    {
        var map = Map(node, "a rule", RuleKeys);
        if (map is null)
        {
            return;
        }

        var raw = new RawRule { Pos = PosOf(node) };
        if (map.TryGetValue("id", out var id) && Scalar(id.Value, "rule id") is { } idText)
        {
            if (RuleIdPattern().IsMatch(idText))
            {
                raw.Id = new Located<string>(idText, PosOf(id.Value));
            }
            else
            {
                Report(id.Value, ProblemCodes.InvalidValue, $"invalid rule id '{idText}': use letters, digits, '-', '_' or '.'");
            }
        }

        var name = raw.Id is { } known ? $"rule '{known.Value}'" : "a rule";
        raw.Description = OptionalString(map, "description");
        if (map.TryGetValue("effect", out var effect) && Scalar(effect.Value, "effect") is { } effectText)
        {
            raw.Effect = effectText switch
            {
                "permit" => new Located<RuleEffect>(RuleEffect.Permit, PosOf(effect.Value)),
                "deny" => new Located<RuleEffect>(RuleEffect.Deny, PosOf(effect.Value)),
                _ => null,
            };
            if (raw.Effect is null)
            {
                Report(effect.Value, ProblemCodes.InvalidValue, $"invalid effect '{effectText}' in {name}: write permit or deny");
                raw.EffectInvalid = true; // reported; the rest of the rule is still validated
            }
        }

        raw.Providers = List(map, "providers", name);
        raw.Recipients = List(map, "recipients", name);
        raw.Categories = List(map, "categories", name);
        raw.Purposes = List(map, "purposes", name);
        if (map.TryGetValue("ground", out var ground) && Scalar(ground.Value, "ground") is { } groundText)
        {
            raw.Ground = new Located<string>(groundText, PosOf(ground.Value));
        }

        if (map.TryGetValue("conditions", out var conditions))
        {
            raw.ConditionsPos = PosOf(conditions.Key);
            var c = Map(conditions.Value, $"the conditions of {name}", ConditionKeys);
            if (c is not null)
            {
                raw.CaseRequired = OptionalBool(c, "case-required");
                raw.Phases = List(c, "case-phases", name);
                raw.RecipientInCase = OptionalBool(c, "recipient-in-case");
            }
        }

        if (map.TryGetValue("obligations", out var obligations))
        {
            raw.ObligationsPos = PosOf(obligations.Key);
            var o = Map(obligations.Value, $"the obligations of {name}", ObligationKeys);
            if (o is not null)
            {
                raw.PseudonymiseBsn = OptionalBool(o, "pseudonymise-bsn");
                raw.StripFields = List(o, "strip-fields", name);
                foreach (var field in raw.StripFields.Where(f => !FieldPathPattern().IsMatch(f.Value)))
                {
                    Report(field.Pos, ProblemCodes.InvalidValue, $"invalid field path '{field.Value}' in {name}: write a property name or a dotted path such as contact.telefoon");
                }

                if (o.TryGetValue("retention", out var retention) && Scalar(retention.Value, "retention") is { } retentionText)
                {
                    raw.Retention = new Located<string>(retentionText, PosOf(retention.Value));
                }

                raw.HasObligations = o.Count > 0;
            }
        }

        if (map.TryGetValue("valid", out var valid))
        {
            var v = Map(valid.Value, $"the validity of {name}", ValidKeys);
            if (v is not null)
            {
                if (v.TryGetValue("from", out var from) && Scalar(from.Value, "valid from") is { } fromText)
                {
                    raw.ValidFrom = new Located<string>(fromText, PosOf(from.Value));
                }

                if (v.TryGetValue("until", out var until) && Scalar(until.Value, "valid until") is { } untilText)
                {
                    raw.ValidUntil = new Located<string>(untilText, PosOf(until.Value));
                }
            }
        }

        _rules.Add(raw);
    }

    private void ForEachItem(YamlNode node, string section, Action<YamlNode> parse)
    {
        if (node is YamlScalarNode { Value: null or "" })
        {
            return; // an empty section
        }

        if (node is not YamlSequenceNode sequence)
        {
            Report(node, ProblemCodes.InvalidValue, $"'{section}' must be a list (items starting with '- ')");
            return;
        }

        foreach (var item in sequence.Children)
        {
            parse(item);
        }
    }

    private Dictionary<string, KeyValuePair<YamlNode, YamlNode>>? Map(YamlNode node, string what, string[] allowed)
    {
        if (node is not YamlMappingNode mapping)
        {
            Report(node, ProblemCodes.InvalidValue, $"{what} must be a mapping of keys to values");
            return null;
        }

        var result = new Dictionary<string, KeyValuePair<YamlNode, YamlNode>>(StringComparer.Ordinal);
        foreach (var entry in mapping.Children)
        {
            if (entry.Key is not YamlScalarNode { Value: { } key })
            {
                Report(entry.Key, ProblemCodes.InvalidValue, $"keys in {what} must be plain words");
                continue;
            }

            if (!allowed.Contains(key, StringComparer.Ordinal))
            {
                Report(entry.Key, ProblemCodes.UnknownKey, $"unknown key '{key}' in {what}{Suggest(key, allowed)}; allowed keys: {string.Join(", ", allowed)}");
                continue;
            }

            result[key] = entry;
        }

        return result;
    }

    private string? Required(Dictionary<string, KeyValuePair<YamlNode, YamlNode>> map, YamlNode owner, string key, string what)
    {
        if (!map.TryGetValue(key, out var entry))
        {
            Report(owner, ProblemCodes.MissingField, $"missing required key '{key}' in {what}");
            return null;
        }

        var value = Scalar(entry.Value, key);
        if (value is not null && string.IsNullOrWhiteSpace(value))
        {
            Report(entry.Value, ProblemCodes.InvalidValue, $"'{key}' in {what} must not be empty");
            return null;
        }

        return value;
    }

    private string? RequiredCode(Dictionary<string, KeyValuePair<YamlNode, YamlNode>> map, YamlNode owner, string key, string what)
    {
        var value = Required(map, owner, key, what);
        if (value is not null && !CodePattern().IsMatch(value))
        {
            Report(map[key].Value, ProblemCodes.InvalidValue, $"invalid {key} '{value}' in {what}: use lowercase letters, digits, '-' and '.'");
            return null;
        }

        return value;
    }

    private string? OptionalString(Dictionary<string, KeyValuePair<YamlNode, YamlNode>> map, string key) =>
        map.TryGetValue(key, out var entry) ? Scalar(entry.Value, key) : null;

    private bool OptionalBool(Dictionary<string, KeyValuePair<YamlNode, YamlNode>> map, string key)
    {
        if (!map.TryGetValue(key, out var entry))
        {
            return false;
        }

        switch (Scalar(entry.Value, key))
        {
            case "true": return true;
            case "false": return false;
            case { } other:
                Report(entry.Value, ProblemCodes.InvalidValue, $"'{key}' must be true or false, not '{other}'");
                return false;
            default: return false;
        }
    }

    private List<Located<string>> List(Dictionary<string, KeyValuePair<YamlNode, YamlNode>> map, string key, string what)
    {
        var result = new List<Located<string>>();
        if (!map.TryGetValue(key, out var entry))
        {
            return result;
        }

        var items = entry.Value switch
        {
            YamlScalarNode scalar => [scalar],
            YamlSequenceNode sequence => sequence.Children,
            _ => null,
        };
        if (items is null)
        {
            Report(entry.Value, ProblemCodes.InvalidValue, $"'{key}' in {what} must be a value or a list of values");
            return result;
        }

        foreach (var item in items)
        {
            if (Scalar(item, key) is { Length: > 0 } text)
            {
                result.Add(new Located<string>(text, PosOf(item)));
            }
        }

        if (result.Count == 0)
        {
            Report(entry.Value, ProblemCodes.InvalidValue, $"'{key}' in {what} must name at least one value");
        }

        return result;
    }

    private string? Scalar(YamlNode node, string what)
    {
        if (node is YamlScalarNode scalar)
        {
            return scalar.Value ?? string.Empty;
        }

        Report(node, ProblemCodes.InvalidValue, $"'{what}' must be a single value, not a list or mapping");
        return null;
    }

    private void Report(YamlNode node, string code, string message) => Report(PosOf(node), code, message);

    private void Report(Pos pos, string code, string message, ProblemSeverity severity = ProblemSeverity.Error) =>
        _problems.Add(new PolicyProblem(pos.File, pos.Line, pos.Column, code, message, severity));

    private Pos PosOf(YamlNode node) => new(_file, (int)node.Start.Line, (int)node.Start.Column);

    private static string Suggest(string value, IEnumerable<string> candidates)
    {
        var best = candidates
            .Select(c => (c, d: Levenshtein(value, c)))
            .Where(x => x.d <= Math.Max(1, Math.Min(3, value.Length / 3)))
            .OrderBy(x => x.d)
            .Select(x => x.c)
            .FirstOrDefault();
        return best is null ? string.Empty : $" (did you mean '{best}'?)";
    }

    private static int Levenshtein(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }

    private static string StripMark(string message)
    {
        var match = MarkPrefix().Match(message);
        return match.Success ? message[match.Length..] : message;
    }

    [GeneratedRegex(@"^[a-z0-9][a-z0-9.-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex CodePattern();

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex RuleIdPattern();

    [GeneratedRegex(@"^[^.\s]+(\.[^.\s]+)*$", RegexOptions.CultureInvariant)]
    private static partial Regex FieldPathPattern();

    [GeneratedRegex(@"^\(Line: \d+, Col: \d+, Idx: \d+\) - \(Line: \d+, Col: \d+, Idx: \d+\): ", RegexOptions.CultureInvariant)]
    private static partial Regex MarkPrefix();

    /// <summary>Remembers where the last parsing event ended, to place errors YamlDotNet reports without a position.</summary>
    private sealed class TrackingParser(IParser inner) : IParser
    {
        public Mark LastMark { get; private set; } = Mark.Empty;

        public YamlDotNet.Core.Events.ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            var moved = inner.MoveNext();
            if (inner.Current is { } current)
            {
                LastMark = current.End;
            }

            return moved;
        }
    }

    internal readonly record struct Pos(string File, int Line, int Column)
    {
        public override string ToString() => $"{File}:{Line}";
    }

    internal sealed record Located<T>(T Value, Pos Pos);

    private sealed class RawRule
    {
        public Pos Pos { get; set; }
        public Located<string>? Id { get; set; }
        public string? Description { get; set; }
        public Located<RuleEffect>? Effect { get; set; }
        public bool EffectInvalid { get; set; }
        public List<Located<string>> Providers { get; set; } = [];
        public List<Located<string>> Recipients { get; set; } = [];
        public List<Located<string>> Categories { get; set; } = [];
        public List<Located<string>> Purposes { get; set; } = [];
        public Located<string>? Ground { get; set; }
        public Pos? ConditionsPos { get; set; }
        public bool CaseRequired { get; set; }
        public List<Located<string>> Phases { get; set; } = [];
        public bool RecipientInCase { get; set; }
        public Pos? ObligationsPos { get; set; }
        public bool HasObligations { get; set; }
        public bool PseudonymiseBsn { get; set; }
        public List<Located<string>> StripFields { get; set; } = [];
        public Located<string>? Retention { get; set; }
        public Located<string>? ValidFrom { get; set; }
        public Located<string>? ValidUntil { get; set; }
    }

    private sealed class Resolver
    {
        public Resolver(List<Participant> participants, List<Purpose> purposes, List<DataCategory> categories)
        {
            Participants = participants;
            ParticipantIndex = participants.Select((p, i) => (p.Code, i)).ToDictionary(x => x.Code, x => x.i, StringComparer.Ordinal);
            Purposes = purposes.Select((p, i) => (p.Code, i)).ToDictionary(x => x.Code, x => x.i, StringComparer.Ordinal);
            Categories = categories.Select((c, i) => (c.Code, i)).ToDictionary(x => x.Code, x => x.i, StringComparer.Ordinal);
        }

        public List<Participant> Participants { get; }

        public Dictionary<string, int> ParticipantIndex { get; }

        public Dictionary<string, int> Purposes { get; }

        public Dictionary<string, int> Categories { get; }
    }
}
