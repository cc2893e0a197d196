#!/usr/bin/env bash
# CI quick mode of scripts/cifar10_resnet18.lua. CIFAR-10 is not on the
# machine, so: (1) a missing data folder must give exit 2 and say which
# files to put where; (2) a small stand-in in CIFAR-10's binary format
# (Fashion-MNIST as 3x32x32, tests/recipes/make_fake_cifar10.lua: 300
# training images in data_batch_1..5.bin, 200 in test_batch.bin) is
# trained on for one epoch of 256 images at batch 32 and the output is
# checked for content; (3) the same command again loads the finished run
# instead of training; (4) a bad flag value exits 2.
#   TIDE=build/tide bash tests/recipes/quick_cifar10_resnet18.sh
set -euo pipefail
tide="${TIDE:-build/tide}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
die() { echo "quick_cifar10_resnet18: $*" >&2; exit 1; }

# (1) missing files
set +e
msg="$("$tide" scripts/cifar10_resnet18.lua --data "$out/nowhere" --out "$out/none" 2>&1)"
rc=$?
set -e
[ "$rc" -eq 2 ] || die "a missing --data folder gave exit $rc, not 2: $msg"
for want in "CIFAR-10 is not in '$out/nowhere'" data_batch_1.bin data_batch_5.bin test_batch.bin \
            "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" "tar xzf cifar-10-binary.tar.gz"; do
    grep -qF -- "$want" <<< "$msg" || die "the missing-data message lacks '$want': $msg"
done

# (2) one short epoch on the stand-in
"$tide" tests/recipes/make_fake_cifar10.lua "$out/data" 60 200
run=("$tide" scripts/cifar10_resnet18.lua --data "$out/data" --epochs 1 --subset 256 --batch-size 32
     --device cpu --out "$out/run")
"${run[@]}"
"$tide" tests/recipes/check_report.lua "$out/run" --variants resnet18 --epochs 1 --plots 4 \
    --fields train_loss,train_acc,test_loss,test_acc,test_nll,ece,seconds,lr
"$tide" tests/recipes/check_cifar10_resnet18.lua "$out/run" 1

# (3) a rerun loads the finished variant
again="$("${run[@]}" 2>&1)"
grep -qF "resnet18: finished in an earlier run" <<< "$again" || die "the rerun trained again: $again"
"$tide" tests/recipes/check_cifar10_resnet18.lua "$out/run" 1

# (4) bad values
set +e
msg="$("$tide" scripts/cifar10_resnet18.lua --data "$out/data" --schedule cos --out "$out/bad" 2>&1)"
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -qF "cifar10_resnet18: --schedule expects one of cosine, step, none" <<< "$msg" \
    || die "--schedule cos gave exit $rc and: $msg"
echo "quick_cifar10_resnet18: ok"
