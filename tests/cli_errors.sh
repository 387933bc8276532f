#!/usr/bin/env bash
# cli_errors.sh BUILD_DIR SOURCE_DIR: what a user sees when dctrain is given
# bad input.  A bad config, a bad flag, a missing or damaged file must each
# give one line on stderr that names the problem (FILE:LINE: [section] key for
# config errors), exit 2 (usage, config) or 1 (run time), and never a crash.
# Runs that must really train use 500 images and one epoch, so the whole
# script takes a few seconds.  Exit 0 pass, 1 fail, 77 no MNIST.
set -u
. "$(dirname "$0")/check_cli.sh"
cli_setup cli_errors "${1:?usage: cli_errors.sh BUILD_DIR SOURCE_DIR}" "${2:?usage: cli_errors.sh BUILD_DIR SOURCE_DIR}" dctrain

# A small valid job; line numbers below count on this layout.
small_job_ini >good.ini
Q=(--device cpu --quiet)

# ---- config errors: exit 2, "dctrain: FILE:LINE: [section] key: reason" ----
# config CASE SED_SCRIPT LINE SECTION KEY REASON_REGEX
config() {
    sed "$2" good.ini >"$1.ini"
    run 2 "$1" "$B/dctrain" "$1.ini" --out out_cfg "${Q[@]}" &&
        one_line "$1" "^dctrain: $1\.ini:$3: \[$4\]( $5)?: .*$6"
}
config unknown_key 's/^batch = 64/batch = 64\nbatchez = 3/' 10 train batchez 'unknown key'
config not_an_int 's/^batch = 64/batch = 6x4/' 9 train batch "'6x4' is not an integer"
config not_a_float 's/^threads = 1/threads = 1\nlr = 0.1.2/' 11 train lr "not a number"
config out_of_range 's/^outputs = 30/outputs = 0/' 14 fc outputs 'must be'
config bad_enum 's/^set = mnist/set = imagenet/' 2 data set 'imagenet'
config missing_required '/^set = mnist/d' 1 data set 'required key missing'
config unknown_section 's/^\[train\]/[trian]/' 7 trian '' 'unknown section'
config duplicate_key 's/^epochs = 1/epochs = 1\nepochs = 2/' 9 train epochs ''
# a line without '=' names the file and line (no key to name)
sed 's/^epochs = 1/epochs 1/' good.ini >no_equals.ini
run 2 no_equals "$B/dctrain" no_equals.ini --out out_cfg "${Q[@]}" && one_line no_equals "^dctrain: no_equals\.ini:8: .*="
# --set overrides are checked like file values and named as given
run 2 set_unknown "$B/dctrain" good.ini --set train.bogus=1 --out out_cfg "${Q[@]}" &&
    one_line set_unknown "^dctrain: --set train\.bogus=1: .*unknown key"
run 2 set_not_int "$B/dctrain" good.ini --set train.epochs=6x4 --out out_cfg "${Q[@]}" &&
    one_line set_not_int "^dctrain: --set train\.epochs=6x4: .*not an integer"
run 2 set_no_dot "$B/dctrain" good.ini --set epochs=3 --out out_cfg "${Q[@]}" && one_line set_no_dot "epochs=3"
run 2 set_no_layer "$B/dctrain" good.ini --set fc9.prune=1 --out out_cfg "${Q[@]}" && one_line set_no_layer "fc9"
# a value a config file would cut as a comment: refused, so --print-config gives back what runs
run 2 set_comment "$B/dctrain" good.ini --set "data.dir=dm #2" --print-config &&
    one_line set_comment "^dctrain: --set data\.dir=dm #2: .*comment"
[ ! -e out_cfg ] || fail "a config error still created the output folder"

# ---- [base]: a mistake in either file names that file; --print-config shows the merge ----
printf '[base]\nconfig = good.ini\n[train]\nepochs = 2\n[fc]\nname = fc1\nprune = -3\n' >child.ini
run 2 base_layer_key "$B/dctrain" child.ini --out out_cfg "${Q[@]}" &&
    one_line base_layer_key "^dctrain: child\.ini:7: \[fc\] prune: must be >= -1"
sed 's/^batch = 64/batch = 6x4/' good.ini >bad_base.ini
printf '[base]\nconfig = bad_base.ini\n' >child_of_bad.ini
run 2 base_bad "$B/dctrain" child_of_bad.ini --out out_cfg "${Q[@]}" &&
    one_line base_bad "^dctrain: bad_base\.ini:9: \[train\] batch: '6x4' is not an integer"
