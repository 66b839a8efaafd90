#!/usr/bin/env bash
# Builds the Python SDK's release artifacts into OUT (`make dist`; docs/install.md "Python"):
#
#   rapidmq-<version>-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
#       one wheel for every CPython ≥ 3.9 on Linux of the host's architecture (abi3: pyo3's `abi3-py39`), linked by
#       zig against glibc 2.17 so it installs on old distributions too, extension stripped;
#   rapidmq-<version>.tar.gz
#       the sdist: pyproject.toml at its root and the crates the extension needs (sdk-python,
#       rapidmq-core, rapidmq-proto, and the workspace's Cargo.toml and Cargo.lock trimmed to
#       them). Installing from it builds the extension, so it needs cargo.
#
# and checks them before anything reaches OUT: the wheel's name carries the release version
# (scripts/dist/version.sh) and a manylinux tag that `auditwheel show` confirms, the extension
# has no debug sections, `twine check --strict` passes on both, both carry the license, and the
# sdist holds every file the build reads and resolves as a workspace with its lock file.
#
#   scripts/dist/python.sh OUT
#
# Environment:
#   CARGO_TARGET_DIR  the build's target dir (default: target/); the build tools' venv is kept
#                     in it (dist-venv/), created once and reused while the pins below hold
#   DIST_PROFILE      the cargo profile of the extension (default release)
#   PYTHON            the interpreter that creates that venv (default: python3)
#   VERIFY_SDIST=1    also build a wheel from the sdist with pip and cargo, as a user without a
#                     wheel for their platform would (slow: it compiles the crates again)
set -euo pipefail

