#!/usr/bin/env bash
# Run every benchmark in scripts/bench/ and print one table: benchmark,
# tide, pytorch, ratio, goal. PyTorch runs in the same invocation at the
# same thread count (Debian's python3-torch; without it, tide's numbers
# only). Usage: scripts/bench/run.sh [threads]; `make bench` calls it.
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

status=0
cd "$root"
for bench in "$here"/*.lua; do
    name="$(basename "$bench" .lua)"
    [ "$name" = benchlib ] && continue
    echo "== $name"
    if ! "$tide" "$bench" $threads; then
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
