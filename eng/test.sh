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

dotnet build ShareHub.sln -c Release -nologo -clp:ErrorsOnly

log="$(mktemp)"
status=0
dotnet test ShareHub.sln -c Release --no-build -nologo --logger "console;verbosity=normal" 2>&1 | tee "$log" || status=$?

# One closing line in the plain form CI reads: "N passed, N failed".
# dotnet test prints one summary per project: "Passed!  - Failed:     0, Passed:    41, Skipped: ..." at minimal
# verbosity, or "Total tests: 41 / Passed: 41 / Failed: 0" blocks at normal verbosity (the logger used above).
summaries=$(grep -E '^(Passed|Failed)! +- ' "$log" || true)
if [[ -n "$summaries" ]]; then
  passed=$({ grep -Eo 'Passed: +[0-9]+' <<<"$summaries" || true; } | awk '{ s += $2 } END { print s + 0 }')
  failed=$({ grep -Eo 'Failed: +[0-9]+' <<<"$summaries" || true; } | awk '{ s += $2 } END { print s + 0 }')
  projects=$(grep -c . <<<"$summaries" || true)
else
  passed=$({ grep -E '^ +Passed: +[0-9]+$' "$log" || true; } | awk '{ s += $2 } END { print s + 0 }')
  failed=$({ grep -E '^ +Failed: +[0-9]+$' "$log" || true; } | awk '{ s += $2 } END { print s + 0 }')
  projects=$(grep -c '^Total tests:' "$log" || true)
fi
if [[ "$projects" -lt 2 ]]; then
  echo "expected a summary from every test project, got ${projects}" >&2
  status=1
fi
rm -f "$log"
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
