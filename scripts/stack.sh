#!/usr/bin/env bash
# Run the whole multi-process stack locally: Redis, one tracker process per core, nginx.
# Usage: scripts/stack.sh start|stop|status|nginx-conf
#
#   start       install what is missing (scripts/setup.sh, with nginx and redis-server),
#               migrate the embedded database, then start Redis (unless one already
#               answers on 127.0.0.1:6379), STACK_PROCESSES gunicorn processes on
#               127.0.0.1:5001.. sharing the live feed through Redis, and nginx on
#               127.0.0.1:$STACK_PORT in front of them.
#   stop        stop what start started (by the pid files under var/stack/).
#   status      say what is running.
#   nginx-conf  print deploy/nginx.conf rendered for STACK_DIR, STACK_LISTEN and
#               STACK_UPSTREAMS ("host:port host:port ..."); the tests use it too.
#
# Settings (environment): STACK_PORT (8080), STACK_PROCESSES (number of cores),
# STACK_REDIS_PORT (6390, only when a Redis of our own is started), STACK_DIR (var/stack).
# Everything nginx and Redis write stays under STACK_DIR; nothing is installed as a service.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
STACK_DIR="${STACK_DIR:-$ROOT/var/stack}"
STACK_PORT="${STACK_PORT:-8080}"
STACK_PROCESSES="${STACK_PROCESSES:-$(nproc)}"
STACK_REDIS_PORT="${STACK_REDIS_PORT:-6390}"
FIRST_PORT=5001

log() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
die() { echo "error: $*" >&2; exit 1; }

nginx_bin() { command -v nginx || echo /usr/sbin/nginx; }

# The user nginx's workers run as when the master starts as root (never root itself).
worker_user_line() {
  [ "$(id -u)" = 0 ] || return 0
  if id www-data >/dev/null 2>&1; then
    echo "user www-data $(id -gn www-data);"
  else
    echo "user nobody $(id -gn nobody);"
  fi
}

worker_user() {
  if id www-data >/dev/null 2>&1; then echo www-data; else echo nobody; fi
}

render_nginx_conf() {
  local listen="${STACK_LISTEN:-127.0.0.1:$STACK_PORT}" servers="" upstream nofile
  [ -n "${STACK_UPSTREAMS:-}" ] || die "STACK_UPSTREAMS is empty"
  for upstream in $STACK_UPSTREAMS; do
    servers+="        server $upstream max_fails=1 fail_timeout=10s;"$'\n'
  done
  # nginx cannot raise its workers' limit above the hard limit (containers often cap it).
  nofile="$(ulimit -Hn)"
  if [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ]; then nofile=65536; fi
  # awk, not sed: the replacements contain slashes and newlines.
  awk -v user="$(worker_user_line)" -v dir="$STACK_DIR" -v listen="$listen" \
      -v nofile="$nofile" -v servers="${servers%$'\n'}" '
    /^@SERVERS@$/ { print servers; next }
    { gsub(/@USER_LINE@/, user); gsub(/@STACK_DIR@/, dir); gsub(/@LISTEN@/, listen)
      gsub(/@NOFILE@/, nofile); print }
  ' deploy/nginx.conf
}

