#!/usr/bin/env bash
# A private RabbitMQ 4.0.5 node (Erlang 27) on this machine, with the deprecated features that
# RabbitMQ 4.3 denies by default denied here too, for running the tests on today's broker.
#
#   test/rabbitmq4/rabbitmq4.sh install     downloads and prepares RabbitMQ 4 once (cached)
#   test/rabbitmq4/rabbitmq4.sh start       installs if needed, starts the node, prints its AMQP URL
#   test/rabbitmq4/rabbitmq4.sh stop        stops the node and removes its data (not the cache)
#   test/rabbitmq4/rabbitmq4.sh teardown    the same as stop
#   test/rabbitmq4/rabbitmq4.sh ctl ARGS... rabbitmqctl ARGS on that node (never on the main broker)
#   test/rabbitmq4/rabbitmqctl ARGS...      the same, as one executable (RABBITMQCTL= for the tests)
#
# The machine is Debian bookworm, whose glibc and OpenSSL are too old for trixie's Erlang 27, and
# its own broker (3.10.8, rabbit@localhost, port 5672) must not be touched. So trixie's packages
# are fetched with a private apt state and source list (the system's apt lists, status and
# sources are never read or written), unpacked with `dpkg -x` into one folder with trixie's C
# library, OpenSSL and loader, and every ELF file of its Erlang is pointed at that loader and
# those libraries with patchelf. The result is cached in NM_RABBITMQ4_CACHE (default
# ~/.cache/nestjs-messaging/rabbitmq-4.0.5); its paths are absolute, so it cannot be moved.
#
# The node is rabbit4@localhost on 127.0.0.1:5673 (distribution 25673, CLI 45673-45683), with its
# own epmd (port 4392), Erlang cookie, config, enabled-plugins file (none: no management), data,
# logs and pid file, all under NM_RABBITMQ4_DIR; it runs as the caller.
set -euo pipefail

