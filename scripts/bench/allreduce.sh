#!/usr/bin/env bash
# tide.distributed.all_reduce against MPI_Allreduce on 2 ranks: runs the C
# baseline (bench_allreduce_mpi, built beside tide when CMake finds MPI)
# and scripts/bench/allreduce.lua under mpirun, one after the other, RUNS
# times (3 by default), and prints the table: the best time of each, and
# the median of the runs' tide/MPI ratios.
# Usage: scripts/bench/allreduce.sh [runs]; run.sh calls it. TIDE names
# the tide binary (default build/tide), TIDE_BENCH_MPI the C program,
# TIDE_BENCH_RANKS the rank count (2); TIDE_BENCH_LINES a file to append
# the raw result lines to (`tide allreduce.lua --report FILE` tables them).
# Without mpirun or the C program it says so and exits 0.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tide="${TIDE:-$root/build/tide}"
case "$tide" in /*) ;; *) tide="$root/$tide" ;; esac
mpi_bench="${TIDE_BENCH_MPI:-$(dirname "$tide")/bench_allreduce_mpi}"
runs="${1:-3}"
np="${TIDE_BENCH_RANKS:-2}"

mpirun="$(command -v mpirun || command -v mpiexec || true)"
if [ -z "$mpirun" ]; then
    echo "allreduce.sh: skipped: no mpirun (apt-get install openmpi-bin)"
    exit 0
fi
if [ ! -x "$mpi_bench" ]; then
    echo "allreduce.sh: skipped: $mpi_bench is not built (CMake builds it when it finds MPI)"
    exit 0
fi
if [ ! -x "$tide" ]; then
    echo "allreduce.sh: $tide is not built (make build)" >&2
    exit 1
fi
# Open MPI refuses root unless told
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

lines="$(mktemp)"
one="$(mktemp)"
out="$(mktemp)"
trap 'rm -f "$lines" "$one" "$out"' EXIT

for r in $(seq 1 "$runs"); do
    echo "allreduce.sh: run $r of $runs ($np ranks): MPI_Allreduce, then tide"
    "$mpirun" -np "$np" "$mpi_bench" > "$one"
    grep '^allreduce ' "$one" | sed "s/\$/ run=$r/" >> "$lines"
    # the same calls per block as the C program made; its table is only
    # this run's, so no rows for run.sh's summary from it
    env -u TIDE_BENCH_ROWS "$mpirun" -np "$np" "$tide" "$here/allreduce.lua" --mpi "$one" > "$out"
    grep '^tide ' "$out" | sed "s/\$/ run=$r/" >> "$lines"
done
if [ -n "${TIDE_BENCH_LINES:-}" ]; then cat "$lines" >> "$TIDE_BENCH_LINES"; fi
"$tide" "$here/allreduce.lua" --report "$lines"
