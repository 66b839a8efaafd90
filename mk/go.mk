# The Go SDK (sdk-go, module github.com/rapidmq/rapidmq/sdk-go): cgo over the C ABI of the
# client core (ffi, crate rapidmq-ffi, header ffi/include/rapidmq.h). See docs/go.md.
#
#   make go-native   build the static library and put it where cgo looks for it:
#                    sdk-go/lib/<GOOS>_<GOARCH>/librapidmq_ffi.a (GO_NATIVE_PROFILE=release for
#                    an optimised one)
#   make go-header   regenerate ffi/include/rapidmq.h with cbindgen and copy it to sdk-go/include
#   make test-go     go vet, go test and go test -race against $(DEBUG_BIN); the example program
#                    runs inside go test. (The C smoke test of the ABI, ffi/tests/smoke.rs, runs
#                    in test-rust with the rest of the workspace.)
#   make bench-go    Go producer and consumer throughput, then the Rust SDK's, against one
#                    release broker (sdk-go/cmd/throughput, sdk-rust/examples/throughput.rs,
#                    rapidmq bench sub)
#
# Installs what it needs: a Go toolchain check, a C compiler, the module's dependencies from
# the Go proxy (scripts/install-deps-go.sh).

GO_NATIVE_PROFILE ?= debug
GO_ENV = export PATH="$$(dirname "$$(scripts/install-deps-go.sh --go)"):$$PATH" && \
	GO_PLATFORM="$$(go env GOOS)_$$(go env GOARCH)"

.PHONY: go-deps go-native go-header test-go bench-go
SDK_TESTS += test-go

go-deps:
	@scripts/install-deps-go.sh

go-native: go-deps
	$(CARGO) build -p rapidmq-ffi $(if $(filter release,$(GO_NATIVE_PROFILE)),--release)
	@$(GO_ENV) && mkdir -p sdk-go/lib/$$GO_PLATFORM && \
	  cp $(CARGO_TARGET_DIR)/$(GO_NATIVE_PROFILE)/librapidmq_ffi.a sdk-go/lib/$$GO_PLATFORM/librapidmq_ffi.a

go-header:
	RAPIDMQ_UPDATE_HEADER=1 $(CARGO) test -p rapidmq-ffi --test header
	cp ffi/include/rapidmq.h sdk-go/include/rapidmq.h

test-go: build go-native
	@$(GO_ENV) && cd sdk-go && go vet ./... && (cd ../examples/go && go vet ./...)
	@$(GO_ENV) && cd sdk-go && RAPIDMQ_BIN=$(abspath $(DEBUG_BIN)) go test -count=1 ./...
	@$(GO_ENV) && cd sdk-go && RAPIDMQ_BIN=$(abspath $(DEBUG_BIN)) go test -race -count=1 ./...

# One release broker on ephemeral ports for all three measurements; 1M messages of 100 B each.
GO_BENCH_MESSAGES ?= 1000000
bench-go: release
	$(MAKE) go-native GO_NATIVE_PROFILE=release
	$(CARGO) build --release -p rapidmq --example throughput
	@$(GO_ENV) && scripts/bench-go.sh $(RELEASE_BIN) $(CARGO_TARGET_DIR)/release/examples/throughput $(GO_BENCH_MESSAGES)
