# Observability: the headless-Chromium test of the dashboard the broker serves at /.
#
#   make test-dashboard   load the dashboard in Debian's chromium (driven by playwright-core
#                         from npm, pinned by tests/dashboard/package-lock.json) while
#                         `rapidmq bench` runs against $(DEBUG_BIN); the screenshot is saved to
#                         tests/dashboard/artifacts/dashboard.png
#
# Installs what it needs, idempotently: the chromium and nodejs/npm Debian packages when
# missing, then `npm ci` unless node_modules was installed from the same lockfile. The Rust side of the
# observability work (metrics, lag, tracing, flow events) is in `cargo test -p rapidmq-cli
# --test observability`, which test-rust runs.

DASHBOARD_DIR := tests/dashboard
CHROMIUM ?= /usr/bin/chromium

.PHONY: dashboard-deps test-dashboard
SDK_TESTS += test-dashboard

dashboard-deps:
	@missing=""; \
	  [[ -x "$(CHROMIUM)" ]] || missing="$$missing chromium"; \
	  command -v node >/dev/null || missing="$$missing nodejs"; \
	  command -v npm >/dev/null || missing="$$missing npm"; \
	  if [[ -n "$$missing" ]]; then \
	    echo "dashboard: apt-get install$$missing"; \
	    SUDO=$$([[ $$(id -u) -eq 0 ]] || echo sudo); \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	  fi
	@if ! cmp -s $(DASHBOARD_DIR)/package-lock.json $(DASHBOARD_DIR)/node_modules/.rapidmq-lock; then \
	  echo "dashboard: npm ci"; \
	  cd $(DASHBOARD_DIR) && npm ci --no-audit --no-fund --loglevel=error && \
	  cp package-lock.json node_modules/.rapidmq-lock; \
	fi

test-dashboard: build dashboard-deps
	cd $(DASHBOARD_DIR) && RAPIDMQ_BIN=$(DEBUG_BIN) CHROMIUM=$(CHROMIUM) \
	  node --test --test-reporter=spec dashboard.test.mjs
