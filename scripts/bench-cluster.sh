#!/usr/bin/env bash
# Replication's cost on the publish path (docs/benchmarks.md "Cluster: 3 nodes, RF 3, against one
# node", make bench-cluster; issue 17's target: a 3-node RF 3 cluster at ≥ 50 % of one node's
# fsync throughput at batch 1000). Starts one single-node broker and a 3-node cluster on
# 127.0.0.1 (free ports, fresh data dirs, both up for the whole run), waits until every node
# reports the same metadata leader and the whole node table, then runs the same
# `rapidmq bench pub` (100 B, batch 1000, 1 producer, fsync; the client core routes each
# partition to its leader) against each, alternating, RUNS times, for each partition count in
# PARTITIONS. Each run publishes to a fresh topic that the bench creates with the default
# replication factor (3 on the cluster, checked with `topic describe`) and that is deleted after.
# Prints every run, then the medians and the cluster/single ratio. Stops every broker and removes
# every temp dir on exit, Ctrl-C included.
#
#   scripts/bench-cluster.sh path/to/release/rapidmq
#   RUNS=3 COUNT=10000000 PARTITIONS="1 3"   (the defaults)
#   INFLIGHT=N   batches in flight per partition for both set-ups (default: the SDK's)
#   QUICK=1   a smoke run: 20000 messages, 1 run, 1 partition (make test's test-bench-smoke, debug
#             build). One partition: 3-partition runs on a fresh cluster topic once failed now and
#             then with OUT_OF_ORDER_SEQUENCE (docs/benchmarks.md "Cluster: 3 nodes, RF 3, against
#             one node"; fixed since, docs/clustering.md "The produce path"), and the smoke run
#             only checks that the script and both set-ups work.
set -euo pipefail
BUILT=${1:?usage: bench-cluster.sh path/to/release/rapidmq}
if [[ ${QUICK:-0} == 1 ]]; then
  RUNS=${RUNS:-1} COUNT=${COUNT:-20000} PARTITIONS=${PARTITIONS:-1}
fi
RUNS=${RUNS:-3}
COUNT=${COUNT:-10000000}
PARTITIONS=${PARTITIONS:-1 3}
source "$(dirname "$0")/lib/broker.sh"
source "$(dirname "$0")/lib/ports.sh"

bench_setup "$BUILT"

mkdir "$root/single"
serve_in "$root/single" "$BIN"
pids+=("$pid")
single=$server
single_pids=("$pid")

# The cluster ports are chosen before any node starts, since every node is told all of them.
ports=$(free_ports 3)
read -r -a ports <<< "$ports"
peers="1=127.0.0.1:${ports[0]},2=127.0.0.1:${ports[1]},3=127.0.0.1:${ports[2]}"
nodes=() cluster_pids=()
for n in 1 2 3; do
  mkdir "$root/node-$n"
  serve_in "$root/node-$n" "$BIN" --node-id "$n" --peers "$peers"
  pids+=("$pid")
  nodes+=("$server")
  cluster_pids+=("$pid")
done
cluster=${nodes[0]}

# Whether every node names the same metadata leader and lists all three nodes with their client
# addresses (what the client core's routing needs to reach each partition's leader).
cluster_formed() {
  local statuses=() status
  for node in "${nodes[@]}"; do
    status=$("$BIN" --server "$node" --output json cluster status 2>/dev/null) || return 1
    statuses+=("$status")
  done
  python3 -c '
import json, sys
s = [json.loads(a) for a in sys.argv[1:]]
leaders = {x["leader_id"] for x in s}
full = all(sorted(n["id"] for n in x["nodes"] if n["grpc_addr"]) == [1, 2, 3] for x in s)
sys.exit(0 if full and len(leaders) == 1 and None not in leaders else 1)
' "${statuses[@]}"
}
for _ in $(seq 1 300); do
  cluster_formed && break
  sleep 0.1 # readiness poll of the cluster status, bounded to 30 s (plus the status calls)
done
cluster_formed || {
  echo "bench-cluster: the nodes did not agree on a leader with all three nodes" >&2
  tail -n 20 "$root"/node-*/broker.log >&2
  exit 1
}

# What bounds a run: the machine's CPU ticks (busy, all) from /proc/stat and the CPU ticks the
# setup's brokers used, so a run can say how busy the two cores were and who kept them busy.
ticks() { # broker pids…
  local p total=0
  for p in "$@"; do total=$((total + $(cut -d' ' -f14,15 "/proc/$p/stat" | tr ' ' +))); done
  awk -v brokers="$total" '/^cpu / {busy = $2+$3+$4+$7+$8+$9; print busy, busy+$5+$6, brokers}' /proc/stat
}

