#!/usr/bin/env bash
# cli_killresume.sh BUILD_DIR SOURCE_DIR: a dctrain run killed with SIGKILL
# at any moment and resumed with --resume ends exactly where a run never
# interrupted ends (issue 9): the same model.dcm and final checkpoint.bin
# byte for byte, the same summary.json, stages.jsonl and metrics.csv apart
# from the seconds, and no temporary file left.
#
# The whole pipeline of configs/lenet300_mnist_dc.ini, made tiny with --set:
# 256 training images (4 steps an epoch), train 2 epochs, prune 2 rounds of
# 1 retraining epoch, quantize with 2 fine-tuning epochs, encode.  The kill
# points are DC_KILL_AT=EVENT:N (dc/killpoint.h): SIGKILL at the N-th EVENT,
# so each kill lands at the same place every time.  Events: step (after a
# training step's update), epoch (after its metrics.csv row, before its
# checkpoint), stage (a stage starts), pruned / clustered (a prune round or
# the k-means done, before their checkpoint), write-F (after a chunk of F's
# temporary file is written), commit-F (F.tmp complete and fsync'd, not yet
# renamed), renamed-F (F in place).  The run writes 14 checkpoints: train
# epochs 1, 2, end; prune-1 set-up, epoch 1, end; prune-2 the same;
# quantize set-up, fine-tune epochs 1, 2, end; encode end.
# A run killed before its first checkpoint starts again from scratch (there
# is nothing to resume); every other one resumes from checkpoint.bin.
# Exit 0 pass, 1 fail, 77 no MNIST.
set -u
. "$(dirname "$0")/check_cli.sh"
cli_setup cli_killresume "${1:?usage: cli_killresume.sh BUILD_DIR SOURCE_DIR}" "${2:?usage: cli_killresume.sh BUILD_DIR SOURCE_DIR}" dctrain

# Raw IDX files: a run then reads 47 MB instead of inflating 10 MB, 50 times.
mkdir mnist
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [ -e "$MNIST/$f" ]; then ln -s "$MNIST/$f" mnist/$f; else gzip -dc "$MNIST/$f.gz" >mnist/$f; fi
done
CFG=$S/configs/lenet300_mnist_dc.ini
SETS=(--set data.dir="$T/mnist" --set data.train_limit=256 --set data.test_limit=100 --set train.threads=1
      --set train.epochs=2 --set prune.rounds=2 --set prune.retrain_epochs=1 --set quantize.finetune_epochs=2
      --set quantize.iterations=5 --set fc1.outputs=100 --set fc2.outputs=50)
dct() { "$B/dctrain" "$CFG" "${SETS[@]}" --device cpu --quiet "$@"; }

# The figures of the run in DIR without its timings and its folder's name.
normalise() {
    local f
    for f in summary.json stages.jsonl; do
        sed -E -e 's/"seconds": [0-9.e+-]+/"seconds": S/g' -e "s|\"$1/|\"RUN/|g" "$1/$f" >"$1/${f%.*}.norm"
    done
    sed -E 's/,[^,]*$//' "$1/metrics.csv" >"$1/metrics.norm"
}

run 0 reference dct --out ref || { echo "cli_killresume: the uninterrupted run failed"; exit 1; }
normalise ref
[ -s ref/model.dcm ] && [ -s ref/checkpoint.bin ] || { fail "reference: no model.dcm or checkpoint.bin"; exit 1; }
[ "$(wc -l <ref/metrics.csv)" = 7 ] || fail "reference: metrics.csv has $(wc -l <ref/metrics.csv) lines, expected 7"

