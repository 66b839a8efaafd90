#!/usr/bin/env bash
# Go vs Rust SDK throughput for 100 B messages against one broker (make bench-go):
#   bench-go.sh <rapidmq binary> <sdk-rust throughput example> [messages]
# Starts the broker on ephemeral ports with a temporary data directory (the shared launch
# protocol), runs the Go program (sdk-go/cmd/throughput: publish then consume), the Rust SDK
# producer (sdk-rust/examples/throughput.rs publish) and the Rust SDK consumer (rapidmq bench
# sub, which consumes through the SDK), then stops the broker.
set -euo pipefail
cd "$(dirname "$0")/.."
broker=$(realpath "$1"); rust_throughput=$(realpath "$2"); messages=${3:-1000000}
dir=$(mktemp -d); trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
"$broker" serve --data-dir "$dir/data" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --ready-file "$dir/ready.json" >"$dir/broker.log" 2>&1 &
pid=$!
for _ in $(seq 600); do [[ -s "$dir/ready.json" ]] && break; kill -0 "$pid"; sleep 0.1; done
grpc=$(sed -n 's/.*"grpc" *: *"\([^"]*\)".*/\1/p' "$dir/ready.json")
endpoint="http://$grpc"
echo "broker $broker at $endpoint; load: $(cut -d' ' -f1-3 /proc/loadavg)"
(cd sdk-go && go run ./cmd/throughput -endpoint "$endpoint" -messages "$messages" -size 100)
RAPIDMQ_ENDPOINT="$endpoint" "$rust_throughput" publish "$messages" 100
"$broker" bench sub --server "$endpoint" --count "$messages" --size 100
