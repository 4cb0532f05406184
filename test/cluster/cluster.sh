#!/usr/bin/env bash
# A throwaway three-node RabbitMQ cluster on this machine, for the cluster tests (test/cluster/).
#
#   test/cluster/cluster.sh start          three nodes, joined; prints their URIs
#   test/cluster/cluster.sh stop-node N    stops node N (1-3) cleanly, as an operator would
#   test/cluster/cluster.sh kill-node N    kills node N's Erlang VM (SIGKILL), as a crash would
#   test/cluster/cluster.sh start-node N   starts node N again; it rejoins the cluster by itself
#   test/cluster/cluster.sh teardown       stops everything it started and removes its folders
#   test/cluster/cluster.sh ctl N ARGS...  rabbitmqctl ARGS on node N (never on the main broker)
#
# It never touches the machine's own broker (rabbit@<host>, port 5672, its cookie and folders):
# its nodes are nm-c1..3@localhost on ports 5791-5793 (distribution 25791-25793), with their own
# epmd (port 4391), Erlang cookie, config, enabled-plugins file (none), data, logs and pid files,
# all under NM_CLUSTER_DIR. Needs only the Debian rabbitmq-server package; run as root, the nodes
# run as the rabbitmq user (as the package's own wrapper would), otherwise as the caller.
set -euo pipefail

DIR=${NM_CLUSTER_DIR:-${TMPDIR:-/tmp}/nestjs-messaging-cluster}
NODES=(1 2 3)
EPMD_PORT=4391
RABBIT_BIN=/usr/lib/rabbitmq/bin
# The package's /usr/sbin wrappers switch to the rabbitmq user and its HOME (the main node's
# cookie), so the scripts behind them are called directly, with this cluster's HOME.
[ -x "$RABBIT_BIN/rabbitmq-server" ] || { echo "rabbitmq-server is not installed ($RABBIT_BIN)" >&2; exit 1; }

node_name() { echo "nm-c$1@localhost"; }
node_port() { echo $((5790 + $1)); }
node_dir() { echo "$DIR/n$1"; }

# Runs a command as the user the nodes run as, with only this cluster's environment: nothing
# inherited (a caller's RABBITMQ_* or ERL_* variables) can point it at the main broker.
as_owner() {
  local env=(env -i "PATH=/usr/sbin:/usr/bin:/sbin:/bin" "HOME=$DIR/home" "LANG=C.UTF-8" "LC_ALL=C.UTF-8")
  if [ "$(id -u)" = 0 ]; then runuser -u rabbitmq -- "${env[@]}" "$@"; else "${env[@]}" "$@"; fi
}

# rabbitmqctl for node N (the CLI also needs the cluster's cookie, epmd and env file).
ctl() {
  local n=$1
  shift
  env -i "PATH=/usr/sbin:/usr/bin:/sbin:/bin" "HOME=$DIR/home" "LANG=C.UTF-8" "LC_ALL=C.UTF-8" \
    "RABBITMQ_CONF_ENV_FILE=$(node_dir "$n")/rabbitmq-env.conf" "ERL_EPMD_PORT=$EPMD_PORT" \
    "$RABBIT_BIN/rabbitmqctl" -q -n "$(node_name "$n")" "$@"
}

# Runs a command silently (joining prints harmless errors about tables of nodes still starting);
# shows what it printed only if it fails.
quiet() {
  local out
  out=$("$@" 2>&1) || { echo "$out" >&2; return 1; }
}

node_pid() {
  local file
  file="$(node_dir "$1")/pid"
  [ -s "$file" ] && kill -0 "$(cat "$file")" 2>/dev/null && cat "$file"
}

prepare() {
  mkdir -p "$DIR/home"
  # A cookie of its own: the main node's (in /var/lib/rabbitmq) is never read.
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/home/.erlang.cookie"
  chmod 400 "$DIR/home/.erlang.cookie"
  echo '[].' >"$DIR/enabled_plugins"
  for n in "${NODES[@]}"; do
    local d
    d=$(node_dir "$n")
    mkdir -p "$d/mnesia" "$d/log"
    # The machine's /etc/rabbitmq/rabbitmq.conf pins the listener to 5672: each node has its own.
    cat >"$d/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$(node_port "$n")
log.file.level = warning
EOF
    # A quorum retry queue dead-letters at-least-once; a copy whose confirm was lost with a node is
    # sent again after this timeout (RabbitMQ's default 180 s), and the dead-letter worker takes
    # nothing new while it holds a full prefetch (32) of them. Lowered so a node loss in the tests
    # delays retries by seconds, not minutes (see docs/operations.md, "Running at scale").
    echo '[{rabbit, [{dead_letter_worker_publisher_confirm_timeout, 10000}]}].' >"$d/advanced.config"
    cat >"$d/rabbitmq-env.conf" <<EOF
NODENAME=$(node_name "$n")
NODE_PORT=$(node_port "$n")
DIST_PORT=$((20000 + $(node_port "$n")))
MNESIA_BASE=$d/mnesia
LOG_BASE=$d/log
PID_FILE=$d/pid
CONFIG_FILE=$d/rabbitmq.conf
ADVANCED_CONFIG_FILE=$d/advanced.config
ENABLED_PLUGINS_FILE=$DIR/enabled_plugins
ERL_EPMD_PORT=$EPMD_PORT
ERL_EPMD_ADDRESS=127.0.0.1
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
  done
  if [ "$(id -u)" = 0 ]; then chown -R rabbitmq:rabbitmq "$DIR"; fi
}

