#!/usr/bin/env bash
# Fuzzes the REST API from its own OpenAPI document with schemathesis, against a real broker,
# with every check on (`--checks all`): no 5xx; every response matches the document (status,
# content type, headers, schema); every request the document allows is accepted and every
# request it forbids is refused (positive and negative data); undocumented methods get 405 with
# `Allow`; a created resource can be read and a deleted one is gone.
#
# Usage: RAPIDMQ_BIN=target/debug/rapidmq tests/e2e/schemathesis.sh
# Budget: SCHEMATHESIS_MAX_EXAMPLES per operation (default 60), and SCHEMATHESIS_TIME_LIMIT
# seconds for the whole run (default 180), SCHEMATHESIS_SEED (fixed by default, so a failure
# reproduces). The venv lives in ${RAPIDMQ_VENV:-.venv-e2e}.
set -euo pipefail
BIN=${RAPIDMQ_BIN:?set RAPIDMQ_BIN to the rapidmq binary}
VENV=${RAPIDMQ_VENV:-.venv-e2e}
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-60}
TIME_LIMIT=${SCHEMATHESIS_TIME_LIMIT:-180}
SCHEMATHESIS_VERSION=${SCHEMATHESIS_VERSION:-4.32.5}

if [[ ! -x "$VENV/bin/schemathesis" ]] || ! "$VENV/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

work=$(mktemp -d)
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Long-polls wait at most half of http.request_timeout_ms (docs/rest.md): 4 s here caps every
# generated `wait_ms` (the document allows up to 30000) at 2 s, so no check is turned off for it.
RAPIDMQ_HTTP__REQUEST_TIMEOUT_MS=4000 \
  "$BIN" serve --data-dir "$work/data" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --ready-file "$work/ready.json" >"$work/broker.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [[ -f "$work/ready.json" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/broker.log"; echo "broker exited early"; exit 1; }
  sleep 0.05 # readiness poll of the ready file, bounded to 30 s
done
[[ -f "$work/ready.json" ]] || { cat "$work/broker.log"; echo "broker not ready"; exit 1; }
http=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$work/ready.json")
base="http://$http"

# Seed data so that generated requests also reach existing topics and subscriptions.
curl -fsS -X POST "$base/v1/topics" -H 'content-type: application/json' \
  -d '{"name":"fuzz","config":{"partitions":2}}' >/dev/null
curl -fsS -X POST "$base/v1/topics/fuzz/subscriptions" -H 'content-type: application/json' \
  -d '{"name":"s","start":{"kind":"earliest"}}' >/dev/null
curl -fsS -X POST "$base/v1/topics/fuzz/subscriptions" -H 'content-type: application/json' \
  -d '{"name":"q","mode":"queue"}' >/dev/null

status=0
# The SSE operation streams until the client leaves, and the WebSocket one answers a request
# without upgrade headers with 400 (and one with them by switching protocols, which an HTTP
# fuzzer cannot follow): both are left out, the Rust suite covers them.
# `positive_data_acceptance` is replaced by the hook's variant of it, which lets a
# schema-valid request be refused only with the state-dependent codes it lists (see the hook).
SCHEMATHESIS_HOOKS="$(dirname "$0")/schemathesis_hooks.py" \
timeout --signal=INT "$((TIME_LIMIT + 60))" "$VENV/bin/schemathesis" run "$base/v1/openapi.json" \
  --url "$base" \
  --checks all \
  --exclude-checks positive_data_acceptance \
  --max-examples "$MAX_EXAMPLES" \
  --exclude-path-regex '/(events|ws)$' \
  --request-timeout 10 \
  --max-time "$TIME_LIMIT" \
  --max-failures 20 \
  --seed "${SCHEMATHESIS_SEED:-20261127}" \
  || status=$?
if grep -q '"level":"ERROR"\|panicked' "$work/broker.log"; then
  echo "the broker logged errors or panicked:"; grep '"level":"ERROR"\|panicked' "$work/broker.log" | head -20
  status=1
fi
exit "$status"