VERSION=4.0.5
SUITE=trixie
MIRROR=${NM_RABBITMQ4_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
CACHE=${NM_RABBITMQ4_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nestjs-messaging/rabbitmq-$VERSION}
ROOT=$CACHE/root
ERL_ROOT=$ROOT/usr/lib/erlang
LIBDIR=$ROOT/usr/lib/x86_64-linux-gnu
LOADER=$ROOT/usr/lib64/ld-linux-x86-64.so.2
RABBIT_BIN=$ROOT/usr/lib/rabbitmq/bin

DIR=${NM_RABBITMQ4_DIR:-${TMPDIR:-/tmp}/nestjs-messaging-rabbitmq4}
NODE=rabbit4@localhost
PORT=5673
DIST_PORT=25673
EPMD_PORT=4392
URL="amqp://guest:guest@127.0.0.1:$PORT"
# The libraries trixie's Erlang links against (its packages' Depends), beside the C library's own;
# libsystemd0 (and its libcap2) because epmd links it. Checked after unpacking: every library an
# ELF file needs must be in the folder (see check_libraries).
LIBRARIES=(libc6 libssl3t64 libtinfo6 zlib1g libstdc++6 libgcc-s1 libsystemd0 libcap2)

fail() {
  echo "rabbitmq4: $*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------
# Install (once; cached)

apt_private() {
  local tool=$1
  shift
  local a=$CACHE/apt
  # Every apt path points into $CACHE/apt: no system list, status, cache, source or preference
  # is read or written, so the system's apt state and packages are as they were.
  "$tool" -q -o "Dir::State=$a/state" -o "Dir::State::status=$a/state/status" -o "Dir::Cache=$a/cache" \
    -o "Dir::Etc::SourceList=$a/sources.list" -o "Dir::Etc::SourceParts=$a/empty" \
    -o "Dir::Etc::Preferences=$a/empty/preferences" -o "Dir::Etc::PreferencesParts=$a/empty" \
    -o "APT::Sandbox::User=$(id -un)" -o "Debug::NoLocking=1" "$@"
}

is_elf() { [ "$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \n')" = 7f454c46 ]; }

# The downloaded patchelf, run by the unpacked loader (it needs trixie's libstdc++), unless the
# machine has its own.
patchelf_() {
  if command -v patchelf >/dev/null; then
    patchelf "$@"
  else
    "$LOADER" --library-path "$LIBDIR" "$CACHE/tools/usr/bin/patchelf" "$@"
  fi
}

check_libraries() {
  local f lib missing=()
  while IFS= read -r f; do
    is_elf "$f" || continue
    for lib in $(patchelf_ --print-needed "$f"); do
      [ -e "$LIBDIR/$lib" ] || missing+=("$lib (needed by ${f#"$ROOT"/})")
    done
  done < <(find "$ERL_ROOT" -type f \( -perm -u+x -o -name '*.so' \))
  [ ${#missing[@]} -eq 0 ] || fail "libraries missing from the unpacked packages: ${missing[*]} (add their packages to LIBRARIES in $0)"
}

install() {
  [ -f "$CACHE/ready" ] && return 0
  [ "$(uname -m)" = x86_64 ] || fail "only x86_64 is supported (this machine is $(uname -m))"
  local tool
  for tool in apt-get apt-cache dpkg od; do
    command -v "$tool" >/dev/null || fail "$tool is missing: this script needs a Debian-like system with apt and dpkg"
  done
  [ -r "$KEYRING" ] || fail "$KEYRING is missing: install debian-archive-keyring (apt-get install debian-archive-keyring)"
  echo "rabbitmq4: installing RabbitMQ $VERSION from Debian $SUITE into $CACHE (once)" >&2
  rm -rf "$CACHE"
  mkdir -p "$CACHE/apt/state/lists/partial" "$CACHE/apt/cache/archives/partial" "$CACHE/apt/empty" "$CACHE/debs" "$ROOT" "$CACHE/tools"
  : >"$CACHE/apt/state/status"
  echo "deb [signed-by=$KEYRING] $MIRROR $SUITE main" >"$CACHE/apt/sources.list"
  # apt-get update exits 0 when a source cannot be reached: the list it leaves is what counts.
  { apt_private apt-get update >"$CACHE/apt/update.log" 2>&1 && compgen -G "$CACHE/apt/state/lists/*_Packages*" >/dev/null; } ||
    fail "cannot read Debian $SUITE's package list from $MIRROR (no network, or a debian-archive-keyring without $SUITE's key: apt-get install debian-archive-keyring; set NM_RABBITMQ4_MIRROR for another mirror). apt said: $(tail -3 "$CACHE/apt/update.log")"
  local candidate
  candidate=$(apt_private apt-cache policy rabbitmq-server | awk '/Candidate:/ {print $2}')
  case "$candidate" in
    "$VERSION"-*) ;;
    *) fail "Debian $SUITE has rabbitmq-server '${candidate:-none}', not $VERSION: change VERSION in $0 after checking the tests on it" ;;
  esac
  # The Erlang applications RabbitMQ needs, from its package's dependencies (recursively).
  local erlang
  erlang=$(apt_private apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances rabbitmq-server | grep -E '^erlang-' | sort -u)
  [ -n "$erlang" ] || fail "cannot resolve rabbitmq-server's Erlang dependencies in Debian $SUITE"
  # shellcheck disable=SC2086 # one package name per word
  (cd "$CACHE/debs" && apt_private apt-get download "rabbitmq-server=$candidate" $erlang "${LIBRARIES[@]}" patchelf) \
    >"$CACHE/apt/download.log" 2>&1 || fail "cannot download Debian $SUITE's packages: $(tail -3 "$CACHE/apt/download.log")"
  local deb
  for deb in "$CACHE"/debs/*.deb; do
    case "${deb##*/}" in
      patchelf_*) dpkg -x "$deb" "$CACHE/tools" ;;
      *) dpkg -x "$deb" "$ROOT" ;;
    esac
  done
  [ -x "$LOADER" ] || fail "the unpacked libc6 has no loader at $LOADER"
  # Every ELF file of Erlang loads trixie's libraries through trixie's loader, never bookworm's.
  local f
  while IFS= read -r f; do
    is_elf "$f" || continue
    if patchelf_ --print-interpreter "$f" >/dev/null 2>&1; then patchelf_ --set-interpreter "$LOADER" "$f"; fi
    patchelf_ --set-rpath "$LIBDIR" "$f"
  done < <(find "$ERL_ROOT" -type f \( -perm -u+x -o -name '*.so' \))
  check_libraries
  # Debian's erl scripts pin ROOTDIR to /usr/lib/erlang (the bookworm Erlang of the main broker).
  sed -i "s|ROOTDIR=/usr/lib/erlang\$|ROOTDIR=$ERL_ROOT|" "$ERL_ROOT"/bin/erl "$ERL_ROOT"/bin/start "$ERL_ROOT"/erts-*/bin/erl "$ERL_ROOT"/erts-*/bin/start
  local otp
  otp=$(env -i "PATH=$ERL_ROOT/bin:/usr/bin:/bin" "HOME=$CACHE" "$ERL_ROOT/bin/erl" -noshell \
    -eval 'io:format("~s ~s", [erlang:system_info(otp_release), element(3, hd(crypto:info_lib()))]), halt().' 2>&1) ||
    fail "the unpacked Erlang does not run: $otp"
  rm -rf "$CACHE/apt" "$CACHE/debs"
  echo "rabbitmq-server $candidate, Erlang/OTP $otp" >"$CACHE/ready"
  echo "rabbitmq4: installed $(cat "$CACHE/ready")" >&2
}

# ---------------------------------------------------------------------------------------------
# The node

# Runs a command with only this node's environment: nothing inherited (a caller's RABBITMQ_* or
# ERL_* variables, the machine's erl on PATH) can point it at the main broker or its Erlang.
in_env() {
  env -i "PATH=$ERL_ROOT/bin:/usr/sbin:/usr/bin:/sbin:/bin" "HOME=$DIR/home" "LANG=C.UTF-8" "LC_ALL=C.UTF-8" \
    "RABBITMQ_CONF_ENV_FILE=$DIR/rabbitmq-env.conf" "ERL_EPMD_PORT=$EPMD_PORT" "$@"
}

