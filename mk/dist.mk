# Release artifacts (issue 19, docs/install.md): every artifact a release publishes, and a test
# that installs each the way its users do.
#
#   make dist        everything to dist/ (DIST=… elsewhere), with SHA256SUMS:
#                    rapidmq-<version>-<target>.tar.gz   the broker (scripts/dist/broker.sh)
#                    crates/*.crate                      verified by cargo publish --dry-run
#                    rapidmq-<version>-*.whl, .tar.gz    Python wheel (manylinux, abi3) and sdist
#                    goproxy/, rapidmq-sdk-go-*.zip      the Go module with its static library
#                    maven/, rapidmq-<version>*.jar      the Java jars and a Maven repository
#                    The SDKs' native libraries are built in DIST_PROFILE (release).
#   make test-dist   make dist into $(CARGO_TARGET_DIR)/test-dist, then tests/dist/run.sh: a
#                    broker started from the archive's binary, and each SDK installed from the
#                    artifacts with no cargo, rustc or maturin on PATH, running its quickstart.
#                    The archive there holds the dev build of the broker (DIST_BROKER): the
#                    release build compiles RocksDB again, 15 minutes on 2 cores, and the
#                    packaging is the same.
#   make lint-dist   one version everywhere (tests/dist/version.py) and actionlint over
#                    .github/workflows (installed with go install into .tools/bin)

DIST ?= $(CURDIR)/dist
DIST_PROFILE ?= release
DIST_BROKER ?= $(RELEASE_BIN)
ACTIONLINT_VERSION := v1.7.12

.PHONY: dist test-dist lint-dist
SDK_TESTS += lint-dist test-dist

dist: $(if $(filter $(RELEASE_BIN),$(DIST_BROKER)),release,build) go-deps java-deps
	@echo "make dist: version $$(scripts/dist/version.sh) into $(DIST)"
	rm -rf $(DIST) && mkdir -p $(DIST)
	scripts/dist/broker.sh $(DIST_BROKER) $(DIST)
	scripts/dist/crates.sh $(DIST)
	DIST_PROFILE=$(DIST_PROFILE) scripts/dist/python.sh $(DIST)
	@$(GO_ENV) && DIST_PROFILE=$(DIST_PROFILE) scripts/dist/go.sh $(DIST)
	@$(JAVA_ENV) && DIST_PROFILE=$(DIST_PROFILE) scripts/dist/java.sh $(DIST)
	cd $(DIST) && find . -type f ! -name SHA256SUMS | sort | xargs sha256sum > SHA256SUMS
	@echo "make dist: $$(wc -l < $(DIST)/SHA256SUMS) files in $(DIST), checksums in SHA256SUMS"

test-dist:
	$(MAKE) dist DIST=$(CARGO_TARGET_DIR)/test-dist DIST_BROKER=$(DEBUG_BIN)
	@$(GO_ENV) && $(JAVA_ENV) && tests/dist/run.sh $(CARGO_TARGET_DIR)/test-dist

lint-dist: go-deps
	python3 tests/dist/version.py
	@$(GO_ENV) && GOBIN=$(TOOLS)/bin go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	$(TOOLS)/bin/actionlint
