#!/usr/bin/env bash
# What the Go SDK (sdk-go) needs, checked or installed once; safe to run again. Called by
# mk/go.mk. With --go, prints the go binary to use instead (and installs nothing).
#
# - Go >= 1.21 on PATH or in /usr/local/go (scripts/install-deps.sh installs the distribution's
#   golang-go when there is none); sdk-go's go.mod asks for 1.24, which an older go fetches as a
#   toolchain module from the Go proxy (GOTOOLCHAIN=auto).
# - A C compiler for cgo.
# - The module's dependencies, and the release packager's (scripts/dist/gomodzip), from the Go
#   proxy (go mod download).
set -euo pipefail
cd "$(dirname "$0")/.."

find_go() {
  if command -v go >/dev/null; then command -v go; return; fi
  if [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go; return; fi
  echo "install-deps-go: no go binary on PATH or in /usr/local/go; run scripts/install-deps.sh" >&2
  exit 1
}

GO_BIN=$(find_go)
if [[ "${1:-}" == "--go" ]]; then
  echo "$GO_BIN"
  exit 0
fi

minor=$("$GO_BIN" env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
if [[ -z "$minor" || "$minor" -lt 21 ]]; then
  echo "install-deps-go: $("$GO_BIN" version) is too old; Go 1.21 or newer is needed" >&2
  exit 1
fi
if ! command -v cc >/dev/null; then
  echo "install-deps-go: apt-get install gcc (cgo needs a C compiler)"
  if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gcc >/dev/null
fi
(cd sdk-go && "$GO_BIN" mod download)
# scripts/dist/go.sh writes the module zip with golang.org/x/mod (make dist, make test-dist).
(cd scripts/dist/gomodzip && "$GO_BIN" mod download)
