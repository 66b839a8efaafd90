#!/usr/bin/env bash
# How long moving partition replicas takes, and what it costs publishers meanwhile
# (docs/benchmarks.md "Moving replicas", make bench-moves). For each value of SLOTS
# (`cluster.max_concurrent_moves`): starts a 3-node cluster on 127.0.0.1 (free ports, fresh data
# dirs, `rebalance_on_join` off), fills a topic of PARTITIONS partitions (RF 3, fsync) with
# COUNT messages of 1 KB, starts a fourth node and adds it, then times `cluster rebalance`, which
# moves a quarter of the replicas to it and waits until every move completed. A publisher at
# RATE msgs/s through node 1 starts with the rebalance and runs for DURING, so the run also
# shows what the moves cost its latency. Prints one JSON line per run, then a table. Stops every broker and
# removes every temp dir on exit, Ctrl-C included.
#
#   scripts/bench-moves.sh path/to/release/rapidmq
#   SLOTS="1 4 0" PARTITIONS=12 COUNT=600000 RATE=20000 DURING=20s   (the defaults; 0: no limit)
#   QUICK=1   a smoke run: 4 partitions, 20000 messages, one SLOTS value (debug build)
set -euo pipefail
BUILT=${1:?usage: bench-moves.sh path/to/release/rapidmq}
if [[ ${QUICK:-0} == 1 ]]; then
  SLOTS=${SLOTS:-1} PARTITIONS=${PARTITIONS:-4} COUNT=${COUNT:-20000} RATE=${RATE:-2000}
  DURING=${DURING:-3s}
fi
DURING=${DURING:-20s}
SLOTS=${SLOTS:-1 4 0}
PARTITIONS=${PARTITIONS:-12}
COUNT=${COUNT:-600000}
RATE=${RATE:-20000}
SIZE=1000
source "$(dirname "$0")/lib/broker.sh"
source "$(dirname "$0")/lib/ports.sh"

bench_setup "$BUILT"

# Whether every node of `nodes` names the same metadata leader and counts `voters` voters.
formed() { # voters
  local node statuses=()
  for node in "${nodes[@]}"; do
    statuses+=("$("$BIN" --server "$node" --output json cluster status 2>/dev/null)") || return 1
  done
  python3 -c '
import json, sys
s = [json.loads(a) for a in sys.argv[2:]]
voters = {sum(1 for n in x["nodes"] if n["role"] == "voter") for x in s}
sys.exit(0 if len({x["leader_id"] for x in s}) == 1 and None not in {x["leader_id"] for x in s} and voters == {int(sys.argv[1])} else 1)
' "$1" "${statuses[@]}"
}

wait_formed() { # voters
  for _ in $(seq 1 300); do
    formed "$1" && return 0
    sleep 0.1 # readiness poll of the cluster status, bounded to 30 s (plus the status calls)
  done
  echo "bench-moves: the cluster did not agree on a leader with $1 voters" >&2
  tail -n 20 "$root"/run-*/node-*/broker.log >&2 || true
  exit 1
}

run() { # slots
  local slots=$1 dir="$root/run-$1" ports peers three n topic=moving
  mkdir "$dir"
  ports=$(free_ports 4)
  read -r -a ports <<< "$ports"
  peers="1=127.0.0.1:${ports[0]},2=127.0.0.1:${ports[1]},3=127.0.0.1:${ports[2]},4=127.0.0.1:${ports[3]}"
  three=${peers%,4=*}
  export RAPIDMQ_CLUSTER__MAX_CONCURRENT_MOVES=$slots RAPIDMQ_CLUSTER__REBALANCE_ON_JOIN=false
  nodes=()
  for n in 1 2 3; do
    mkdir "$dir/node-$n"
    serve_in "$dir/node-$n" "$BIN" --node-id "$n" --peers "$three"
    pids+=("$pid")
    nodes+=("$server")
  done
  wait_formed 3

  "$BIN" --server "${nodes[0]}" bench pub --topic "$topic" --keep --partitions "$PARTITIONS" \
    --count "$COUNT" --size "$SIZE" --batch 100 --durability fsync --json >/dev/null
  local bytes
  bytes=$("$BIN" --server "${nodes[0]}" --output json topic describe "$topic" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(p["bytes"] for p in d["partitions"]))')

  mkdir "$dir/node-4"
  serve_in "$dir/node-4" "$BIN" --node-id 4 --join --peers "$peers"
  pids+=("$pid")
  "$BIN" --server "${nodes[0]}" cluster add-node 4 --cluster-addr "127.0.0.1:${ports[3]}" >/dev/null 2>&1
  nodes+=("$server")
  wait_formed 4

  # A publisher at RATE for DURING, started with the rebalance.
  "$BIN" --server "${nodes[0]}" bench pub --topic "$topic" --keep --partitions "$PARTITIONS" \
    --rate "$RATE" --duration "$DURING" --size 100 --batch 100 --durability fsync \
    --json >"$dir/during.json" 2>"$dir/during.err" &
  local publisher=$! started ended moved
  started=$(date +%s.%N)
  moved=$("$BIN" --server "${nodes[0]}" --output json cluster rebalance 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["moves"]))')
  ended=$(date +%s.%N)
  wait "$publisher" || { cat "$dir/during.err" >&2; exit 1; }
  python3 - "$slots" "$PARTITIONS" "$moved" "$bytes" "$started" "$ended" "$dir/during.json" <<'PY' | tee -a "$results"
import json, sys
slots, partitions, moved, size = (int(a) for a in sys.argv[1:5])
secs = float(sys.argv[6]) - float(sys.argv[5])
try:
    phase = json.load(open(sys.argv[7]))["phases"][0]
    during = {"p50_ms": phase["latency"]["p50_ms"], "p99_ms": phase["latency"]["p99_ms"],
              "max_ms": phase["latency"]["max_ms"], "msgs_per_sec": round(phase["msgs_per_sec"])}
except (OSError, KeyError, IndexError, ValueError) as err:
    sys.exit(f"bench-moves: no report from the publisher: {err}")
moved_bytes = size * moved / partitions
print(json.dumps({"slots": slots, "partitions": partitions, "moves": moved,
                  "topic_mb": round(size / 1e6, 1), "moved_mb": round(moved_bytes / 1e6, 1),
                  "secs": round(secs, 2), "mb_per_sec": round(moved_bytes / 1e6 / secs, 1),
                  "publisher_during": during}))
PY
  stop_brokers
}

echo "bench-moves: $BUILT ($(sha256sum "$BIN" | cut -c1-12)), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
echo "$PARTITIONS partitions RF 3 holding $COUNT x $SIZE B; node 4 added, then cluster rebalance, a publisher at $RATE msgs/s throughout; max_concurrent_moves: $SLOTS"
for slots in $SLOTS; do
  run "$slots"
done
echo "done: load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print()
print("| max_concurrent_moves | moves | moved MB | seconds | MB/s | publisher p50 / p99 / max ms during |")
print("|---|---|---|---|---|---|")
for r in rows:
    d = r["publisher_during"]
    lat = f'{d["p50_ms"]} / {d["p99_ms"]} / {d["max_ms"]}'
    print(f'| {r["slots"] or "no limit"} | {r["moves"]} | {r["moved_mb"]} | {r["secs"]} | {r["mb_per_sec"]} | {lat} |')
PY