run() { # setup round partitions
  local setup=$1 round=$2 parts=$3 target report describe before after
  local topic="bench-cluster-$setup-p$parts-r$round" pids=("${single_pids[@]}")
  target=$single
  if [[ $setup == cluster ]]; then target=$cluster pids=("${cluster_pids[@]}"); fi
  before=$(ticks "${pids[@]}")
  report=$("$BIN" --server "$target" bench pub --topic "$topic" --keep --partitions "$parts" \
    --count "$COUNT" --size 100 --batch 1000 --durability fsync ${INFLIGHT:+--inflight "$INFLIGHT"} \
    --json)
  after=$(ticks "${pids[@]}")
  describe=$("$BIN" --server "$target" --output json topic describe "$topic")
  "$BIN" --server "$target" topic delete "$topic" >/dev/null
  python3 -c '
import json, sys
setup, round_, report, describe = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
busy, total, brokers = (b - a for a, b in zip(map(int, sys.argv[5].split()), map(int, sys.argv[6].split())))
rf = describe["config"]["replication_factor"]
replicas = [len(p["replicas"]) for p in describe["partitions"]]
if setup == "cluster" and (rf != 3 or replicas != [3] * len(replicas)):
    sys.exit(f"bench-cluster: the bench topic has replication factor {rf}, replicas {replicas}; expected 3")
p = report["phases"][0]
print(json.dumps({"setup": setup, "round": round_, "partitions": report["partitions"],
                  "rf": rf or 1, "messages": p["messages"], "msgs_per_sec": p["msgs_per_sec"],
                  "p50_ms": p["latency"]["p50_ms"], "p99_ms": p["latency"]["p99_ms"],
                  "leaders": [q["leader"] for q in describe["partitions"]],
                  "cpu_busy_pct": round(100 * busy / total), "broker_cpu_pct": round(100 * brokers / total)}))
' "$setup" "$round" "$report" "$describe" "$before" "$after" | tee -a "$results"
}

echo "bench-cluster: $BUILT ($(sha256sum "$BIN" | cut -c1-12)), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
echo "pub: $COUNT x 100 B, batch 1000, 1 producer, fsync; partitions: $PARTITIONS; $RUNS runs each, single and cluster alternating"
for parts in $PARTITIONS; do
  for round in $(seq 1 "$RUNS"); do
    run single "$round" "$parts"
    run cluster "$round" "$parts"
  done
done
echo "done: load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"

python3 - "$results" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
pick = lambda setup, parts, key: [r[key] for r in runs if r["setup"] == setup and r["partitions"] == parts]
print()
print("| partitions | run | single msgs/s | single p99 ms | cluster msgs/s | cluster p99 ms | cluster leaders | CPU busy single / cluster | brokers' share single / cluster |")
print("|---|---|---|---|---|---|---|---|---|")
for parts in sorted({r["partitions"] for r in runs}):
    s = [r for r in runs if r["setup"] == "single" and r["partitions"] == parts]
    c = [r for r in runs if r["setup"] == "cluster" and r["partitions"] == parts]
    for a, b in zip(s, c):
        print(f"| {parts} | {a['round']} | {a['msgs_per_sec']:,.0f} | {a['p99_ms']:.2f} "
              f"| {b['msgs_per_sec']:,.0f} | {b['p99_ms']:.2f} | {','.join(map(str, b['leaders']))} "
              f"| {a['cpu_busy_pct']} % / {b['cpu_busy_pct']} % | {a['broker_cpu_pct']} % / {b['broker_cpu_pct']} % |")
print()
print("| partitions | median single msgs/s | median cluster msgs/s | cluster/single | median single p50 / p99 ms | median cluster p50 / p99 ms |")
print("|---|---|---|---|---|---|")
verdicts = []
for parts in sorted({r["partitions"] for r in runs}):
    med = lambda setup, key: statistics.median(pick(setup, parts, key))
    ratio = med("cluster", "msgs_per_sec") / med("single", "msgs_per_sec")
    print(f"| {parts} | {med('single', 'msgs_per_sec'):,.0f} | {med('cluster', 'msgs_per_sec'):,.0f} "
          f"| **{100 * ratio:.0f} %** | {med('single', 'p50_ms'):.2f} / {med('single', 'p99_ms'):.2f} "
          f"| {med('cluster', 'p50_ms'):.2f} / {med('cluster', 'p99_ms'):.2f} |")
    verdicts.append(f"{parts} partition(s): the cluster at {100 * ratio:.0f} % of one node's throughput "
                    "(target ≥ 50 %): " + ("met" if ratio >= 0.5 else f"missed by {100 * (0.5 - ratio):.0f} points"))
print()
print("\n".join(verdicts))
PY
