#!/usr/bin/env bash
# Versioned EF Core migrations of the hub's database, one set per provider (docs/architecture.md "Schema management").
#
#   bash eng/migrations.sh add <Name>     add migration <Name> for SQLite, PostgreSQL and SQL Server in one go
#   bash eng/migrations.sh list           list each provider's migrations
#   bash eng/migrations.sh remove         remove the last migration of every provider (only one never merged or applied)
#   bash eng/migrations.sh script [from]  SQL scripts for DBAs into artifacts/migrations/ (idempotent for PostgreSQL and SQL Server)
#   bash eng/migrations.sh check          fail if the model has changes that no migration covers (any provider)
#
# No database server is needed: the design-time factories (src/ShareHub.Broker/Data/HubDbContexts.cs) build each
# provider's model offline. dotnet-ef comes from the repository's tool manifest (dotnet-tools.json).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
project=src/ShareHub.Broker/ShareHub.Broker.csproj
providers=(Sqlite Postgres SqlServer)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

usage() {
  sed -n '4,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

ef() {
  dotnet tool run dotnet-ef -- "$@" --project "$project" --startup-project "$project" --configuration Release --no-build
}

build() {
  dotnet tool restore >/dev/null
  dotnet build "$project" -c Release -nologo -v quiet -clp:NoSummary
}

command="${1:-}"
case "$command" in
  add)
    name="${2:-}"
    [[ "$name" =~ ^[A-Z][A-Za-z0-9]*$ ]] || { echo "migration name: PascalCase letters and digits, e.g. AddCases" >&2; exit 2; }
    build
    for provider in "${providers[@]}"; do
      echo "== $provider: $name"
      # Namespace ShareHub.Broker.Data.Migrations.<provider> follows from the folder; later migrations go beside the first.
      ef migrations add "$name" --context "${provider}HubDbContext" --output-dir "Data/Migrations/$provider"
    done
    # The providers' migrations are independent of each other: one build at the end proves they compile.
    dotnet build "$project" -c Release -nologo -v quiet -clp:NoSummary
    echo "Review the generated files under src/ShareHub.Broker/Data/Migrations/, then run: bash eng/migrations.sh check"
    ;;
  list)
    build
    for provider in "${providers[@]}"; do
      echo "== $provider"
      ef migrations list --context "${provider}HubDbContext" --no-connect
    done
    ;;
  remove)
    build
    for provider in "${providers[@]}"; do
      echo "== $provider"
      # dotnet ef tries the design-time connection to see whether the migration was applied; there is no server at
      # design time, so it says it cannot tell and removes it. Never remove a migration that left this repository.
      ef migrations remove --context "${provider}HubDbContext"
    done
    ;;
  script)
    from="${2:-0}"
    build
    mkdir -p artifacts/migrations
    for provider in "${providers[@]}"; do
      out="artifacts/migrations/${provider,,}.sql"
      # EF Core cannot make idempotent scripts for SQLite; its script runs from <from> (default: empty) to the latest.
      idempotent=--idempotent
      [[ "$provider" == Sqlite ]] && idempotent=
      ef migrations script "$from" $idempotent --context "${provider}HubDbContext" --output "$out"
      echo "$out"
    done
    ;;
  check)
    build
    failed=0
    for provider in "${providers[@]}"; do
      echo "== $provider"
      ef migrations has-pending-model-changes --context "${provider}HubDbContext" || failed=1
    done
    exit "$failed"
    ;;
  *)
    usage
    ;;
esac
