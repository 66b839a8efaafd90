# shellcheck shell=bash
# Sourced by the install tests of `make test-dist` (tests/dist/*.sh): the environment a user
# without a Rust toolchain has.
#
#   source tests/dist/lib.sh
#   user_path "$work/bin" python3 go java mvn   # PATH = those tools + the system's, no cargo
#
# user_path DIR TOOL…: links each TOOL (as found on the current PATH, resolved to its real file
# so a pyenv shim or a rustup proxy is not taken along) into DIR, then sets PATH to DIR followed
# by the system directories only, and fails if cargo, rustc or maturin is still reachable.
user_path() {
  local dir=$1 tool found
  shift
  mkdir -p "$dir"
  for tool in "$@"; do
    found=$(command -v "$tool") || { echo "user_path: $tool is not installed" >&2; return 1; }
    if [[ $tool == python3 ]]; then
      # A pyenv shim resolves through pyenv itself; ask the interpreter where it lives.
      found=$("$found" -c 'import sys; print(sys.executable)')
    fi
    ln -sf "$(readlink -f "$found")" "$dir/$tool"
  done
  export PATH="$dir:/usr/sbin:/usr/bin:/sbin:/bin"
  for tool in cargo rustc maturin; do
    if command -v "$tool" >/dev/null; then
      echo "user_path: $tool is still on PATH ($(command -v "$tool"))" >&2
      return 1
    fi
  done
}
