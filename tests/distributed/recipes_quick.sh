#!/usr/bin/env bash
# dist.recipes_quick: every recipe of scripts/ but the loss study (its own
# test, loss_study_quick.sh) and the demo (not a toolkit recipe: it runs
# whole on each rank) under `mpirun -np 2`, unchanged, at the smallest
# settings that exercise it: each must succeed and leave one report, its
# metrics once, and the report line printed once (check_once.lua).
# gradients and stability run twice: the rerun must load every variant
# (decided on rank 0, the same on both ranks) and say so once.
#   bash tests/distributed/recipes_quick.sh build/tide /usr/bin/mpirun
set -euo pipefail
tide="${1:-build/tide}"
mpirun="${2:-mpirun}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
die() { echo "recipes_quick: $*" >&2; exit 1; }

# run NAME ARGS...: scripts/NAME.lua under mpirun -np 2 into $out/NAME
run() {
    local name="$1"
    shift
    local t0=$SECONDS
    "$mpirun" -np 2 "$tide" "scripts/$name.lua" "$@" --out "$out/$name" > "$out/$name.stdout" 2> "$out/$name.stderr" \
        || { cat "$out/$name.stdout" "$out/$name.stderr" >&2; die "$name failed under mpirun -np 2"; }
    "$tide" tests/distributed/check_once.lua "$out/$name" "$out/$name.stdout" > /dev/null \
        || die "$name: see check_once above"
    echo "recipes_quick: $name ok ($((SECONDS - t0)) s)"
}

# run it again: every variant loaded, each said once
rerun() {
    local name="$1" variants="$2"
    shift 2
    "$mpirun" -np 2 "$tide" "scripts/$name.lua" "$@" --out "$out/$name" > "$out/$name.again" 2>&1 \
        || { cat "$out/$name.again" >&2; die "$name: the rerun failed"; }
    for v in ${variants//,/ }; do
        [ "$(grep -c "^$v: finished in an earlier run" "$out/$name.again")" -eq 1 ] \
            || { cat "$out/$name.again" >&2; die "$name: the rerun did not load '$v' (once)"; }
    done
    if grep -q " epoch [0-9]*/[0-9]*: " "$out/$name.again"; then die "$name: the rerun trained"; fi
    echo "recipes_quick: $name rerun loaded $variants"
}

run worked_examples
grep -q "worked_examples: all 14 values match" "$out/worked_examples.stdout" || die "worked_examples: no verdict"

grad=(--epochs 1 --subset 256 --batch-size 32 --model mlp)
run gradients "${grad[@]}"
rerun gradients ce,mse "${grad[@]}"

# shellcheck disable=SC2054  # (the commas are --scales' list)
stab=(--epochs 1 --subset 512 --batch-size 32 --lr 4 --scales 1,100,1e4)
run stability "${stab[@]}"
rerun stability scales,naive,cross_entropy "${stab[@]}"

run imbalance --epochs 1 --subset 500 --model mlp
run label_smoothing --epochs 1 --subset 500 --val 500 --smoothing 0,0.1 --model mlp
run multilabel --epochs 1 --subset 500 --test-subset 1000 --losses bce,asl --model mlp
run binary --epochs 1 --subset 500 --model mlp

"$tide" tests/recipes/make_fake_cifar10.lua "$out/cifar" 60 200 > /dev/null
run cifar10_resnet18 --data "$out/cifar" --epochs 1 --subset 64 --batch-size 16 --test-subset 64 --device cpu
echo "recipes_quick: ok"
