#!/usr/bin/env bash
# The Go SDK's install test (make test-dist): a user with Go and a C compiler but no Rust
# toolchain fetches the module from the release's module proxy and runs a program against a
# broker.
#
#   tests/dist/go.sh DIST ENDPOINT
#
# DIST is scripts/dist/go.sh's OUT (its goproxy/ serves github.com/rapidmq/rapidmq/sdk-go at the
# release version); ENDPOINT is a running broker (http://127.0.0.1:PORT). In a fresh directory,
# with cargo, rustc and maturin off PATH and empty GOPATH, module cache and build cache:
# `go mod init`, `go get github.com/rapidmq/rapidmq/sdk-go@v<version>`, then `go run` of
# tests/dist/go/main.go, which publishes and consumes keyed messages with headers, checks them,
# and checks the core reports the release version.
#
# The module's own dependencies come from a second file-system proxy made here from this
# machine's module cache (sdk-go's module graph), so the test needs no network. Checksums:
# GOSUMDB=off, because the checksum database cannot know a module version that was never
# published (GONOSUMDB for rapidmq alone would still send the dependencies to it, over the
# network); instead every dependency hash the build records in go.sum must be sdk-go/go.sum's.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[[ $# -eq 2 ]] || { echo "usage: $0 DIST ENDPOINT" >&2; exit 2; }
dist=$(cd "$1" && pwd)
endpoint=$2
module=github.com/rapidmq/rapidmq/sdk-go
version=v$("$root/scripts/dist/version.sh")
if [[ ! -f $dist/goproxy/$module/@v/$version.zip ]]; then
  echo "dist go test: no $module@$version in $dist/goproxy; run scripts/dist/go.sh $dist first" >&2
  exit 1
fi

tmp=$(mktemp -d)
# The module cache is read-only: make it writable before removing it.
trap 'chmod -R u+w "$tmp" 2>/dev/null || true; rm -rf "$tmp"' EXIT
go_bin=$("$root/scripts/install-deps-go.sh" --go)

# The dependency proxy, made with the developer's go and module cache before PATH narrows.
echo "dist go test: a local proxy of sdk-go's dependencies…"
host_cache=$("$go_bin" env GOMODCACHE)/cache/download
escape() { sed 's/[A-Z]/!\L&/g' <<<"$1"; }
(cd "$root/sdk-go" && "$go_bin" mod download)
(cd "$root/sdk-go" && "$go_bin" list -m -f '{{if not .Main}}{{.Path}} {{.Version}}{{end}}' all) |
  while read -r path ver; do
    [[ -n $path ]] || continue
    from=$host_cache/$(escape "$path")/@v
    to=$tmp/deps/$(escape "$path")/@v
    mkdir -p "$to"
    for ext in info mod zip; do
      [[ -f $from/$(escape "$ver").$ext ]] && cp "$from/$(escape "$ver").$ext" "$to/"
    done
    echo "$ver" >>"$to/list"
  done

# The user's machine: go and the system's C compiler, nothing of the developer's Go setup.
PATH="$(dirname "$go_bin"):$PATH"
source "$root/tests/dist/lib.sh"
user_path "$tmp/bin" go
unset GOROOT GOBIN CC CXX CGO_CFLAGS CGO_CPPFLAGS CGO_LDFLAGS GOPRIVATE GONOPROXY GONOSUMDB GOINSECURE
export HOME=$tmp/home GOENV=off GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=1 \
  GOPATH=$tmp/gopath GOMODCACHE=$tmp/gopath/pkg/mod GOCACHE=$tmp/gocache \
  GOPROXY="file://$dist/goproxy,file://$tmp/deps" GOSUMDB=off GOFLAGS=-mod=mod
mkdir -p "$HOME" "$tmp/quickstart"
cd "$tmp/quickstart"
cp "$root/tests/dist/go/main.go" .

echo "dist go test: go get $module@$version ($(go version | cut -d' ' -f3), no cargo or rustc on PATH)…"
go mod init example.com/quickstart 2>/dev/null
go get "$module@$version"
go mod tidy # records the hashes of every module the program builds with
fetched=$(go list -m -f '{{.Version}} {{.Dir}}' "$module")
[[ $fetched == "$version $GOMODCACHE/"* ]] || { echo "dist go test: $module resolved to $fetched" >&2; exit 1; }
echo "dist go test: fetched into ${fetched#* }; modules: $(go list -m all | tail -n +2 | tr '\n' ' ')"
checked=0
while IFS= read -r line; do
  [[ $line == "$module "* ]] && continue
  checked=$((checked + 1))
  grep -qxF "$line" "$root/sdk-go/go.sum" || {
    echo "dist go test: go.sum has '$line', which sdk-go/go.sum does not" >&2
    exit 1
  }
done <go.sum
echo "dist go test: go.sum: $checked dependency hashes, each the one sdk-go/go.sum has"
echo "dist go test: go run . $endpoint…"
started=$SECONDS
go run . "$endpoint" "${version#v}"
echo "dist go test: passed (build and run $((SECONDS - started)) s)"