# same_as_ref NAME DIR: the finished run in DIR equals the reference.
same_as_ref() {
    local f
    normalise "$2"
    for f in model.dcm checkpoint.bin summary.norm stages.norm metrics.norm; do
        cmp -s "ref/$f" "$2/$f" || fail "$1: $f differs from the uninterrupted run's"
    done
    ! ls "$2"/*.tmp >/dev/null 2>&1 || fail "$1: temporary files left: $(ls "$2"/*.tmp)"
}

# killed NAME CMD...: CMD must die by the kill (exit 137) with nothing on
# stderr before it but the shell's own "Killed" notice.
killed() {
    local name=$1
    shift
    "$@" >out 2>err
    RC=$?
    [ "$RC" = 137 ] || { fail "$name: exit $RC, expected 137 (SIGKILL at DC_KILL_AT): $(head -c 300 err)"; return 1; }
    ! grep -v 'Killed' err | grep -q . || { fail "$name: stderr before the kill: $(head -c 300 err)"; return 1; }
}

# resume NAME DIR [DC_KILL_AT]: continue the run in DIR (from scratch when it
# wrote no checkpoint), optionally killed again.
resume() {
    local how=(run 0)
    [ -z "${3:-}" ] || how=(killed)
    if [ -e "$2/checkpoint.bin" ]; then
        DC_KILL_AT=${3:-} "${how[@]}" "$1: resume" dct --out "$2" --resume "$2/checkpoint.bin"
    else
        DC_KILL_AT=${3:-} "${how[@]}" "$1: restart" dct --out "$2"
    fi
}

# kill_at EVENT:N [TMP]: kill there, resume, compare; TMP: a temporary file
# the kill must leave behind (a write interrupted mid-way), which shows the
# kill landed inside that write and that the resume coped with it.
kill_at() {
    local dir=k_${1//[^a-z0-9]/_}
    DC_KILL_AT=$1 killed "$1" dct --out "$dir" || return
    [ -z "${2:-}" ] || [ -e "$dir/$2" ] || fail "$1: no $2 after the kill"
    resume "$1" "$dir" && same_as_ref "$1" "$dir"
    rm -rf "$dir"
}

POINTS=(
    step:3                      # train, epoch 1, before any checkpoint: starts again
    write-checkpoint.bin:9      # inside the first checkpoint's write: starts again
    epoch:1                     # train epoch 1's metrics row written, its checkpoint not
    step:7                      # train, epoch 2
    commit-checkpoint.bin:2     # train epoch 2's checkpoint complete in .tmp, not renamed
    renamed-checkpoint.bin:3    # the end-of-train checkpoint just in place
    commit-summary.json:2       # the train record written to summary.json.tmp
    commit-stages.jsonl:2       # summary.json has the train record, stages.jsonl not yet
    stage:2                     # prune-1 starts
    pruned:1                    # prune-1 masks made, before their checkpoint
    write-checkpoint.bin:170    # inside prune-1's set-up checkpoint (masks)
    step:10                     # prune-1 retraining
    epoch:3                     # prune-1 epoch row written, checkpoint not
    pruned:2                    # prune-2 masks made
    step:15                     # prune-2 retraining
    stage:4                     # quantize starts
    clustered:1                 # k-means done, before its checkpoint
    commit-checkpoint.bin:10    # quantize set-up checkpoint (codebooks) in .tmp
    step:19                     # fine-tune epoch 1
    epoch:5                     # fine-tune epoch 1 row written, checkpoint not
    step:24                     # fine-tune epoch 2, its last step
    stage:5                     # encode starts
    write-model.dcm:1           # model.dcm.tmp written, not synced
    commit-model.dcm:1          # model.dcm.tmp complete, not renamed
    renamed-model.dcm:1         # model.dcm in place, decoded check and records to come
    commit-summary.json:6       # the encode record in summary.json.tmp
    renamed-checkpoint.bin:14   # the last checkpoint written: a resume has nothing to do
)
for p in "${POINTS[@]}"; do
    case $p in
    write-checkpoint.bin:* | commit-checkpoint.bin:*) kill_at "$p" checkpoint.bin.tmp ;;
    write-model.dcm:* | commit-model.dcm:*) kill_at "$p" model.dcm.tmp ;;
    *) kill_at "$p" ;;
    esac
done

# Killed twice: in prune-1, then the resumed run inside a checkpoint write.
DC_KILL_AT=step:10 killed twice dct --out k_twice &&
    resume twice k_twice write-checkpoint.bin:100 && resume twice k_twice && same_as_ref twice k_twice

# [distill] and label smoothing: the teacher is saved as teacher.bin when
# prune-1 starts, and a run resumed later distils from that file; killed
# while it is written, or before, the resumed run saves it again.
SETS+=(--set train.label_smoothing=0.1 --set distill.alpha=0.6 --set distill.temperature=3)
mv ref ref_plain
run 0 "distill reference" dct --out ref || fail "distill: the uninterrupted run failed"
normalise ref
[ -s ref/teacher.bin ] || fail "distill: no teacher.bin"
cmp -s ref_plain/model.dcm ref/model.dcm && fail "distill: the same model file as without distillation"
for p in write-teacher.bin:1 stage:2 step:10 step:19; do
    case $p in write-*) kill_at "$p" teacher.bin.tmp ;; *) kill_at "$p" ;; esac
done
# without its teacher a resumed run stops, naming the file
DC_KILL_AT=step:10 killed "no teacher" dct --out k_noteacher && rm k_noteacher/teacher.bin &&
    run 1 "no teacher" dct --out k_noteacher --resume k_noteacher/checkpoint.bin &&
    one_line "no teacher" "k_noteacher/teacher.bin: the \\[distill\\] teacher"

# Budget mode ([compress] target_bytes): the budget stage (stage 2) scans and
# chooses, prune-2 measures its choice again on the retrained network, and the
# quantize stage trims what still does not fit; a resumed run reads the scan
# and the choice back from budget.csv.  The file must fit the target, the
# validation images must leave the training set, and resumed runs must end
# where the uninterrupted one does.
SETS+=(--set prune.method=sparsity --set compress.target_bytes=9000 --set compress.validation=64)
mv ref ref_distill
run 0 "budget reference" dct --out ref || fail "budget: the uninterrupted run failed"
normalise ref
[ -s ref/budget.csv ] || fail "budget: no budget.csv"
SIZE=$(wc -c <ref/model.dcm)
[ "$SIZE" -le 9000 ] || fail "budget: model.dcm has $SIZE bytes, over target_bytes = 9000"
[ "$SIZE" -ge 8000 ] || fail "budget: model.dcm has $SIZE bytes, far under target_bytes = 9000 (the choice wastes the budget)"
grep -q '"stage": "budget".*"validation_images": 64' ref/summary.json || fail "budget: no budget record with 64 validation images"
grep -q '"overrides": \[.*"compress.target_bytes=9000"' ref/summary.json || fail "budget: summary.json does not list the --set overrides"
for p in stage:2 stage:3 pruned:2 clustered:1; do
    kill_at "$p"
done
DC_KILL_AT=stage:4 killed "no budget.csv" dct --out k_nobudget && rm k_nobudget/budget.csv &&
    run 1 "no budget.csv" dct --out k_nobudget --resume k_nobudget/checkpoint.bin &&
    one_line "no budget.csv" "k_nobudget/budget.csv: cannot read .*needed to resume"
run 2 "budget too small" dct --out k_small --set compress.target_bytes=300
one_line "budget too small" "\\[compress\\] target_bytes = 300: even 99.5% sparsity in every layer leaves about [0-9]+ bytes"
run 2 "budget needs sparsity" dct --out k_std --set prune.method=std
one_line "budget needs sparsity" "target_bytes and max_accuracy_drop need \\[prune\\] method = sparsity"
run 2 "validation too large" dct --out k_val --set compress.validation=256
one_line "validation too large" "\\[compress\\] validation = 256 leaves none of the 256 training images"

# Budget in points ([compress] max_accuracy_drop): a round that loses more
# validation accuracy than allowed is undone from budget_prev.bin.  At 0.01
# points every round of this tiny run loses more: both are undone and the
# network goes on dense; killed anywhere around the undoing, the resumed run
# must end where the uninterrupted one does.
SETS+=(--set compress.target_bytes=0 --set compress.max_accuracy_drop=0.01)
mv ref ref_budget
run 0 "drop reference" dct --out ref || fail "drop: the uninterrupted run failed"
normalise ref
[ "$(grep -o '"undone": 1' ref/summary.json | wc -l)" = 2 ] || fail "drop: not both rounds undone at 0.01 points"
grep -q '"stage": "prune-2".*"kept_fraction": 1.000000' ref/summary.json || fail "drop: the network is not dense again"
for p in pruned:1 step:10 epoch:3 stage:4 pruned:2; do
    kill_at "$p"
done
run 2 "both budgets" dct --out k_both --set compress.target_bytes=9000
one_line "both budgets" "target_bytes and max_accuracy_drop: choose one budget, bytes or points"

# [prune] final_epochs: the last round retrains 2 epochs, the others 1, so
# metrics.csv holds one more row, and a run killed after that round must
# count it when it trims the rows of epochs not yet saved.
SETS+=(--set compress.max_accuracy_drop=0 --set prune.final_epochs=2)
mv ref ref_drop
run 0 "final_epochs reference" dct --out ref || fail "final_epochs: the uninterrupted run failed"
normalise ref
[ "$(wc -l <ref/metrics.csv)" = 8 ] || fail "final_epochs: metrics.csv has $(wc -l <ref/metrics.csv) lines, expected 8"
grep -q '"stage": "prune-1", "round": 1, "epochs": 1,' ref/summary.json ||
    fail "final_epochs: prune-1 did not retrain 1 epoch"
grep -q '"stage": "prune-2", "round": 2, "epochs": 2,' ref/summary.json ||
    fail "final_epochs: prune-2 did not retrain 2 epochs"
for p in step:18 epoch:5 step:23 epoch:6; do
    kill_at "$p"
done

# Batch norm ([prune] bn_recalibrate): a network with batch norm re-estimates
# its running statistics after each prune round and after the clustering,
# before their checkpoints; killed right there, the resumed run must
# recalibrate to the same bits.  The recalibration must show in the result:
# off, the file differs.
CFG=$S/configs/lenet5_fire_mnist_dc.ini
SETS=(--set data.dir="$T/mnist" --set data.train_limit=256 --set data.test_limit=100 --set train.threads=1
      --set train.epochs=1 --set prune.rounds=2 --set prune.retrain_epochs=1 --set quantize.finetune_epochs=1
      --set quantize.iterations=5 --set prune.bn_recalibrate=2)
mv ref ref_final
run 0 "batch-norm reference" dct --out ref || fail "batch norm: the uninterrupted run failed"
normalise ref
run 0 "batch norm, no recalibration" dct --out k_norecal --set prune.bn_recalibrate=0 &&
    { ! cmp -s ref/model.dcm k_norecal/model.dcm || fail "batch norm: the same model file without recalibration"; }
for p in pruned:1 pruned:2 clustered:1 step:6; do
    kill_at "$p"
done

echo "cli_killresume: $(( ${#POINTS[@]} + 28 )) kill points"
cli_finish cli_killresume
