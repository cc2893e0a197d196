#!/usr/bin/env bash
# CI quick mode of scripts/worked_examples.lua (it trains nothing, so the
# quick run is the full run): exit status 0, the table printed, report.md
# and metrics.jsonl checked for content; a training flag is rejected.
set -euo pipefail
TIDE="${TIDE:-build/tide}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

"$TIDE" scripts/worked_examples.lua --out "$out/run" > "$out/stdout"
grep -q "worked_examples: all 14 values match the expected ones" "$out/stdout"
grep -q "^-log 0.01 (true class at p = 0.01) .* 4.605 *4.605 *✓" "$out/stdout"
grep -q "^MSE of {0.4, 0.3, 0.3}, mean over classes .* 0.1800 *0.1800 *✓" "$out/stdout"
if grep -q "MISMATCH" "$out/stdout"; then echo "quick_worked_examples: a mismatch was printed" >&2; exit 1; fi
"$TIDE" tests/recipes/check_worked_examples.lua "$out/run"

# training flags mean nothing here and are refused with exit status 2
set +e
"$TIDE" scripts/worked_examples.lua --epochs 1 --out "$out/bad" 2> "$out/stderr"
rc=$?
set -e
[ "$rc" -eq 2 ] || { echo "quick_worked_examples: --epochs gave exit status $rc, not 2" >&2; exit 1; }
grep -q "does not apply" "$out/stderr"
echo "quick_worked_examples: ok"
