#!/usr/bin/env bash
# eng/services.sh: install and run the real servers the integration tests need
# (RabbitMQ and PostgreSQL) on a Debian 12 machine where we are root, without
# Docker and without systemd. Every listener is on loopback (127.0.0.1) only.
#
# Usage: eng/services.sh [start|stop|status|rabbitmq-start|rabbitmq-stop|postgres-start|postgres-stop]
#   start           (default) install what is missing, configure, start both servers, create the
#                   sharehub vhost/user/role/database if they are missing, print the connection strings
#   stop            stop both servers (and epmd, when no other Erlang node uses it)
#   status          show whether each server runs, and its TCP listeners
#   rabbitmq-stop   real stop of the RabbitMQ node (rabbitmqctl shutdown), for fault-injection tests
#   rabbitmq-start  start the node again and wait until it accepts work
#   postgres-stop   stop the PostgreSQL cluster (fast mode: clients are disconnected)
#   postgres-start  start the cluster again and wait until pg_isready
# The *-start / *-stop subcommands assume `start` ran once before (nothing is installed by them).
#
# `start` prints the settings on stdout as shell exports (logs go to stderr):
#   eval "$(eng/services.sh start)"
#
# Measured on the 2-core dev/CI machine (Debian 12, RabbitMQ 3.10.8, Erlang 25, PostgreSQL 15, gVisor):
#   start, fresh minbase Debian 12 (neither server installed)    ~34 s (apt installs ~12 s + ~14 s)
#   start, RabbitMQ not installed, PostgreSQL installed         18-20 s (apt-get update+install 8-11 s)
#   start, both installed but stopped                            5-7.6 s
#   start, both already running                                  1.3-1.7 s (three rabbitmqctl calls)
#   rabbitmq-stop                                                3.5-3.8 s: the AMQP port closes within
#                                                                ~0.1 s, the apps stop in ~20 ms, the
#                                                                Erlang VM then takes ~2.7 s to exit
#   rabbitmq-start                                               3.3-6.8 s (boot: ~3 s of it is Mnesia's
#                                                                schema check)
#   postgres-stop (pg_ctlcluster stop -m fast)                   0.2-0.3 s
#   postgres-start (pg_ctl -w, see pg_start_cluster)             0.2-0.3 s
#   stop (both)                                                  ~3.7 s
#
# The management plugin is OFF by default: it costs little to start (within the 4-7 s noise,
# +~9 MB RSS) but adds a fixed 5 s to every node stop (RabbitMQ 3.10 waits 5 s for its
# "collect_statistics" to stop; management_agent.disable_metrics_collector does not help), which
# fault-injection tests would pay on each rabbitmq-stop. SHAREHUB_RABBITMQ_MANAGEMENT=1 turns it on
# (HTTP API on 127.0.0.1:15672, sharehub user tagged `management`, e.g. GET /api/queues/sharehub);
# changing the setting restarts the node on the next `start`. Use rabbitmqctl otherwise.
set -euo pipefail

readonly RMQ_USER=sharehub RMQ_PASS=sharehub-dev RMQ_VHOST=sharehub RMQ_PORT=5672
readonly RMQ_NODE=rabbit@localhost
readonly PG_ROLE=sharehub PG_PASS=sharehub-dev PG_DB=sharehub PG_PREFERRED_VERSION=15
readonly RMQ_MANAGEMENT=${SHAREHUB_RABBITMQ_MANAGEMENT:-0} RMQ_MGMT_PORT=15672
readonly RMQ_START_TIMEOUT=90 PG_START_TIMEOUT=60
readonly LOCK_FILE=/run/lock/sharehub-services.lock

export DEBIAN_FRONTEND=noninteractive
SELF=$(readlink -f "${BASH_SOURCE[0]}")
readonly SELF
# Nothing below depends on the caller's directory; psql run as postgres would complain about an
# unreadable cwd (e.g. /root), so work from /.
cd /

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Daemons started from here (the RabbitMQ node, epmd spawned by any Erlang CLI call, postgres)
# must not inherit the lock's file descriptor 9, or they would hold the lock for their lifetime.
rabbitmq-server() { command rabbitmq-server "$@" 9>&-; }
rabbitmqctl() { command rabbitmqctl "$@" 9>&-; }
pg_ctlcluster() { command pg_ctlcluster "$@" 9>&-; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts system services)"

