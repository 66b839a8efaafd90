# Sourced by the benchmark scripts: starts a broker on free ports with a fresh data dir under a
# temporary work dir (the shared launch protocol: --ready-file, polled with a bound), and stops
# it and removes the work dir on exit. Sets `work`, `pid` and `server` (http://host:port).
# Arguments after the binary go to `rapidmq serve` (e.g. --auth, --tls-cert-file …); a script
# that starts several brokers one after the other calls stop_broker between them.
#
#   source "$(dirname "$0")/lib/broker.sh"; start_broker path/to/rapidmq [serve args…]
start_broker() {
  local bin=$1
  shift
  work=$(mktemp -d)
  "$bin" serve --data-dir "$work/data" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --ready-file "$work/ready.json" "$@" >"$work/broker.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
  for _ in $(seq 1 600); do
    [[ -f "$work/ready.json" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/broker.log" >&2; return 1; }
    sleep 0.05 # readiness poll of the ready file, bounded to 30 s
  done
  [[ -f "$work/ready.json" ]] || { echo "broker not ready after 30 s" >&2; return 1; }
  server="http://$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$work/ready.json")"
}

# Stops the broker start_broker started and removes its work dir.
stop_broker() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
  trap - EXIT
}
