#!/usr/bin/env bash
# Cross-language fidelity (`make test-cross`, part of `make test`). One broker; each SDK (Rust,
# Python, Go, Java) publishes the messages of messages.txt, in order, to its own 1-partition
# topic; then each SDK reads back every SDK's topic with Fetch and checks it holds exactly those
# messages at offsets 0, 1, 2, ...: keys with their presence (an empty key is a key, not none),
# values (empty, not UTF-8), headers (order, repeated and non-ASCII names, empty values).
#
# A decoy topic holds the fixture with its empty key dropped (published by the Rust side), and
# every reader must refuse it: the proof that each tells an empty key from none.
#
# Compressed batches (LZ4 and Zstandard) from every SDK, read by every SDK.
#
# Request/reply across every pair: each SDK answers on its own topic (a queue subscription),
# echoing each request; every SDK sends each fixture message as a request to every responder
# and checks that the reply is that message, byte for byte.
#
#   RAPIDMQ_BIN=<rapidmq> CROSS_RUST=<the `cross` example of sdk-rust> tests/cross/run.sh
#
# Needs what `make test-cross` builds first: the Python venv (sdk-python/test.sh --setup), sdk-go's
# native library (make go-native), the Java SDK in ~/.m2 (make java); `go` on PATH and JAVA_HOME a
# JDK 22 or newer. MVN_FLAGS are passed to Maven.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${RAPIDMQ_BIN:?RAPIDMQ_BIN must point at the rapidmq binary}"
: "${CROSS_RUST:?CROSS_RUST must point at the cross example of sdk-rust}"
fixture=$here/messages.txt
python=${RAPIDMQ_PY_VENV:-$root/sdk-python/.venv}/bin/python
java=${JAVA_HOME:+$JAVA_HOME/bin/}java
version=$("$root/scripts/dist/version.sh")
jar=${MAVEN_REPO:-$HOME/.m2/repository}/io/rapidmq/rapidmq/$version/rapidmq-$version.jar
[[ -x $python ]] || { echo "cross: $python is missing; run sdk-python/test.sh --setup" >&2; exit 1; }
[[ -f $jar ]] || { echo "cross: $jar is missing; run 'make java' first" >&2; exit 1; }

# One broker for the whole check (scripts/lib/broker.sh: free ports, a fresh data dir, the ready
# file); its work dir, removed on exit, also holds this run's files.
source "$root/scripts/lib/broker.sh"
start_broker "$RAPIDMQ_BIN"
endpoint=$server
tmp=$work

echo "cross: building the Go and Java sides"
(cd "$root/sdk-go" && go build -o "$tmp/cross-go" ./cmd/cross)
mvn ${MVN_FLAGS:--B -q --no-transfer-progress} -f "$here/java/pom.xml" compile

# side LANG ARGS...: runs that SDK's program (publish|verify|request endpoint topic fixture, or
# respond endpoint topic fixture requesters).
side() {
    local lang=$1
    shift
    case $lang in
        rust) "$CROSS_RUST" "$@" ;;
        python) "$python" "$here/cross.py" "$@" ;;
        go) "$tmp/cross-go" "$@" ;;
        java) "$java" --enable-native-access=ALL-UNNAMED -cp "$jar:$here/java/target/classes" io.rapidmq.cross.Cross "$@" ;;
    esac
}
create() { "$RAPIDMQ_BIN" --server "$endpoint" topic create "$1" -p 1 >/dev/null; }

langs=(rust python go java)
for lang in "${langs[@]}"; do
    create "cross-$lang"
    side "$lang" publish "$endpoint" "cross-$lang" "$fixture"
    echo "cross: $lang published $(grep -vc '^#' "$fixture") messages to cross-$lang"
done

# The decoy: the fixture's empty key (`k:` alone) made no key (`-`).
grep -q '^k: ' "$fixture" || { echo "cross: the fixture has no empty key" >&2; exit 1; }
sed '0,/^k: /s//- /' "$fixture" >"$tmp/decoy.txt"
create cross-decoy
side rust publish "$endpoint" cross-decoy "$tmp/decoy.txt"