# One invocation at a time: parallel test runs may all call `start`.
mkdir -p "$(dirname "$LOCK_FILE")"
exec 9>"$LOCK_FILE"
flock -w 300 9 || die "timed out waiting for $LOCK_FILE"

# ---------------------------------------------------------------------------------------------
# apt: update at most once per invocation; never let a package's maintainer scripts start a
# service. Without systemd, the postinst scripts fall back to invoke-rc.d, and rabbitmq-server's
# postinst would start a node bound to all interfaces with its defaults (and `exit 1` when that
# start fails). A policy-rc.d that answers 101 ("action forbidden") makes invoke-rc.d skip the
# start and return 0; we add one only for the duration of the install, and only if none exists.
# ---------------------------------------------------------------------------------------------
APT_UPDATED=0
POLICY_RC_D=/usr/sbin/policy-rc.d
POLICY_RC_D_OURS=0
cleanup() { if [[ $POLICY_RC_D_OURS -eq 1 ]]; then rm -f "$POLICY_RC_D"; fi; }
trap cleanup EXIT

apt_install() {
  local t0; t0=$(now)
  if [[ ! -e $POLICY_RC_D ]]; then
    printf '#!/bin/sh\n# temporary, from ShareHub eng/services.sh\nexit 101\n' >"$POLICY_RC_D"
    chmod 0755 "$POLICY_RC_D"
    POLICY_RC_D_OURS=1
  fi
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    apt-get update -qq </dev/null >&2
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  LANG=C.UTF-8 LC_ALL=C.UTF-8 apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null >/dev/null
  if [[ $POLICY_RC_D_OURS -eq 1 ]]; then rm -f "$POLICY_RC_D"; POLICY_RC_D_OURS=0; fi
  log "installed $* in $(since "$t0") s"
}

# Write a file only if its content differs; returns 0 when it changed.
write_if_changed() {
  local path=$1 content=$2
  if [[ -f $path ]] && [[ "$(cat "$path")" == "$content" ]]; then return 1; fi
  mkdir -p "$(dirname "$path")"
  printf '%s\n' "$content" >"$path"
  return 0
}

# ---------------------------------------------------------------------------------------------
# RabbitMQ
# ---------------------------------------------------------------------------------------------
RMQ_ENV_CONF=/etc/rabbitmq/rabbitmq-env.conf
RMQ_CONF=/etc/rabbitmq/rabbitmq.conf

# rabbitmq-env.conf is sourced by both the server and the CLI tools (rabbitmqctl), so they agree
# on the node name, and an epmd started by either of them binds to loopback only.
# - NODENAME=rabbit@localhost: independent of the machine's hostname (which may change between
#   machines and would otherwise move the data directory).
# - NODE_IP_ADDRESS: AMQP listener (5672) on 127.0.0.1 only.
# - ERL_EPMD_ADDRESS: epmd (4369) on 127.0.0.1 only.
# - inet_dist_use_interface: Erlang distribution listener (25672 on the server, the transient
#   CLI node's port too) on 127.0.0.1 only.
rmq_env_conf_content() {
  cat <<EOF
# Written by ShareHub eng/services.sh (loopback-only dev/test node); rewritten on every start.
NODENAME=$RMQ_NODE
NODE_IP_ADDRESS=127.0.0.1
NODE_PORT=$RMQ_PORT
ERL_EPMD_ADDRESS=127.0.0.1
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
}

rmq_conf_content() {
  printf '%s\n' "# Written by ShareHub eng/services.sh (loopback-only dev/test node); rewritten on every start." \
    "listeners.tcp.default = 127.0.0.1:$RMQ_PORT"
  # management.* keys are only valid while the plugin is enabled.
  if [[ $RMQ_MANAGEMENT == 1 ]]; then
    printf '%s\n' "management.tcp.ip = 127.0.0.1" "management.tcp.port = $RMQ_MGMT_PORT"
  fi
}

