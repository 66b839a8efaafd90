# make bench-peers: RapidMQ against NATS JetStream and Redis Streams on this machine, one load
# generator for all three (bench/, issue 11). Installs nats-server and redis-server with apt if
# missing, runs the matrix (10–15 minutes on 2 cores; QUICK=1 for a smoke run of a minute) and
# rewrites the peers results in docs/benchmarks.md. Not part of `make test`; its smoke run is
# (test-bench-smoke: every workload against every system at tiny counts, debug builds, about
# 15 s, the docs left alone, failing when any run fails), so the drivers don't rot. The same
# target smokes scripts/bench-cluster.sh (QUICK=1: one node and a 3-node cluster, one run of
# 20,000 messages each on one partition, debug build, 6–25 s with the load) and
# scripts/bench-moves.sh (QUICK=1: 4 partitions of 20 MB, one rebalance onto a fourth node,
# about 10 s).
.PHONY: bench-peers
BENCH_PEERS_BIN := $(CARGO_TARGET_DIR)/release/rapidmq-bench

bench-peers: release
	RUSTFLAGS="$(RELEASE_RUSTFLAGS) $(RUSTFLAGS)" $(CARGO) build --release -p rapidmq-bench
	scripts/bench-peers.sh $(RELEASE_BIN) $(BENCH_PEERS_BIN)

.PHONY: test-bench-smoke
SDK_TESTS += test-bench-smoke

test-bench-smoke: build
	$(CARGO) build -p rapidmq-bench
	QUICK=1 SIZES=100 STRICT=1 RESULTS=$(CARGO_TARGET_DIR)/bench-smoke.jsonl \
	  scripts/bench-peers.sh $(DEBUG_BIN) $(CARGO_TARGET_DIR)/debug/rapidmq-bench
	QUICK=1 scripts/bench-cluster.sh $(DEBUG_BIN)
	QUICK=1 scripts/bench-moves.sh $(DEBUG_BIN)

# make bench-security: what TLS and --auth cost on the publish path (docs/benchmarks.md "TLS and
# authentication (issue 16)"): builds the release binary, then runs `rapidmq bench pub` against
# plaintext, TLS, auth and TLS + auth brokers, RUNS times alternating (5 by default, about two
# minutes), and prints the table. Not part of `make test`; the bench against a TLS + auth broker
# is (cli/tests/tls.rs, a few thousand messages on the debug build).
.PHONY: bench-security
bench-security: release
	scripts/bench-security.sh $(RELEASE_BIN)

# make bench-cluster: what replication costs on the publish path (docs/benchmarks.md "Cluster:
# 3 nodes, RF 3, against one node"; issue 17's target: ≥ 50 % of one node's fsync throughput at
# batch 1000). Builds the release binary, then runs `rapidmq bench pub` against one node and a
# 3-node RF 3 cluster on this machine, alternating, RUNS times (3 by default) for 1 and 3
# partitions, and prints the table (about ten minutes on 2 cores).
.PHONY: bench-cluster
bench-cluster: release
	scripts/bench-cluster.sh $(RELEASE_BIN)

# make bench-moves: how long moving partition replicas takes and what it costs a publisher
# meanwhile (docs/benchmarks.md "Moving replicas"). Builds the release binary, then for each
# cluster.max_concurrent_moves in SLOTS (1, 4, no limit) fills a 3-node cluster's topic,
# adds a fourth node and times `cluster rebalance` (a few minutes on 2 cores).
.PHONY: bench-moves
bench-moves: release
	scripts/bench-moves.sh $(RELEASE_BIN)

# make bench-sdks: every SDK's producer and consumer against one release broker, in one run, as
# ratios of the Rust SDK's (docs/benchmarks.md "SDKs side by side", issue 18). Builds the release
# broker, the Rust example, the Go native library and the Java jar in release (the Python
# extension is always built in release), then runs scripts/bench-sdks.sh (1,000,000 messages per
# SDK and phase; MESSAGES=… to change). Not part of `make test`; test-cross runs it at 2,000
# messages on the debug builds, as its smoke.
.PHONY: bench-sdks
bench-sdks: release java-deps
	$(MAKE) go-native GO_NATIVE_PROFILE=release
	$(CARGO) build --release -p rapidmq --example throughput
	sdk-python/test.sh --setup
	@$(JAVA_ENV) && RAPIDMQ_CARGO_PROFILE=release mvn $(JAVA_MVN_FLAGS) -q -f sdk-java/pom.xml install -DskipTests
	@$(GO_ENV) && $(JAVA_ENV) && MVN_FLAGS="$(JAVA_MVN_FLAGS) -q" RESULTS=$(CARGO_TARGET_DIR)/bench-sdks.jsonl \
	  scripts/bench-sdks.sh $(RELEASE_BIN) $(CARGO_TARGET_DIR)/release/examples/throughput
