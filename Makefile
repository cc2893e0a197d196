# tide: the few commands a user needs. On a fresh Debian 12 machine, as root,
# `make test` and `make run` install what is missing and need nothing else.

BUILD      ?= build
BUILD_TYPE ?= Release
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
# a hung test fails after this many seconds instead of blocking the run
CTEST_ARGS ?= --timeout 900

.PHONY: all deps bench-deps build test run bench install clean

all: build

# the Debian packages in deps/debian-packages.txt (apt-get as root, else the
# line to run)
deps:
	@deps/install.sh deps/debian-packages.txt

# PyTorch for the benchmarks' baseline: installed as root, optional otherwise
bench-deps:
	@if [ "$$(id -u)" -eq 0 ]; then \
	    deps/install.sh deps/bench-packages.txt; \
	else \
	    deps/install.sh deps/bench-packages.txt 2>/dev/null || \
	    echo "note: python3-torch is not installed; benchmarks print tide's numbers only"; \
	fi

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)
	cmake --build $(BUILD) -j$(JOBS)

test: deps
	$(MAKE) --no-print-directory build
	ctest --test-dir $(BUILD) --output-on-failure $(CTEST_ARGS)

run: deps
	$(MAKE) --no-print-directory build
	$(BUILD)/tide scripts/demo.lua

bench: deps bench-deps
	$(MAKE) --no-print-directory build
	TIDE=$(BUILD)/tide scripts/bench/run.sh

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) build-asan
