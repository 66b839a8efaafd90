# The Java SDK (sdk-java, Maven io.rapidmq:rapidmq): UniFFI bindings of the client core
# (ffi/uniffi) generated during the Maven build, with the native library bundled in the jar.
#
#   make java        build the jar and install it into ~/.m2 (no tests)
#   make test-java   the JUnit suites against $(DEBUG_BIN) (mvn install), then the example
#                    project examples/java run with nothing but the installed jar on the class path
#   make bench-java  Java producer and consumer throughput (release library and broker)
#
# Installs what it needs: Maven and a JDK >= 22 (scripts/install-deps-java.sh; the JDK is found
# under /usr/lib/jvm or JAVA_HOME, never assumed) and uniffi-bindgen-java, pinned to the UniFFI
# line of ffi/uniffi, into $(TOOLS)/bin.

UNIFFI_BINDGEN_JAVA_VERSION := 0.5.2
UNIFFI_BINDGEN_JAVA := $(TOOLS)/bin/uniffi-bindgen-java
JAVA_MVN_FLAGS := -B --no-transfer-progress -Dstyle.color=never
# JAVA_HOME for Maven and the examples; Maven 3.8's own Guava trips the sun.misc.Unsafe warning
# on JDK 24+, which the option below silences (JDK 22 and 23 do not know it).
JAVA_ENV = export JAVA_HOME="$$(scripts/install-deps-java.sh --java-home)" && \
	if [[ $$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$$JAVA_HOME/release") -ge 24 ]]; then \
	  export MAVEN_OPTS="$${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"; fi && \
	export UNIFFI_BINDGEN_JAVA=$(UNIFFI_BINDGEN_JAVA)

.PHONY: java java-deps test-java bench-java
SDK_TESTS += test-java

java-deps:
	@scripts/install-deps-java.sh
	@if [[ "$$($(UNIFFI_BINDGEN_JAVA) --version 2>/dev/null)" != "uniffi-bindgen-java $(UNIFFI_BINDGEN_JAVA_VERSION)" ]]; then \
	  echo "java: cargo install uniffi-bindgen-java $(UNIFFI_BINDGEN_JAVA_VERSION) into $(TOOLS)/bin"; \
	  $(CARGO) install --locked --quiet --version $(UNIFFI_BINDGEN_JAVA_VERSION) --root $(TOOLS) uniffi-bindgen-java; \
	fi

java: java-deps
	@$(JAVA_ENV) && mvn $(JAVA_MVN_FLAGS) -q -f sdk-java/pom.xml install -DskipTests

test-java: build java-deps
	@$(JAVA_ENV) && RAPIDMQ_BIN=$(DEBUG_BIN) mvn $(JAVA_MVN_FLAGS) -f sdk-java/pom.xml install
	@$(JAVA_ENV) && RAPIDMQ_BIN=$(DEBUG_BIN) MVN_FLAGS="$(JAVA_MVN_FLAGS) -q" examples/java/run.sh Quickstart

bench-java: release java-deps
	@$(JAVA_ENV) && RAPIDMQ_CARGO_PROFILE=release mvn $(JAVA_MVN_FLAGS) -q -f sdk-java/pom.xml install -DskipTests
	@$(JAVA_ENV) && RAPIDMQ_BIN=$(RELEASE_BIN) MVN_FLAGS="$(JAVA_MVN_FLAGS) -q" examples/java/run.sh Throughput