rmq_installed() { type -P rabbitmq-server >/dev/null 2>&1 && type -P rabbitmqctl >/dev/null 2>&1; }

rmq_pidfile() { printf '/var/lib/rabbitmq/mnesia/%s.pid' "$RMQ_NODE"; }

# A process that exists and is not a zombie (an exited child not reaped yet still answers kill -0).
# Reads /proc directly: a minimal Debian has no procps (ps).
pid_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }  # drop "pid (comm) ", comm may contain spaces
  [[ ${stat%% *} != Z ]]
}

# The node's OS process, if any (from the pid file the node writes when it boots).
rmq_os_pid() {
  local pf pid; pf=$(rmq_pidfile)
  [[ -r $pf ]] || return 1
  pid=$(tr -dc '0-9' <"$pf")
  [[ -n $pid ]] && pid_alive "$pid" && printf '%s' "$pid"
}

# Cheap "is AMQP accepting connections" probe, no Erlang CLI boot needed.
rmq_port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$RMQ_PORT" 2>/dev/null; }

rmq_running() { rmq_port_open && rabbitmqctl -q await_startup --timeout 5 >/dev/null 2>&1; }

# Returns 0 when the configuration changed (a running node must then be restarted).
rmq_configure() {
  local changed=1
  mkdir -p /etc/rabbitmq
  if write_if_changed "$RMQ_ENV_CONF" "$(rmq_env_conf_content)"; then changed=0; fi
  if write_if_changed "$RMQ_CONF" "$(rmq_conf_content)"; then changed=0; fi
  chown -R rabbitmq:rabbitmq /etc/rabbitmq
  local want_plugins='[].'
  [[ $RMQ_MANAGEMENT == 1 ]] && want_plugins='[rabbitmq_management].'
  if write_if_changed /etc/rabbitmq/enabled_plugins "$want_plugins"; then
    chown rabbitmq:rabbitmq /etc/rabbitmq/enabled_plugins
    changed=0
  fi
  return $changed
}

rmq_start_node() {
  local t0; t0=$(now)
  if rmq_running; then log "rabbitmq: already running"; return 0; fi
  if ! rmq_os_pid >/dev/null; then
    rm -f "$(rmq_pidfile)"  # stale, from a killed node
    log "rabbitmq: starting node $RMQ_NODE"
    # The Debian wrapper switches to the rabbitmq user; -detached daemonises the node.
    rabbitmq-server -detached >/dev/null 2>&1 </dev/null || die "rabbitmq-server -detached failed (see /var/log/rabbitmq/)"
  else
    log "rabbitmq: node process exists, waiting for it to finish booting"
  fi
  # `rabbitmqctl await_startup` fails at once while the node has not registered with epmd yet,
  # and every CLI call costs ~1 s of Erlang boot: so first poll the AMQP port (cheap), giving up
  # early if the node's process dies, then let await_startup wait for the remaining boot steps.
  local deadline=$((SECONDS + RMQ_START_TIMEOUT))
  until rmq_port_open; do
    if [[ -e $(rmq_pidfile) ]] && ! rmq_os_pid >/dev/null; then rmq_start_failed "the node exited while booting"; fi
    [[ $SECONDS -lt $deadline ]] || rmq_start_failed "port $RMQ_PORT not open after ${RMQ_START_TIMEOUT} s"
    sleep 0.2
  done
  rabbitmqctl -q await_startup --timeout $((deadline - SECONDS > 5 ? deadline - SECONDS : 5)) >/dev/null \
    || rmq_start_failed "await_startup failed"
  log "rabbitmq: started in $(since "$t0") s"
}

rmq_start_failed() {
  tail -n 30 "/var/log/rabbitmq/$RMQ_NODE.log" >&2 2>/dev/null || true
  die "rabbitmq did not start: $1 (logs in /var/log/rabbitmq/)"
}

