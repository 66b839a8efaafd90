#!/usr/bin/env bash
# The cost of metrics and flow tracing on the publish (and consume) path: the same binary with
# observability on (the defaults) and off (observability.metrics = false, flow_events = 0),
# measured with `rapidmq bench-grpc` (raw gRPC, no client core) in alternating rounds so both
# see the same machine load. Each round starts fresh brokers on fresh data directories (so the
# disk never holds more than one round). Prints each round and the medians.
#
# Usage: tests/observability/bench-overhead.sh path/to/rapidmq [rounds] [messages] [batch]
set -euo pipefail
BIN=${1:?usage: bench-overhead.sh path/to/rapidmq [rounds] [messages] [batch]}
ROUNDS=${2:-5}
MESSAGES=${3:-1000000}
BATCH=${4:-100}

work=$(mktemp -d)
pid=""
stop() {
  if [[ -n "$pid" ]]; then
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  fi
  pid=""
}
trap 'stop; rm -rf "$work"' EXIT

start() { # name, env...
  local name=$1
  shift
  rm -rf "${work:?}/$name" "$work/$name.json"
  env "$@" "$BIN" serve --data-dir "$work/$name" --grpc-listen 127.0.0.1:0 \
    --http-listen 127.0.0.1:0 --ready-file "$work/$name.json" >"$work/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    [[ -f "$work/$name.json" ]] && break
    sleep 0.05 # readiness poll of the ready file, bounded to 30 s
  done
  [[ -f "$work/$name.json" ]] || { cat "$work/$name.log"; exit 1; }
}

: >"$work/results"
for round in $(seq 1 "$ROUNDS"); do
  for mode in on off; do
    if [[ $mode == on ]]; then
      start on
    else
      start off RAPIDMQ_OBSERVABILITY__METRICS=false RAPIDMQ_OBSERVABILITY__FLOW_EVENTS=0
    fi
    addr=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$work/$mode.json")
    result=$("$BIN" bench-grpc --server "http://$addr" --topic bench --messages "$MESSAGES" \
      --batch "$BATCH" --durability buffered --json |
      python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))')
    stop
    rm -rf "${work:?}/$mode"
    echo "$mode $result" >>"$work/results"
    python3 -c 'import json,sys; r=json.loads(sys.argv[2]); print("round {}: publish {:,.0f} msg/s, consume {:,.0f} msg/s".format(sys.argv[1], r["publish"]["msgs_per_sec"], r["consume"]["msgs_per_sec"]))' "$round, observability $mode" "$result"
  done
done

python3 - "$work/results" <<'PY'
import json, statistics, sys
rows = [line.split(" ", 1) for line in open(sys.argv[1])]
def figures(mode, phase):
    return [json.loads(r)[phase]["msgs_per_sec"] for m, r in rows if m == mode]
for phase in ["publish", "consume"]:
    on, off = statistics.median(figures("on", phase)), statistics.median(figures("off", phase))
    print(f"{phase} median msg/s: on {on:,.0f}  off {off:,.0f}  cost {100 * (off - on) / off:+.1f}%")
PY
