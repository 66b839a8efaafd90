#!/usr/bin/env bash
# Fuzzes the REST API from its own OpenAPI document with schemathesis, against a real broker,
# with every check on (`--checks all`): no 5xx; every response matches the document (status,
# content type, headers, schema); every request the document allows is accepted and every
# request it forbids is refused (positive and negative data); undocumented methods get 405 with
# `Allow`; a created resource can be read and a deleted one is gone. That run is against a
# broker with auth off (the stateful phase follows the document's links, so with auth on it would
# delete the user or revoke the token it runs with); a second, shorter run against a broker with
# `--auth` checks that every operation but the login refuses missing or invalid credentials
# (`ignored_auth`, the document declares bearer and cookie auth) and accepts the admin's token.
#
# Usage: RAPIDMQ_BIN=target/debug/rapidmq tests/e2e/schemathesis.sh
# Budget: SCHEMATHESIS_MAX_EXAMPLES per operation (default 60), and SCHEMATHESIS_TIME_LIMIT
# seconds for the run with auth off (default 180) and SCHEMATHESIS_AUTH_TIME_LIMIT for the one with
# auth on (default 60), SCHEMATHESIS_SEED (fixed by default, so a failure
# reproduces). The venv lives in ${RAPIDMQ_VENV:-.venv-e2e}.
set -euo pipefail
BIN=${RAPIDMQ_BIN:?set RAPIDMQ_BIN to the rapidmq binary}
VENV=${RAPIDMQ_VENV:-.venv-e2e}
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-60}
TIME_LIMIT=${SCHEMATHESIS_TIME_LIMIT:-180}
AUTH_TIME_LIMIT=${SCHEMATHESIS_AUTH_TIME_LIMIT:-60}
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

# Starts a broker in "$work/$1" with the remaining arguments and sets $base to its HTTP URL.
start_broker() {
  local dir="$work/$1"
  shift
  mkdir -p "$dir"
  # Long-polls wait at most half of http.request_timeout_ms (docs/rest.md): 4 s here caps every
  # generated `wait_ms` (the document allows up to 30000) at 2 s, so no check is turned off for it.
  RAPIDMQ_HTTP__REQUEST_TIMEOUT_MS=4000 \
    "$BIN" serve "$@" --data-dir "$dir/data" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --ready-file "$dir/ready.json" >"$dir/broker.log" 2>&1 &
  pid=$!
  log="$dir/broker.log"
  for _ in $(seq 1 600); do
    [[ -f "$dir/ready.json" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "broker exited early"; exit 1; }
    sleep 0.05 # readiness poll of the ready file, bounded to 30 s
  done
  [[ -f "$dir/ready.json" ]] || { cat "$log"; echo "broker not ready"; exit 1; }
  base="http://$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$dir/ready.json")"
}

stop_broker() {
  kill "$pid" && wait "$pid" 2>/dev/null || true
  pid=""
  if grep -q '"level":"ERROR"\|panicked' "$log"; then
    echo "the broker logged errors or panicked:"; grep '"level":"ERROR"\|panicked' "$log" | head -20
    status=1
  fi
}

# Seeds data so that generated requests also reach existing topics and subscriptions.
seed() {
  local h=(-H 'content-type: application/json' "$@")
  curl -fsS -X POST "$base/v1/topics" "${h[@]}" -d '{"name":"fuzz","config":{"partitions":2}}' >/dev/null
  curl -fsS -X POST "$base/v1/topics/fuzz/subscriptions" "${h[@]}" \
    -d '{"name":"s","start":{"kind":"earliest"}}' >/dev/null
  curl -fsS -X POST "$base/v1/topics/fuzz/subscriptions" "${h[@]}" -d '{"name":"q","mode":"queue"}' >/dev/null
}

# The SSE operation streams until the client leaves, and the WebSocket one answers a request
# without upgrade headers with 400 (and one with them by switching protocols, which an HTTP
# fuzzer cannot follow): both are left out, the Rust suite covers them.
fuzz() {
  SCHEMATHESIS_HOOKS="$(dirname "$0")/schemathesis_hooks.py" \
  timeout --signal=INT "$((TIME_LIMIT + 60))" "$VENV/bin/schemathesis" run "$base/v1/openapi.json" \
    --url "$base" \
    --max-examples "$MAX_EXAMPLES" \
    --exclude-path-regex '/(events|ws)$' \
    --request-timeout 10 \
    --max-failures 20 \
    --seed "${SCHEMATHESIS_SEED:-20261127}" \
    "$@" \
    || status=$?
}

status=0
# Auth off: everything but the auth check. `positive_data_acceptance` is replaced by the hook's
# variant of it, which lets a schema-valid request be refused only with the state-dependent
# codes it lists (see the hook).
start_broker open
seed
fuzz --checks all --exclude-checks positive_data_acceptance,ignored_auth --max-time "$TIME_LIMIT"
stop_broker

# Auth on: credentials are checked on every operation, and the admin's token is accepted.
token=$("$BIN" token generate)
RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN="$token" start_broker auth --auth
seed -H "Authorization: Bearer $token"
fuzz --header "Authorization: Bearer $token" --phases examples,coverage,fuzzing \
  --checks ignored_auth,not_a_server_error --max-time "$AUTH_TIME_LIMIT"
stop_broker
exit "$status"