rmq_stop_node() {
  local t0 pid; t0=$(now)
  pid=$(rmq_os_pid || true)
  if [[ -z $pid ]] && ! rmq_port_open; then log "rabbitmq: not running"; return 0; fi
  log "rabbitmq: shutting down node $RMQ_NODE"
  # `shutdown` stops the node (not just the app) and waits until the OS process has exited.
  if ! timeout 60 rabbitmqctl -q shutdown >/dev/null 2>&1; then
    pid=$(rmq_os_pid || true)
    if [[ -n $pid ]]; then
      log "rabbitmq: shutdown did not finish, killing pid $pid"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do pid_alive "$pid" || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$(rmq_pidfile)"
    fi
  fi
  log "rabbitmq: stopped in $(since "$t0") s"
}

# Fast path with the management plugin: one local HTTP call proves the password and the management
# tag (else 401), and lists only the vhosts the user has permissions on (~10 ms instead of ~1.5 s of
# CLI calls).
rmq_user_ok_http() {
  [[ $RMQ_MANAGEMENT == 1 ]] && type -P curl >/dev/null 2>&1 || return 1
  curl -sf -m 3 -u "$RMQ_USER:$RMQ_PASS" "http://127.0.0.1:$RMQ_MGMT_PORT/api/vhosts?columns=name" 2>/dev/null \
    | grep -qF "{\"name\":\"$RMQ_VHOST\"}"
}

rmq_ensure_user() {
  if rmq_user_ok_http; then return 0; fi
  # Fast path without it: list_permissions shows the vhost exists and the user has full rights.
  local perms
  perms=$(rabbitmqctl -q list_permissions -p "$RMQ_VHOST" 2>/dev/null || true)
  if printf '%s\n' "$perms" | grep -qxF "$(printf '%s\t.*\t.*\t.*' "$RMQ_USER")" \
     && rabbitmqctl -q authenticate_user "$RMQ_USER" "$RMQ_PASS" >/dev/null 2>&1; then
    rmq_ensure_tags
    return 0
  fi
  log "rabbitmq: creating vhost '$RMQ_VHOST' and user '$RMQ_USER'"
  if ! rabbitmqctl -q list_vhosts name 2>/dev/null | grep -qxF "$RMQ_VHOST"; then
    rabbitmqctl -q add_vhost "$RMQ_VHOST" >/dev/null
  fi
  if rabbitmqctl -q list_users 2>/dev/null | cut -f1 | grep -qxF "$RMQ_USER"; then
    rabbitmqctl -q change_password "$RMQ_USER" "$RMQ_PASS" >/dev/null
  else
    rabbitmqctl -q add_user "$RMQ_USER" "$RMQ_PASS" >/dev/null
  fi
  rabbitmqctl -q set_permissions -p "$RMQ_VHOST" "$RMQ_USER" '.*' '.*' '.*' >/dev/null
  rmq_ensure_tags
}

# With the management plugin on, the user may also use the HTTP API (e.g. to inspect queues).
rmq_ensure_tags() {
  if [[ $RMQ_MANAGEMENT == 1 ]]; then
    rabbitmqctl -q set_user_tags "$RMQ_USER" management >/dev/null
  fi
}

rmq_up() {
  if ! rmq_installed; then apt_install rabbitmq-server; fi
  if rmq_configure; then
    log "rabbitmq: configuration written"
    if rmq_os_pid >/dev/null || rmq_port_open; then
      log "rabbitmq: restarting the node to apply it"
      rmq_stop_node
    fi
  fi
  rmq_start_node
  rmq_ensure_user
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL (Debian's postgresql-common cluster tools; no systemd)
# ---------------------------------------------------------------------------------------------
PG_VERSION='' PG_CLUSTER=main PG_PORT=5432 PG_DATA='' PG_LOG=''

pg_detect() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 1
  local line
  # Prefer the 15/main cluster, else any "main" cluster, else the first one.
  line=$(pg_lsclusters -h 2>/dev/null | awk -v v="$PG_PREFERRED_VERSION" '$1==v && $2=="main"' | head -n1)
  [[ -n $line ]] || line=$(pg_lsclusters -h 2>/dev/null | awk '$2=="main"' | head -n1)
  [[ -n $line ]] || line=$(pg_lsclusters -h 2>/dev/null | head -n1)
  [[ -n $line ]] || return 1
  read -r PG_VERSION PG_CLUSTER PG_PORT _ _ PG_DATA PG_LOG <<<"$line"
}

pg_install_if_missing() {
  if pg_detect && [[ -x /usr/lib/postgresql/$PG_VERSION/bin/postgres ]]; then return 0; fi
  if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
    # The package's postinst creates the "main" cluster with initdb, which takes its encoding from
    # the locale: without one it would be SQL_ASCII. apt_install runs with LANG=C.UTF-8 (UTF8).
    apt_install postgresql
  fi
  if ! pg_detect; then
    # Server installed but no cluster (e.g. create_main_cluster=false): make one.
    local v; v=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n1)
    log "postgres: creating cluster $v/main"
    LANG=C.UTF-8 pg_createcluster "$v" main >/dev/null
    pg_detect || die "no PostgreSQL cluster found after installing"
  fi
  [[ -x /usr/lib/postgresql/$PG_VERSION/bin/postgres ]] \
    || die "cluster $PG_VERSION/$PG_CLUSTER has no server binaries (apt-get install postgresql-$PG_VERSION)"
}

