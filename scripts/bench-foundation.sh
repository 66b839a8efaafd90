#!/usr/bin/env bash
# The foundation benchmark (docs/benchmarks.md): starts a release broker on free ports with a
# fresh data dir, then runs `rapidmq bench-grpc` for fsync and buffered durability and for 64
# unbatched producers. Prints the tables.
set -euo pipefail
BIN=${1:?usage: bench-foundation.sh path/to/release/rapidmq}
MESSAGES=${MESSAGES:-1000000}
work=$(mktemp -d)
"$BIN" serve --data-dir "$work/data" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --ready-file "$work/ready.json" >"$work/broker.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 600); do
  [[ -f "$work/ready.json" ]] && break
  sleep 0.05 # readiness poll of the ready file, bounded to 30 s
done
grpc=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$work/ready.json")
server="http://$grpc"
echo "== batch 1000, fsync"
"$BIN" bench-grpc --server "$server" --messages "$MESSAGES" --size 100 --batch 1000 --durability fsync
echo "== batch 1000, buffered"
"$BIN" bench-grpc --server "$server" --messages "$MESSAGES" --size 100 --batch 1000 --durability buffered
echo "== 64 producers, batch 1 (one message per request), fsync"
"$BIN" bench-grpc --server "$server" --messages 200000 --size 100 --batch 1 --producers 64 --inflight 1 --durability fsync --no-consume
