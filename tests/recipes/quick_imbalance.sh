#!/usr/bin/env bash
# CI quick mode of scripts/imbalance.lua: one epoch on an imbalanced
# training set of 2,000 images (1,800 of class 0), every loss, tested on
# all 10,000 test images, then its output checked for content; bad flag
# values must be rejected with exit 2.
#   TIDE=build/tide bash tests/recipes/quick_imbalance.sh
set -euo pipefail
tide="${TIDE:-build/tide}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

"$tide" scripts/imbalance.lua --epochs 1 --subset 2000 --out "$out/run"
"$tide" tests/recipes/check_report.lua "$out/run" --variants ce,wce,focal,cb --epochs 1 --plots 5 \
    --fields train_loss,train_acc,test_loss,test_acc,test_nll,ece,seconds,majority_acc,others_acc,macro_acc,macro_f1
"$tide" tests/recipes/check_imbalance.lua "$out/run"

for bad in "--fraction 1" "--fraction 0" "--majority 10" "--beta 1" "--subset 9000"; do
    set +e
    # shellcheck disable=SC2086
    msg="$("$tide" scripts/imbalance.lua $bad --out "$out/bad" 2>&1)"
    rc=$?
    set -e
    if [ "$rc" -ne 2 ] || ! grep -q "^imbalance: ${bad%% *} " <<< "$msg"; then
        echo "quick_imbalance: '$bad' gave exit $rc and: $msg" >&2
        exit 1
    fi
done
echo "quick_imbalance: ok"
