#!/usr/bin/env bash
# A training step quiet and beside one busy process, at 1 thread, at 2
# threads and at tide's default (which follows the cores other processes
# leave free: runtime/threads.c), for smallcnn (batch 128) and LeNet-5
# (batch 64): the median step of contention.lua. The last column is the
# default's time over the best of the three in the same condition; the
# goal is at most 1.3 beside the busy process, and on a quiet machine the
# default within 3% of 2 threads.
# Usage: scripts/bench/contention.sh [steps]   (TIDE=path/to/tide)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tide="${TIDE:-$root/build/tide}"
steps="${1:-60}"
if [ ! -x "$tide" ]; then
    echo "contention.sh: $tide is not built (make build)" >&2
    exit 1
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "contention.sh: one core: nothing to contend for"
    exit 0
fi

busy=""
stop_busy() {
    if [ -n "$busy" ]; then
        kill -9 "$busy" 2>/dev/null || true
        wait "$busy" 2>/dev/null || true
        busy=""
    fi
}
trap stop_busy EXIT

# the median step in ms of one run: model, then the variables to set
step() {
    local model="$1"
    shift
    env -u TIDE_NUM_THREADS -u OMP_NUM_THREADS -u TIDE_FOLLOW_FREE_CORES "$@" \
        "$tide" "$here/contention.lua" "$model" "$steps" | awk '{ print $2 }'
}

cpu="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
echo "training step, median of $steps; ${cpu:-unknown CPU}, $(nproc) cores, $(date -u +%Y-%m-%d)"
printf '%-9s %-6s %10s %10s %10s %14s\n' model load "1 thread" "2 threads" default "default/best"
for load in quiet busy; do
    if [ "$load" = busy ]; then
        # one process that never sleeps, as a compile or another job would
        bash -c 'while :; do :; done' &
        busy=$!
        sleep 1
    fi
    for model in smallcnn lenet5; do
        t1="$(step "$model" TIDE_NUM_THREADS=1)"
        t2="$(step "$model" TIDE_NUM_THREADS=2)"
        td="$(step "$model")"
        awk -v m="$model" -v l="$load" -v a="$t1" -v b="$t2" -v d="$td" 'BEGIN {
            best = a < b ? a : b; if (d < best) best = d
            printf "%-9s %-6s %8.2f ms %8.2f ms %8.2f ms %13.2fx\n", m, l, a, b, d, d / best }'
    done
    stop_busy
done
