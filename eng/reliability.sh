#!/usr/bin/env bash
# Runs the reliability scenarios (fault injection on real PostgreSQL + RabbitMQ, hostile input, fuzzing, overload)
# and prints the figures each scenario reports. docs/reliability.md quotes the output of this command.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash eng/services.sh start >/dev/null
dotnet build tests/ShareHub.Broker.Tests -c Release -nologo -clp:ErrorsOnly
log="$(mktemp)"
status=0
dotnet test tests/ShareHub.Broker.Tests -c Release --no-build -nologo \
  --filter "FullyQualifiedName~FaultTests|FullyQualifiedName~RobustnessTests|FullyQualifiedName~RefusalTests" \
  --logger "console;verbosity=detailed" >"$log" 2>&1 || status=$?
grep -E '^\s*RELIABILITY:|^(Passed|Failed)! ' "$log" | sed -E 's/^\s+//'
[[ "$status" -eq 0 ]] || grep -E '^\s+Failed ' "$log" >&2
rm -f "$log"
exit "$status"