pg_conf_file() { printf '/etc/postgresql/%s/%s/conf.d/sharehub.conf' "$PG_VERSION" "$PG_CLUSTER"; }

# Returns 0 when the configuration changed. Debian's postgresql.conf includes conf.d/ last, so
# this overrides its default listen_addresses ('localhost', which would add ::1).
pg_configure() {
  write_if_changed "$(pg_conf_file)" "# Written by ShareHub eng/services.sh: loopback (IPv4) only.
listen_addresses = '127.0.0.1'"
}

pg_running() { pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" status >/dev/null 2>&1; }

pg_wait_ready() {
  local deadline=$((SECONDS + PG_START_TIMEOUT))
  until pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 1; do
    [[ $SECONDS -lt $deadline ]] || die "postgres not ready on 127.0.0.1:$PG_PORT after ${PG_START_TIMEOUT} s"
    sleep 0.1
  done
}

pg_start_cluster() {
  local t0; t0=$(now)
  if pg_running; then
    pg_wait_ready
    log "postgres: $PG_VERSION/$PG_CLUSTER already running"
    return 0
  fi
  log "postgres: starting $PG_VERSION/$PG_CLUSTER"
  # `pg_ctlcluster V C start` spends ~2 s in its own readiness probes (0.5 s sleeps, three
  # successful psql connections in a row). pg_ctl -w with the same arguments returns as soon as
  # the server accepts connections (~0.2 s), so start it like pg_ctlcluster does, minus the probes:
  # as the cluster owner, in a new session, with a clean environment, Debian's config file and log.
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  local pg_ctl=/usr/lib/postgresql/$PG_VERSION/bin/pg_ctl
  if [[ -x $pg_ctl && -d $PG_DATA && -n $PG_LOG ]]; then
    setsid -w runuser -u postgres -- env -i PATH=/usr/bin:/bin PG_OOM_ADJUST_FILE=/proc/self/oom_score_adj \
      "$pg_ctl" start -w -t "$PG_START_TIMEOUT" -s -D "$PG_DATA" -l "$PG_LOG" \
      -o "-c config_file=/etc/postgresql/$PG_VERSION/$PG_CLUSTER/postgresql.conf" </dev/null 9>&- \
      || pg_start_failed "pg_ctl start"
  else
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start || pg_start_failed "pg_ctlcluster start"
  fi
  pg_wait_ready
  log "postgres: started in $(since "$t0") s"
}

pg_start_failed() {
  tail -n 20 "${PG_LOG:-/var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log}" >&2 2>/dev/null || true
  die "$1 failed for $PG_VERSION/$PG_CLUSTER"
}

pg_stop_cluster() {
  local t0; t0=$(now)
  if ! pg_running; then log "postgres: not running"; return 0; fi
  log "postgres: stopping $PG_VERSION/$PG_CLUSTER"
  pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop -m fast
  log "postgres: stopped in $(since "$t0") s"
}

pg_psql() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" "$@"; }

pg_ensure_role_db() {
  # Idempotent, one psql session. The ALTER keeps the password/attributes right even if a test
  # changed them; \gexec runs the CREATEs only when they are missing.
  pg_psql -d postgres >/dev/null <<SQL
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', '$PG_ROLE', '$PG_PASS')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ROLE')\gexec
ALTER ROLE "$PG_ROLE" WITH LOGIN CREATEDB PASSWORD '$PG_PASS';
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', '$PG_DB', '$PG_ROLE', 'UTF8')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB')\gexec
SQL
  local listen
  listen=$(pg_psql -d postgres -tA -c 'SHOW listen_addresses')
  [[ $listen == 127.0.0.1 ]] || die "postgres listen_addresses is '$listen', expected 127.0.0.1"
}

