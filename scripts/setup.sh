#!/usr/bin/env bash
# Create/refresh the project virtualenv at <repo>/.venv: the pinned requirements.lock, then ferryman itself
# in editable mode (--no-deps; this compiles the optional C extension ferryman._speedups in place when gcc
# and the Python headers are there). Idempotent: when the lock, pyproject.toml, setup.py, the C source and
# the interpreter are unchanged since the last successful run, it returns at once.
#   ./scripts/setup.sh            # set up or refresh
#   FERRYMAN_SETUP_FORCE=1 ./scripts/setup.sh   # reinstall even if up to date
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
VENV=$ROOT/.venv
STAMP=$VENV/.ferryman-setup

is_py311() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' >/dev/null 2>&1; }

pick_python() {
    local c
    for c in "${PYTHON:-}" python3.11 python3; do
        [ -n "$c" ] || continue
        if command -v "$c" >/dev/null 2>&1 && is_py311 "$c"; then
            command -v "$c"
            return 0
        fi
    done
    echo "setup.sh: Python 3.11 not found (tried \$PYTHON, python3.11, python3)." >&2
    echo "          On Debian 12: apt-get install -y python3 python3-venv" >&2
    return 1
}

# A venv that no longer runs (moved, its base interpreter gone) or is not 3.11 is rebuilt.
if [ -e "$VENV" ] && ! is_py311 "$VENV/bin/python"; then
    echo "setup.sh: $VENV is unusable or not Python 3.11; recreating it" >&2
    rm -rf "$VENV"
fi

if [ ! -x "$VENV/bin/python" ]; then
    PY=$(pick_python)
    echo "setup.sh: creating $VENV with $PY ($("$PY" -V 2>&1))"
    if ! "$PY" -m venv "$VENV"; then
        rm -rf "$VENV"
        echo "setup.sh: '$PY -m venv' failed; on Debian install python3-venv (apt-get install -y python3-venv)" >&2
        exit 1
    fi
fi

want=$(cat requirements.lock pyproject.toml setup.py src/ferryman/_speedups.c | sha256sum | cut -d' ' -f1)-$("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])')
if [ -z "${FERRYMAN_SETUP_FORCE:-}" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
    && [ -x "$VENV/bin/ferryman" ]; then
    echo "setup.sh: .venv is up to date"
    exit 0
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
rm -f "$STAMP"
echo "setup.sh: installing requirements.lock into .venv"
"$VENV/bin/python" -m pip install -q -r requirements.lock
echo "setup.sh: installing ferryman (editable, --no-deps)"
"$VENV/bin/python" -m pip install -q --no-deps -e .
"$VENV/bin/python" -c 'import ferryman' >/dev/null
if ! "$VENV/bin/python" -c 'import ferryman._speedups' >/dev/null 2>&1; then
    echo "setup.sh: note: the optional C extension ferryman._speedups was not built (no gcc or Python headers;" >&2
    echo "          on Debian: apt-get install -y gcc python3.11-dev); the observability loops run in Python" >&2
fi
echo "$want" > "$STAMP"
echo "setup.sh: done; $(ls "$VENV/bin/ferryman")"
