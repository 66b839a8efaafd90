#!/usr/bin/env bash
# The crates a release publishes on crates.io (rapidmq-proto, rapidmq-core, rapidmq), packaged
# and verified with `cargo package` (each builds from its packaged sources alone, the way
# crates.io users build it) and `cargo publish --dry-run`, copied to OUT/crates. The broker and
# the CLI ship as the release archive instead (scripts/dist/broker.sh); every other crate is
# `publish = false`.
#
#   scripts/dist/crates.sh OUT
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$1
crates=(rapidmq-proto rapidmq-core rapidmq)
version=$("$root/scripts/dist/version.sh")
target_dir=${CARGO_TARGET_DIR:-$root/target}

echo "dist crates: cargo package of ${crates[*]} (builds each from its package alone)"
for crate in "${crates[@]}"; do
  rm -f "$target_dir/package/$crate-$version.crate" # never ship an older run's
done
# --allow-dirty: `make test-dist` runs in working trees; the release workflow runs on a tag.
cargo package --allow-dirty --quiet --manifest-path "$root/Cargo.toml" "${crates[@]/#/-p=}"
echo "dist crates: cargo publish --dry-run (what crates.io checks before an upload)"
cargo publish --dry-run --no-verify --allow-dirty --quiet --manifest-path "$root/Cargo.toml" \
  "${crates[@]/#/-p=}"
mkdir -p "$out/crates"
for crate in "${crates[@]}"; do
  cp "$target_dir/package/$crate-$version.crate" "$out/crates/"
done
echo "dist crates: ${crates[*]/%/-$version.crate} in $out/crates"
