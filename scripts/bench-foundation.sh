#!/usr/bin/env bash
# The foundation benchmark (docs/benchmarks.md): starts a release broker on free ports with a
# fresh data dir, then runs `rapidmq bench-grpc` for fsync and buffered durability and for 64
# unbatched producers. Prints the tables.
set -euo pipefail
BIN=${1:?usage: bench-foundation.sh path/to/release/rapidmq}
MESSAGES=${MESSAGES:-1000000}
source "$(dirname "$0")/lib/broker.sh"
start_broker "$BIN"
echo "== batch 1000, fsync"
"$BIN" bench-grpc --server "$server" --messages "$MESSAGES" --size 100 --batch 1000 --durability fsync
echo "== batch 1000, buffered"
"$BIN" bench-grpc --server "$server" --messages "$MESSAGES" --size 100 --batch 1000 --durability buffered
echo "== 64 producers, batch 1 (one message per request), fsync"
"$BIN" bench-grpc --server "$server" --messages 200000 --size 100 --batch 1 --producers 64 --inflight 1 --durability fsync --no-consume
