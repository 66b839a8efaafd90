#!/usr/bin/env bash
# The queue-mode benchmark (docs/benchmarks.md): starts a broker on free ports with a fresh data
# dir, then runs `rapidmq bench queue` (100 B messages on one partition, consumers ack every
# delivery) for 1, 4 and 16 competing consumers flat out, with acks in the client core's
# batches and with each ack sent on its own (--ack-each), and for 4 consumers at a fixed
# 10k msgs/s offered load (end-to-end latency). Prints the tables.
#
#   scripts/bench-queue.sh path/to/release/rapidmq
set -euo pipefail
BIN=${1:?usage: bench-queue.sh path/to/release/rapidmq}
COUNT=${COUNT:-200000}
source "$(dirname "$0")/lib/broker.sh"
start_broker "$BIN"
for consumers in 1 4 16; do
  echo "== queue, $consumers consumers, $COUNT messages, flat out"
  "$BIN" bench queue --server "$server" --consumers "$consumers" --count "$COUNT" --size 100
done
for consumers in 1 4 16; do
  echo "== queue, $consumers consumers, $((COUNT / 4)) messages, flat out, each ack sent on its own"
  "$BIN" bench queue --server "$server" --consumers "$consumers" --count "$((COUNT / 4))" --size 100 --ack-each
done
echo "== queue, 4 consumers, 10k msgs/s offered for 10 s"
"$BIN" bench queue --server "$server" --consumers 4 --rate 10000 --duration 10s --size 100
