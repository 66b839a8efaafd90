# RapidMQ: the two commands a new user needs are `make run` and `make test`.
#
#   make run    build the release binary and start one broker on the defaults (./data,
#               gRPC 127.0.0.1:7420, HTTP 127.0.0.1:7421)
#   make test   install what is missing, then run every suite
#
# CARGO_TARGET_DIR may point at a shared cache (CI does); everything below follows it.

SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target
TOOLS := $(CURDIR)/.tools
export PATH := $(TOOLS)/bin:$(PATH)

# RocksDB compiles its hardware CRC32C only when rustc targets SSE4.2/PCLMUL; the software CRC
# was the top cost in the broker's profile (docs/benchmarks.md). x86-64 release builds enable it.
ifeq ($(shell uname -m),x86_64)
RELEASE_RUSTFLAGS ?= -C target-feature=+sse4.2,+pclmulqdq,+popcnt
endif

DEBUG_BIN := $(CARGO_TARGET_DIR)/debug/rapidmq
RELEASE_BIN := $(CARGO_TARGET_DIR)/release/rapidmq

.PHONY: run build release deps build-deps test lint test-rust test-python test-e2e bench fmt

run: release
	$(RELEASE_BIN) serve --data-dir ./data

release: build-deps
	@echo "make: building the release broker (the first build compiles RocksDB: about 15 minutes on 2 cores)"
	RUSTFLAGS="$(RELEASE_RUSTFLAGS) $(RUSTFLAGS)" $(CARGO) build --release -p rapidmq-cli

build: deps
	$(CARGO) build -p rapidmq-cli

deps:
	@scripts/install-deps.sh

# Only what compiling the broker needs (libclang for RocksDB's bindgen, cmake, a C++ compiler).
build-deps:
	@scripts/install-deps.sh --build

# Each SDK beyond Rust and Python brings its own fragment (mk/<sdk>.mk) that defines its test
# target and appends it to SDK_TESTS.
SDK_TESTS :=
-include mk/*.mk

test: deps lint test-rust test-python $(SDK_TESTS) test-cross test-e2e
	@echo "make test: every suite passed"

lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@# Every public operation of the client core in every SDK (tests/drift/check.py).
	python3 tests/drift/check.py
	@# One TLS crypto provider, ring (docs/adr/0004-security.md §1): with aws-lc-rs also built,
	@# rustls' builder() panics unless a provider is installed process-wide.
	@if $(CARGO) tree --workspace -i aws-lc-sys >/dev/null 2>&1; then \
		echo "aws-lc-sys is in the dependency tree; keep rustls, tonic, reqwest and rcgen on ring:"; \
		$(CARGO) tree --workspace -i aws-lc-sys; exit 1; fi

# The integration tests start the debug binary through rapidmq-testkit.
test-rust: build
	RAPIDMQ_BIN=$(DEBUG_BIN) $(CARGO) test --workspace

# The Python SDK: builds the extension into sdk-python/.venv and runs pytest against real brokers.
test-python: build
	RAPIDMQ_BIN=$(DEBUG_BIN) sdk-python/test.sh

# The built binary as a user runs it (grpcurl through reflection), then schemathesis fuzzing the
# REST API from its OpenAPI document (fixed seed, about three minutes).
test-e2e: build
	RAPIDMQ_BIN=$(DEBUG_BIN) tests/e2e/run.sh
	RAPIDMQ_BIN=$(DEBUG_BIN) tests/e2e/schemathesis.sh

bench: release
	scripts/bench-foundation.sh $(RELEASE_BIN)

fmt:
	$(CARGO) fmt --all
