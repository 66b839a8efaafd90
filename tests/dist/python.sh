#!/usr/bin/env bash
# The Python SDK's install test (make test-dist): a user with Python but no Rust toolchain installs
# the release's wheel with pip and runs a program against a broker.
#
#   tests/dist/python.sh DIST ENDPOINT
#
# DIST is scripts/dist/python.sh's OUT; ENDPOINT is a running broker (http://127.0.0.1:PORT). In
# a fresh directory, with cargo, rustc and maturin off PATH: a new venv, `pip install --no-index
# --find-links DIST rapidmq` (no other index, PIP_FIND_LINKS unset), checks that pip took the
# manylinux wheel and that the installed metadata is complete (`pip show`, importlib.metadata),
# then runs tests/dist/python/quickstart.py from outside the checkout: it publishes and consumes
# keyed messages with headers, checks them, and checks the package reports the release version
# and a git revision.
#
# Environment:
#   DIST_PYTHONS  more interpreters to repeat the install and the quickstart with, as paths
#                 (the wheel is abi3: one file for CPython 3.9 to 3.13), e.g.
#                 "$(pyenv prefix 3.9.18)/bin/python3 $(pyenv prefix 3.13.0)/bin/python3"
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[[ $# -eq 2 ]] || { echo "usage: $0 DIST ENDPOINT" >&2; exit 2; }
dist=$(cd "$1" && pwd)
endpoint=$2
version=$("$root/scripts/dist/version.sh")
shopt -s nullglob
wheels=("$dist/rapidmq-$version-"*.whl)
shopt -u nullglob
if [[ ${#wheels[@]} == 0 ]]; then
  echo "dist python test: no rapidmq-$version wheel in $dist; run scripts/dist/python.sh first" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$root/tests/dist/python/quickstart.py" "$tmp/"

# The user's machine: the interpreter and the system's tools, none of the developer's setup.
source "$root/tests/dist/lib.sh"
user_path "$tmp/bin" python3
unset PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_NO_INDEX PIP_CONSTRAINT \
  PIP_REQUIRE_VIRTUALENV PYTHONPATH PYTHONHOME VIRTUAL_ENV CARGO_TARGET_DIR
export HOME=$tmp/home PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1
mkdir -p "$HOME"
cd "$tmp"

# install_and_run NAME PYTHON: a venv from PYTHON, the wheel into it, the checks, the quickstart.
install_and_run() {
  local python=$2 venv=$tmp/$1
  "$python" -m venv "$venv"
  echo "dist python test: pip install --no-index --find-links $dist rapidmq" \
    "($("$venv/bin/python" -c 'import platform; print(platform.python_version())')," \
    "no cargo, rustc or maturin on PATH)…"
  "$venv/bin/python" -m pip install --quiet --no-index --find-links "$dist" rapidmq

  "$venv/bin/python" -m pip show rapidmq >"$tmp/pip-show.txt"
  local field
  for field in Name Version Summary Author Location; do
    grep -q "^$field: ." "$tmp/pip-show.txt" || {
      cat "$tmp/pip-show.txt" >&2
      echo "dist python test: pip show rapidmq has no $field" >&2
      return 1
    }
  done
  grep -qx "Version: $version" "$tmp/pip-show.txt" || {
    echo "dist python test: pip show: $(grep '^Version:' "$tmp/pip-show.txt"), want $version" >&2
    return 1
  }

  # The installed distribution: the manylinux abi3 wheel (not a source build), full metadata.
  "$venv/bin/python" - "$version" "$venv" <<'EOF'
import importlib.metadata as md, sys

version, venv = sys.argv[1:]
dist = md.distribution("rapidmq")
meta = dist.metadata
problems = []
wheel = dist.read_text("WHEEL") or ""
tags = [line[len("Tag:"):].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
if not tags or not all(t.startswith("cp39-abi3-manylinux") for t in tags):
    problems.append(f"installed from {tags}, not the cp39-abi3 manylinux wheel")
if meta["Version"] != version:
    problems.append(f"metadata version {meta['Version']}, want {version}")
if meta["License-Expression"] != "Apache-2.0":
    problems.append(f"License-Expression is {meta['License-Expression']!r}")
urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
for label in ["Homepage", "Documentation", "Repository", "Issues", "Changelog"]:
    if not urls.get(label, "").startswith("https://github.com/rapidmq/rapidmq"):
        problems.append(f"no Project-URL {label}")
for field in ["Summary", "Author", "Keywords", "Requires-Python"]:
    if not meta[field]:
        problems.append(f"no {field}")
if "pip install rapidmq" not in (meta["Description"] or meta.get_payload() or ""):
    problems.append("no readme in the metadata")
if not any(c.startswith("Topic :: ") for c in meta.get_all("Classifier") or []):
    problems.append("no Topic classifier")
files = [str(f) for f in dist.files or []]
if not any(f.endswith("licenses/LICENSE") for f in files):
    problems.append("the LICENSE file was not installed")
if not any(f == "rapidmq/py.typed" for f in files):
    problems.append("no py.typed")
if not str(dist.locate_file("rapidmq")).startswith(venv):
    problems.append(f"installed outside the venv: {dist.locate_file('rapidmq')}")
for problem in problems:
    print(f"dist python test: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF

  echo "dist python test: quickstart against $endpoint…"
  "$venv/bin/python" "$tmp/quickstart.py" "$endpoint" "$version"
}

install_and_run venv python3
for extra in ${DIST_PYTHONS:-}; do
  install_and_run "venv-$(basename "$(dirname "$(dirname "$extra")")")" "$extra"
done
echo "dist python test: passed"
