#!/usr/bin/env bash
# The native half of the Java SDK, built into Maven's target directory (never committed):
#   1. the rapidmq-uniffi cdylib (cargo), bundled in the jar as native/<os>-<arch>/;
#   2. the UniFFI Java bindings generated from it (uniffi-bindgen-java, package io.rapidmq.ffi);
#   3. the exception classes generated from the error-code table (ffi/uniffi/examples/java_errors.rs).
# Maven runs it in generate-sources. Usage: build-native.sh <maven target dir>
#
# RAPIDMQ_CARGO_PROFILE picks the cargo profile (dev by default, release for a distribution or a
# benchmark); CARGO_TARGET_DIR is honoured; uniffi-bindgen-java is looked up as
# UNIFFI_BINDGEN_JAVA, on PATH, then in .tools/bin (where mk/java.mk installs it).
# Any profile but dev bundles a copy stripped of debug info (the release profile keeps line
# tables for backtraces: ~70 MB unstripped, ~14 MB stripped on x86_64 Linux).
#
# RAPIDMQ_NATIVE_DIR (optional) is a directory laid out like the jar's native/ (<os>-<arch>/
# librapidmq_uniffi.*) with libraries built on other platforms; they are bundled beside the
# host's, so a release workflow makes one jar for every platform it built.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
out=${1:-$here/target}
cargo=${CARGO:-cargo}
profile=${RAPIDMQ_CARGO_PROFILE:-dev}
target_dir=${CARGO_TARGET_DIR:-$root/target}

bindgen=${UNIFFI_BINDGEN_JAVA:-}
if [[ -z $bindgen ]]; then
    if command -v uniffi-bindgen-java >/dev/null; then
        bindgen=uniffi-bindgen-java
    elif [[ -x $root/.tools/bin/uniffi-bindgen-java ]]; then
        bindgen=$root/.tools/bin/uniffi-bindgen-java
    else
        echo "build-native.sh: uniffi-bindgen-java not found; run 'make java' (mk/java.mk installs it)" >&2
        exit 1
    fi
fi

case "$(uname -s)" in
    Linux) os=linux; ext=so ;;
    Darwin) os=macos; ext=dylib ;;
    *) echo "build-native.sh: unsupported OS $(uname -s)" >&2; exit 1 ;;
esac
case "$(uname -m)" in
    x86_64 | amd64) arch=x86_64 ;;
    aarch64 | arm64) arch=aarch64 ;;
    *) echo "build-native.sh: unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
[[ $profile == dev ]] && profile_dir=debug || profile_dir=$profile

"$cargo" build --quiet --manifest-path "$root/Cargo.toml" -p rapidmq-uniffi --lib --profile "$profile"
lib=$target_dir/$profile_dir/librapidmq_uniffi.$ext

bindings=$out/generated-sources/uniffi
errors=$out/generated-sources/errors
native=$out/generated-resources/native/$os-$arch
rm -rf "$bindings" "$errors" "$out/generated-resources/native"
mkdir -p "$bindings" "$errors" "$native"

"$bindgen" generate --no-format --out-dir "$bindings" "$lib" >/dev/null
"$cargo" run --quiet --manifest-path "$root/Cargo.toml" -p rapidmq-uniffi --profile "$profile" \
    --example java_errors -- "$errors/io/rapidmq"
cp "$lib" "$native/librapidmq_uniffi.$ext"
if [[ $profile != dev ]]; then
    case $os in
        linux) strip --strip-debug "$native/librapidmq_uniffi.$ext" ;;
        macos) strip -S "$native/librapidmq_uniffi.$ext" ;;
    esac
fi
if [[ -n ${RAPIDMQ_NATIVE_DIR:-} ]]; then
    for dir in "$RAPIDMQ_NATIVE_DIR"/*/; do
        platform=$(basename "$dir")
        [[ $platform == "$os-$arch" ]] && continue # the host's own build wins
        mkdir -p "$out/generated-resources/native/$platform"
        cp "$dir"librapidmq_uniffi.* "$out/generated-resources/native/$platform/"
    done
fi
