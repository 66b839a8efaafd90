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
  pid=
  trap stop_broker EXIT
  serve_in "$work" "$bin" "$@"
}

# Stops the broker start_broker started and removes its work dir. Also its EXIT trap, so every
# step tolerates a broker that already exited (errexit holds in traps too).
stop_broker() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
  trap - EXIT
}

# Starts `rapidmq serve` in the background with its data, log and ready file in DIR, client
# listeners on free ports, and waits for the ready file (at most 30 s). Sets `pid` and `server`;
# stopping it is the caller's (start_broker's trap, or a script's own for several brokers at
# once, as bench-cluster.sh runs a cluster beside a single node).
#
#   serve_in DIR path/to/rapidmq [serve args…]
serve_in() {
  local dir=$1 bin=$2
  shift 2
  "$bin" serve --data-dir "$dir/data" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --ready-file "$dir/ready.json" "$@" >"$dir/broker.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    [[ -f "$dir/ready.json" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/broker.log" >&2; return 1; }
    sleep 0.05 # readiness poll of the ready file, bounded to 30 s
  done
  [[ -f "$dir/ready.json" ]] || { echo "broker not ready after 30 s" >&2; return 1; }
  server="http://$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$dir/ready.json")"
}

# Stops every broker whose pid is in the array `pids` (serve_in's, collected by a script that
# runs several at once) and empties it; brokers that already exited are skipped.
stop_brokers() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}

# The set-up of a script that runs several brokers from one binary: a work dir `root` removed on
# exit (Ctrl-C included) with every broker in `pids` stopped, `results` (a JSON-lines file in
# it), and `BIN`, a copy of BUILT, so that a rebuild of the target dir during the run cannot
# change what is measured.
#
#   bench_setup path/to/rapidmq
bench_setup() {
  root=$(mktemp -d)
  pids=()
  trap 'stop_brokers; rm -rf "$root"' EXIT
  trap 'exit 130' INT TERM
  results="$root/results.jsonl"
  BIN="$root/rapidmq"
  cp "$1" "$BIN"
}
