#!/usr/bin/env bash
# CI quick mode of scripts/gradients.lua: the worked example, then CE and
# MSE for one epoch on 2,000 images; the output checked for content.
set -euo pipefail
TIDE="${TIDE:-build/tide}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

"$TIDE" scripts/gradients.lua --epochs 1 --subset 2000 --batch-size 32 --out "$out/run" > "$out/stdout"
grep -q "the worked example's gradients match" "$out/stdout"
grep -q "^Ratio CE / MSE" "$out/stdout"
"$TIDE" tests/recipes/check_report.lua "$out/run" --variants ce,mse --epochs 1 --plots 4 \
    --fields train_loss,train_acc,test_loss,test_acc,seconds,grad_mean,grad_std,grad_p50,wgrad_mean,p_true_mean
"$TIDE" tests/recipes/check_gradients.lua "$out/run" --epochs 1

# a bad recipe flag is refused with exit status 2
set +e
"$TIDE" scripts/gradients.lua --optim lbfgs --out "$out/bad" 2> "$out/stderr"
rc=$?
set -e
[ "$rc" -eq 2 ] || { echo "quick_gradients: --optim lbfgs gave exit status $rc, not 2" >&2; exit 1; }
grep -q -- "--optim expects one of sgd, adam" "$out/stderr"
echo "quick_gradients: ok"
