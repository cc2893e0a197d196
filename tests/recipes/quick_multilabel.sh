#!/usr/bin/env bash
# CI quick mode of scripts/multilabel.lua: one epoch on 2,000 training
# images and 2,000 test images, every loss, then its output checked for
# content; bad flag values must be rejected with exit 2.
#   TIDE=build/tide bash tests/recipes/quick_multilabel.sh
set -euo pipefail
tide="${TIDE:-build/tide}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

"$tide" scripts/multilabel.lua --epochs 1 --subset 2000 --test-subset 2000 --out "$out/run"
"$tide" tests/recipes/check_report.lua "$out/run" --variants bce,asl,focal --epochs 1 --plots 4 \
    --fields train_loss,train_acc,test_loss,test_acc,seconds,macro_f1,hamming_acc,test_bce,f1_footwear,f1_accessory
"$tide" tests/recipes/check_multilabel.lua "$out/run"

for bad in "--threshold 1.5" "--losses bce,hinge" "--clip 2" "--gamma-neg -1"; do
    set +e
    # shellcheck disable=SC2086
    msg="$("$tide" scripts/multilabel.lua $bad --out "$out/bad" 2>&1)"
    rc=$?
    set -e
    if [ "$rc" -ne 2 ] || ! grep -q "^multilabel: ${bad%% *} " <<< "$msg"; then
        echo "quick_multilabel: '$bad' gave exit $rc and: $msg" >&2
        exit 1
    fi
done
echo "quick_multilabel: ok"
