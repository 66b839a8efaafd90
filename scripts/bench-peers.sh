#!/usr/bin/env bash
# RapidMQ against NATS JetStream and Redis Streams on this machine (issue 11), driven by one load
# generator (bench/, `rapidmq-bench`). Installs nats-server and redis-server with apt when they
# are missing, starts each peer and a RapidMQ broker on 127.0.0.1 with free ports and fresh data
# dirs, runs the matrix, stops everything it started, and rewrites the part of
# docs/benchmarks.md between `<!-- peers:begin -->` and `<!-- peers:end -->`.
#
#   scripts/bench-peers.sh path/to/release/rapidmq path/to/rapidmq-bench
#
# Environment:
#   QUICK=1          a smoke run: tiny counts, one repeat, the doc is left alone (WRITE_DOC=1 to
#                    write it anyway)
#   REPEATS          repeats of the whole matrix (default 3; QUICK: 1)
#   COUNT            messages per throughput run (default 100000)
#   LATENCY_COUNT    round trips per latency run (default 2000)
#   FANOUT_COUNT     messages per fan-out run (default 20000)
#   REPLAY_COUNT     messages replayed from the start (default 1000000)
#   RATE, OPENLOOP_SECS   the open-loop rate and duration (default 10000 msgs/s, 5 s)
#   SIZES            message sizes (default "100 1024"); SYSTEMS (default "rapidmq nats redis")
#   WORKLOADS        a subset of "latency throughput fanout replay openloop"
#   RESULTS          where the JSON records go (default bench-peers-results.jsonl)
#   DOC              the document to rewrite (default docs/benchmarks.md)
#   STRICT=1         exit 1 when any run failed (the smoke run in `make test` sets it)
set -euo pipefail

BIN=${1:?usage: bench-peers.sh path/to/release/rapidmq path/to/rapidmq-bench}
BENCH=${2:?usage: bench-peers.sh path/to/release/rapidmq path/to/rapidmq-bench}
BIN=$(realpath "$BIN")
BENCH=$(realpath "$BENCH")
here=$(cd "$(dirname "$0")/.." && pwd)

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  REPEATS=${REPEATS:-1} COUNT=${COUNT:-5000} LATENCY_COUNT=${LATENCY_COUNT:-100}
  FANOUT_COUNT=${FANOUT_COUNT:-2000} REPLAY_COUNT=${REPLAY_COUNT:-10000}
  OPENLOOP_SECS=${OPENLOOP_SECS:-1} WRITE_DOC=${WRITE_DOC:-0}
fi
REPEATS=${REPEATS:-3}
COUNT=${COUNT:-100000}
LATENCY_COUNT=${LATENCY_COUNT:-2000}
FANOUT_COUNT=${FANOUT_COUNT:-20000}
REPLAY_COUNT=${REPLAY_COUNT:-1000000}
RATE=${RATE:-10000}
OPENLOOP_SECS=${OPENLOOP_SECS:-5}
SIZES=${SIZES:-100 1024}
SYSTEMS=${SYSTEMS:-rapidmq nats redis}
WORKLOADS=${WORKLOADS:-latency throughput fanout replay openloop}
WRITE_DOC=${WRITE_DOC:-1}
RESULTS=${RESULTS:-bench-peers-results.jsonl}
DOC=${DOC:-$here/docs/benchmarks.md}

# The peers, from Debian.
missing=()
command -v nats-server >/dev/null || missing+=(nats-server)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
if ((${#missing[@]})); then
  echo "bench-peers: installing ${missing[*]}"
  sudo=$([[ $(id -u) -eq 0 ]] || echo sudo)
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

source "$(dirname "$0")/lib/ports.sh"

# Polls `check` every 50 ms for at most 30 s.
wait_ready() {
  local what=$1
  shift
  for _ in $(seq 1 600); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.05 # readiness poll, bounded
  done
  echo "bench-peers: $what did not become ready; its log:" >&2
  cat "$work/$what.log" >&2 || true
  exit 1
}

# RapidMQ, with the shared launch protocol.
mkdir -p "$work/rapidmq"
"$BIN" serve --data-dir "$work/rapidmq" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --ready-file "$work/ready.json" >"$work/rapidmq.log" 2>&1 &
pids+=($!)
wait_ready rapidmq test -s "$work/ready.json"
rapid_grpc=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$work/ready.json")
rapid_http=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$work/ready.json")

# NATS with JetStream on a fresh store dir.
nats_port=$(free_port)
mkdir -p "$work/nats"
nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
pids+=($!)
nats_ready() { grep -q "Server is ready" "$work/nats.log" && bash -c "exec 3<>/dev/tcp/127.0.0.1/$nats_port"; }
wait_ready nats nats_ready

# Redis on a fresh dir; the driver sets the persistence tier per run with CONFIG SET.
redis_port=$(free_port)
mkdir -p "$work/redis"
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work/redis" --save "" \
  --appendonly no --protected-mode no --daemonize no --logfile "$work/redis.log" &
pids+=($!)
redis_ready() { [[ $(redis-cli -h 127.0.0.1 -p "$redis_port" PING) == PONG ]]; }
wait_ready redis redis_ready

url_of() {
  case $1 in
    rapidmq) echo "http://$rapid_grpc" ;;
    nats) echo "nats://127.0.0.1:$nats_port" ;;
    redis) echo "redis://127.0.0.1:$redis_port" ;;
  esac
}

