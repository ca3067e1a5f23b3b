# Shared by bench/serve.sh and bench/serve_caches.sh (source it, do not run it):
# tools, a temporary folder, servers started in the background and stopped by
# pid on exit, and one wrk load of a server.
#
# Provides REPO, BENCH, PY (the venv's python, or $PYTHON), DURATION (the
# script's first argument, else $DURATION, else 5 seconds per measured load),
# WARMUP (1 second before each), CONNECTIONS, WORKERS, ROUNDS, TMP, PIDS,
# GUNICORN, NGINX, need_tools, wait_for_port, start_gunicorn, check_png, load,
# measure, report.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/bench"
PY="${PYTHON:-$REPO/.venv/bin/python}"
DURATION="${1:-${DURATION:-5}}"
WARMUP="${WARMUP:-1}"
CONNECTIONS="${CONNECTIONS:-8}"
WORKERS="${WORKERS:-2}"
ROUNDS="${ROUNDS:-6}"
SCRIPT="$(basename "$0")"

need_tools() {  # gunicorn from the venv's pip, the other commands (wrk, nginx) from apt
    if ! "$PY" -c 'import gunicorn' 2>/dev/null; then
        "$PY" -m pip install --quiet gunicorn
    fi
    GUNICORN="$(dirname "$PY")/gunicorn"
    local tool missing_apt=()
    for tool in "$@"; do
        case "$tool" in
            wrk) command -v wrk >/dev/null || missing_apt+=(wrk) ;;
            valgrind) command -v valgrind >/dev/null || missing_apt+=(valgrind) ;;
            nginx) command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing_apt+=(nginx-light) ;;
        esac
    done
    if [ ${#missing_apt[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "$SCRIPT: please install ${missing_apt[*]} (needs root)" >&2
            exit 1
        fi
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_apt[@]}" >/dev/null
    fi
    NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
}

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
            echo "$SCRIPT: server on port $1 died; logs in $TMP" >&2
            exit 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "$SCRIPT: nothing listening on port $1" >&2
    exit 1
}

start_gunicorn() {  # name port app config cache-folder [more gunicorn options]
    BENCH_CONFIG="$4" BENCH_CACHE="$5" \
        "$GUNICORN" --workers "$WORKERS" --worker-class sync --pythonpath "$BENCH" \
        --log-level warning --graceful-timeout 2 --bind "127.0.0.1:$2" "${@:6}" "$3" >"$TMP/$1.log" 2>&1 &
    PIDS+=($!)
    echo "$!" >"$TMP/$1.pid"
    wait_for_port "$2" "$!"
}

check_png() {  # url: the server must answer a seeded tile with a PNG before we measure it
    "$PY" - "$1" <<'PYEOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1]) as r:
    assert r.status == 200 and r.headers["Content-Type"] == "image/png", (sys.argv[1], r.status, dict(r.headers))
    assert r.read().startswith(b"\x89PNG"), sys.argv[1]
PYEOF
}

server_cpu_ticks() {  # name: CPU clock ticks used so far by a gunicorn server's workers (0 if not gunicorn)
    local ticks=0 worker
    [ -f "$TMP/$1.pid" ] || { echo 0; return; }
    for worker in $(pgrep -P "$(cat "$TMP/$1.pid")"); do
        ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$worker/stat" 2>/dev/null || echo 0)))
    done
    echo "$ticks"
}

load() {  # name port urls results block round: warm up, then one measured wrk run; its BENCH line goes to results
    local before after line requests
    echo "wrk $1: ${WARMUP}s warm-up, ${DURATION}s measured ..." >&2
    wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -s "$BENCH/urls.lua" "http://127.0.0.1:$2" -- "$3" 7 >/dev/null
    before=$(server_cpu_ticks "$1")
    line=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$BENCH/urls.lua" "http://127.0.0.1:$2" -- "$3" 42 \
        | tee "$TMP/wrk-$1.txt" | grep '^BENCH')
    after=$(server_cpu_ticks "$1")
    requests=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$line")
    if [ "$after" -gt "$before" ] && [ "$requests" -gt 0 ]; then  # worker CPU per request, in microseconds
        line="$line cpu_us=$(( (after - before) * 1000000 / $(getconf CLK_TCK) / requests ))"
    fi
    echo "$1 $line block=$5 round=$6" >>"$4"
}

measure() {  # urls results block rounds name=port ...: load every server in turn, rounds times
    # Odd rounds go through the servers in the given order, even rounds in reverse
    # (A B, B A, A B, ... for two servers), so a server's place in the sequence (what
    # ran just before it, a slow drift of the machine) does not favour it. Results are
    # appended, tagged with the block and round, so several blocks can share one file.
    local round pair urls="$1" results="$2" block="$3" count="$4" forward reversed=()
    shift 4
    forward=("$@")
    for pair in "$@"; do reversed=("$pair" "${reversed[@]}"); done
    for round in $(seq 1 "$count"); do
        echo "block $block, round $round of $count" >&2
        local order=("${forward[@]}")
        [ $((round % 2)) -eq 0 ] && order=("${reversed[@]}")
        for pair in "${order[@]}"; do
            load "${pair%%=*}" "${pair#*=}" "$urls" "$results" "$block" "$round"
        done
    done
}

report() {  # urls results description [top/bottom[=target] ...]: every round, then the table and ratios
    echo
    echo "cache hits, $(wc -l <"$1") tiles of zooms 0-5, wrk -t1 -c$CONNECTIONS -d${DURATION}s" \
         "(${WARMUP}s warm-up each), gunicorn $WORKERS sync workers, $3, $(nproc) CPUs," \
         "load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "every round:" && sed 's/^/  /' "$2" && echo
    "$PY" "$BENCH/serve_tools.py" table "$2" "${@:4}"
}
