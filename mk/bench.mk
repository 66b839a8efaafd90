# make bench-peers: RapidMQ against NATS JetStream and Redis Streams on this machine, one load
# generator for all three (bench/, issue 11). Installs nats-server and redis-server with apt if
# missing, runs the matrix (10–15 minutes on 2 cores; QUICK=1 for a smoke run of a minute) and
# rewrites the peers results in docs/benchmarks.md. Not part of `make test`.
.PHONY: bench-peers
BENCH_PEERS_BIN := $(CARGO_TARGET_DIR)/release/rapidmq-bench

bench-peers: release
	RUSTFLAGS="$(RELEASE_RUSTFLAGS) $(RUSTFLAGS)" $(CARGO) build --release -p rapidmq-bench
	scripts/bench-peers.sh $(RELEASE_BIN) $(BENCH_PEERS_BIN)
