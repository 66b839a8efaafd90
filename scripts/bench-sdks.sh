#!/usr/bin/env bash
# Every SDK's producer and consumer against one broker, in one run (make bench-sdks; issue 18):
# 100 B messages, default producer and consumer settings (linger 5 ms, batches of 1000, prefetch
# 10,000 messages and 1 MiB), one `send` per message, fsync, one fresh 1-partition topic per SDK and phase. Prints a
# table with each SDK's throughput as a ratio of the Rust SDK's in the same run, against the
# targets of issue 18, and appends one JSON line per SDK to $RESULTS when set.
#
#   bench-sdks.sh <rapidmq> <sdk-rust throughput example>
#
# Needs the Python venv (sdk-python/test.sh --setup), sdk-go's native library (make go-native),
# the Java SDK in ~/.m2 (make java); `make bench-sdks` builds all of them in release first.
# Environment: MESSAGES (default 1000000), PY_BATCH (messages per Python `send_batch` call in
# the batch-API row, default 1000), `go` on PATH, JAVA_HOME a JDK 22+, RAPIDMQ_PY_VENV,
# MAVEN_REPO, MVN_FLAGS. The programs are
# the SDKs' own throughput benchmarks: sdk-rust/examples/throughput.rs and `rapidmq bench sub`
# (the Rust SDK's consumer), sdk-go/cmd/throughput, examples/java Throughput, and
# sdk-python/bench/bench.py (their own output goes to stderr; `tee -a`, so a log file that
# holds both is not truncated). Python's producer warms up on a tenth of the messages first, Java
# on as many as it measures (the JIT; examples/java Throughput says why); Go, compiled ahead of
# time, does not. Go runs twice: consuming with Poll(1000) (the table's row), then through its
# Messages iterator (a line of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
broker=$(realpath "$1")
rust=$(realpath "$2")
python=${RAPIDMQ_PY_VENV:-sdk-python/.venv}/bin/python
version=$(scripts/dist/version.sh)
jar=${MAVEN_REPO:-$HOME/.m2/repository}/io/rapidmq/rapidmq/$version/rapidmq-$version.jar
messages=${MESSAGES:-1000000}
py_batch=${PY_BATCH:-1000}
java=${JAVA_HOME:+$JAVA_HOME/bin/}java
[[ -x $python ]] || { echo "bench-sdks: $python is missing; run sdk-python/test.sh --setup" >&2; exit 1; }
[[ -f $jar ]] || { echo "bench-sdks: $jar is missing; run 'make java' first" >&2; exit 1; }
mvn ${MVN_FLAGS:--B -q --no-transfer-progress} -f examples/java/pom.xml compile

source scripts/lib/broker.sh
start_broker "$broker"
echo "bench-sdks: $messages x 100 B per SDK and phase, broker at $server, $(nproc) cores," \
  "load $(cut -d' ' -f1-3 /proc/loadavg)"

# rate LABEL < program output: the msgs/s figure of the line starting with LABEL.
rate() { sed -n "s/^$1.* \([0-9][0-9.]*\) msgs\/s.*/\1/p" | tail -1; }

echo "bench-sdks: rust"
rust_pub=$(RAPIDMQ_ENDPOINT=$server "$rust" publish "$messages" 100 | tee -a /dev/stderr | rate "publish:")
rust_sub=$("$broker" bench sub --server "$server" --count "$messages" --size 100 --json |
  "$python" -c 'import json, sys; print(round(json.load(sys.stdin)["msgs_per_sec"]))')
echo "rust consume: $rust_sub msgs/s" >&2

echo "bench-sdks: go"
go_out=$(cd sdk-go && go run ./cmd/throughput -endpoint "$server" -messages "$messages" -size 100 |
  tee -a /dev/stderr)
go_pub=$(rate "go publish:" <<<"$go_out")
go_sub=$(rate "go consume:" <<<"$go_out")
# The same program consuming through the Messages iterator (range-over-func) instead of Poll.
go_iter_sub=$(cd sdk-go && go run ./cmd/throughput -endpoint "$server" -messages "$messages" -size 100 -iter |
  tee -a /dev/stderr | rate "go consume:")

