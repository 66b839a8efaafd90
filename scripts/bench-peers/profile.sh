#!/usr/bin/env bash
# Profiles the RapidMQ broker on the fsync publish path (issue 11): starts a broker on free ports
# with a fresh data dir, records it with `perf record` while `rapidmq-bench` runs one workload,
# and prints the top frames by self time.
#
#   scripts/bench-peers/profile.sh path/to/release/rapidmq path/to/rapidmq-bench [bench run args]
#
# Default workload: throughput, fsync, 100 B, batch 1000, 2M messages. Environment: FREQ (perf
# sampling Hz, default 999), TOP (frames to print, default 25), PERF_DATA (where to keep the
# recording; default a temp file that is removed).
set -euo pipefail
BIN=$(realpath "${1:?usage: profile.sh rapidmq rapidmq-bench [run args]}")
BENCH=$(realpath "${2:?usage: profile.sh rapidmq rapidmq-bench [run args]}")
shift 2
args=("$@")
((${#args[@]})) || args=(--workload throughput --tier fsync --size 100 --batch 1000 --count 2000000)
FREQ=${FREQ:-999}
TOP=${TOP:-25}
command -v perf >/dev/null || { echo "profile.sh: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }

work=$(mktemp -d)
PERF_DATA=${PERF_DATA:-$work/perf.data}
"$BIN" serve --data-dir "$work/data" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --ready-file "$work/ready.json" >"$work/broker.log" 2>&1 &
broker=$!
perf_pid=
cleanup() {
  [[ -n $perf_pid ]] && kill -INT "$perf_pid" 2>/dev/null && wait "$perf_pid" 2>/dev/null
  kill "$broker" 2>/dev/null || true
  wait "$broker" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 600); do
  [[ -s $work/ready.json ]] && break
  sleep 0.05 # readiness poll of the ready file, bounded to 30 s
done
[[ -s $work/ready.json ]] || { cat "$work/broker.log" >&2; exit 1; }
grpc=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$work/ready.json")
http=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$work/ready.json")

perf record -F "$FREQ" -g -p "$broker" -o "$PERF_DATA" 2>"$work/perf.log" &
perf_pid=$!
"$BENCH" run --system rapidmq --url "http://$grpc" --http "$http" "${args[@]}"
kill -INT "$perf_pid"
wait "$perf_pid" || true
perf_pid=
set +o pipefail # head closes the pipes early
echo "== broker fsync metrics"
(python3 - "$http" <<'PY'
import sys, urllib.request
try:
    text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=10).read().decode()
except Exception as e:
    sys.exit(f"no fsync metrics: GET /metrics: {e}")
lines = [l for l in text.splitlines() if l.startswith("rapidmq_fsync")]
count = next((float(l.split()[-1]) for l in lines if l.startswith("rapidmq_fsync_latency_seconds_count")), 0)
total = next((float(l.split()[-1]) for l in lines if l.startswith("rapidmq_fsync_latency_seconds_sum")), 0)
print(f"fsyncs {count:.0f}, mean fsync {total / count * 1000:.2f} ms" if count else "no fsync latency metric")
for l in lines:
    if "_bucket" in l:
        print(" ", l)
PY
) || true
echo "== top $TOP frames by self time (broker process, load $(cut -d' ' -f1-3 /proc/loadavg))"
perf report -i "$PERF_DATA" --no-children --sort symbol --stdio 2>/dev/null |
  grep -E '^ +[0-9.]+%' | head -n "$TOP"
echo "== samples: $(perf report -i "$PERF_DATA" --stdio 2>/dev/null | sed -n 's/^# Samples: //p' | head -1)"
echo "== by thread"
perf report -i "$PERF_DATA" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -n 10
