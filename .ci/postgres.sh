#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 and print its URL on stdout (last line).
#
#   url=$(.ci/postgres.sh | tail -n1)
#   SUPPORTDESK_TEST_POSTGRES_URL=$url pytest tests/durable
#
# Installs the server with apt-get if no binaries are found. As root the server runs as the
# 'postgres' user. Trust authentication on loopback only: for tests and CI, never for real data.
# Environment: PG_PORT (default 55432), PG_DIR (default /tmp/supportdesk-pg). Stop with:
#   .ci/postgres.sh stop
set -euo pipefail

PORT="${PG_PORT:-55432}"
DIR="${PG_DIR:-/tmp/supportdesk-pg}"
DATA="$DIR/data"

find_bin() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

BIN=$(find_bin || true)
if [ -z "$BIN" ]; then
    echo "installing PostgreSQL with apt-get" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
    BIN=$(find_bin)
fi

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ "${1:-start}" = "stop" ]; then
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
    exit 0
fi

URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
if [ -x "$BIN/pg_isready" ] && "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; then
    echo "PostgreSQL already running on port $PORT" >&2
    echo "$URL"
    exit 0
fi

mkdir -p "$DIR"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$DIR"; fi
if [ ! -f "$DATA/PG_VERSION" ]; then
    as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 >&2
fi
as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$DIR" start >&2
echo "$URL"
