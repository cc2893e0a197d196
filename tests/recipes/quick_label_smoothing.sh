#!/usr/bin/env bash
# CI quick mode of scripts/label_smoothing.lua: one epoch on 2,000
# training images for each e in {0, 0.05, 0.1, 0.2}, the temperature fitted
# on 1,000 held-out training images, tested on all 10,000 test images; then
# its output checked for content; bad flag values must be rejected with
# exit 2.
#   TIDE=build/tide bash tests/recipes/quick_label_smoothing.sh
set -euo pipefail
tide="${TIDE:-build/tide}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

variants=ls0,ls0.05,ls0.1,ls0.2
"$tide" scripts/label_smoothing.lua --epochs 1 --subset 2000 --val 1000 --out "$out/run"
"$tide" tests/recipes/check_report.lua "$out/run" --variants "$variants" --epochs 1 --plots 8 \
    --fields train_loss,train_acc,test_loss,test_acc,test_nll,ece,seconds,temperature,val_acc,val_nll,test_nll_scaled,ece_scaled
"$tide" tests/recipes/check_label_smoothing.lua "$out/run" --variants "$variants"

for bad in "--smoothing 0,1" "--smoothing 0,0.1,0.1" "--smoothing x" "--val 10" "--subset 58000"; do
    set +e
    # shellcheck disable=SC2086
    msg="$("$tide" scripts/label_smoothing.lua $bad --out "$out/bad" 2>&1)"
    rc=$?
    set -e
    if [ "$rc" -ne 2 ] || ! grep -q "^label_smoothing: ${bad%% *} " <<< "$msg"; then
        echo "quick_label_smoothing: '$bad' gave exit $rc and: $msg" >&2
        exit 1
    fi
done
echo "quick_label_smoothing: ok"
