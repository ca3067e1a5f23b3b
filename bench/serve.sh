#!/usr/bin/env bash
# Cache-hit serving benchmark (issue 2): TileStache under gunicorn against a
# minimal WSGI file server (same gunicorn settings), plain nginx on the same
# files, and the nginx try_files recipe of docs/nginx.conf.example.
#
#   bash bench/serve.sh [DURATION_SECONDS]     (or DURATION=30 bash bench/serve.sh)
#
# Environment: DURATION (15), WARMUP (3), CONNECTIONS (8), WORKERS (2),
# ROUNDS (2: the four servers are loaded in turn ROUNDS times and each one's
# best round is reported, so a burst of load from elsewhere on the machine
# does not decide a ratio), KEEP_TMP=1 keeps the temporary folder.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/bench"
PY="${PYTHON:-$REPO/.venv/bin/python}"
DURATION="${1:-${DURATION:-15}}"
WARMUP="${WARMUP:-3}"
CONNECTIONS="${CONNECTIONS:-8}"
WORKERS="${WORKERS:-2}"
ROUNDS="${ROUNDS:-2}"

# --- tools ------------------------------------------------------------------
if ! "$PY" -c 'import gunicorn' 2>/dev/null; then
    "$PY" -m pip install --quiet gunicorn
fi
GUNICORN="$(dirname "$PY")/gunicorn"
missing_apt=()
command -v wrk >/dev/null || missing_apt+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing_apt+=(nginx-light)
if [ ${#missing_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "serve.sh: please install ${missing_apt[*]} (needs root)" >&2
        exit 1
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_apt[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
MIME_TYPES=/etc/nginx/mime.types

# --- cleanup: stop what we started, by pid ----------------------------------
TMP="$(mktemp -d /tmp/tilestache-bench.XXXXXX)"
chmod 755 "$TMP"   # nginx workers may run as an unprivileged user
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_port() {  # port pid
    local i
    for i in $(seq 1 200); do
        if ! kill -0 "$2" 2>/dev/null; then
            echo "serve.sh: server on port $1 died; logs in $TMP" >&2
            exit 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "serve.sh: nothing listening on port $1" >&2
    exit 1
}

# --- 1. seed ----------------------------------------------------------------
CONFIG="$("$PY" "$BENCH/serve_tools.py" config "$REPO" "$TMP")"
CACHE="$TMP/cache"
URLS="$TMP/urls.txt"
echo "seeding zooms 0-5 of the world layer into $CACHE ..." >&2
(cd "$TMP" && "$PY" "$BENCH/serve_tools.py" seed "$CONFIG" "$URLS")
read -r TS_PORT MIN_PORT PLAIN_PORT RECIPE_PORT < <("$PY" "$BENCH/serve_tools.py" ports 4)

# --- 2. servers -------------------------------------------------------------
GUNICORN_ARGS=(--workers "$WORKERS" --worker-class sync --pythonpath "$BENCH"
               --log-level warning --graceful-timeout 2)
start_gunicorn() {  # name port app
    BENCH_CONFIG="$CONFIG" BENCH_CACHE="$CACHE" \
        "$GUNICORN" "${GUNICORN_ARGS[@]}" --bind "127.0.0.1:$2" "$3" >"$TMP/$1.log" 2>&1 &
    PIDS+=($!)
    wait_for_port "$2" "$!"
}
start_gunicorn tilestache "$TS_PORT" 'gunicorn_apps:tilestache()'
start_gunicorn minimal "$MIN_PORT" 'gunicorn_apps:minimal()'

mkdir -p "$TMP/nginx"
sed -e "s|@TMP@|$TMP|g" -e "s|@CACHE@|$CACHE|g" -e "s|@MIME_TYPES@|$MIME_TYPES|g" \
    -e "s|@PLAIN_PORT@|$PLAIN_PORT|g" -e "s|@RECIPE_PORT@|$RECIPE_PORT|g" \
    -e "s|@UPSTREAM@|127.0.0.1:$TS_PORT|g" "$BENCH/nginx-bench.conf" >"$TMP/nginx/nginx.conf"
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx/stdout.log" 2>&1 &
PIDS+=($!)
wait_for_port "$PLAIN_PORT" "$!"
wait_for_port "$RECIPE_PORT" "$!"

# Every server must answer a seeded tile with a PNG before we measure it.
SAMPLE="$(head -n 1 "$URLS")"
for port in "$TS_PORT" "$MIN_PORT" "$PLAIN_PORT" "$RECIPE_PORT"; do
    "$PY" - "http://127.0.0.1:$port$SAMPLE" <<'PYEOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1]) as r:
    assert r.status == 200 and r.headers["Content-Type"] == "image/png", (sys.argv[1], r.status, dict(r.headers))
    assert r.read().startswith(b"\x89PNG"), sys.argv[1]
PYEOF
done

# --- 3. load ----------------------------------------------------------------
RESULTS="$TMP/results.txt"
: >"$RESULTS"
load() {  # name port
    echo "wrk $1: ${WARMUP}s warm-up, ${DURATION}s measured ..." >&2
    wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -s "$BENCH/urls.lua" "http://127.0.0.1:$2" -- "$URLS" 7 >/dev/null
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$BENCH/urls.lua" "http://127.0.0.1:$2" -- "$URLS" 42 \
        | tee "$TMP/wrk-$1.txt" | grep '^BENCH' | sed "s/^/$1 /" >>"$RESULTS"
}
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS" >&2
    load tilestache "$TS_PORT"
    load minimal "$MIN_PORT"
    load nginx "$PLAIN_PORT"
    load recipe "$RECIPE_PORT"
done

echo
echo "cache hits, $(wc -l <"$URLS") tiles of zooms 0-5, wrk -t1 -c$CONNECTIONS -d${DURATION}s," \
     "best of $ROUNDS rounds, gunicorn $WORKERS sync workers, nginx worker_processes 2, $(nproc) CPUs"
echo "every round:" && sed 's/^/  /' "$RESULTS" && echo
"$PY" "$BENCH/serve_tools.py" table "$RESULTS"
