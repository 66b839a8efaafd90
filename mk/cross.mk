# Cross-language fidelity (tests/cross/run.sh): every SDK publishes the same fixture messages,
# then every SDK reads back what every SDK published and checks it byte for byte (keys with
# their presence, values, headers in order, offsets), and every SDK sends requests to every SDK's
# responder and checks the echoed replies. `make test` runs it after the SDK suites. It ends with
# the smoke of `make bench-sdks`: every SDK's throughput programs at 2,000 messages.
#
#   make test-cross   builds what each side needs (the Rust example, the Python venv, the Go
#                     native library, the Java jar in ~/.m2), then runs the check against
#                     $(DEBUG_BIN)

.PHONY: test-cross

test-cross: build go-native java
	$(CARGO) build -p rapidmq --example cross --example throughput
	sdk-python/test.sh --setup
	@$(GO_ENV) && $(JAVA_ENV) && RAPIDMQ_BIN=$(DEBUG_BIN) \
	  CROSS_RUST=$(CARGO_TARGET_DIR)/debug/examples/cross MVN_FLAGS="$(JAVA_MVN_FLAGS) -q" \
	  tests/cross/run.sh
	@echo "bench-sdks smoke: debug builds and 2,000 messages, so the figures below mean nothing"
	@$(GO_ENV) && $(JAVA_ENV) && MESSAGES=2000 MVN_FLAGS="$(JAVA_MVN_FLAGS) -q" \
	  scripts/bench-sdks.sh $(DEBUG_BIN) $(CARGO_TARGET_DIR)/debug/examples/throughput
