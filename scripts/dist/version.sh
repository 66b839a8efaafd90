#!/usr/bin/env bash
# Prints the release version: `[workspace.package] version` in the root Cargo.toml, the one place
# it is kept (every crate inherits it; the pom, the Python package and the Go module tag follow
# it, checked by tests/dist/version.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$root/Cargo.toml"
