# make chaos: the chaos test (cli/tests/chaos.rs) with 100 kill -9 cycles instead of the 40 that
# `make test` runs, against the debug broker (CHAOS_BIN=$(RELEASE_BIN) after `make release` for
# the release one). Prints the seed, then a summary: cycles, messages, deliveries, violations and
# the duration. CHAOS_SEED=N replays a schedule; CHAOS_CYCLES=N changes the count. The result of
# a run is recorded in docs/durability.md ("Chaos testing").
.PHONY: chaos
CHAOS_CYCLES ?= 100
CHAOS_BIN ?= $(DEBUG_BIN)

chaos: build-deps
	$(CARGO) build -p rapidmq-cli
	RAPIDMQ_BIN=$(CHAOS_BIN) RAPIDMQ_CHAOS_CYCLES=$(CHAOS_CYCLES) \
	  $(if $(CHAOS_SEED),RAPIDMQ_CHAOS_SEED=$(CHAOS_SEED)) \
	  $(CARGO) test -p rapidmq-cli --test chaos -- --nocapture

# make link-faults: the link-fault test (cli/tests/link_faults.rs) with 300 s of random link
# faults (reset, blackhole, one-way cuts, delay, broker pauses) instead of the 30 s that `make test` runs.
# LINK_SEED=N replays a schedule; LINK_SECS=N changes the duration.
.PHONY: link-faults
LINK_SECS ?= 300

link-faults: build-deps
	$(CARGO) build -p rapidmq-cli
	RAPIDMQ_BIN=$(CHAOS_BIN) RAPIDMQ_LINK_SECS=$(LINK_SECS) \
	  $(if $(LINK_SEED),RAPIDMQ_LINK_SEED=$(LINK_SEED)) \
	  $(CARGO) test -p rapidmq-cli --test link_faults -- --nocapture

# make cluster-faults: the cluster fault test (cli/tests/cluster_faults.rs: three cluster-mode
# brokers, a proxy per node-to-node link, kills, pauses and cut links while clients create
# topics through random nodes) with 300 s of faults instead of the 20 s that `make test` runs.
# CLUSTER_FAULT_SEED=N replays a schedule; CLUSTER_FAULT_SECS=N changes the duration.
.PHONY: cluster-faults
CLUSTER_FAULT_SECS ?= 300

cluster-faults: build-deps
	$(CARGO) build -p rapidmq-cli
	RAPIDMQ_BIN=$(CHAOS_BIN) RAPIDMQ_CLUSTER_FAULT_SECS=$(CLUSTER_FAULT_SECS) \
	  $(if $(CLUSTER_FAULT_SEED),RAPIDMQ_CLUSTER_FAULT_SEED=$(CLUSTER_FAULT_SEED)) \
	  $(CARGO) test -p rapidmq-cli --test cluster_faults -- --nocapture

# make cluster-nemesis: the cluster nemesis run (cli/tests/cluster_nemesis.rs: three cluster-mode
# brokers with proxied peer links, a topic of 50 partitions with three replicas, producers, a
# stream and per-node queue consumers, and the history checker) with 300 s of kills, pauses and
# cut links instead of the 40 s over 12 partitions that `make test` runs. NEMESIS_SEED=N replays a
# schedule; NEMESIS_SECS=N and NEMESIS_PARTITIONS=N change the size. The result is recorded in
# docs/clustering.md ("Nemesis run").
.PHONY: cluster-nemesis
NEMESIS_SECS ?= 300
NEMESIS_PARTITIONS ?= 50

cluster-nemesis: build-deps
	$(CARGO) build -p rapidmq-cli
	RAPIDMQ_BIN=$(CHAOS_BIN) RAPIDMQ_NEMESIS_SECS=$(NEMESIS_SECS) \
	  RAPIDMQ_NEMESIS_PARTITIONS=$(NEMESIS_PARTITIONS) \
	  $(if $(NEMESIS_SEED),RAPIDMQ_NEMESIS_SEED=$(NEMESIS_SEED)) \
	  $(CARGO) test -p rapidmq-cli --test cluster_nemesis -- --nocapture

# make cluster-idle: the idle-partitions test (cli/tests/cluster_idle.rs: three cluster-mode
# brokers, topics totalling 1000 partitions with replication factor 3, then 600 s without
# traffic: no elections, Cluster.Raft RPCs per peer bounded by the heartbeat) instead of the
# 300 partitions for 20 s that `make test` runs. IDLE_PARTITIONS=N and IDLE_SECS=N change them.
# The result of a run is recorded in docs/clustering.md ("Many partitions").
.PHONY: cluster-idle
IDLE_PARTITIONS ?= 1000
IDLE_SECS ?= 600

cluster-idle: build-deps
	$(CARGO) build -p rapidmq-cli
	RAPIDMQ_BIN=$(CHAOS_BIN) RAPIDMQ_IDLE_PARTITIONS=$(IDLE_PARTITIONS) RAPIDMQ_IDLE_SECONDS=$(IDLE_SECS) \
	  $(CARGO) test -p rapidmq-cli --test cluster_idle -- --nocapture
