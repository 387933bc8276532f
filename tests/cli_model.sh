#!/usr/bin/env bash
# cli_model.sh BUILD_DIR SOURCE_DIR: dcinfo, dceval and dcinfer on a real compressed
# model, then on damaged copies of it.  dctrain makes the model in about a
# second (LeNet-300-100, 2,000 images, one epoch per stage: train, prune +
# retrain, quantize + fine-tune, encode).  dcinfo must print the per-layer
# table and dceval must reproduce the decoded accuracy dctrain reported;
# dcinfer must too, in every format and at batch 1 and 64, with predictions
# identical to the dense decoded model (--verify) on all 10,000 test images.
# Every damaged copy (truncations, wrong magic or version, flipped bytes,
# trailing bytes, empty, missing) must exit 1 with one line naming what is
# wrong; an exit code >= 128 is a crash.  Exit 0 pass, 1 fail, 77 no MNIST.
set -u
. "$(dirname "$0")/check_cli.sh"
cli_setup cli_model "${1:?usage: cli_model.sh BUILD_DIR SOURCE_DIR}" "${2:?usage: cli_model.sh BUILD_DIR SOURCE_DIR}" dctrain dcinfo dceval dcinfer

# A network of many tensors through every stage: the encode record in
# summary.json (about 400 bytes a tensor) outgrew a fixed 16 KB buffer at about
# 40 tensors, and dctrain failed after writing the model file.
deep=()
for i in $(seq 40); do deep+=("[fc]" "name = deep$i" "outputs = 16" "activation = relu" ""); done
small_job_ini "[prune]" "method = sparsity" "sparsity_fc = 0.5" "rounds = 1" "retrain_epochs = 0" "" \
    "[quantize]" "bits_fc = 5" "finetune_epochs = 0" "" "[encode]" "file = model.dcm" "" "${deep[@]}" >deep.ini
run 0 many_tensors "$B/dctrain" deep.ini --device cpu --quiet --out deep &&
    { grep -q '"stage": "encode"' deep/summary.json || fail "many_tensors: summary.json has no encode record"; }

# A run started with --init (no training) and resumed without it planned
# training first and ran the checkpoint's stage index as the wrong stage
# (quantized twice): the checkpoint's plan says what the run was.  Resumed, it
# must end with the file of a run never stopped; a resume planning other stages
# is refused with both plans named.
R1=(--set prune.retrain_epochs=1) # a stage run twice then changes the model
run 0 init_whole "$B/dctrain" deep.ini --device cpu --quiet "${R1[@]}" --init deep/checkpoint.bin --out deepw
run 0 init_first "$B/dctrain" deep.ini --device cpu --quiet "${R1[@]}" --init deep/checkpoint.bin --out deepi --stop-after 1
run 0 resume_init_plan "$B/dctrain" deep.ini --device cpu --quiet "${R1[@]}" --resume deepi/checkpoint.bin --out deepi &&
    { cmp -s deepw/model.dcm deepi/model.dcm || fail "resume_init_plan: model.dcm differs from the run never stopped"; }
run 0 init_stages "$B/dctrain" deep.ini --device cpu --quiet --init deep/checkpoint.bin --stages prune,encode --out deeps --stop-after 1
run 2 resume_other_plan "$B/dctrain" deep.ini --device cpu --quiet --resume deeps/checkpoint.bin --out deeps &&
    one_line resume_other_plan "^dctrain: deeps/checkpoint\.bin: written by a run of the stages prune-1,encode, but this command plans train,prune-1,quantize,encode; "

# OpenBLAS takes its generic SSE3 kernels (Prescott; GEMM 9x slower) on a CPU
# that hides its model, as this project's build VM does: where the CPU has
# AVX2, dctrain must run wider kernels and say so on its device line; a core
# the user chose with OPENBLAS_CORETYPE must win.
small_job_ini >blas.ini
run 0 blas_core env -u OPENBLAS_CORETYPE -u DC_BLAS_CORE_SET "$B/dctrain" blas.ini --device cpu --stages train --out blas
if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -q "OpenBLAS" err; then
    grep -Eq "^device: CPU, .*OpenBLAS (Haswell|Zen|SkylakeX|Cooperlake|SapphireRapids)" err ||
        fail "blas_core: an AVX2 CPU runs OpenBLAS's narrow kernels: $(grep '^device:' err)"
    run 0 blas_core_user env OPENBLAS_CORETYPE=Nehalem "$B/dctrain" blas.ini --device cpu --stages train --out blas
    grep -Eq "^device: CPU, .*OpenBLAS Nehalem$" err || fail "blas_core_user: OPENBLAS_CORETYPE=Nehalem not kept: $(grep '^device:' err)"
