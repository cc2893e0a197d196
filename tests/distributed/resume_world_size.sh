#!/usr/bin/env bash
# dist.resume_world_size: a run of the toolkit's classifier loop stopped
# after epoch 1 resumes from its checkpoint at another world size, and at
# the same one. tests/distributed/resume_recipe.lua (smallcnn, so
# SyncBatchNorm too; 2 epochs on 512 images) with TIDE_TEST_STOP_AFTER=1
# exits in epoch 2 before its checkpoint; the same command without it
# must say "resuming after epoch 1" and finish. Checked against
# uninterrupted runs (check_resume.lua): stopped at 2 ranks and resumed at
# 1, epoch 1 is the 2-rank run's and epoch 2 the 1-process run's (its
# data order; the model after epoch 1 differs by float rounding only,
# since a 2-rank first epoch sees a single process's batches); stopped
# at 1 and resumed at 2, the reverse; stopped and resumed at 2 ranks, the
# uninterrupted 2-rank run's numbers exactly.
#   bash tests/distributed/resume_world_size.sh build/tide /usr/bin/mpirun
set -euo pipefail
tide="${1:-build/tide}"
mpirun="${2:-mpirun}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
die() { echo "resume_world_size: $*" >&2; exit 1; }
recipe=tests/distributed/resume_recipe.lua
one() { "$tide" "$recipe" --threads 1 "$@"; }
two() { "$mpirun" -np 2 "$tide" "$recipe" "$@"; }

# the uninterrupted references
one --out "$out/ref1" > "$out/ref1.log" 2>&1 || { cat "$out/ref1.log" >&2; die "the 1-process run failed"; }
two --out "$out/ref2" > "$out/ref2.log" 2>&1 || { cat "$out/ref2.log" >&2; die "the 2-rank run failed"; }

# stopped with `first` after epoch 1, resumed with `then`
stop_and_resume() {
    local name="$1" first="$2" then="$3" rc
    set +e
    TIDE_TEST_STOP_AFTER=1 "$first" --out "$out/$name" > "$out/$name.stop.log" 2>&1
    rc=$?
    set -e
    [ "$rc" -ne 0 ] || die "$name: the stopped run exited 0"
    grep -q "resume_recipe: stopping in epoch 2" "$out/$name.stop.log" \
        || { cat "$out/$name.stop.log" >&2; die "$name: the run did not stop where it should"; }
    [ -e "$out/$name/checkpoints/ce.safetensors" ] || die "$name: no checkpoint after epoch 1"
    "$then" --out "$out/$name" > "$out/$name.log" 2>&1 || { cat "$out/$name.log" >&2; die "$name: the resumed run failed"; }
    [ "$(grep -c "^ce: resuming after epoch 1 from" "$out/$name.log")" -eq 1 ] \
        || { cat "$out/$name.log" >&2; die "$name: the rerun did not say once that it resumes after epoch 1"; }
    [ -s "$out/$name/report.md" ] || die "$name: no report.md"
}

stop_and_resume two_to_one two one
"$tide" tests/distributed/check_resume.lua "$out/two_to_one" "$out/ref2" exact "$out/ref1" close
stop_and_resume one_to_two one two
"$tide" tests/distributed/check_resume.lua "$out/one_to_two" "$out/ref1" exact "$out/ref2" close
stop_and_resume two_to_two two two
"$tide" tests/distributed/check_resume.lua "$out/two_to_two" "$out/ref2" exact "$out/ref2" exact
echo "resume_world_size: ok"