out=${1:?usage: scripts/dist/python.sh OUT}
[[ -d $out ]] || { echo "dist python: $out is not a directory" >&2; exit 2; }
out=$(cd "$out" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
version=$("$root/scripts/dist/version.sh")
profile=${DIST_PROFILE:-release}
arch=$(uname -m) # the wheel is for the host: x86_64 here, aarch64 on the release's arm runner
started=$SECONDS

fail() {
  echo "dist python: $*" >&2
  exit 1
}

# pyproject.toml's license-files cannot reach outside sdk-python (PEP 639 forbids ".."), so the
# repository's LICENSE is linked there; maturin packs the link's target. It silently skips a
# missing one, hence this check.
[[ -f $root/sdk-python/LICENSE ]] \
  || fail "no sdk-python/LICENSE (the link to ../LICENSE that pyproject.toml's license-files names)"

# The build tools, pinned so that a release is rebuilt with the same ones. maturin ≥ 1.9.2 writes
# PEP 639's License-Expression; ziglang is the zig that `maturin --zig` links with.
tools=("maturin==1.16.0" "ziglang==0.17.1" "twine==7.0.0" "auditwheel==6.8.2")
venv=$CARGO_TARGET_DIR/dist-venv
if [[ ! -x $venv/bin/python || "$(cat "$venv/tools.txt" 2>/dev/null)" != "${tools[*]}" ]]; then
  echo "dist python: installing ${tools[*]} into $venv…"
  "${PYTHON:-python3}" -m venv --clear "$venv"
  "$venv/bin/python" -m pip install --quiet "${tools[@]}"
  echo "${tools[*]}" >"$venv/tools.txt"
fi
tool_path="$venv/bin:$PATH"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

cd "$root/sdk-python"
echo "dist python: building wheel ($profile profile, stripped, zig for manylinux2014)…"
PATH=$tool_path maturin build --profile "$profile" --strip --zig --compatibility manylinux2014 \
  --out "$stage/dist"
echo "dist python: building sdist…"
PATH=$tool_path maturin sdist --out "$stage/dist"

shopt -s nullglob
wheels=("$stage/dist/"*.whl)
shopt -u nullglob
[[ ${#wheels[@]} == 1 ]] || fail "expected one wheel, got: ${wheels[*]:-none}"
wheel=${wheels[0]}
wheel_name=$(basename "$wheel")
sdist=$stage/dist/rapidmq-$version.tar.gz
[[ -f $sdist ]] || fail "no sdist rapidmq-$version.tar.gz in: $(ls "$stage/dist")"
[[ $wheel_name == rapidmq-"$version"-cp39-abi3-*manylinux*_"$arch".whl ]] \
  || fail "$wheel_name: expected rapidmq-$version-cp39-abi3-…manylinux…_$arch.whl"

echo "dist python: checking $wheel_name…"
PATH=$tool_path auditwheel show "$wheel" >"$stage/auditwheel.txt" 2>&1 \
  || { cat "$stage/auditwheel.txt" >&2; fail "auditwheel show failed"; }
# "… is consistent with the following platform tag: "manylinux_2_17_x86_64"."
tag=$(grep -o "manylinux_[0-9]*_[0-9]*_$arch" "$stage/auditwheel.txt" | head -n 1 || true)
[[ -n $tag ]] || { cat "$stage/auditwheel.txt" >&2; fail "auditwheel reports no manylinux tag"; }
# The wheel must not claim an older glibc than its symbols need.
[[ $wheel_name == *".$tag.whl" || $wheel_name == *"-$tag.whl" ]] \
  || { cat "$stage/auditwheel.txt" >&2; fail "auditwheel says $tag, the name claims otherwise"; }

# Contents of the wheel and the sdist: what a user gets, and what a source build reads.
"$venv/bin/python" - "$wheel" "$sdist" "$version" "$stage/so" <<'EOF'
import pathlib, sys, tarfile, zipfile

wheel, sdist, version, so_out = sys.argv[1:]
problems = []

def need(names, wanted, where):
    for name in wanted:
        if name not in names:
            problems.append(f"{where}: no {name}")

def metadata_problems(text, where):
    fields = [line.split(":", 1)[0] for line in text.split("\n\n", 1)[0].splitlines()]
    for field in ["License-Expression", "License-File", "Author", "Keywords", "Project-URL",
                  "Classifier", "Requires-Python", "Description-Content-Type"]:
        if field not in fields:
            problems.append(f"{where}: metadata has no {field}")
    if "License-Expression: Apache-2.0" not in text:
        problems.append(f"{where}: license is not Apache-2.0")
    if f"\nVersion: {version}\n" not in text:
        problems.append(f"{where}: metadata version is not {version}")

with zipfile.ZipFile(wheel) as whl:
    names = set(whl.namelist())
    info = f"rapidmq-{version}.dist-info"
    need(names, ["rapidmq/__init__.py", "rapidmq/_native.abi3.so", "rapidmq/_native.pyi",
                 "rapidmq/py.typed", f"{info}/METADATA", f"{info}/licenses/LICENSE"], "wheel")
    metadata_problems(whl.read(f"{info}/METADATA").decode(), "wheel")
    pathlib.Path(so_out).write_bytes(whl.read("rapidmq/_native.abi3.so"))

with tarfile.open(sdist) as tar:
    top = f"rapidmq-{version}/"
    names = {m.name[len(top):] for m in tar.getmembers() if m.name.startswith(top)}
    need(names, ["PKG-INFO", "pyproject.toml", "LICENSE", "README.md", "Cargo.toml",
                 "Cargo.lock", "python/rapidmq/__init__.py", "python/rapidmq/py.typed",
                 "sdk-python/Cargo.toml", "sdk-python/src/lib.rs", "core/Cargo.toml",
                 "core/build.rs", "core/src/lib.rs", "proto/Cargo.toml", "proto/build.rs",
                 "proto/src/lib.rs"], "sdist")
    if not any(n.startswith("proto/rapidmq/") and n.endswith(".proto") for n in names):
        problems.append("sdist: no .proto files under proto/rapidmq/")
    for name in sorted(names):
        if name.endswith((".so", ".pyd", ".pyc")) or name.startswith(("target/", ".venv/")):
            problems.append(f"sdist: build output {name}")
    metadata_problems(tar.extractfile(top + "PKG-INFO").read().decode(), "sdist")

for problem in problems:
    print(f"dist python: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
if readelf -S --wide "$stage/so" | grep -q '\.debug_'; then
  fail "the extension in $wheel_name still has debug sections"
fi

echo "dist python: checking rapidmq-$version.tar.gz…"
mkdir "$stage/sdist"
tar -xzf "$sdist" -C "$stage/sdist"
# The trimmed workspace resolves from the sdist alone. Cargo drops from the lock file the
# packages only the members left out used; every package it keeps must keep its locked version.
sdist_root=$stage/sdist/rapidmq-$version
cp "$sdist_root/Cargo.lock" "$stage/Cargo.lock.shipped"
cargo metadata --format-version 1 --manifest-path "$sdist_root/Cargo.toml" >/dev/null \
  || fail "the sdist's workspace does not resolve"
"$venv/bin/python" - "$stage/Cargo.lock.shipped" "$sdist_root/Cargo.lock" <<'EOF'
import re, sys

def packages(path):
    text = open(path).read()
    return set(re.findall(r'\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"', text))

shipped, resolved = (packages(path) for path in sys.argv[1:])
moved = sorted(resolved - shipped)
if not resolved or moved:
    sys.exit(f"dist python: the sdist's build would not use its Cargo.lock for {moved}")
EOF
PATH=$tool_path twine --no-color check --strict "$wheel" "$sdist"

if [[ ${VERIFY_SDIST:-0} == 1 ]]; then
  echo "dist python: building a wheel from the sdist (VERIFY_SDIST=1)…"
  env -u PIP_FIND_LINKS "$venv/bin/python" -m pip wheel --quiet --no-deps \
    --wheel-dir "$stage/from-sdist" "$sdist"
fi

mv -f "$wheel" "$sdist" "$out/"
size() { numfmt --to=iec-i --suffix=B "$(stat -c %s "$1")"; }
echo "dist python: $(size "$out/$wheel_name")  $out/$wheel_name ($tag)"
echo "dist python: $(size "$out/rapidmq-$version.tar.gz")  $out/rapidmq-$version.tar.gz"
echo "dist python: done in $((SECONDS - started)) s"