fi

cat >tiny.ini <<EOF
[data]
set = mnist
dir = $MNIST
train_limit = 2000

[train]
device = cpu
epochs = 1
batch = 64
lr = 0.05
threads = 1

[prune]
method = sparsity
sparsity_fc = 0.9
rounds = 1
retrain_epochs = 1
retrain_lr = 0.01

[quantize]
bits_fc = 5
finetune_epochs = 1

[encode]
file = tiny.dcm

[fc]
outputs = 300
activation = relu

[fc]
outputs = 100
activation = relu

[fc]
outputs = 10
EOF
run 0 dctrain "$B/dctrain" tiny.ini --out run --quiet || { echo "cli_model: no model to test"; exit 1; }
M=run/tiny.dcm
[ -s "$M" ] || { fail "dctrain wrote no $M"; exit 1; }
SIZE=$(wc -c <"$M")
grep -q "\"file_bytes\": $SIZE," run/summary.json || fail "summary.json file_bytes is not the size of $M ($SIZE)"

# ---- the good file ----
run 0 dcinfo "$B/dcinfo" "$M"
for want in "format version 1" "fc1.weight" "fc2.weight" "fc3.weight" "total \(file\)" "compression rate"; do
    grep -Eq "$want" out || fail "dcinfo: no '$want' in its output"
