#!/usr/bin/env bash
# cli_threads.sh BUILD_DIR SOURCE_DIR: a run gives the same bits at 1 and at
# 2 threads, so a result never hangs on the thread count (issue 11: LeNet-5
# gave 0.79% at 1 thread and 0.83% at 2 before).  The whole pipeline of
# configs/lenet5_mnist_dc.ini (convolutions, their filter gradients summed
# in pieces, sliced fc GEMMs) and configs/lenet5_fire_mnist_dc.ini (Fire
# modules: 1x1 convolutions, concatenation), made small with --set, runs at
# train.threads=1 and =2: model.dcm and checkpoint.bin must be equal byte for
# byte, and metrics.csv apart from the seconds.
# Exit 0 pass, 1 fail, 77 no MNIST.
set -u
. "$(dirname "$0")/check_cli.sh"
cli_setup cli_threads "${1:?usage: cli_threads.sh BUILD_DIR SOURCE_DIR}" "${2:?usage: cli_threads.sh BUILD_DIR SOURCE_DIR}" dctrain

# A spinning OpenMP pool beside the other tests of a parallel ctest would
# only waste their cores; the result does not depend on the wait policy.
export OMP_WAIT_POLICY=passive
SETS=(--set data.dir="$MNIST" --set data.train_limit=640 --set data.test_limit=200 --set train.epochs=1
      --set prune.rounds=1 --set prune.retrain_epochs=1 --set quantize.finetune_epochs=1
      --set quantize.iterations=5)
for cfg in lenet5_mnist_dc lenet5_fire_mnist_dc; do
    for t in 1 2; do
        run 0 "$cfg at $t thread(s)" "$B/dctrain" "$S/configs/$cfg.ini" "${SETS[@]}" --set train.threads=$t \
            --device cpu --quiet --out "$cfg-$t" || continue
        sed -E 's/,[^,]*$//' "$cfg-$t/metrics.csv" >"$cfg-$t/metrics.norm"
    done
    for f in model.dcm checkpoint.bin metrics.norm; do
        cmp -s "$cfg-1/$f" "$cfg-2/$f" || fail "$cfg: $f differs between 1 and 2 threads"
    done
done
cli_finish cli_threads