failed=0
# cell COMMAND…: one cell of a table: ok, or FAIL with the command's stderr kept for the end.
cell() {
    if "$@" 2>"$tmp/err"; then
        printf '%-8s' ok
    else
        printf '%-8s' FAIL
        failed=$((failed + 1))
        cat "$tmp/err" >>"$tmp/failures"
    fi
}
printf '%-22s' "reader \\ writer"; printf '%-8s' "${langs[@]}" decoy; echo
for reader in "${langs[@]}"; do
    printf '%-22s' "$reader"
    for writer in "${langs[@]}"; do
        cell side "$reader" verify "$endpoint" "cross-$writer" "$fixture"
    done
    # Refused for the right reason: message 1, the one whose key the decoy dropped.
    if side "$reader" verify "$endpoint" cross-decoy "$fixture" 2>"$tmp/err"; then
        printf '%-8s' FAIL
        failed=$((failed + 1))
        echo "$reader accepted the decoy (an empty key read as none)" >>"$tmp/failures"
    elif ! grep -q "message 1:" "$tmp/err"; then
        printf '%-8s' FAIL
        failed=$((failed + 1))
        { echo "$reader refused the decoy for another reason:"; cat "$tmp/err"; } >>"$tmp/failures"
    else
        printf '%-8s' refused
    fi
    echo
done

# Compressed batches: each SDK publishes the fixture again with each codec (CROSS_COMPRESSION,
# which every side's publish reads); the topic must take fewer stored bytes than the plain one
# (the proof the batches went compressed: the fixture's 1000-byte message shrinks), and every
# SDK reads every SDK's compressed topic back byte for byte.
stored() {
    "$RAPIDMQ_BIN" --server "$endpoint" topic describe "$1" --output json |
        "$python" -c 'import json, sys; print(sum(p["bytes"] for p in json.load(sys.stdin)["partitions"]))'
}
codecs=(lz4 zstd)
for codec in "${codecs[@]}"; do
    for lang in "${langs[@]}"; do
        create "cross-$lang-$codec"
        CROSS_COMPRESSION=$codec side "$lang" publish "$endpoint" "cross-$lang-$codec" "$fixture"
        plain=$(stored "cross-$lang") packed=$(stored "cross-$lang-$codec")
        if ((packed >= plain)); then
            failed=$((failed + 1))
            echo "$lang with $codec stored $packed bytes, no fewer than $plain plain" >>"$tmp/failures"
        fi
    done
done
for codec in "${codecs[@]}"; do
    printf '%-22s' "reader \\ writer, $codec"; printf '%-8s' "${langs[@]}"; echo
    for reader in "${langs[@]}"; do
        printf '%-22s' "$reader"
        for writer in "${langs[@]}"; do
            cell side "$reader" verify "$endpoint" "cross-$writer-$codec" "$fixture"
        done
        echo
    done
done

# Request/reply: the responders run in the background, each answering every requester.
declare -A responding
for responder in "${langs[@]}"; do
    create "rr-$responder"
    side "$responder" respond "$endpoint" "rr-$responder" "$fixture" "${#langs[@]}" \
        2>"$tmp/respond-$responder.err" &
    responding[$responder]=$!
done
printf '%-22s' "requester \\ responder"; printf '%-8s' "${langs[@]}"; echo
for requester in "${langs[@]}"; do
    printf '%-22s' "$requester"
    for responder in "${langs[@]}"; do
        cell side "$requester" request "$endpoint" "rr-$responder" "$fixture"
    done
    echo
done
for responder in "${langs[@]}"; do
    if ! wait "${responding[$responder]}"; then
        failed=$((failed + 1))
        cat "$tmp/respond-$responder.err" >>"$tmp/failures"
    fi
done

if ((failed > 0)); then
    cat "$tmp/failures" >&2
    echo "cross: $failed checks failed" >&2
    exit 1
fi
echo "cross: every SDK read what every SDK wrote, byte for byte, plain and compressed, and answered" \
    "every SDK's requests"
