#!/usr/bin/env bash
# The broker's release archive: rapidmq-<version>-<target>.tar.gz in OUT, holding the binary
# (debug info stripped), LICENSE, README.md, CHANGELOG.md and rapidmq.toml.example (every
# setting at its default, printed by the binary itself, so it cannot drift from the code).
#
#   scripts/dist/broker.sh path/to/rapidmq OUT
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=$1
out=$2
version=$("$root/scripts/dist/version.sh")
target=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')
target=${target:-$(uname -m)-unknown-linux-gnu}
name=rapidmq-$version-$target

echo "dist broker: packaging $name.tar.gz from $bin"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"
if [[ $(uname -s) == Darwin ]]; then
  cp "$bin" "$stage/$name/rapidmq" && strip -S "$stage/$name/rapidmq"
else
  strip --strip-debug -o "$stage/$name/rapidmq" "$bin"
fi
cp "$root/LICENSE" "$root/README.md" "$root/CHANGELOG.md" "$stage/$name/"
{
  echo "# rapidmq serve --config rapidmq.toml: every setting at its default (docs/configuration.md)."
  echo "# Delete what you do not change; RAPIDMQ_* variables and flags override the file."
  echo
  "$stage/$name/rapidmq" serve --check-config | sed '1{/^configuration is valid:$/d}' | sed '1{/^$/d}'
} >"$stage/$name/rapidmq.toml.example"
"$stage/$name/rapidmq" serve --config "$stage/$name/rapidmq.toml.example" --check-config >/dev/null
if tar --version 2>/dev/null | grep -q GNU; then
  tar -C "$stage" --owner=0 --group=0 --sort=name -czf "$out/$name.tar.gz" "$name"
else
  tar -C "$stage" --uid 0 --gid 0 -czf "$out/$name.tar.gz" "$name" # bsdtar (macOS)
fi
echo "dist broker: $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1); the binary $(du -h "$stage/$name/rapidmq" | cut -f1))"
