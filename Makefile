# Front door over CMake. `make run` and `make test` do all set-up on a fresh
# Debian 12 machine (system packages via scripts/install-deps).
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
DATA_DIR ?= data
LISTEN ?= 127.0.0.1:8000
XNAI := $(BUILD_DIR)/xnai
JOBS ?= $(shell nproc)

.PHONY: all deps configure build run test test-long bench format clean

all: build

deps:
	@scripts/install-deps

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# First start with an empty data directory ingests docs/ into collection "docs".
run: build
	$(XNAI) serve --listen $(LISTEN) --data $(DATA_DIR) --seed-docs docs

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 300

bench: build
	@mkdir -p $(BUILD_DIR)/bench-results
	bench/run-benchmarks $(BUILD_DIR) $(BUILD_DIR)/bench-results

format:
	find src bench tests -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
