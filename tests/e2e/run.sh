#!/usr/bin/env bash
# End-to-end checks of the built binary, as a user would run it: start `rapidmq serve` on free
# ports with a fresh data dir, wait for its ready file, then use generic tools against it.
set -euo pipefail
BIN=${RAPIDMQ_BIN:?set RAPIDMQ_BIN to the rapidmq binary}
work=$(mktemp -d)
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
passed=0
failed=0
check() { # name, command...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; passed=$((passed + 1)); else echo "FAIL $name"; failed=$((failed + 1)); fi
}

"$BIN" serve --data-dir "$work/data" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --ready-file "$work/ready.json" >"$work/broker.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [[ -f "$work/ready.json" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/broker.log"; echo "broker exited early"; exit 1; }
  sleep 0.05 # readiness poll of the ready file, bounded to 30 s
done
[[ -f "$work/ready.json" ]] || { cat "$work/broker.log"; echo "broker not ready"; exit 1; }
grpc=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$work/ready.json")
http=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$work/ready.json")

services=$(grpcurl -plaintext "$grpc" list)
check "reflection lists rapidmq.v1.Messaging" grep -qx rapidmq.v1.Messaging <<<"$services"
check "reflection lists rapidmq.v1.Admin" grep -qx rapidmq.v1.Admin <<<"$services"
check "reflection describes Publish" bash -c "grpcurl -plaintext '$grpc' describe rapidmq.v1.Messaging | grep -q 'rpc Publish'"
check "grpcurl creates a topic" bash -c "grpcurl -plaintext -d '{\"name\":\"e2e\",\"config\":{\"partitions\":3}}' '$grpc' rapidmq.v1.Admin/CreateTopic | grep -q '\"name\": \"e2e\"'"
check "unknown topic carries its code" bash -c "grpcurl -plaintext -v -d '{\"name\":\"missing\"}' '$grpc' rapidmq.v1.Admin/DescribeTopic 2>&1 | grep -q 'rapidmq-error-name: TOPIC_NOT_FOUND'"
check "healthz answers" bash -c "curl -fsS 'http://$http/healthz' | grep -q ok"
check "readyz answers" bash -c "curl -fsS 'http://$http/readyz' | grep -q ready"
kill -TERM "$pid"
if wait "$pid"; then echo "ok   SIGTERM stops it cleanly"; passed=$((passed + 1)); else echo "FAIL SIGTERM stops it cleanly"; failed=$((failed + 1)); fi
pid=""

echo "$passed passed, $failed failed"
((failed == 0))