start_epmd() {
  # Its own epmd, started here so teardown can stop exactly it (a node would otherwise start one
  # that outlives the cluster). -relaxed_command_check: `epmd -kill` works even if a node is stuck.
  as_owner /usr/bin/epmd -port "$EPMD_PORT" -address 127.0.0.1 -relaxed_command_check >/dev/null 2>&1 &
  echo $! >"$DIR/epmd.pid"
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$EPMD_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "epmd did not start on port $EPMD_PORT" >&2
  return 1
}

start_node() {
  local n=$1 d
  d=$(node_dir "$n")
  if node_pid "$n" >/dev/null; then return 0; fi
  rm -f "$d/pid"
  (cd "$d" && as_owner "RABBITMQ_CONF_ENV_FILE=$d/rabbitmq-env.conf" "ERL_CRASH_DUMP=$d/erl_crash.dump" \
    "$RABBIT_BIN/rabbitmq-server" -detached)
}

await_node() {
  local n=$1
  for _ in $(seq 1 60); do
    ctl "$n" ping >/dev/null 2>&1 && break
    sleep 1
  done
  ctl "$n" await_startup --timeout 60 >/dev/null
}

stop_node() {
  local n=$1 pid
  pid=$(node_pid "$n") || return 0
  # `stop <pid file>` returns once the Erlang process has exited, not only the app.
  ctl "$n" stop "$(node_dir "$n")/pid" >/dev/null 2>&1 || true
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 1
  done
  kill -9 "$pid" 2>/dev/null || true
}

kill_node() {
  local pid
  pid=$(node_pid "$1") || return 0
  kill -9 "$pid"
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
}

teardown() {
  [ -d "$DIR" ] || return 0
  for n in "${NODES[@]}"; do stop_node "$n"; done
  if [ -s "$DIR/epmd.pid" ]; then
    local pid
    pid=$(cat "$DIR/epmd.pid")
    /usr/bin/epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
    sleep 0.2
    kill "$pid" 2>/dev/null || true
  fi
  rm -rf "$DIR"
}

start() {
  teardown
  prepare
  start_epmd
  for n in "${NODES[@]}"; do start_node "$n"; done
  for n in "${NODES[@]}"; do await_node "$n"; done
  for n in "${NODES[@]:1}"; do
    quiet ctl "$n" stop_app
    quiet ctl "$n" join_cluster "$(node_name 1)"
    quiet ctl "$n" start_app
  done
  local running
  running=$(ctl 1 eval 'length(rabbit_nodes:all_running()).')
  [ "$running" = "${#NODES[@]}" ] || { echo "cluster formed with $running running nodes, not ${#NODES[@]}" >&2; exit 1; }
  for n in "${NODES[@]}"; do echo "amqp://guest:guest@127.0.0.1:$(node_port "$n")"; done
}

node_arg() {
  case "${1:-}" in
    1 | 2 | 3) echo "$1" ;;
    *) echo "node number must be 1, 2 or 3 (got '${1:-}')" >&2; exit 2 ;;
  esac
}

case "${1:-}" in
  start) start ;;
  stop-node) stop_node "$(node_arg "${2:-}")" ;;
  kill-node) kill_node "$(node_arg "${2:-}")" ;;
  start-node)
    n=$(node_arg "${2:-}")
    start_node "$n"
    await_node "$n"
    ;;
  teardown) teardown ;;
  ctl)
    n=$(node_arg "${2:-}")
    shift 2
    ctl "$n" "$@"
    ;;
  *)
    echo "usage: $0 start | stop-node N | kill-node N | start-node N | teardown | ctl N ARGS..." >&2
    exit 2
    ;;
esac