# The machine.
cores=$(nproc)
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
mem=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')
disk=$(df -h --output=source,fstype,size "$work" | tail -1 | tr -s ' ')
dsync() { # bytes per write, writes → "X ms per write, Y MB/s"
  local out
  out=$(dd if=/dev/zero of="$work/dd" bs="$1" count="$2" oflag=dsync 2>&1 | tail -1)
  rm -f "$work/dd"
  python3 - "$out" "$2" <<'EOF'
import re, sys
line, n = sys.argv[1], int(sys.argv[2])
m = re.search(r"copied, ([\d.]+) s, ([\d.]+ \S+)", line)
print(f"{float(m.group(1)) / n * 1000:.2f} ms per write, {m.group(2)}" if m else line)
EOF
}
fsync_4k=$(dsync 4k 200)
fsync_1m=$(dsync 1M 50)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
echo "bench-peers: $cores cores, load $load_before; O_DSYNC 4 KiB: $fsync_4k; 1 MiB: $fsync_1m"

: >"$RESULTS"
run() { # system workload tier size [extra args]
  local system=$1 workload=$2 tier=$3 size=$4
  shift 4
  local extra=()
  [[ $system == rapidmq ]] && extra+=(--http "$rapid_http")
  echo "bench-peers: repeat $repeat $workload $tier ${size} B $system $*" >&2
  "$BENCH" run --system "$system" --url "$(url_of "$system")" "${extra[@]}" --workload "$workload" \
    --tier "$tier" --size "$size" --repeat "$repeat" "$@" | tee -a "$RESULTS" >/dev/null
}
has() { [[ " $WORKLOADS " == *" $1 "* ]]; }

for repeat in $(seq 1 "$REPEATS"); do
  for size in $SIZES; do
    # Systems alternate inside each cell, so each ratio compares neighbouring runs.
    if has latency; then
      for tier in memory persisted fsync; do
        for s in $SYSTEMS; do run "$s" latency "$tier" "$size" --count "$LATENCY_COUNT"; done
      done
    fi
    if has throughput; then
      for batch in 100 1000; do
        for tier in memory persisted fsync; do
          for s in $SYSTEMS; do run "$s" throughput "$tier" "$size" --batch "$batch" --count "$COUNT"; done
        done
      done
    fi
    if has fanout; then
      for s in $SYSTEMS; do
        run "$s" fanout persisted "$size" --batch 100 --consumers 10 --count "$FANOUT_COUNT"
      done
    fi
    if has replay; then
      for s in $SYSTEMS; do run "$s" replay persisted "$size" --batch 1000 --count "$REPLAY_COUNT"; done
    fi
    if has openloop; then
      for tier in persisted fsync; do
        for s in $SYSTEMS; do
          run "$s" openloop "$tier" "$size" --rate "$RATE" --duration "$OPENLOOP_SECS"
        done
      done
    fi
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
finished=$(date -u '+%H:%M UTC')

tables=$("$BENCH" render "$RESULTS")
failures=$(grep -c '"error":"' "$RESULTS" || true)
echo "$tables"
echo "bench-peers: $(wc -l <"$RESULTS") runs, $failures failed; records in $RESULTS"
if [[ ${STRICT:-0} == 1 && $failures != 0 ]]; then
  grep '"error":"' "$RESULTS" >&2
  echo "bench-peers: STRICT=1 and $failures run(s) failed" >&2
  exit 1
fi

if [[ $WRITE_DOC == 1 ]]; then
  rev=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
  nats_version=$(nats-server --version | head -1)
  redis_version=$(redis-server --version | head -1 | cut -d' ' -f1-3)
  section="$work/section.md"
  cat >"$section" <<EOF
<!-- peers:begin -->
<!-- Written by scripts/bench-peers.sh (make bench-peers); edits between these markers are replaced. -->
### Results: $started–$finished, commit $rev

- Machine: $cores cores ($cpu), $mem, data dirs on \`$disk\`; \`dd oflag=dsync\`: 4 KiB
  writes $fsync_4k; 1 MiB writes $fsync_1m.
- Load average (1/5/15 min): $load_before before, $load_after after; the last column gives each
  row's 1-minute load when its runs ended. **Figures taken under load from other work are not
  final.**
- Peers: $nats_version; $redis_version. RapidMQ broker: \`$(basename "$BIN")\` from \`make release\`.
- Counts: throughput $COUNT messages, latency $LATENCY_COUNT round trips, fan-out $FANOUT_COUNT
  messages to each of 10 consumers, replay $REPLAY_COUNT messages, open loop $RATE msgs/s for
  $OPENLOOP_SECS s; $REPEATS repeats. Cells are medians over the repeats; ±N% is half the
  spread (max − min) / median.

$tables
<!-- peers:end -->
EOF
  python3 - "$DOC" "$section" <<'EOF'
import sys
doc_path, section_path = sys.argv[1], sys.argv[2]
doc = open(doc_path).read()
section = open(section_path).read().rstrip("\n")
begin, end = "<!-- peers:begin -->", "<!-- peers:end -->"
if begin in doc and end in doc:
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc = head + section + tail
else:
    doc = doc.rstrip("\n") + "\n\n" + section + "\n"
open(doc_path, "w").write(doc)
EOF
  echo "bench-peers: rewrote the peers results in $DOC"
fi
