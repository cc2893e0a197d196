# tide: the few commands a user needs. On a fresh Debian 12 machine, as root,
# `make test` and `make run` install what is missing and need nothing else.

BUILD      ?= build
BUILD_TYPE ?= Release
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
# a hung test fails after this many seconds instead of blocking the run
CTEST_ARGS ?= --timeout 900

.PHONY: all deps bench-deps build test run bench install clean fuzz gate

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
	    echo "note: python3-torch or libtcmalloc-minimal4 is not installed; benchmarks print what they can"; \
	fi

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)
	cmake --build $(BUILD) -j$(JOBS)

test: deps
	$(MAKE) --no-print-directory build
	ctest --test-dir $(BUILD) --output-on-failure $(CTEST_ARGS)

# the flagship study (scripts/loss_study.lua): smallcnn on Fashion-MNIST
# with four losses; the table, report.md and the plots go to runs/loss_study
# (a rerun skips the variants already finished; RUN_ARGS=--fresh redoes them)
RUN_ARGS ?=
run: deps
	$(MAKE) --no-print-directory build
	$(BUILD)/tide scripts/loss_study.lua --out runs/loss_study $(RUN_ARGS)

# the accuracy gate: smallcnn, one epoch on 10,000 Fashion-MNIST images,
# >= 80% on the test set (CI runs it too)
gate: deps
	$(MAKE) --no-print-directory build
	$(BUILD)/tide tests/gate/fashion_smallcnn.lua

bench: deps bench-deps
	$(MAKE) --no-print-directory build
	TIDE=$(BUILD)/tide scripts/bench/run.sh

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) build-asan

# libFuzzer targets (not part of CI): every tests/fuzz/fuzz_*.c is linked
# with the whole runtime built by clang with ASan, then run for
# FUZZ_TIME seconds from an empty corpus under $(FUZZ_DIR)/corpus-NAME
FUZZ_DIR  ?= build-fuzz
FUZZ_TIME ?= 60
FUZZ_CC   ?= clang
FUZZ_CFLAGS = -g -O1 -march=x86-64-v3 -fsanitize=address,fuzzer-no-link -fopenmp -D_GNU_SOURCE -std=gnu11 \
	-Iruntime/include -Iruntime -Ikernels -I/usr/include/x86_64-linux-gnu/openblas-pthread -I/usr/include/openblas
FUZZ_LIBS = -ldnnl -lopenblas -lz -ljansson -lm
FUZZ_RT_SRC = $(wildcard runtime/*.c kernels/cpu/*.c)
FUZZ_RT_OBJ = $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_RT_SRC))
FUZZ_TARGETS = $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard tests/fuzz/fuzz_*.c))
.SECONDARY: $(FUZZ_RT_OBJ)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_RT_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_RT_OBJ) $(FUZZ_LIBS) -o $@

fuzz: $(FUZZ_TARGETS)
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $$t.corpus && \
	    echo "== $$t ($(FUZZ_TIME) s)" && \
	    $$t -max_total_time=$(FUZZ_TIME) -rss_limit_mb=4096 $$t.corpus || exit 1; \
	done
