#!/usr/bin/env bash
# Developer entry point for TileStache.
#
#   bash dev.sh serve [tilestache-server options]   run the development server
#   bash dev.sh test  [pytest options]              run the test suite
#   bash dev.sh bench NAME [options]                run one benchmark of bench/ (no NAME: the list)
#
# Installs what is missing (Debian packages when run as root, a virtualenv in
# .venv with the project and its extras) and is quick when all is in place.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

usage() {
  echo "usage: bash dev.sh {serve|test|bench} [args...]" >&2
  exit 2
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case "$cmd" in
  serve|test|bench) ;;
  *) usage ;;
esac

is_installed() {
  local status
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
  [[ $status == *" ok installed" ]]
}

apt_updated=
apt_update_once() {
  if [ -z "$apt_updated" ]; then
    echo "dev.sh: apt-get update" >&2
    apt-get -o DPkg::Lock::Timeout=300 update -q >&2
    apt_updated=1
  fi
}

# Major version of the PostgreSQL server that 'postgresql' brings, or nothing.
pg_major() {
  local major=
  if is_installed postgresql; then
    major=$(dpkg-query -W -f='${Depends}' postgresql 2>/dev/null \
      | grep -o 'postgresql-[0-9][0-9]*' | head -n 1 | sed 's/postgresql-//' || true)
  fi
  if [ -z "$major" ]; then
    major=$(apt-cache depends postgresql 2>/dev/null \
      | sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n 1 || true)
  fi
  echo "$major"
}

# Services that apt may start on install; the tests start their own copies.
SERVICES=(memcached redis-server nginx postgresql)

ensure_debian_packages() {
  local pkgs=(python3-venv python3-dev gcc)
  if [ "$cmd" != serve ]; then
    pkgs+=(memcached redis-server postgresql chromium nginx wrk sqlite3)
  fi

  local missing=() p
  for p in "${pkgs[@]}"; do
    is_installed "$p" || missing+=("$p")
  done

  if [ "$cmd" != serve ]; then
    local major
    major=$(pg_major)
    if [ -z "$major" ] && [ "$(id -u)" -eq 0 ]; then
      apt_update_once
      major=$(pg_major)
    fi
    if [ -n "$major" ]; then
      is_installed "postgresql-$major-postgis-3" || missing+=("postgresql-$major-postgis-3")
    else
      echo "dev.sh: cannot tell the PostgreSQL version; PostGIS tests may fail" >&2
    fi
  fi

  [ ${#missing[@]} -gt 0 ] || return 0

  if [ "$(id -u)" -ne 0 ]; then
    echo "dev.sh: not root, so not installing these missing Debian packages: ${missing[*]}" >&2
    return 0
  fi

  apt_update_once
  echo "dev.sh: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}" >&2

  # apt may have started the services it installed (where policy allows it):
  # stop them, the tests run their own instances on free ports.
  if command -v service >/dev/null 2>&1; then
    local s
    for s in "${SERVICES[@]}"; do
      if [ -e "/etc/init.d/$s" ] || [ -e "/lib/systemd/system/$s.service" ]; then
        service "$s" stop >/dev/null 2>&1 || true
      fi
    done
  fi
}

ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    if ! command -v python3 >/dev/null 2>&1; then
      echo "dev.sh: python3 not found; TileStache needs Python >= 3.11" >&2
      exit 1
    fi
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "dev.sh: TileStache needs Python >= 3.11, but python3 is $(python3 -V 2>&1)" >&2
      exit 1
    fi
    echo "dev.sh: creating .venv" >&2
    python3 -m venv .venv
  elif ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "dev.sh: .venv has $(.venv/bin/python -V 2>&1), TileStache needs >= 3.11; remove .venv and retry" >&2
    exit 1
  fi

  local files=() f
  for f in setup.py pyproject.toml; do
    [ -f "$f" ] && files+=("$f")
  done
  if [ ${#files[@]} -eq 0 ]; then
    echo "dev.sh: neither setup.py nor pyproject.toml found" >&2
    exit 1
  fi
  local sum
  sum=$(cat "${files[@]}" | sha256sum | cut -d' ' -f1)
  local stamp=".venv/.installed-$sum"
  if [ ! -e "$stamp" ]; then
    echo "dev.sh: installing the project into .venv" >&2
    .venv/bin/pip install -q -e '.[all,test]' >&2
    rm -f .venv/.installed-*
    touch "$stamp"
  fi
}

ensure_debian_packages
ensure_venv

case "$cmd" in
  serve)
    exec .venv/bin/tilestache-server -c tilestache.cfg "$@"
    ;;
  test)
    # The whole suite, unless the arguments name test files or folders.
    where=(tests)
    for arg in "$@"; do
      if [[ $arg != -* ]] && [ -e "${arg%%::*}" ]; then
        where=()
        break
      fi
    done
    exec .venv/bin/python -m pytest -q "${where[@]}" "$@"
    ;;
  bench)
    # One benchmark by name (bench/NAME.py or bench/NAME.sh), with its own options.
    name=${1:-}
    if [ -z "$name" ] || { [ ! -f "bench/$name.py" ] && [ ! -f "bench/$name.sh" ]; }; then
      echo "usage: bash dev.sh bench NAME [options]; NAME is one of:" >&2
      for f in bench/*.py bench/*.sh; do
        case "$f" in */serve_common.sh|*/serve_tools.py|*/gunicorn_apps.py|*/minimal_app.py) continue ;; esac
        b=${f#bench/}
        echo "  ${b%.*}" >&2
      done
      echo "(bench/README.md says what each measures)" >&2
      exit 2
    fi
    shift
    if [ -f "bench/$name.py" ]; then
      exec .venv/bin/python "bench/$name.py" "$@"
    fi
    exec bash "bench/$name.sh" "$@"
    ;;
esac
