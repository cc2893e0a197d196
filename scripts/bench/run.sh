#!/usr/bin/env bash
# Run every benchmark in scripts/bench/ and print one table: benchmark,
# tide, pytorch (as started by default), pytorch +tcmalloc (LD_PRELOAD of
# Debian's libtcmalloc-minimal4, as PyTorch's CPU tuning guide says), the
# ratio tide/tuned pytorch, goal, the row's work (FLOP, bytes) and tide's
# fraction of the machine's limit. PyTorch runs in the same invocation at
# the same thread count (Debian's python3-torch through /usr/bin/python3;
# without it, tide's numbers only; without tcmalloc, the default column
# only). The limits, measured once at the start (limits.lua): the float32
# peak of tide.matmul 4096^2 and the STREAM triad of bench_triad. allreduce
# and ddp run 2 ranks under mpirun, against MPI_Allreduce and 1 process.
# Usage: scripts/bench/run.sh [threads]; `make bench` calls it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tide="${TIDE:-$root/build/tide}"
case "$tide" in /*) ;; *) tide="$root/$tide" ;; esac
threads="${1:-}"

if [ ! -x "$tide" ]; then
    echo "run.sh: $tide is not built (make build)" >&2
    exit 1
fi

rows="$(mktemp)"
limits="$(mktemp)"
trap 'rm -f "$rows" "$limits"' EXIT
export TIDE_BENCH_ROWS="$rows" TIDE_BENCH_LIMITS="$limits"
TIDE_BENCH_TRIAD="$(dirname "$tide")/bench_triad"
export TIDE_BENCH_TRIAD

# the tuned PyTorch: tcmalloc preloaded (benchlib.lua reads this; empty: none)
tcmalloc="${TIDE_BENCH_TCMALLOC-/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4}"
if [ -n "$tcmalloc" ] && [ ! -r "$tcmalloc" ]; then
    echo "note: $tcmalloc not found (apt-get install libtcmalloc-minimal4):" \
        "PyTorch runs with glibc's malloc only, and the ratios are against that"
    tcmalloc=""
fi
export TIDE_BENCH_TCMALLOC="$tcmalloc"
# the CPU as benchlib.lua's B.cpu names it: model name (family F model M)
cpu="$(awk -F': *' '/^model name/ && !n { n = $2 } /^cpu family/ && !f { f = $2 }
    /^model[[:space:]]*:/ && !m { m = $2 }
    END { if (n != "") printf "%s (family %s model %s)", n, f, m }' /proc/cpuinfo)"

# the distributed ones (allreduce, ddp) run 2 ranks under mpirun, and
# allreduce against a C program that CMake builds beside tide with MPI
mpi_skip=""
if ! command -v mpirun >/dev/null 2>&1; then
    mpi_skip="no mpirun (apt-get install openmpi-bin)"
elif [ ! -x "$(dirname "$tide")/bench_allreduce_mpi" ]; then
    mpi_skip="$(dirname "$tide")/bench_allreduce_mpi is not built (tide was built without MPI)"
fi

status=0
cd "$root"
# the machine's limits, once, at the run's thread count, into $limits
echo "== limits"
if ! "$tide" "$here/limits.lua" ${threads:+"$threads"}; then
    echo "run.sh: limits.lua failed; rows print no fraction of a limit" >&2
    status=1
fi
echo

for bench in "$here"/*.lua; do
    name="$(basename "$bench" .lua)"
    case "$name" in benchlib | limits) continue ;; esac
    echo "== $name"
    case "$name" in
    allreduce | ddp)
        if [ -n "$mpi_skip" ]; then
            echo "skipped: $mpi_skip"
            echo
            continue
        fi
        ;;
    esac
    if [ "$name" = allreduce ]; then
        # its driver: the C baseline and tide, a few runs each
        run=(env TIDE="$tide" "$here/allreduce.sh")
    else
        run=("$tide" "$bench")
        if [ -n "$threads" ]; then run+=("$threads"); fi
    fi
    if ! "${run[@]}"; then
        echo "run.sh: $name failed" >&2
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "FAILED" "-" "-" "-" "-" "-" "-" >> "$rows"
        status=1
    fi
    echo
done
echo "== startup"
if ! "$here/startup.sh" "$tide"; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "startup" "FAILED" "-" "-" "-" "-" "-" "-" >> "$rows"
    status=1
fi

echo
echo "== summary (${cpu:-unknown CPU}, $(nproc) cores, threads ${threads:-default}, $(date -u +%Y-%m-%d))"
if [ -s "$limits" ]; then
    awk '{ v[$1] = $2 } END {
        printf "limits: peak %s GFLOP/s (tide.matmul %d^2 float32, best of 5),", \
            v["peak_gflops"] == "" ? "unknown" : sprintf("%.1f", v["peak_gflops"]), v["sgemm_n"]
        printf " triad %s GB/s (STREAM triad on %dM float32, best of 20)\n", \
            v["triad_gbs"] == "" ? "unknown" : sprintf("%.1f", v["triad_gbs"]), v["triad_n"] / 1048576 }' "$limits"
fi
if [ -n "$tcmalloc" ]; then
    echo "pytorch: as started by default (glibc malloc); +tcmalloc: LD_PRELOAD=$tcmalloc; ratio and goal against +tcmalloc"
else
    echo "pytorch: as started by default (glibc malloc; no tcmalloc); ratio and goal against it"
fi
echo "vs limit: tide's GFLOP/s over the peak (compute-bound rows) or GB/s over the triad (memory-bound ones)"
echo
# rows of 8 cells (benchlib.lua's B.row); the 5-cell rows of allreduce and
# ddp (benchmark, tide, baseline, ratio, goal) get the others empty
{
    printf 'benchmark\ttide\tpytorch\tpytorch +tcmalloc\tratio\tgoal\twork\tvs limit\n'
    cat "$rows"
} | awk -F'\t' -v tuned="$tcmalloc" '
    NF == 5 { $0 = $1 "\t" $2 "\t" $3 "\t-\t" $4 "\t" $5 "\t-\t-" }
    tuned == "" { $0 = $1 "\t" $2 "\t" $3 "\t" $5 "\t" $6 "\t" $7 "\t" $8 }
    { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) }
      if (NF > nf) nf = NF }
    END {
        for (r = 1; r <= NR; r++) {
            line = ""
            for (i = 1; i <= nf; i++) line = line sprintf("%-" w[i] "s  ", cell[r, i])
            sub(/ +$/, "", line); print line
            if (r == 1) { line = ""; for (i = 1; i <= nf; i++) { d = ""; for (k = 0; k < w[i]; k++) d = d "-"; line = line d "  " } sub(/ +$/, "", line); print line }
        }
    }'
exit $status
