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

# libFuzzer targets (.ci/run runs them for 20 s each): every
# tests/fuzz/fuzz_NAME.c is linked with the runtime (runtime/*.c and
# kernels/cpu/*.c; no CUDA, no MPI) built by clang with ASan and libFuzzer's
# coverage under $(FUZZ_DIR)/obj, which needs no build/; fuzz_checkpoint
# adds the Lua binding (bindings/core/*.c) and liblua5.4. Each runs for
# FUZZ_TIME seconds with the dictionary tests/fuzz/NAME.dict, starting from
# the committed seeds in tests/fuzz/corpus/NAME (read only) and what earlier
# runs found in $(FUZZ_DIR)/corpus/NAME (where new inputs go); -j2 builds
# and runs two at a time, each output line led by the target's name. A
# crash, a leak, an ASan report or a hang fails the run and leaves the input
# as $(FUZZ_DIR)/crash-<sha1> (leak-, timeout-, oom-): `$(FUZZ_DIR)/fuzz_NAME
# FILE` replays it. FUZZ_ARGS adds libFuzzer options (-max_len=8192...).
# docs/checkpoints.md, section fuzz, says how to add a target.
FUZZ_DIR  ?= build-fuzz
FUZZ_TIME ?= 60
FUZZ_CC   ?= clang
FUZZ_ARGS ?=
FUZZ_LUA_CFLAGS := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
FUZZ_LUA_LIBS   := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
# -O1 and line tables only: the build is most of what CI waits for, and
# ASan's reports need no more than lines. libgomp, the OpenMP that gcc's
# build and oneDNN use, so the process holds one runtime, not two.
FUZZ_CFLAGS = -gline-tables-only -O1 -march=x86-64-v3 -fsanitize=address,fuzzer-no-link \
	-fopenmp=libgomp -D_GNU_SOURCE -std=gnu11 -Wno-pass-failed -MMD -MP \
	-Iruntime/include -Iruntime -Ikernels -Ibindings/core $(FUZZ_LUA_CFLAGS) \
	-I/usr/include/x86_64-linux-gnu/openblas-pthread -I/usr/include/openblas
FUZZ_LIBS = -ldnnl -lopenblas -lz -ljansson -lm -ldl
FUZZ_RT_OBJ = $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(wildcard runtime/*.c kernels/cpu/*.c))
FUZZ_LUA_OBJ = $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(wildcard bindings/core/*.c))
FUZZ_NAMES = $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS = $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)
.SECONDARY: $(FUZZ_RT_OBJ) $(FUZZ_LUA_OBJ)
.PHONY: $(FUZZ_NAMES:%=fuzz-run-%)
-include $(FUZZ_RT_OBJ:.o=.d) $(FUZZ_LUA_OBJ:.o=.d) $(FUZZ_TARGETS:=.d)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

# a target that drives tide from Lua finds the Lua files in this tree
$(FUZZ_DIR)/fuzz_checkpoint: $(FUZZ_LUA_OBJ)
$(FUZZ_DIR)/fuzz_checkpoint: FUZZ_EXTRA = -DTIDE_SOURCE_DIR='"$(CURDIR)"' $(FUZZ_LUA_OBJ) $(FUZZ_LUA_LIBS)

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_RT_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MF $@.d -MT $@ -fsanitize=fuzzer $< $(FUZZ_EXTRA) $(FUZZ_RT_OBJ) $(FUZZ_LIBS) -o $@

fuzz: $(FUZZ_NAMES:%=fuzz-run-%)

# every run starts once all are built, so a run's FUZZ_TIME is not shared
# with the compiler; pipefail keeps the target's status through the prefix
$(FUZZ_NAMES:%=fuzz-run-%): SHELL := /bin/bash
$(FUZZ_NAMES:%=fuzz-run-%): .SHELLFLAGS := -o pipefail -c
$(FUZZ_NAMES:%=fuzz-run-%): fuzz-run-%: $(FUZZ_TARGETS)
	@mkdir -p $(FUZZ_DIR)/corpus/$*
	@echo "== fuzz_$* ($(FUZZ_TIME) s)"
	@LSAN_OPTIONS="$${LSAN_OPTIONS:-suppressions=$(CURDIR)/.ci/lsan.supp:print_suppressions=0}" \
	    $(FUZZ_DIR)/fuzz_$* -max_total_time=$(FUZZ_TIME) -timeout=30 -rss_limit_mb=4096 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/ \
	    $(if $(wildcard tests/fuzz/$*.dict),-dict=tests/fuzz/$*.dict) $(FUZZ_ARGS) \
	    $(FUZZ_DIR)/corpus/$* $(wildcard tests/fuzz/corpus/$*) 2>&1 | sed -u 's/^/fuzz_$*: /' || { \
	    echo "fuzz_$*: FAILED; the input is the $(FUZZ_DIR)/ file named above; replay it with $(FUZZ_DIR)/fuzz_$* FILE"; \
	    exit 1; }
