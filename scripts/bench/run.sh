#!/usr/bin/env bash
# Run every benchmark in scripts/bench/ and print one table: benchmark,
# tide, pytorch, ratio, goal. PyTorch runs in the same invocation at the
# same thread count (Debian's python3-torch; without it, tide's numbers
# only); allreduce and ddp run 2 ranks under mpirun, against MPI_Allreduce
# and 1 process. Usage: scripts/bench/run.sh [threads]; `make bench` calls it.
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
trap 'rm -f "$rows"' EXIT
export TIDE_BENCH_ROWS="$rows"

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
for bench in "$here"/*.lua; do
    name="$(basename "$bench" .lua)"
    [ "$name" = benchlib ] && continue
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
        printf '%s\t%s\t%s\t%s\t%s\n' "$name" "FAILED" "-" "-" "-" >> "$rows"
        status=1
    fi
    echo
done
echo "== startup"
if ! "$here/startup.sh" "$tide"; then
    printf '%s\t%s\t%s\t%s\t%s\n' "startup" "FAILED" "-" "-" "-" >> "$rows"
    status=1
fi

echo
echo "== summary ($(nproc) cores, threads ${threads:-default}, $(date -u +%Y-%m-%d))"
{
    printf 'benchmark\ttide\tpytorch\tratio\tgoal\n'
    cat "$rows"
} | awk -F'\t' '
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
