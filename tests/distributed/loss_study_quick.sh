#!/usr/bin/env bash
# dist.loss_study_quick: the loss study's quick mode (CI's literal one:
# one epoch on 2,000 images, the MLP, batch 8) under `mpirun -np 2` and in
# one process with the same flags. --batch-size is the global batch, so
# both train on the same batches (the first epoch of the toolkit's
# DistributedSampler has the single-process loader's order) and CE's test
# accuracy must agree within 1 point. The 2-rank run must leave one
# report.md and each metrics line once, tables shaped as the 1-process
# report's, and print each line once (check_same_run.lua), and pass the
# recipe checks (tests/recipes/check_report.lua).
#   bash tests/distributed/loss_study_quick.sh build/tide /usr/bin/mpirun
set -euo pipefail
tide="${1:-build/tide}"
mpirun="${2:-mpirun}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
flags=(--epochs 1 --subset 2000 --model mlp --batch-size 8 --lr 1e-3)

"$mpirun" -np 2 "$tide" scripts/loss_study.lua "${flags[@]}" --out "$out/two" > "$out/two.stdout"
# one thread: the same numbers, and no slower on a busy 2-core machine
"$tide" scripts/loss_study.lua "${flags[@]}" --threads 1 --out "$out/one" > "$out/one.stdout"
"$tide" tests/recipes/check_report.lua "$out/two" --variants ce,mse,focal,ce_ls --epochs 1 --plots 3 \
    --min ce.test_acc=0.75
"$tide" tests/distributed/check_same_run.lua "$out/two" "$out/one" "$out/two.stdout" --acc ce=1
echo "loss_study_quick: ok"
