#!/usr/bin/env bash
# Manage the embedded PostgreSQL cluster under var/pg.
# Usage: scripts/pg.sh start|stop|status|url
# The cluster listens only on a Unix socket in var/pg/run (no TCP port, so it never
# collides with a PostgreSQL service on 5432), and var/pg is private to the cluster's
# owner, which is why trust authentication on that socket is safe.
# PostgreSQL refuses to run as root, so the cluster runs as the unprivileged
# "postgres" user that Debian's postgresql package creates.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PGV="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)"
BIN="/usr/lib/postgresql/$PGV/bin"
BASE="$ROOT/var/pg"
DATA="$BASE/data"
RUN="$BASE/run"
OWNER="${TRACKER_PG_OWNER:-postgres}"

as_owner() {
  if [ "$(id -un)" = "$OWNER" ]; then "$@"; else runuser -u "$OWNER" -- "$@"; fi
}

ensure_owner() {
  if ! id "$OWNER" >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$OWNER"
  fi
  mkdir -p "$BASE"
  if ! runuser -u "$OWNER" -- test -x "$ROOT/var" 2>/dev/null; then
    # The owner must be able to walk down to var/pg: open up var/ itself.
    chmod o+x "$ROOT/var" 2>/dev/null || true
  fi
  chown "$OWNER" "$BASE"
  chmod 700 "$BASE"
  if ! runuser -u "$OWNER" -- test -w "$BASE"; then
    echo "error: user $OWNER cannot reach $BASE; clone the repository somewhere" \
         "every user can traverse (for example /srv or /tmp), or set DATABASE_URL." >&2
    exit 1
  fi
}

running() { [ -f "$DATA/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

case "${1:-status}" in
  start)
    ensure_owner
    if [ ! -f "$DATA/PG_VERSION" ]; then
      echo "==> creating the embedded PostgreSQL $PGV cluster in var/pg"
      as_owner mkdir -p "$DATA" "$RUN"
      as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
      as_owner tee -a "$DATA/postgresql.conf" >/dev/null <<CONF
listen_addresses = ''
unix_socket_directories = '$RUN'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 512MB
synchronous_commit = on
wal_compression = on
max_wal_size = 4GB
checkpoint_timeout = 15min
log_min_messages = warning
CONF
    fi
    if ! running; then
      rm -f "$DATA/postmaster.pid"
      as_owner "$BIN/pg_ctl" -D "$DATA" -l "$BASE/server.log" -w -t 60 start >/dev/null
    fi
    if ! as_owner "$BIN/psql" -h "$RUN" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'tracker'" | grep -q 1; then
      as_owner "$BIN/createdb" -h "$RUN" -U postgres tracker
    fi
    ;;
  stop)
    if running; then as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; fi
    ;;
  status)
    if running; then echo "running (socket $RUN)"; else echo "stopped"; exit 3; fi
    ;;
  url)
    echo "postgresql+psycopg2://postgres@/tracker?host=$RUN"
    ;;
  *)
    echo "usage: $0 start|stop|status|url" >&2; exit 2
    ;;
esac
