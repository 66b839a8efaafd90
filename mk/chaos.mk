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
