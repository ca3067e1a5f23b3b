#!/usr/bin/env bash
# Cache-hit serving through gunicorn per cache backend (issue 4): the same
# TileStache app (2 sync workers) over a Disk, a Memcache and a Redis cache,
# each seeded with zooms 0-5 of the world layer, and the minimal WSGI file
# server over the Disk cache's folder as the floor. Same tooling as serve.sh
# (serve_common.sh, serve_tools.py, urls.lua, gunicorn_apps.py).
#
#   bash bench/serve_caches.sh [DURATION_SECONDS]   (or DURATION=30 bash bench/serve_caches.sh)
#
# Environment: DURATION (5), WARMUP (1), CONNECTIONS (8), WORKERS (2),
# ROUNDS (6: servers loaded in turn ROUNDS times, each one's best round kept),
# KEEP_TMP=1 keeps the temporary folder. memcached and redis-server are
# started on free loopback ports by tests/services.py and stopped on exit.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/serve_common.sh"
need_tools wrk

# --- 1. cache servers, configs, seeding -------------------------------------
"$PY" "$BENCH/serve_tools.py" services "$TMP/services.txt" >"$TMP/services.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 300); do
    [ -s "$TMP/services.txt" ] && break
    kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$TMP/services.log" >&2; exit 1; }
    sleep 0.1
done
read -r MEMCACHE_ADDRESS REDIS_PORT <"$TMP/services.txt"

CACHE="$TMP/cache"
URLS="$TMP/urls.txt"
NAMES=(disk memcache redis)
declare -A SPEC=(
    [disk]="{\"name\": \"Disk\", \"path\": \"$CACHE\", \"umask\": \"0022\", \"dirs\": \"portable\"}"
    [memcache]="{\"name\": \"Memcache\", \"servers\": [\"$MEMCACHE_ADDRESS\"]}"
    [redis]="{\"name\": \"Redis\", \"host\": \"127.0.0.1\", \"port\": $REDIS_PORT}"
)
declare -A CONFIG PORT
for name in "${NAMES[@]}"; do
    CONFIG[$name]="$("$PY" "$BENCH/serve_tools.py" config "$REPO" "$TMP" "$name" "${SPEC[$name]}")"
    echo "seeding zooms 0-5 of the world layer into the $name cache ..." >&2
    (cd "$TMP" && "$PY" "$BENCH/serve_tools.py" seed "${CONFIG[$name]}" "$URLS")
done

# --- 2. servers -------------------------------------------------------------
read -r PORT[disk] PORT[memcache] PORT[redis] PORT[minimal] < <("$PY" "$BENCH/serve_tools.py" ports 4)
for name in "${NAMES[@]}"; do
    start_gunicorn "$name" "${PORT[$name]}" 'gunicorn_apps:tilestache()' "${CONFIG[$name]}" "$CACHE"
done
start_gunicorn minimal "${PORT[minimal]}" 'gunicorn_apps:minimal()' "${CONFIG[disk]}" "$CACHE"
SAMPLE="$(head -n 1 "$URLS")"
for name in "${NAMES[@]}" minimal; do
    check_png "http://127.0.0.1:${PORT[$name]}$SAMPLE"
done

# --- 3. load ----------------------------------------------------------------
RESULTS="$TMP/results.txt"
measure "$URLS" "$RESULTS" 1 "$ROUNDS" disk="${PORT[disk]}" memcache="${PORT[memcache]}" redis="${PORT[redis]}" \
    minimal="${PORT[minimal]}"
report "$URLS" "$RESULTS" "memcached -m 64, redis-server without persistence" \
    disk/minimal memcache/disk redis/disk memcache/minimal redis/minimal
