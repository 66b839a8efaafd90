#!/usr/bin/env bash
# Builds the Python SDK into a virtualenv and runs its test suite against a real broker.
# Idempotent: the venv and the build are reused when up to date.
#
#   RAPIDMQ_BIN=/path/to/rapidmq sdk-python/test.sh [pytest args...]
#   sdk-python/test.sh --setup    only build the venv and the extension (tests/cross/run.sh)
#
# Environment:
#   RAPIDMQ_BIN       the rapidmq binary the tests start (required)
#   RAPIDMQ_PY_VENV   the virtualenv to use (default: sdk-python/.venv)
#   PYTHON            the interpreter that creates the venv (default: python3)
#   CARGO_TARGET_DIR  honoured by the build (maturin runs cargo)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${RAPIDMQ_PY_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

setup_only=false
if [[ "${1:-}" == "--setup" ]]; then
    setup_only=true
elif [[ -z "${RAPIDMQ_BIN:-}" ]]; then
    echo "sdk-python/test.sh: set RAPIDMQ_BIN to the rapidmq binary" >&2
    exit 2
else
    RAPIDMQ_BIN="$(cd "$(dirname "$RAPIDMQ_BIN")" && pwd)/$(basename "$RAPIDMQ_BIN")"
    export RAPIDMQ_BIN
fi

if [[ ! -x "$venv/bin/python" ]]; then
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        # Debian/Ubuntu ship venv separately.
        if command -v apt-get >/dev/null; then
            apt-get install -y "python3-venv" >/dev/null
        fi
        "$python" -m venv "$venv"
    fi
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "maturin>=1.9.2,<2" "pytest>=7" "pytest-asyncio>=0.23" xxhash

# Build the extension (release: the benchmarks and the 10k-message tests want optimised code)
# and install the package in development mode into the venv.
(cd "$here" && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" maturin develop --release --quiet)
$setup_only && exit 0

cd "$here"
exec "$venv/bin/python" -m pytest -q "$@"
