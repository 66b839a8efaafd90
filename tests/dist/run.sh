#!/usr/bin/env bash
# make test-dist: the artifacts of `make dist` installed the way their users install them.
# Checks SHA256SUMS, unpacks the broker archive and starts its binary, then runs each SDK's
# install test against it: Python (pip from the wheels), Go (go get through a file-system module
# proxy), Java (Maven from a file repository) with no cargo, rustc or maturin on PATH, and Rust
# (a Cargo project on the packaged crates).
#
#   tests/dist/run.sh DIST
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dist=$(realpath "$1")
version=$("$root/scripts/dist/version.sh")

echo "test-dist: checking $dist/SHA256SUMS"
(cd "$dist" && sha256sum --check --quiet SHA256SUMS)

unpacked=$(mktemp -d)
tar -xzf "$dist/rapidmq-$version-"*.tar.gz -C "$unpacked"
bin=$(echo "$unpacked/rapidmq-$version-"*/rapidmq)
"$bin" --version | grep -q "^rapidmq $version (" || {
  echo "test-dist: the archive's binary says $("$bin" --version), want rapidmq $version" >&2
  exit 1
}
"$bin" serve --config "$(dirname "$bin")/rapidmq.toml.example" --check-config >/dev/null

source "$root/scripts/lib/broker.sh"
start_broker "$bin"
trap 'stop_broker; rm -rf "$unpacked"' EXIT
echo "test-dist: $("$bin" --version) from the archive, at $server"

for sdk in python go java rust; do
  echo "test-dist: $sdk"
  "$here/$sdk.sh" "$dist" "$server"
done
echo "test-dist: every artifact installed and ran its quickstart"
