#!/usr/bin/env bash
# Faults under mpirun: each case must end the whole job quickly, with a
# non-zero exit and a message that says what happened.
#   faults.sh MPIRUN TIDE SOURCE_DIR
set -u
mpirun="$1" tide="$2" dir="$3/tests/distributed"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
failed=0

# case NAME SCRIPT MAX_SECONDS PATTERN...: every pattern must be in the output
case_() {
    local name="$1" script="$2" max="$3"
    shift 3
    local start end out rc
    start=$(date +%s.%N)
    out=$(timeout 120 "$mpirun" -np 2 --oversubscribe "$tide" "$dir/$script" 2>&1)
    rc=$?
    end=$(date +%s.%N)
    local took
    took=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
        echo "FAIL $name: exit status $rc (expected a failure, not success or a hang)"
        failed=1
    elif awk -v t="$took" -v m="$max" 'BEGIN { exit !(t > m) }'; then
        echo "FAIL $name: took $took s (at most $max)"
        failed=1
    fi
    for p in "$@"; do
        if ! grep -qF -- "$p" <<<"$out"; then
            echo "FAIL $name: no '$p' in the output:"
            echo "$out" | sed 's/^/    /'
            failed=1
        fi
    done
    echo "$name: exit $rc after $took s"
}

case_ raise fault_raise.lua 10 "rank 1:" "rank one gives up here"
case_ absent fault_absent.lua 15 "waited more than 2 s in all_reduce(sum) float32 (4,)" \
    "ranks that did not arrive: rank 1 (busy outside any collective"
case_ mismatch fault_mismatch.lua 10 "the ranks disagree on the collective" \
    "rank 0 all_reduce(sum) float32 (4, 2); rank 1 all_reduce(sum) float32 (4, 3)"
exit $failed
