#!/usr/bin/env bash
# Installs what the build and the test suites need, once; safe to run again (each step checks
# first). Called by `make test`, so a fresh machine needs nothing else.
#
#   scripts/install-deps.sh          everything `make test` needs
#   scripts/install-deps.sh --build  only what building the broker needs (`make run`)
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=false
[[ "${1:-}" == "--build" ]] && build_only=true

need_apt=()
# RocksDB's bindgen loads libclang itself (libclang.so or libclang-<version>.so); libclang-cpp,
# which other LLVM packages bring, is a different library and does not do.
if ! compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null &&
  ! compgen -G "/usr/lib/*-linux-gnu/libclang-[0-9]*.so*" >/dev/null &&
  ! compgen -G "/usr/lib/*-linux-gnu/libclang.so*" >/dev/null; then
  need_apt+=(libclang-dev)
fi
command -v cmake >/dev/null || need_apt+=(cmake)
command -v c++ >/dev/null || need_apt+=(g++)
if ! $build_only; then
  command -v curl >/dev/null || need_apt+=(curl)
  command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
  command -v go >/dev/null || need_apt+=(golang-go)
  # cli/tests/queue_clock.rs steps the broker's wall clock with libfaketime.
  compgen -G "/usr/lib/*/faketime/libfaketime.so.1" >/dev/null || need_apt+=(libfaketime)
fi
if ((${#need_apt[@]})); then
  echo "install-deps: apt-get install ${need_apt[*]}"
  if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

$build_only && exit 0

# grpcurl: the generic gRPC client the end-to-end suite lists services with (from the Go proxy).
GRPCURL_VERSION=v1.9.4
if [[ ! -x .tools/bin/grpcurl ]] || [[ "$(cat .tools/grpcurl.version 2>/dev/null)" != "$GRPCURL_VERSION" ]]; then
  echo "install-deps: go install grpcurl@$GRPCURL_VERSION into .tools/bin"
  mkdir -p .tools/bin
  GOBIN="$PWD/.tools/bin" go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
  echo "$GRPCURL_VERSION" > .tools/grpcurl.version
fi
