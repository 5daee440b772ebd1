# Thin wrapper: the real build is meson. `make run` and `make test` are the README quick start;
# both install whatever Debian 12 packages are missing first.

BUILD ?= build
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

BUILD_DEPS := g++ meson ninja-build pkg-config libuv1-dev libssl-dev libtomlplusplus-dev \
              doctest-dev node-llhttp nlohmann-json3-dev
TEST_DEPS  := openssl curl python3 git clang libclang-rt-14-dev clang-format pebble certbot lego \
              dovecot-imapd haproxy nginx libnginx-mod-stream sniproxy util-linux \
              prometheus

.PHONY: all deps test-deps build run test clean

all: build

deps:
	@.ci/apt-ensure $(BUILD_DEPS)

test-deps: deps
	@.ci/apt-ensure $(TEST_DEPS)

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	meson compile -C $(BUILD)

run: build
	./$(BUILD)/sniroute run --config conf/dev.toml

test: test-deps
	BUILD_DIR=$(BUILD) tests/run-all

clean:
	rm -rf build build-asan build-tsan build-fuzz build-bench