pg_up() {
  pg_install_if_missing
  if pg_configure; then
    log "postgres: configuration written"
    if pg_running; then
      log "postgres: restarting to apply it"
      pg_stop_cluster
    fi
  fi
  pg_start_cluster
  pg_ensure_role_db
}

pg_require() { pg_detect || die "PostgreSQL is not installed; run '$SELF start' first"; }
rmq_require() { rmq_installed || die "RabbitMQ is not installed; run '$SELF start' first"; }

# ---------------------------------------------------------------------------------------------

# On stdout (everything else goes to stderr), in the ShareHub:* options' environment form
# (src/ShareHub.Broker/Configuration/ShareHubOptions.cs), so `eval "$(eng/services.sh start)"` works.
print_connection_strings() {
  cat <<EOF
export ShareHub__Database=Postgres
export ShareHub__ConnectionString='Host=127.0.0.1;Port=$PG_PORT;Database=$PG_DB;Username=$PG_ROLE;Password=$PG_PASS'
export ShareHub__Bus=RabbitMq
export ShareHub__RabbitMqUri='amqp://$RMQ_USER:$RMQ_PASS@127.0.0.1:$RMQ_PORT/$RMQ_VHOST'
EOF
}

show_status() {
  local rc=0
  if rmq_installed && rmq_running; then
    echo "rabbitmq: running (node $RMQ_NODE, pid $(rmq_os_pid || echo '?'))"
  elif rmq_installed; then echo "rabbitmq: stopped"; rc=1
  else echo "rabbitmq: not installed"; rc=1; fi
  if pg_detect; then
    if pg_running; then echo "postgres: running ($PG_VERSION/$PG_CLUSTER, port $PG_PORT)"
    else echo "postgres: stopped ($PG_VERSION/$PG_CLUSTER)"; rc=1; fi
  else echo "postgres: not installed"; rc=1; fi
  command -v ss >/dev/null 2>&1 || return $rc
  echo "listeners:"
  ss -ltnH 2>/dev/null | awk '{print "  " $4}' | grep -E ':(5672|5432|25672|4369|15672)$' || echo "  (none)"
  return $rc
}

stop_epmd_if_idle() {
  command -v epmd >/dev/null 2>&1 || return 0
  # `epmd -names` lists registered nodes; kill epmd only if none is left.
  if ERL_EPMD_ADDRESS=127.0.0.1 epmd -names 2>/dev/null | grep -q '^name '; then return 0; fi
  ERL_EPMD_ADDRESS=127.0.0.1 epmd -kill >/dev/null 2>&1 || true
}

main() {
  local cmd=${1:-start} t0; t0=$(now)
  case $cmd in
    start)
      rmq_up
      pg_up
      log "all services up in $(since "$t0") s"
      print_connection_strings
      ;;
    stop)
      if rmq_installed; then rmq_stop_node; stop_epmd_if_idle; fi
      if pg_detect; then pg_stop_cluster; fi
      ;;
    status) show_status ;;
    rabbitmq-start) rmq_require; rmq_start_node ;;
    rabbitmq-stop) rmq_require; rmq_stop_node ;;
    postgres-start) pg_require; pg_start_cluster ;;
    postgres-stop) pg_require; pg_stop_cluster ;;
    -h|--help|help) sed -n '2,/^set -euo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//' ;;
    *) die "unknown subcommand '$cmd' (start|stop|status|rabbitmq-start|rabbitmq-stop|postgres-start|postgres-stop)" ;;
  esac
}

main "$@"