ctl() {
  [ -f "$CACHE/ready" ] || fail "RabbitMQ $VERSION is not installed: run $0 start"
  [ -f "$DIR/rabbitmq-env.conf" ] || fail "the RabbitMQ 4 node is not started: run $0 start"
  in_env "$RABBIT_BIN/rabbitmqctl" -n "$NODE" "$@"
}

node_pid() {
  [ -s "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null && cat "$DIR/pid"
}

prepare() {
  mkdir -p "$DIR/home" "$DIR/mnesia" "$DIR/log"
  # A cookie of its own: the main node's is never read.
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/home/.erlang.cookie"
  chmod 400 "$DIR/home/.erlang.cookie"
  echo '[].' >"$DIR/enabled_plugins"
  # The machine's /etc/rabbitmq/rabbitmq.conf pins the listener to 5672: this node has its own.
  # The three denials are RabbitMQ 4.3's defaults (4.0.5 still permits them unless told).
  cat >"$DIR/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$PORT
log.file.level = warning
log.console = false
deprecated_features.permit.transient_nonexcl_queues = false
deprecated_features.permit.global_qos = false
deprecated_features.permit.classic_queue_mirroring = false
EOF
  # The CLI's VM spins its schedulers while idle unless told not to (the server already is, by
  # RabbitMQ's defaults): with two cores busy, a call took 9-23 s that way and 3-8 s this way
  # (3.10's CLI: 1-4 s), and tests waiting on it timed out while both CI legs ran.
  cat >"$DIR/rabbitmq-env.conf" <<EOF
NODENAME=$NODE
NODE_PORT=$PORT
DIST_PORT=$DIST_PORT
CTL_DIST_PORT_MIN=$((DIST_PORT + 20000))
CTL_DIST_PORT_MAX=$((DIST_PORT + 20010))
CTL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none"
MNESIA_BASE=$DIR/mnesia
LOG_BASE=$DIR/log
PID_FILE=$DIR/pid
CONFIG_FILE=$DIR/rabbitmq.conf
ENABLED_PLUGINS_FILE=$DIR/enabled_plugins
ERL_EPMD_PORT=$EPMD_PORT
ERL_EPMD_ADDRESS=127.0.0.1
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
}

start_epmd() {
  # Its own epmd, started here so teardown stops exactly it (the main node's is on 4369).
  in_env "$ERL_ROOT/bin/epmd" -port "$EPMD_PORT" -address 127.0.0.1 -relaxed_command_check >"$DIR/log/epmd.log" 2>&1 &
  echo $! >"$DIR/epmd.pid"
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$EPMD_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  fail "epmd did not start on port $EPMD_PORT: $(cat "$DIR/log/epmd.log")"
}

await_node() {
  for _ in $(seq 1 60); do
    ctl -q ping >/dev/null 2>&1 && break
    # The pid file appears once the VM runs; a VM gone after that has failed to boot.
    if [ -s "$DIR/pid" ] && ! node_pid >/dev/null; then fail "the node exited while starting; its log: $(tail -20 "$DIR"/log/*.log 2>/dev/null)"; fi
    sleep 1
  done
  ctl -q await_startup --timeout 60 >/dev/null || fail "the node did not start; its log: $(tail -20 "$DIR"/log/*.log 2>/dev/null)"
}

stop() {
  [ -d "$DIR" ] || return 0
  local pid
  if pid=$(node_pid); then
    # `stop <pid file>` returns once the Erlang process has exited, not only the app.
    ctl -q stop "$DIR/pid" >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  if [ -s "$DIR/epmd.pid" ]; then
    in_env "$ERL_ROOT/bin/epmd" -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
    sleep 0.2
    kill "$(cat "$DIR/epmd.pid")" 2>/dev/null || true
  fi
  rm -rf "$DIR"
}

# What the running node says it is, e.g. 4.0.5 on Erlang/OTP 27.3.4.1.
VERSIONS='{ok, Otp} = file:read_file(filename:join([code:root_dir(), "releases", erlang:system_info(otp_release), "OTP_VERSION"])),
  rabbit_misc:version() ++ " on Erlang/OTP " ++ string:trim(binary_to_list(Otp)).'

start() {
  install
  if node_pid >/dev/null && ctl -q ping >/dev/null 2>&1; then
    echo "$URL"
    return 0
  fi
  stop
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then fail "port $PORT is already taken by another program"; fi
  prepare
  start_epmd
  (cd "$DIR" && in_env "ERL_CRASH_DUMP=$DIR/erl_crash.dump" "$RABBIT_BIN/rabbitmq-server" -detached) ||
    fail "rabbitmq-server did not start: $(tail -20 "$DIR"/log/*.log 2>/dev/null)"
  await_node
  echo "rabbitmq4: $NODE runs RabbitMQ $(ctl -q eval "$VERSIONS" | tr -d '"')" >&2
  echo "$URL"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop | teardown) stop ;;
  ctl)
    shift
    ctl "$@"
    ;;
  *)
    echo "usage: $0 install | start | stop | teardown | ctl ARGS..." >&2
    exit 2
    ;;
esac
