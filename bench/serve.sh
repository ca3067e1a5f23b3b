#!/usr/bin/env bash
# Cache-hit serving benchmark (issue 2): TileStache under gunicorn against a
# minimal WSGI file server (same gunicorn settings), plain nginx on the same
# files, and the nginx try_files recipe of docs/nginx.conf.example.
#
#   bash bench/serve.sh [DURATION_SECONDS]     (or DURATION=10 bash bench/serve.sh)
#
# Two blocks of paired rounds, each pair's ratio taken within its round:
#   1. tilestache vs minimal, PAIRS rounds (20) in the order A B, B A, A B, ...
#      The verdict is the median of those same-round ratios, printed with a
#      95 % confidence interval: single rounds on a shared 2-core machine swing
#      by +-10 %, so only many short pairs pin the ratio down.
#   2. nginx vs recipe, NGINX_ROUNDS rounds (4), the same way. nginx answers
#      ten times as many requests per second, so it runs in a block of its own
#      instead of between the two Python servers.
#   3. metrics vs tilestache, METRICS_PAIRS rounds (10): the same server with
#      "metrics": true (TileStache/gunicorn.conf.py, PROMETHEUS_MULTIPROC_DIR)
#      against it without; the cost of counting (target >= 0.97).
# Environment: DURATION (5 s measured per load), WARMUP (1 s before each),
# CONNECTIONS (8), WORKERS (2), PAIRS, NGINX_ROUNDS, METRICS_PAIRS, KEEP_TMP=1 keeps the
# temporary folder.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/serve_common.sh"
need_tools wrk nginx
MIME_TYPES=/etc/nginx/mime.types

# --- 1. seed ----------------------------------------------------------------
CONFIG="$("$PY" "$BENCH/serve_tools.py" config "$REPO" "$TMP")"
CACHE="$TMP/cache"
URLS="$TMP/urls.txt"
echo "seeding zooms 0-5 of the world layer into $CACHE ..." >&2
(cd "$TMP" && "$PY" "$BENCH/serve_tools.py" seed "$CONFIG" "$URLS")
read -r TS_PORT MIN_PORT PLAIN_PORT RECIPE_PORT METRICS_PORT < <("$PY" "$BENCH/serve_tools.py" ports 5)
METRICS_CONFIG="$("$PY" "$BENCH/serve_tools.py" metrics-config "$CONFIG")"

# --- 2. servers -------------------------------------------------------------
start_gunicorn tilestache "$TS_PORT" 'gunicorn_apps:tilestache()' "$CONFIG" "$CACHE"
start_gunicorn minimal "$MIN_PORT" 'gunicorn_apps:minimal()' "$CONFIG" "$CACHE"
PROMETHEUS_MULTIPROC_DIR="$TMP/metrics-files" start_gunicorn metrics "$METRICS_PORT" 'gunicorn_apps:tilestache()' \
    "$METRICS_CONFIG" "$CACHE" -c "$REPO/TileStache/gunicorn.conf.py"

mkdir -p "$TMP/nginx"
sed -e "s|@TMP@|$TMP|g" -e "s|@CACHE@|$CACHE|g" -e "s|@MIME_TYPES@|$MIME_TYPES|g" \
    -e "s|@PLAIN_PORT@|$PLAIN_PORT|g" -e "s|@RECIPE_PORT@|$RECIPE_PORT|g" \
    -e "s|@UPSTREAM@|127.0.0.1:$TS_PORT|g" "$BENCH/nginx-bench.conf" >"$TMP/nginx/nginx.conf"
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx/stdout.log" 2>&1 &
PIDS+=($!)
wait_for_port "$PLAIN_PORT" "$!"
wait_for_port "$RECIPE_PORT" "$!"

SAMPLE="$(head -n 1 "$URLS")"
for port in "$TS_PORT" "$MIN_PORT" "$PLAIN_PORT" "$RECIPE_PORT" "$METRICS_PORT"; do
    check_png "http://127.0.0.1:$port$SAMPLE"
done

# --- 3. load ----------------------------------------------------------------
RESULTS="$TMP/results.txt"
measure "$URLS" "$RESULTS" 1 "${PAIRS:-20}" tilestache="$TS_PORT" minimal="$MIN_PORT"
measure "$URLS" "$RESULTS" 2 "${NGINX_ROUNDS:-4}" nginx="$PLAIN_PORT" recipe="$RECIPE_PORT"
measure "$URLS" "$RESULTS" 3 "${METRICS_PAIRS:-10}" metrics="$METRICS_PORT" tilestache="$TS_PORT"
report "$URLS" "$RESULTS" "nginx worker_processes 2"
echo
echo "the metrics server counted (both workers summed):"
"$PY" "$BENCH/serve_tools.py" scrape "$METRICS_PORT"
