#!/usr/bin/env bash
# Runs the whole test suite: starts the real servers the integration tests need (RabbitMQ and PostgreSQL on
# 127.0.0.1, installing RabbitMQ from Debian's packages if missing), builds, and runs every test project.
# This is the one command CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash eng/services.sh start
bash eng/chromium.sh

export SHAREHUB_TEST_POSTGRES="${SHAREHUB_TEST_POSTGRES:-Host=127.0.0.1;Port=5432;Database=sharehub;Username=sharehub;Password=sharehub-dev}"
export SHAREHUB_TEST_RABBITMQ="${SHAREHUB_TEST_RABBITMQ:-amqp://sharehub:sharehub-dev@127.0.0.1:5672/sharehub}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# Deployment files (Kubernetes, compose, Dockerfile): schema-validated offline, fails fast before the build.
bash eng/validate-deploy.sh

dotnet build ShareHub.sln -c Release -nologo -clp:ErrorsOnly

log="$(mktemp)"
status=0
dotnet test ShareHub.sln -c Release --no-build -nologo 2>&1 | tee "$log" || status=$?

# One closing line in the plain form CI reads: "N passed, N failed". dotnet test prints one summary per test
# project: "Passed!  - Failed:     0, Passed:    41, Skipped:     0, Total:    41, Duration: 2 s - X.dll (net10.0)".
read -r projects passed failed < <(awk '
  /^(Passed|Failed)! +- / {
    n++
    for (i = 1; i <= NF; i++) {
      if ($i == "Failed:") f += $(i + 1)
      if ($i == "Passed:") p += $(i + 1)
    }
  }
  END { print n + 0, p + 0, f + 0 }' "$log")
rm -f "$log"
expected=$(find tests -name '*.Tests.csproj' | wc -l)
if [[ "$projects" -ne "$expected" ]]; then
  echo "expected a summary from each of the ${expected} test projects, got ${projects}" >&2
  [[ "$status" -ne 0 ]] || status=1
fi
# A short smoke run of the hub benchmark so it cannot rot (figures are printed, never asserted).
if [[ "$status" -eq 0 && "${SHAREHUB_SKIP_BENCH_SMOKE:-0}" != 1 ]]; then
  dotnet run -c Release --no-build --project tests/ShareHub.Benchmarks -- hub --smoke 2>/dev/null || status=$?
fi

echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
