# payhost: the commands README.md documents.
CARGO ?= cargo
PLUGINS_DIR := target/plugins
RELEASE_PLUGINS := payhost_plugin_mock
SO := so

.PHONY: build run test lint bench clean

## build: the release binary, and the runtime plugins folder filled with the built providers
build:
	$(CARGO) build --release -p payhost $(addprefix -p ,$(subst _,-,$(RELEASE_PLUGINS)))
	mkdir -p $(PLUGINS_DIR)
	for p in $(RELEASE_PLUGINS); do cp -f target/release/lib$$p.$(SO) $(PLUGINS_DIR)/; done

## run: build, then serve on 127.0.0.1:8080 with the mock provider
run: build
	./target/release/payhost --config plugins.toml serve

## test: every test of the workspace; the plugin .so files are built once, first
test:
	$(CARGO) build --workspace
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## bench: load time per plugin and host-side call overhead, in release
bench:
	$(CARGO) build --release --workspace
	$(CARGO) run --release -p payhost-tests --bin payhost-bench

clean:
	$(CARGO) clean