# Make the temp dirs usable by nginx's workers: they must be able to walk down to them.
# (With buffering off they are rarely written to, so a repository in a private home
# directory gets a warning, not a refusal.)
prepare_nginx_dirs() {
  mkdir -p "$STACK_DIR/log" "$STACK_DIR/tmp"
  [ "$(id -u)" = 0 ] || return 0
  local user dir
  user="$(worker_user)"
  chown "$user" "$STACK_DIR/tmp"
  dir="$STACK_DIR"
  # Open up only the directories inside the repository, as scripts/pg.sh does for var/.
  while [ "$dir" != "$ROOT" ] && [ "$dir" != / ]; do
    chmod o+x "$dir" 2>/dev/null || true
    dir="$(dirname "$dir")"
  done
  if ! runuser -u "$user" -- test -w "$STACK_DIR/tmp"; then
    echo "warning: nginx's worker user $user cannot reach $STACK_DIR/tmp; large" \
         "request bodies may fail. Clone the repository somewhere every user can" \
         "traverse, or set STACK_DIR." >&2
  fi
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for_port() {
  local port="$1" what="$2" i
  for i in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  die "$what did not start listening on 127.0.0.1:$port (see $STACK_DIR/log/)"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

redis_pong() { [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]; }

start_redis() {
  if redis_pong 6379; then
    log "Redis: using the one already on 127.0.0.1:6379"
    echo "redis://127.0.0.1:6379/0" >"$STACK_DIR/redis.url"
    return
  fi
  if alive "$STACK_DIR/redis.pid"; then
    log "Redis: already running on 127.0.0.1:$STACK_REDIS_PORT"
  else
    log "Redis: starting on 127.0.0.1:$STACK_REDIS_PORT (var/stack/redis)"
    mkdir -p "$STACK_DIR/redis"
    # A message queue only: nothing to persist.
    redis-server --bind 127.0.0.1 --port "$STACK_REDIS_PORT" --dir "$STACK_DIR/redis" \
      --save '' --appendonly no --daemonize yes --pidfile "$STACK_DIR/redis.pid" \
      --logfile "$STACK_DIR/log/redis.log"
    wait_for_port "$STACK_REDIS_PORT" Redis
  fi
  echo "redis://127.0.0.1:$STACK_REDIS_PORT/0" >"$STACK_DIR/redis.url"
}

start_trackers() {
  local queue i port
  queue="$(cat "$STACK_DIR/redis.url")"
  for i in $(seq 1 "$STACK_PROCESSES"); do
    port=$((FIRST_PORT + i - 1))
    if alive "$STACK_DIR/tracker-$i.pid"; then
      log "tracker $i: already running on 127.0.0.1:$port"
      continue
    fi
    port_free "$port" || die "127.0.0.1:$port is taken by another program"
    log "tracker $i: starting on 127.0.0.1:$port"
    BIND="127.0.0.1:$port" SOCKETIO_MESSAGE_QUEUE="$queue" \
      .venv/bin/gunicorn -c deploy/gunicorn.conf.py --daemon --pid "$STACK_DIR/tracker-$i.pid" \
      --capture-output --error-logfile "$STACK_DIR/log/tracker-$i.log" wsgi:app
  done
  for i in $(seq 1 "$STACK_PROCESSES"); do
    wait_for_port $((FIRST_PORT + i - 1)) "tracker $i"
  done
}

start_nginx() {
  local upstreams="" i
  for i in $(seq 1 "$STACK_PROCESSES"); do
    upstreams+="127.0.0.1:$((FIRST_PORT + i - 1)) "
  done
  prepare_nginx_dirs
  STACK_UPSTREAMS="$upstreams" render_nginx_conf >"$STACK_DIR/nginx.conf"
  if alive "$STACK_DIR/nginx.pid"; then
    log "nginx: reloading its configuration"
    kill -HUP "$(cat "$STACK_DIR/nginx.pid")"
    return
  fi
  port_free "$STACK_PORT" || die "127.0.0.1:$STACK_PORT is taken; set STACK_PORT"
  log "nginx: starting on 127.0.0.1:$STACK_PORT"
  "$(nginx_bin)" -p "$STACK_DIR" -c "$STACK_DIR/nginx.conf" -e "$STACK_DIR/log/nginx-error.log"
  wait_for_port "$STACK_PORT" nginx
}

stop_pidfile() {
  local name="$1" pidfile="$2" signal="$3" i
  if ! alive "$pidfile"; then
    rm -f "$pidfile"
    return
  fi
  log "stopping $name"
  kill "-$signal" "$(cat "$pidfile")"
  for i in $(seq 1 100); do
    alive "$pidfile" || break
    sleep 0.1
  done
  if alive "$pidfile"; then kill -KILL "$(cat "$pidfile")"; fi
  rm -f "$pidfile"
}

status_line() {
  if alive "$2"; then echo "$1: running (pid $(cat "$2"))"; else echo "$1: stopped"; fi
}

case "${1:-status}" in
  start)
    WITH_STACK=1 scripts/setup.sh run
    export FLASK_APP=wsgi
    .venv/bin/flask db upgrade
    .venv/bin/flask partitions ensure
    .venv/bin/flask seed-demo
    mkdir -p "$STACK_DIR/log"
    start_redis
    start_trackers
    start_nginx
    echo "==> serving on http://127.0.0.1:$STACK_PORT ($STACK_PROCESSES processes," \
         "message queue $(cat "$STACK_DIR/redis.url")); logs in $STACK_DIR/log"
    ;;
  stop)
    stop_pidfile nginx "$STACK_DIR/nginx.pid" QUIT
    for pidfile in "$STACK_DIR"/tracker-*.pid; do
      [ -e "$pidfile" ] || continue
      stop_pidfile "$(basename "$pidfile" .pid)" "$pidfile" TERM
    done
    stop_pidfile redis "$STACK_DIR/redis.pid" TERM
    ;;
  status)
    status_line nginx "$STACK_DIR/nginx.pid"
    for pidfile in "$STACK_DIR"/tracker-*.pid; do
      [ -e "$pidfile" ] || continue
      status_line "$(basename "$pidfile" .pid)" "$pidfile"
    done
    if [ -f "$STACK_DIR/redis.pid" ]; then
      status_line "redis (own)" "$STACK_DIR/redis.pid"
    elif [ -f "$STACK_DIR/redis.url" ]; then
      echo "redis: $(cat "$STACK_DIR/redis.url") (not ours)"
    fi
    ;;
  nginx-conf)
    render_nginx_conf
    ;;
  *)
    echo "usage: $0 start|stop|status|nginx-conf" >&2
    exit 2
    ;;
esac
