#!/usr/bin/env bash
# CI quick mode of scripts/binary.lua: one epoch on the first 2,000
# T-shirt/top and shirt training images, every loss, tested on those two
# classes' 2,000 test images; then its output checked for content (bce
# must reach 70%); bad flag values must be rejected with exit 2.
#   TIDE=build/tide bash tests/recipes/quick_binary.sh
set -euo pipefail
tide="${TIDE:-build/tide}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

"$tide" scripts/binary.lua --epochs 1 --subset 2000 --out "$out/run"
"$tide" tests/recipes/check_report.lua "$out/run" --variants bce,focal,bce_ls --epochs 1 --plots 4 \
    --fields train_loss,train_acc,test_loss,test_acc,test_nll,ece,seconds,brier,neg_acc,pos_acc
"$tide" tests/recipes/check_binary.lua "$out/run" --test-images 2000 --min-acc 0.7

for bad in "--classes 0" "--classes 0,0" "--classes 0,10" "--classes 0,6.5" "--subset 20000"; do
    set +e
    # shellcheck disable=SC2086
    msg="$("$tide" scripts/binary.lua $bad --out "$out/bad" 2>&1)"
    rc=$?
    set -e
    if [ "$rc" -ne 2 ] || ! grep -q "^binary: ${bad%% *} " <<< "$msg"; then
        echo "quick_binary: '$bad' gave exit $rc and: $msg" >&2
        exit 1
    fi
done
echo "quick_binary: ok"
