#!/usr/bin/env bash
# The Java SDK's install test (make test-dist): a user with a JDK 22+ and Maven but no Rust
# toolchain depends on io.rapidmq:rapidmq from the release's Maven repository and runs a program
# against a broker.
#
#   tests/dist/java.sh DIST ENDPOINT
#
# DIST is scripts/dist/java.sh's OUT (its maven/ is the repository Maven Central stands for);
# ENDPOINT is a running broker (http://127.0.0.1:PORT). In a fresh directory, with cargo, rustc
# and maturin off PATH, HOME there (no ~/.m2/settings.xml) and an empty local repository (nothing
# of the developer's ~/.m2 leaks in; plugins come from Maven Central): the project
# tests/dist/java (a pom depending on io.rapidmq:rapidmq, with DIST/maven as a repository) is
# compiled with Maven, then its Quickstart runs with the JDK only on the class path Maven
# resolved. It publishes and consumes keyed messages with headers, checks them, and checks the
# SDK reports the release version. The jar Maven resolved must be the one in DIST.
#
# JAVA_HOME, when it is a JDK 22 or newer, is the JDK used (else the newest under /usr/lib/jvm);
# MAVEN_OPTS is passed on as a user's would be.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[[ $# -eq 2 ]] || { echo "usage: $0 DIST ENDPOINT" >&2; exit 2; }
dist=$(cd "$1" && pwd)
endpoint=$2
version=$("$root/scripts/dist/version.sh")
artifacts=$dist/maven/io/rapidmq/rapidmq/$version
if [[ ! -f $artifacts/rapidmq-$version.jar ]]; then
  echo "dist java test: no io.rapidmq:rapidmq:$version in $dist/maven; run scripts/dist/java.sh $dist first" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
java_home=$("$root/scripts/install-deps-java.sh" --java-home)
cp -r "$root/tests/dist/java" "$tmp/project"
rm -rf "$tmp/project/target"

# The user's machine: that JDK's java, Maven, and the system's directories.
PATH="$java_home/bin:$PATH"
source "$root/tests/dist/lib.sh"
user_path "$tmp/bin" java mvn
export JAVA_HOME=$java_home HOME=$tmp/home
mkdir -p "$HOME"
cat >"$tmp/settings.xml" <<'EOF'
<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0"/>
EOF
mvn=(mvn -B --no-transfer-progress -q -Dstyle.color=never -s "$tmp/settings.xml"
  "-Dmaven.repo.local=$tmp/m2" "-Drapidmq.dist.repo=file://$dist/maven" -f "$tmp/project/pom.xml")

echo "dist java test: mvn compile against io.rapidmq:rapidmq:$version from $dist/maven…"
"${mvn[@]}" compile dependency:build-classpath "-Dmdep.outputFile=$tmp/classpath.txt"

resolved=$tmp/m2/io/rapidmq/rapidmq/$version/rapidmq-$version.jar
if ! cmp -s "$resolved" "$artifacts/rapidmq-$version.jar"; then
  echo "dist java test: Maven resolved $resolved, not the jar in $artifacts" >&2
  exit 1
fi
grep -q "rapidmq-$version.jar>rapidmq-dist=" "$tmp/m2/io/rapidmq/rapidmq/$version/_remote.repositories" || {
  echo "dist java test: io.rapidmq:rapidmq did not come from the rapidmq-dist repository" >&2
  exit 1
}

echo "dist java test: $(java -version 2>&1 | head -1); running the quickstart against $endpoint"
(cd "$tmp" && java --enable-native-access=ALL-UNNAMED -cp "$tmp/project/target/classes:$(cat "$tmp/classpath.txt")" \
  com.example.Quickstart "$endpoint" "$version")
echo "dist java test: ok"
