#!/usr/bin/env bash
# Runs an example of the Java SDK against a real broker with nothing but the installed
# io.rapidmq:rapidmq jar and the example classes on the class path: the proof that the jar
# carries and loads its native library. Used by `make test-java`.
#
#   RAPIDMQ_BIN=<rapidmq> examples/java/run.sh [Quickstart|Throughput] [args...]
#
# The broker is started with the shared launch protocol (ready file, ephemeral ports, temporary
# data directory) and stopped with SIGTERM. JAVA_HOME must be a JDK 22 or newer; MVN_FLAGS are
# passed to Maven.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
main=${1:-Quickstart}
shift || true
: "${RAPIDMQ_BIN:?RAPIDMQ_BIN must point at the rapidmq binary}"
java=${JAVA_HOME:+$JAVA_HOME/bin/}java
repo=${MAVEN_REPO:-$HOME/.m2/repository}
version=$("$here/../../scripts/dist/version.sh")
jar=$repo/io/rapidmq/rapidmq/$version/rapidmq-$version.jar
[[ -f $jar ]] || { echo "run.sh: $jar is missing; run 'make java' first" >&2; exit 1; }

mvn ${MVN_FLAGS:--B -q --no-transfer-progress} -f "$here/pom.xml" compile

tmp=$(mktemp -d)
broker_pid=
cleanup() {
    if [[ -n $broker_pid ]]; then
        kill -TERM "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
"$RAPIDMQ_BIN" serve --data-dir "$tmp/data" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --ready-file "$tmp/ready.json" >"$tmp/broker.log" 2>&1 </dev/null &
broker_pid=$!
# Readiness: the ready file appears once both listeners are bound; each step re-checks the file
# and the process, bounded at 60 s.
for ((i = 0; i < 6000; i++)); do
    [[ -s $tmp/ready.json ]] && break
    kill -0 "$broker_pid" 2>/dev/null || { cat "$tmp/broker.log" >&2; echo "run.sh: the broker exited" >&2; exit 1; }
    sleep 0.01
done
[[ -s $tmp/ready.json ]] || { cat "$tmp/broker.log" >&2; echo "run.sh: the broker did not get ready" >&2; exit 1; }
grpc=$(sed -n 's/.*"grpc"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$tmp/ready.json")

"$java" --enable-native-access=ALL-UNNAMED -cp "$jar:$here/target/classes" "io.rapidmq.examples.$main" \
    "http://$grpc" "$@"
