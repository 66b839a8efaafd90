#!/usr/bin/env bash
# The Rust crates of a release as crates.io users get them: a fresh Cargo project depending on
# `rapidmq = "<version>"`, with the crates.io source patched to the unpacked .crate files of
# DIST/crates (what `cargo publish` would upload), runs tests/dist/rust (the quickstart) against
# the broker at ENDPOINT. This one needs cargo, of course.
#
#   tests/dist/rust.sh DIST ENDPOINT
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dist=$(realpath "$1")
endpoint=$2
version=$("$here/../../scripts/dist/version.sh")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "dist rust: a fresh project depending on rapidmq $version from $dist/crates"
mkdir "$tmp/crates"
for crate in "$dist"/crates/*.crate; do
  tar -xzf "$crate" -C "$tmp/crates"
done
mkdir "$tmp/quickstart"
cp -r "$here/rust/src" "$tmp/quickstart/"
cat >"$tmp/quickstart/Cargo.toml" <<TOML
[package]
name = "quickstart"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
rapidmq = "$version"
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }

[patch.crates-io]
rapidmq = { path = "../crates/rapidmq-$version" }
rapidmq-core = { path = "../crates/rapidmq-core-$version" }
rapidmq-proto = { path = "../crates/rapidmq-proto-$version" }
TOML
cd "$tmp/quickstart"
cargo run --quiet -- "$endpoint"
