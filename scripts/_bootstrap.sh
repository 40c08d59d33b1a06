# Sourced by scripts/serve and scripts/test: make .venv (Python >= 3.11) and install the project.
# Usage: bootstrap [EXTRAS]   e.g. bootstrap test
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

_find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

_apt_install() {
  # Only as root on Debian/Ubuntu; otherwise say what is missing.
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "missing system packages: $* (install them, e.g. sudo apt-get install $*)" >&2
    exit 1
  fi
}

bootstrap() {
  local extras="${1:-}"
  local py
  if ! py="$(_find_python)"; then
    _apt_install python3 python3-venv
    py="$(_find_python)" || { echo "Python >= 3.11 is required" >&2; exit 1; }
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$py" -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      _apt_install python3-venv
      "$py" -m venv "$VENV"
    fi
  fi
  local spec="$ROOT"
  [ -n "$extras" ] && spec="$ROOT[$extras]"
  # Reinstall only when pyproject.toml changed since the last install into this venv.
  local stamp="$VENV/.installed-$extras"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e "$spec"
    touch "$stamp"
  fi
}