done
run 0 dcinfo_json "$B/dcinfo" "$M" --json
grep -q '"name": "fc1.weight"' out || fail "dcinfo --json: no fc1.weight record"
run 0 dcinfo_net "$B/dcinfo" "$M" --net
grep -Eq 'outputs *= *300' out || fail "dcinfo --net: no network description"
run 0 dceval "$B/dceval" "$M" --data "$MNIST" --device cpu --threads 1
# dctrain evaluated the decoded file on the same 10,000 test images: same figure
ACC=$(sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p' out)
WANT=$(sed -n 's/.*"stage": "encode".*"test_accuracy": \([0-9.]*\),.*/\1/p' run/summary.json |
    awk '{ printf "%.2f", 100 * $1 }')
[ -n "$ACC" ] && [ "$ACC" = "$WANT" ] || fail "dceval: accuracy '$ACC'%, dctrain reported '$WANT'% for the decoded file"
awk -v a="${ACC:-0}" 'BEGIN { exit !(a > 50) }' || fail "dceval: accuracy $ACC% is no better than chance"

for fmt in auto dense csr codebook; do
    for batch in 1 64; do
        run 0 "dcinfer $fmt batch $batch" "$B/dcinfer" "$M" --data "$MNIST" --device cpu --threads 1 \
            --format $fmt --batch $batch --repeats 3 --verify --json infer.json
        IACC=$(sed -n 's/^test accuracy \([0-9.]*\)%.*/\1/p' out)
        [ "$IACC" = "$ACC" ] || fail "dcinfer --format $fmt: accuracy '$IACC'%, dceval '$ACC'%"
        grep -q "verify: 0 of 10000 predictions differ" out || fail "dcinfer --format $fmt --batch $batch: no clean verify"
        grep -q '"verify_differ": 0' infer.json || fail "dcinfer --json: no verify record"
        [ $fmt = auto ] || [ "$(grep -c "^fc[123].weight .* $fmt " out)" = 3 ] ||
            fail "dcinfer --format $fmt: not every weight in $fmt"
    done
done

# ---- usage errors ----
run 2 dcinfer_no_data "$B/dcinfer" "$M" && grep -q -- "--data" err || fail "dcinfer without --data: no hint"
run 2 dcinfer_bad_format "$B/dcinfer" "$M" --data "$MNIST" --format coo && one_line dcinfer_bad_format -- "--format coo"
run 2 dcinfer_bad_batch "$B/dcinfer" "$M" --data "$MNIST" --batch 0 && one_line dcinfer_bad_batch -- "--batch 0"
run 2 dceval_no_data "$B/dceval" "$M" && grep -q -- "--data" err || fail "dceval without --data: no hint"
run 2 dcinfo_no_file "$B/dcinfo"
run 2 dcinfo_bogus "$B/dcinfo" "$M" --bogus && one_line dcinfo_bogus -- "--bogus"
mkdir empty_dir
run 1 dceval_no_files "$B/dceval" "$M" --data empty_dir --device cpu && one_line dceval_no_files "empty_dir/.*not found"

# ---- damaged copies: dcinfo (and dceval on a few) exit 1 with one line ----
# damaged NAME REGEX [dceval]: checks bad.dcm
damaged() {
    run 1 "dcinfo $1" "$B/dcinfo" bad.dcm && one_line "dcinfo $1" "^dcinfo: bad\.dcm: .*$2"
    if [ "${3:-}" = dceval ]; then
        run 1 "dceval $1" "$B/dceval" bad.dcm --data "$MNIST" --device cpu --threads 1 &&
            one_line "dceval $1" "^dceval: bad\.dcm: .*$2"
        run 1 "dcinfer $1" "$B/dcinfer" bad.dcm --data "$MNIST" --device cpu --threads 1 &&
            one_line "dcinfer $1" "^dcinfer: bad\.dcm: .*$2"
    fi
}
# put_byte OFFSET VALUE(0..255) into bad.dcm
put_byte() { printf "\\x$(printf %02x "$2")" | dd of=bad.dcm bs=1 seek="$1" conv=notrunc status=none; }
get_byte() { od -An -tu1 -j"$1" -N1 "$M" | tr -d ' '; }

# header: magic 8, version 4, flags 4, dataset 4, shape 16, sections 4,
# description length 4 (L), description, CRC 4; then the sections
L=$(od -An -tu4 -j40 -N4 "$M" | tr -d ' ')
HDR=$((48 + L))
CUTS="0 1 4 7 8 9 11 12 15 16 20 24 28 32 36 40 43 44 45 $((44 + L / 2)) $((HDR - 4)) $((HDR - 1)) $HDR
      $((HDR + 1)) $((HDR + 3)) $((HDR + 4)) $((HDR + 5)) $((HDR + 40)) $((SIZE - 4)) $((SIZE - 1))"
for i in $(seq 1 24); do CUTS="$CUTS $((SIZE * i / 25))"; done
for c in $CUTS; do
    head -c "$c" "$M" >bad.dcm
    damaged "cut to $c of $SIZE bytes" "truncated"
done
head -c $((SIZE / 2)) "$M" >bad.dcm
damaged "cut in half" "truncated" dceval

cp "$M" bad.dcm && put_byte 0 88
damaged "wrong magic" "magic" dceval
cp "$M" bad.dcm && put_byte 8 2
damaged "version 2" "version 2" dceval
cp "$M" bad.dcm && put_byte 8 0
damaged "version 0" "version 0"
cp "$M" bad.dcm && put_byte $((SIZE / 2)) $(($(get_byte $((SIZE / 2))) ^ 1))
damaged "one bit flipped in the middle" "CRC" dceval
cp "$M" bad.dcm && put_byte $((44 + L / 2)) $(($(get_byte $((44 + L / 2))) ^ 32))
damaged "flipped byte in the network description" "CRC"
# a sweep of single-byte changes over the whole file: every one is refused
for i in $(seq 0 63); do
    off=$((12 + (SIZE - 13) * i / 63))
    cp "$M" bad.dcm && put_byte "$off" $(($(get_byte "$off") ^ 0xa5))
    damaged "byte $off changed" "."
done
cp "$M" bad.dcm && printf 'x' >>bad.dcm
damaged "a trailing byte" "after the last section" dceval
: >bad.dcm
damaged "empty file" "truncated" dceval
rm -f bad.dcm
damaged "missing file" "cannot open" dceval
mkdir bad.dcm
run 1 "dcinfo on a folder" "$B/dcinfo" bad.dcm && one_line "dcinfo on a folder" "^dcinfo: bad\.dcm: "

cli_finish cli_model