echo "bench-sdks: java"
java_out=$("$java" --enable-native-access=ALL-UNNAMED -cp "$jar:examples/java/target/classes" \
  io.rapidmq.examples.Throughput "$server" "$messages" 100 | tee -a /dev/stderr)
java_pub=$(rate "java publish:" <<<"$java_out")
java_sub=$(rate "java consume:" <<<"$java_out")

echo "bench-sdks: python"
py_out=$("$python" sdk-python/bench/bench.py --endpoint "$server" --count "$messages" --size 100 \
  --batch "$py_batch" | tee -a /dev/stderr)
py_pub=$(rate "python publish:" <<<"$py_out")
py_sub=$(rate "python consume:" <<<"$py_out")
py_batch_pub=$(rate "python batch publish:" <<<"$py_out")

for figure in rust_pub rust_sub go_pub go_sub go_iter_sub java_pub java_sub py_pub py_sub py_batch_pub; do
  [[ -n ${!figure} ]] || { echo "bench-sdks: no figure for $figure" >&2; exit 1; }
done

"$python" - "$messages" "$py_batch" "$rust_pub" "$rust_sub" "$go_pub" "$go_sub" "$java_pub" \
  "$java_sub" "$py_pub" "$py_sub" "$py_batch_pub" "$go_iter_sub" <<'EOF'
import json, os, sys
messages, py_batch = int(sys.argv[1]), int(sys.argv[2])
rust_pub, rust_sub, go_pub, go_sub, java_pub, java_sub, py_pub, py_sub, py_batch_pub, go_iter_sub = map(
    float, sys.argv[3:]
)
rows = [  # sdk, producer, consumer, producer target, consumer target (x Rust)
    ("rust", rust_pub, rust_sub, None, None),
    ("go", go_pub, go_sub, 0.7, 0.8),
    ("java", java_pub, java_sub, 0.7, 0.8),
    ("python", py_pub, py_sub, 0.3, 0.3),
]
print(f"\n{messages} x 100 B, 1 partition, fsync, default settings, one send per message")
print(f"{'sdk':<8}{'producer msgs/s':>16}{'x rust':>8}{'target':>10}{'consumer msgs/s':>17}{'x rust':>8}{'target':>10}")
results = os.environ.get("RESULTS")
for sdk, pub, sub, pub_target, sub_target in rows:
    ratio = lambda value, base: value / base
    mark = lambda r, t: "" if t is None else (f"{t:.1f}" + (" ok" if r >= t else " MISS"))
    print(f"{sdk:<8}{pub:>16,.0f}{ratio(pub, rust_pub):>8.2f}{mark(ratio(pub, rust_pub), pub_target):>10}"
          f"{sub:>17,.0f}{ratio(sub, rust_sub):>8.2f}{mark(ratio(sub, rust_sub), sub_target):>10}")
    if results:
        with open(results, "a") as f:
            f.write(json.dumps({"sdk": sdk, "messages": messages, "size": 100,
                                "producer_msgs_per_s": round(pub), "consumer_msgs_per_s": round(sub),
                                "producer_x_rust": round(pub / rust_pub, 3),
                                "consumer_x_rust": round(sub / rust_sub, 3)}) + "\n")
iter_ratio = go_iter_sub / rust_sub
print(f"go consuming through the Messages iterator: {go_iter_sub:,.0f} msgs/s, "
      f"{iter_ratio:.2f}x rust, target 0.8" + (" ok" if iter_ratio >= 0.8 else " MISS"))
if results:
    with open(results, "a") as f:
        f.write(json.dumps({"sdk": "go-iterator", "messages": messages, "size": 100,
                            "consumer_msgs_per_s": round(go_iter_sub),
                            "consumer_x_rust": round(iter_ratio, 3)}) + "\n")
batch_ratio = py_batch_pub / rust_pub
print(f"python through a batch API (send_batch of {py_batch}): {py_batch_pub:,.0f} msgs/s, "
      f"{batch_ratio:.2f}x rust, target 0.7" + (" ok" if batch_ratio >= 0.7 else " MISS"))
if results:
    with open(results, "a") as f:
        f.write(json.dumps({"sdk": "python-batch", "messages": messages, "size": 100,
                            "batch": py_batch, "producer_msgs_per_s": round(py_batch_pub),
                            "producer_x_rust": round(batch_ratio, 3)}) + "\n")
EOF
