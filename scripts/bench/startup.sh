#!/usr/bin/env bash
# Start-up time of the tide command: wall time of `tide -e ''`, median of 20
# runs after 3 warm-ups. Usage: scripts/bench/startup.sh [path/to/tide]
# Goal: under 20 ms.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tide="${1:-${TIDE:-$here/../../build/tide}}"
runs=20
goal_ms=20

if [ ! -x "$tide" ]; then
    echo "startup.sh: $tide is not built (make build)" >&2
    exit 1
fi

for _ in 1 2 3; do "$tide" -e '' >/dev/null; done

times=()
for _ in $(seq "$runs"); do
    # bash's own clock: a `date` process before and after would add its
    # own start (2-3 ms on our VMs) to every run
    t0=${EPOCHREALTIME/./}
    "$tide" -e '' >/dev/null
    t1=${EPOCHREALTIME/./}
    times+=($((t1 - t0)))   # microseconds
done
median_us=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {
    if (NR % 2) print a[(NR + 1) / 2]; else print int((a[NR / 2] + a[NR / 2 + 1]) / 2) }')
ms=$(awk -v us="$median_us" 'BEGIN { printf "%.1f", us / 1000 }')
verdict=$(awk -v us="$median_us" -v g="$goal_ms" 'BEGIN { print (us / 1000 < g) ? "met" : "missed" }')

printf '%-28s tide %-18s pytorch %-18s ratio %-8s goal %s\n' "startup (tide -e '')" \
    "$ms ms" "-" "-" "< $goal_ms ms ($verdict)"
if [ -n "${TIDE_BENCH_ROWS:-}" ]; then
    # the 8 cells of run.sh's table: no PyTorch, no work count
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "startup tide -e ''" "$ms ms" "-" "-" "-" \
        "< $goal_ms ms ($verdict)" "-" "-" >> "$TIDE_BENCH_ROWS"
fi
