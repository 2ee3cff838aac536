#!/usr/bin/env bash
# Validates the deployment files without a cluster or a Docker engine (neither runs on the dev/CI machines):
#   - Kubernetes manifests (deploy/k8s/base) and each overlay rendered by `kubectl kustomize` (offline) against the
#     Kubernetes OpenAPI schemas, plus the project's rules (probes, non-root, resources, PDB, NetworkPolicy, policy
#     ConfigMap == policies/);
#   - deploy/compose/compose.yaml against the Compose Specification schema (with its .env interpolated);
#   - deploy/docker/Dockerfile with dockerfile-utils.
# Then a self-check: deliberately broken copies must be refused, or the validator is not validating anything.
# Called by eng/test.sh before the .NET tests. Needs node + npm (packages from the npm registry, `npm ci`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tool=deploy/k8s/validate
# npm ci is reproducible (package-lock.json) but wipes node_modules each time: skip it while the lock is unchanged.
lock_sum=$(sha256sum $tool/package-lock.json | cut -d' ' -f1)
if [[ "$(cat $tool/node_modules/.sharehub-lock-sha256 2>/dev/null)" != "$lock_sum" ]]; then
  (cd $tool && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$lock_sum" >$tool/node_modules/.sharehub-lock-sha256
fi

validate() { node $tool/validate.mjs "$@"; }

# 1. The files as they are.
validate

# 2. Every overlay as Kubernetes will receive it.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if command -v kubectl >/dev/null 2>&1; then
  for overlay in deploy/k8s/overlays/*/; do
    name=$(basename "$overlay")
    mkdir -p "$work/rendered/$name"
    kubectl kustomize "$overlay" >"$work/rendered/$name/all.yaml"
    printf 'overlay %s: ' "$name"
    validate --k8s "$work/rendered/$name"
  done
else
  echo "kubectl not found: overlays not rendered (the base was validated)" >&2
fi

# 3. Self-check: each broken copy must fail, with the expected message.
expect_invalid() {
  local what=$1 expected=$2; shift 2
  local out
  if out=$(validate "$@" 2>&1); then
    echo "validate-deploy self-check FAILED: $what was accepted" >&2
    exit 1
  fi
  if ! grep -qF -- "$expected" <<<"$out"; then
    printf 'validate-deploy self-check FAILED: %s was refused, but not for "%s":\n%s\n' "$what" "$expected" "$out" >&2
    exit 1
  fi
}
cp -r deploy/k8s "$work/k8s" && rm -rf "$work/k8s/validate"
sed -i 's/^  replicas: 2$/  replicas: two/' "$work/k8s/base/broker.yaml"
expect_invalid "a Deployment with replicas: two" "replicas must be integer" --k8s "$work/k8s"

cp -r deploy/k8s "$work/k8s-probe" && rm -rf "$work/k8s-probe/validate"
sed -i 's|path: /health/ready|path: /healthz|' "$work/k8s-probe/base/broker.yaml"
expect_invalid "a broker without its readiness probe path" "readinessProbe must GET /health/ready" --k8s "$work/k8s-probe"

cp -r deploy/compose "$work/compose"
sed -i 's/condition: service_healthy/condition: healthy/' "$work/compose/compose.yaml"
expect_invalid "a compose file with an unknown depends_on condition" "must be equal to one of the allowed values" --compose "$work/compose/compose.yaml"

sed '/^USER /d' deploy/docker/Dockerfile >"$work/Dockerfile"
expect_invalid "a Dockerfile without USER" "non-root USER" --dockerfile "$work/Dockerfile"
echo "validate-deploy self-check: 4 broken copies refused"
