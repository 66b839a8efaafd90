#!/usr/bin/env bash
# The cost of TLS and authentication (docs/benchmarks.md "TLS and authentication (issue 16)",
# make bench-security): `rapidmq bench pub` (100 B messages, 1 partition, fsync, the bench's
# default batch of 1000) against a broker in four setups — plaintext, TLS, plaintext + --auth
# (the bootstrap admin's token), TLS + --auth — RUNS times, alternating, each run on a fresh
# broker with a fresh data dir on 127.0.0.1 ephemeral ports. Certificates come from
# `rapidmq tls dev-certs`, the token from `rapidmq token generate`. Prints every run, then the
# medians and each setup's cost against plaintext (ADR 0004's target: TLS + auth ≤ 10 % at
# batch 1000).
#
#   scripts/bench-security.sh path/to/release/rapidmq
#   RUNS=5 COUNT=1000000 BATCH=1000 DURABILITY=fsync   (the defaults)
set -euo pipefail
BUILT=${1:?usage: bench-security.sh path/to/release/rapidmq}
RUNS=${RUNS:-5}
COUNT=${COUNT:-1000000}
BATCH=${BATCH:-1000}
DURABILITY=${DURABILITY:-fsync}
source "$(dirname "$0")/lib/broker.sh"

pki=$(mktemp -d)
results="$pki/results.jsonl"
cleanup() { rm -rf "$pki"; }
trap cleanup EXIT
# A copy, so that a rebuild of the target dir during the run cannot change what is measured.
BIN="$pki/rapidmq"
cp "$BUILT" "$BIN"
"$BIN" tls dev-certs --out "$pki/certs" >/dev/null
token=$("$BIN" token generate)
setups=(plain tls auth tls+auth)

run_setup() { # setup round
  local setup=$1 round=$2 serve=() client=() report
  case $setup in tls | tls+auth)
    serve+=(--tls-cert-file "$pki/certs/server.pem" --tls-key-file "$pki/certs/server.key")
    client+=(--tls-ca "$pki/certs/ca.pem") ;;
  esac
  case $setup in auth | tls+auth)
    serve+=(--auth)
    client+=(--token "$token") ;;
  esac
  if [[ $setup == *auth ]]; then
    RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN=$token start_broker "$BIN" "${serve[@]}"
  else
    start_broker "$BIN" "${serve[@]}"
  fi
  trap 'stop_broker; cleanup' EXIT
  if [[ $setup == tls* ]]; then server=${server/#http:/https:}; fi
  report=$(env -u RAPIDMQ_TOKEN -u RAPIDMQ_TLS_CERT -u RAPIDMQ_TLS_KEY -u RAPIDMQ_TLS_SERVER_NAME \
    "$BIN" --server "$server" "${client[@]}" bench pub \
    --count "$COUNT" --size 100 --batch "$BATCH" --durability "$DURABILITY" --json)
  stop_broker
  trap cleanup EXIT
  python3 -c '
import json, sys
r = json.loads(sys.argv[3]); p = r["phases"][0]; l = p["latency"]
print(json.dumps({"setup": sys.argv[1], "round": int(sys.argv[2]), "messages": p["messages"],
                  "msgs_per_sec": p["msgs_per_sec"], "p50_ms": l["p50_ms"], "p99_ms": l["p99_ms"]}))
' "$setup" "$round" "$report" | tee -a "$results"
}

echo "bench-security: $BUILT ($(sha256sum "$BIN" | cut -c1-12)), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
echo "pub: $COUNT x 100 B, batch $BATCH, 1 partition, $DURABILITY, $RUNS runs per setup, alternating"
for round in $(seq 1 "$RUNS"); do
  # Rotate the order each round so no setup always runs first or last.
  for i in 0 1 2 3; do
    run_setup "${setups[$(((i + round - 1) % 4))]}" "$round"
  done
done
echo "done: load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"

python3 - "$results" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
order = ["plain", "tls", "auth", "tls+auth"]
med = lambda setup, key: statistics.median(r[key] for r in runs if r["setup"] == setup)
base = med("plain", "msgs_per_sec")
print()
print("| setup | runs | median msgs/s | min–max msgs/s | vs plaintext | median p50 ms | median p99 ms |")
print("|---|---|---|---|---|---|---|")
for s in order:
    rates = [r["msgs_per_sec"] for r in runs if r["setup"] == s]
    rate = statistics.median(rates)
    print(f"| {s} | {len(rates)} | {rate:,.0f} | {min(rates):,.0f}–{max(rates):,.0f} "
          f"| {100 * (rate / base - 1):+.1f} % | {med(s, 'p50_ms'):.2f} | {med(s, 'p99_ms'):.2f} |")
cost = 100 * (1 - med("tls+auth", "msgs_per_sec") / base)
print(f"\nTLS + auth costs {cost:.1f} % of plaintext throughput (target ≤ 10 %): "
      + ("met" if cost <= 10 else f"missed by {cost - 10:.1f} points"))
PY
