#!/usr/bin/env bash
# CI quick mode of scripts/text_losses.lua: both models (LSTM and the
# causal Transformer, hidden size 32) with each of the four losses, one
# epoch of 30 steps of 32 random 64-character windows of tide's docs and
# Lua sources, validated on the first 5,000 validation characters, 60
# characters sampled per variant; then its output checked for content
# (every perplexity below the vocabulary size, top-5 >= top-1, the
# samples); bad flag values must be rejected with exit 2.
#   TIDE=build/tide bash tests/recipes/quick_text_losses.sh
set -euo pipefail
tide="${TIDE:-build/tide}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

variants=lstm_ce,lstm_ls,lstm_focal,lstm_poly1,transformer_ce,transformer_ls,transformer_focal,transformer_poly1
"$tide" scripts/text_losses.lua --models lstm,transformer --epochs 1 --steps-per-epoch 30 --hidden 32 --embed 16 \
    --lr 0.006 --val-subset 5000 --sample-len 60 --threads 1 --out "$out/run"
"$tide" tests/recipes/check_report.lua "$out/run" --variants "$variants" --epochs 1 --plots 4 \
    --fields train_loss,train_acc,val_nll,val_ppl,val_acc,val_top5,ece,seconds,eval_seconds,lr,grad_norm
"$tide" tests/recipes/check_text_losses.lua "$out/run" --variants "$variants"

for bad in "--losses ce,mse" "--losses ce,ce" "--models lstm,gru" "--seq-len 4" "--hidden 30" "--steps-per-epoch 0" \
           "--temperature -1" "--subset 10"; do
    set +e
    # shellcheck disable=SC2086
    msg="$("$tide" scripts/text_losses.lua $bad --out "$out/bad" 2>&1)"
    rc=$?
    set -e
    if [ "$rc" -ne 2 ] || ! grep -q "^text_losses: ${bad%% *}" <<< "$msg"; then
        echo "quick_text_losses: '$bad' gave exit $rc and: $msg" >&2
        exit 1
    fi
done
echo "quick_text_losses: ok"
