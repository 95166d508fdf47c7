# payhost: the commands README.md documents.
CARGO ?= cargo
PLUGINS_DIR := target/plugins
RELEASE_PLUGINS := payhost_plugin_mock payhost_plugin_stripe payhost_plugin_paypal payhost_plugin_mollie
SO := so

SHELL := /bin/bash
.PHONY: build run test lint bench clean dist

## build: the release binary, and the runtime plugins folder filled with the built providers
build:
	$(CARGO) build --release -p payhost $(addprefix -p ,$(subst _,-,$(RELEASE_PLUGINS)))
	mkdir -p $(PLUGINS_DIR)
	for p in $(RELEASE_PLUGINS); do cp -f target/release/lib$$p.$(SO) $(PLUGINS_DIR)/; done
	# Signed with the DEVELOPMENT key (deploy/dev: its secret half is public, never trusted
	# beyond loopback): plugins.toml trusts it, so `plugins list` shows them signed.
	./target/release/payhost plugins sign --secret-key deploy/dev/dev-plugin-signing.key \
	  $(addprefix $(PLUGINS_DIR)/lib,$(addsuffix .$(SO),$(RELEASE_PLUGINS)))
	# payhost refuses a plugin folder or file its group or others can write (whatever the umask).
	chmod go-w $(PLUGINS_DIR) $(PLUGINS_DIR)/*.$(SO) $(PLUGINS_DIR)/*.minisig

## run: build, then serve on 127.0.0.1:8080 with the mock provider
run: build
	./target/release/payhost --config plugins.toml serve

## test: every test of the workspace; the plugin .so files are built once, first, then the
## contract compatibility builds (the tagged 2.0 host and mock, a broken contract). While the
## tests run, schemathesis (installed into target/schemathesis-venv from PyPI when missing)
## tests a live host against its own /openapi.json: tests/schemathesis/run; and clients
## generated from it (Python: openapi-python-client; TypeScript: @hey-api/openapi-ts) run the
## payment lifecycle against another: tests/clients/run. Every test binary
## runs even after one fails (--no-fail-fast), so a run reports every failure.
## The PostgreSQL tests run when PAYHOST_TEST_POSTGRES is set, or a server answers locally.
PG_TEST_URL := postgres://postgres@127.0.0.1:5432/test
TARGET ?= $(or $(CARGO_TARGET_DIR),target)
# A hanging test fails the run with a message instead of stalling it.
TEST_TIMEOUT ?= 30m
test:
	# --all-targets: the test targets' dev-dependencies take part in feature resolution, so
	# the dependencies compiled here are the ones `cargo test` links (a plain build resolves
	# other features and `cargo test` compiled sqlx, syn, regex and payhost again: ~2.5 min).
	$(CARGO) build --workspace --all-targets
	$(TARGET)/debug/payhost-compat
	if [ -z "$$PAYHOST_TEST_POSTGRES" ] && (echo > /dev/tcp/127.0.0.1/5432) 2>/dev/null; then \
	  export PAYHOST_TEST_POSTGRES=$(PG_TEST_URL); fi; \
	export PAYHOST_SKIP_LOG=$(abspath $(TARGET))/test-skips.txt; rm -f $$PAYHOST_SKIP_LOG; \
	tests/schemathesis/run $(TARGET) > $(TARGET)/schemathesis.log 2>&1 & st=$$!; \
	tests/clients/run $(TARGET) > $(TARGET)/clients.log 2>&1 & cl=$$!; \
	timeout --kill-after=30s $(TEST_TIMEOUT) $(CARGO) test --workspace --no-fail-fast; tests=$$?; \
	[ $$tests -eq 124 ] && echo "cargo test did not finish within $(TEST_TIMEOUT): a test hangs (see 'has been running for over 60 seconds' above)"; \
	wait $$st; api=$$?; wait $$cl; clients=$$?; \
	grep -v ' INFO ' $(TARGET)/schemathesis.log | tail -60; \
	grep -v ' INFO ' $(TARGET)/clients.log | tail -60; \
	echo "cargo test: exit $$tests; schemathesis: exit $$api (full log: $(TARGET)/schemathesis.log); generated clients: exit $$clients (full log: $(TARGET)/clients.log)"; \
	touch $$PAYHOST_SKIP_LOG; \
	for kind in PostgreSQL browser minisign tmpfs; do \
	  printf '%s tests: %s ran, %s skipped\n' $$kind \
	    "$$(grep -c "^RAN: $$kind:" $$PAYHOST_SKIP_LOG)" \
	    "$$(grep -c "^SKIPPED: $$kind:" $$PAYHOST_SKIP_LOG)"; \
	done; \
	if grep -q '^SKIPPED' $$PAYHOST_SKIP_LOG; then \
	  echo "!!! $$(grep -c '^SKIPPED' $$PAYHOST_SKIP_LOG) tests SKIPPED (they did not run; CI runs them all):"; \
	  grep '^SKIPPED' $$PAYHOST_SKIP_LOG | sort | uniq -c; \
	else echo "skipped: none (every PostgreSQL, browser, minisign and tmpfs test ran)"; fi; \
	[ $$tests -eq 0 ] && [ $$api -eq 0 ] && [ $$clients -eq 0 ]

## dist: target/dist/payhost-<version>-<arch>-linux.tar.gz: the release binary, the plugins,
## a config that runs from the unpacked folder, the systemd unit (deploy/) and the licences
dist: build
	deploy/dist target/release target/dist

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## bench: load time per plugin, host-side call overhead, POST /v1/payments throughput; release
bench:
	$(CARGO) build --release --workspace
	if [ -z "$$PAYHOST_TEST_POSTGRES" ] && (echo > /dev/tcp/127.0.0.1/5432) 2>/dev/null; then \
	  export PAYHOST_TEST_POSTGRES=$(PG_TEST_URL); fi; \
	$(CARGO) run --release -p payhost-tests --bin payhost-bench

clean:
	$(CARGO) clean
