#!/usr/bin/env bash
# Cache-hit cost in instructions (issue 2), free of the timing noise of a
# shared machine: one gunicorn sync worker at a time runs under valgrind's
# cachegrind, serving N1 and then N2 cache hits (one connection each, random
# seeded tiles); the difference of the worker's instruction counts divided by
# N2 - N1 is the cost of one request in user space (the kernel's part is not
# counted). Servers: TileStache and the minimal app of serve.sh, on the same
# seeded world layer.
#
#   bash bench/serve_instructions.sh        (N1=200, N2=2200 by default)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/serve_common.sh"
need_tools valgrind
N1="${N1:-200}"
N2="${N2:-2200}"

CONFIG="$("$PY" "$BENCH/serve_tools.py" config "$REPO" "$TMP")"
CACHE="$TMP/cache"
URLS="$TMP/urls.txt"
echo "seeding zooms 0-5 of the world layer into $CACHE ..." >&2
(cd "$TMP" && "$PY" "$BENCH/serve_tools.py" seed "$CONFIG" "$URLS") >/dev/null 2>&1

worker_instructions() {  # app requests: user-space instructions of the gunicorn worker
    local port out pid file
    port="$("$PY" "$BENCH/serve_tools.py" ports 1)"
    out="$TMP/cachegrind-$1-$2"
    mkdir -p "$out"
    BENCH_CONFIG="$CONFIG" BENCH_CACHE="$CACHE" valgrind --tool=cachegrind --cache-sim=no \
        --trace-children=yes --cachegrind-out-file="$out/%p" \
        "$PY" "$GUNICORN" --workers 1 --worker-class sync --pythonpath "$BENCH" --log-level warning \
        --bind "127.0.0.1:$port" "gunicorn_apps:$1()" >"$out/log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 600); do  # valgrind is slow to start: up to a minute
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || { cat "$out/log" >&2; exit 1; }
        sleep 0.1
    done
    "$PY" "$BENCH/serve_tools.py" hit "$port" "$URLS" "$2"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    for file in "$out"/[0-9]*; do  # the master's file is named by its pid; the worker's is the other
        [ "$(basename "$file")" = "$pid" ] && continue
        awk '/^summary:/ {print $2}' "$file"
    done
}

declare -A PER_REQUEST
for app in minimal tilestache; do
    echo "cachegrind $app: $N1 and $N2 requests ..." >&2
    low="$(worker_instructions "$app" "$N1")"
    high="$(worker_instructions "$app" "$N2")"
    PER_REQUEST[$app]=$(( (high - low) / (N2 - N1) ))
done
echo
echo "user-space instructions per cache hit (gunicorn worker, one connection per request):"
for app in minimal tilestache; do
    printf '%-12s %9d\n' "$app" "${PER_REQUEST[$app]}"
done
awk -v t="${PER_REQUEST[tilestache]}" -v m="${PER_REQUEST[minimal]}" \
    'BEGIN {printf "tilestache / minimal: %.3f (instructions; lower is better)\n", t / m}'