printf '[base]\nconfig = nothere.ini\n' >child_of_none.ini
run 1 base_missing "$B/dctrain" child_of_none.ini --out out_cfg "${Q[@]}" &&
    one_line base_missing "^dctrain: child_of_none\.ini:2: \[base\] config: cannot open config nothere\.ini"
run 0 print_config "$B/dctrain" child.ini --print-config --set fc1.prune=0.5 --set train.seed=3
grep -qx 'epochs = 2' out && grep -qx 'seed = 3' out && grep -qx 'prune=0.5' out && ! grep -q '\[base\]' out ||
    fail "print_config: the merged config lacks epochs = 2, seed = 3 or prune=0.5, or still has [base]"
cp out printed.ini
run 0 print_again "$B/dctrain" printed.ini --print-config
[ "$(tail -n +2 out)" = "$(tail -n +2 printed.ini)" ] || fail "print_again: the printed config does not print the same"
[ ! -e out_cfg ] || fail "--print-config or a [base] error created the output folder"

# ---- every committed config reads (through its [base] chain) and prints back the same ----
for c in "$S"/configs/*.ini; do
    n=$(basename "$c" .ini)
    run 0 "cfg_$n" "$B/dctrain" "$c" --print-config || continue
    cp out "printed_$n.ini"
    run 0 "cfg_${n}_again" "$B/dctrain" "printed_$n.ini" --print-config &&
        { [ "$(tail -n +2 out)" = "$(tail -n +2 "printed_$n.ini")" ] || fail "cfg_$n: the printed config does not print the same"; }
done

# ---- a missing config file: non-zero, the path named ----
run 1or2 missing_config "$B/dctrain" "$T/nothere.ini" "${Q[@]}" && one_line missing_config "$T/nothere\.ini"

# ---- bad flags: exit 2 ----
run 2 bogus_flag "$B/dctrain" good.ini --bogus && one_line bogus_flag -- "--bogus"
run 2 bad_device "$B/dctrain" good.ini --device gpu && one_line bad_device "gpu"
run 2 set_no_value "$B/dctrain" good.ini --set && one_line set_no_value -- "--set needs a value"
run 2 out_no_value "$B/dctrain" good.ini --out && one_line out_no_value -- "--out needs a value"
run 2 stop_after_bad "$B/dctrain" good.ini --stop-after x && one_line stop_after_bad -- "--stop-after"
run 2 two_configs "$B/dctrain" good.ini good.ini && one_line two_configs "more than one config"
run 2 resume_and_init "$B/dctrain" good.ini --resume a --init b && one_line resume_and_init "together"
run 2 no_args "$B/dctrain"
grep -q usage err || fail "no_args: no usage text on stderr"
run 0 help "$B/dctrain" --help
grep -q -- "--resume" out || fail "help: --help does not describe --resume"

# ---- data: missing or damaged files exit 1 and name the file ----
run 1 missing_data_dir "$B/dctrain" good.ini --set data.dir="$T/no_such_dir" --out out_d "${Q[@]}" &&
    one_line missing_data_dir "$T/no_such_dir/train-images-idx3-ubyte.*not found"
mkdir dm && cp "$MNIST"/*-ubyte* dm/ || { fail "cannot copy $MNIST"; exit 1; }
# data_case NAME FILE REGEX: run on dm/ and expect exit 1 naming FILE
data_case() {
    run 1 "$1" "$B/dctrain" good.ini --set data.dir="$T/dm" --out out_d "${Q[@]}" &&
        one_line "$1" "^dctrain: $T/dm/$2: .*$3"
}
restore() { rm -f dm/*; cp "$MNIST"/*-ubyte* dm/; }
IMG=train-images-idx3-ubyte
if [ -e dm/$IMG.gz ]; then
    head -c 100000 "$MNIST/$IMG.gz" >dm/$IMG.gz
    data_case truncated_gzip "$IMG\.gz" "truncated"
    restore
fi
rm -f dm/$IMG.gz
# a raw IDX file with the label magic where the image magic belongs
printf '\x00\x00\x08\x01\x00\x00\xea\x60\x00\x00\x00\x1c\x00\x00\x00\x1c' >dm/$IMG
data_case wrong_magic "$IMG" "magic"
# the right header, then only a fraction of the 60,000 images
printf '\x00\x00\x08\x03\x00\x00\xea\x60\x00\x00\x00\x1c\x00\x00\x00\x1c' >dm/$IMG
head -c 5000 /dev/zero >>dm/$IMG
data_case truncated_raw "$IMG" "truncated"
: >dm/$IMG
data_case empty_file "$IMG" "truncated"
restore
rm -f dm/t10k-labels-idx1-ubyte*
data_case missing_labels "t10k-labels-idx1-ubyte.*" "not found"
restore
# a label of 11 in the test labels
rm -f dm/t10k-labels-idx1-ubyte*
{ printf '\x00\x00\x08\x01\x00\x00\x27\x10'; head -c 9999 /dev/zero; printf '\x0b'; } >dm/t10k-labels-idx1-ubyte
data_case label_range "t10k-labels-idx1-ubyte" "out of range"
restore

# ---- runs that happen: one epoch, then resume errors on its checkpoint ----
run 0 one_epoch "$B/dctrain" good.ini --out run1 "${Q[@]}"
[ -s run1/summary.json ] && grep -q '"stage": "train"' run1/summary.json ||
    fail "one_epoch: summary.json has no train record"
[ "$(cat run1/metrics.csv 2>/dev/null | wc -l)" = 2 ] || fail "one_epoch: metrics.csv should have a header and one row"
[ -s run1/checkpoint.bin ] || fail "one_epoch: no checkpoint.bin"
# epochs = 0 and no compression section: nothing to run, still a clean exit
run 0 zero_epochs "$B/dctrain" good.ini --set train.epochs=0 --out run0 "${Q[@]}"
grep -q '"stages": \[' run0/summary.json 2>/dev/null || fail "zero_epochs: no summary.json with a stages list"
if [ -s run1/checkpoint.bin ]; then
    run 1 resume_missing "$B/dctrain" good.ini --resume "$T/none.bin" --out run2 "${Q[@]}" &&
        one_line resume_missing "$T/none\.bin"
    head -c 100 run1/checkpoint.bin >cut.bin
    run 1 resume_truncated "$B/dctrain" good.ini --resume cut.bin --out run2 "${Q[@]}" &&
        one_line resume_truncated "cut\.bin: .*truncated"
    run 1 resume_not_ckpt "$B/dctrain" good.ini --resume good.ini --out run2 "${Q[@]}" &&
        one_line resume_not_ckpt "good\.ini: .*magic"
    run 1 resume_other_net "$B/dctrain" good.ini --set fc1.outputs=40 --resume run1/checkpoint.bin --out run2 "${Q[@]}" &&
        one_line resume_other_net "checkpoint\.bin: .*fc1"
    run 1 init_other_net "$B/dctrain" good.ini --set fc1.outputs=40 --init run1/checkpoint.bin --out run2 "${Q[@]}" &&
        one_line init_other_net "checkpoint\.bin: .*fc1"
    # a run that diverges (retraining at lr 1e6 after a good training epoch) stops with
    # one line naming stage, epoch and step, exit 1; the checkpoint of the training
    # epoch is intact and resumes to the end with a sane learning rate
    { sed -n '1,/^threads/p' good.ini
      printf '\n[prune]\nmethod = sparsity\nsparsity_fc = 0.5\nrounds = 1\nretrain_epochs = 1\nretrain_lr = 1e6\n\n'
      sed -n '/^\[fc\]/,$p' good.ini; } >diverge.ini
    run 1 diverged "$B/dctrain" diverge.ini --out run_div "${Q[@]}" &&
        one_line diverged "stage prune-1, epoch 1, by step [0-9]+ of [0-9]+: the training loss is (NaN|infinite)"
    run 0 diverged_resumed "$B/dctrain" diverge.ini --set prune.retrain_lr=0.01 --resume run_div/checkpoint.bin \
        --out run_div "${Q[@]}"
    grep -q '"stage": "prune-1"' run_div/summary.json 2>/dev/null || fail "diverged_resumed: no prune-1 record"
    # a finished run resumed: nothing left to do, and no crash
    run 0 resume_finished "$B/dctrain" good.ini --resume run1/checkpoint.bin --out run1 "${Q[@]}"
fi

cli_finish cli_errors
