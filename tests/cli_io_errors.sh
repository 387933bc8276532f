#!/usr/bin/env bash
# cli_io_errors.sh BUILD_DIR SOURCE_DIR: dctrain when its output cannot be
# written (issue 9): a full disk (a small tmpfs where a user namespace may
# mount one, and a file-size limit, ulimit -f, everywhere, for dctrain,
# dcexport and dcinfer --json), a read-only run folder, the run folder removed mid-run, and
# output paths that cannot be created.  Each must stop with exit 1 and one
# line naming the file and the OS's reason, leave no temporary file, and lose
# nothing already finished: the last checkpoint intact, and resuming from it
# ends with the model an uninterrupted run writes, byte for byte.  A few
# seconds in all.
# Exit 0 pass, 1 fail, 77 no MNIST.
set -u
. "$(dirname "$0")/check_cli.sh"
cli_setup cli_io_errors "${1:?usage: cli_io_errors.sh BUILD_DIR SOURCE_DIR}" "${2:?usage: cli_io_errors.sh BUILD_DIR SOURCE_DIR}" dctrain dcexport dcinfer

# Train 1 epoch, one prune round, encode: checkpoints of about 190 KB
# (values and momentum) before pruning and 290 KB after (plus masks).
small_job_ini "[prune]" "method = sparsity" "sparsity_fc = 0.5" "rounds = 1" "retrain_epochs = 1" \
    "retrain_lr = 0.01" "" "[encode]" "file = model.dcm" >io.ini
Q=(--device cpu --quiet)
dct() { "$B/dctrain" io.ini "${Q[@]}" "$@"; }

run 0 reference dct --out ref || { echo "cli_io_errors: the uninterrupted run failed"; exit 1; }

# intact NAME DIR: no temporary file left, and resuming from DIR's checkpoint
# (nothing in the way now) ends with the reference model.
intact() {
    ! ls "$2"/*.tmp >/dev/null 2>&1 || fail "$1: temporary file left: $(ls "$2"/*.tmp)"
    [ -s "$2/checkpoint.bin" ] || { fail "$1: the earlier checkpoint is gone"; return; }
    run 0 "$1: resume" dct --out "$2" --resume "$2/checkpoint.bin" &&
        { cmp -s ref/model.dcm "$2/model.dcm" || fail "$1: resumed model.dcm differs from the uninterrupted run's"; }
}

# ---- disk full: a 300 KB tmpfs holds the first checkpoint but not the next beside it ----
mkdir tmpfs
if unshare -rm true 2>/dev/null && unshare -rm mount -t tmpfs -o size=300k none tmpfs 2>/dev/null; then
    # the mount lives only in the namespace: the run's folder is copied out before it ends
    run 1 disk_full unshare -rm bash -c 'mount -t tmpfs -o size=300k none tmpfs || exit 3
        "$@" --out tmpfs/run; rc=$?; cp -a tmpfs/run full_after; exit $rc' bash "$B/dctrain" io.ini "${Q[@]}" &&
        one_line disk_full "^dctrain: tmpfs/run/checkpoint\.bin\.tmp: write failed: No space left on device; the earlier tmpfs/run/checkpoint\.bin, if any, is intact$"
    intact disk_full full_after
else
    echo "cli_io_errors: no user namespace to mount a tmpfs in: the ENOSPC case skipped (ulimit -f below covers a full disk)"
fi

# ---- file-size limit: the checkpoint after pruning is the first file over 240 KB ----
# SIGXFSZ at its default action, which kills a process passing the limit
# without a word (exit 153): the tools ignore it themselves, so the write
# fails with EFBIG and is named.  (env resets a SIGXFSZ this script may have
# been started with ignored; an env without --default-signal cannot.)
limited() { # limited KB CMD...: CMD under ulimit -f KB, SIGXFSZ at its default
    local kb=$1 dflt=()
    shift
    ! env --default-signal=XFSZ true 2>/dev/null || dflt=(env --default-signal=XFSZ)
    bash -c 'ulimit -f "$1"; shift; exec "$@"' bash "$kb" "${dflt[@]}" "$@"
}
run 1 file_size_limit limited 240 "$B/dctrain" io.ini "${Q[@]}" --out fsize &&
    one_line file_size_limit "^dctrain: fsize/checkpoint\.bin\.tmp: write failed: File too large; the earlier fsize/checkpoint\.bin, if any, is intact$"
intact file_size_limit fsize

# dcexport: the dense fc1 alone is 94 KB; a file of the same name written
# before is left as it was, and no temporary file (ours or libzip's) stays
export_limit() { # export_limit EXT LINE_REGEX
    printf 'earlier\n' >"big.$1"
    if run 1 "export_limit_$1" limited 8 "$B/dcexport" ref/model.dcm "big.$1"; then
        if grep -q "built without" err; then
            echo "cli_io_errors: $(cat err): file-size limit on .$1 skipped"
        else
            one_line "export_limit_$1" "$2"
        fi
    fi
    [ "$(cat "big.$1")" = earlier ] || fail "export_limit_$1: the earlier big.$1 changed"
    [ "$(ls big.* | wc -l)" = 1 ] || fail "export_limit_$1: files left: $(ls big.*)"
    rm -f big.*
}
export_limit safetensors "^dcexport: big\.safetensors\.tmp: write failed: File too large; the earlier big\.safetensors, if any, is intact$"
export_limit npz "^dcexport: big\.npz: write failed: .*File too large; the earlier big\.npz, if any, is intact$"

# dcinfer --json past the limit: the earlier report stays whole (it was
# truncated before the report went through dc_file_write_atomic).  Its
# output goes through a pipe, which the limit does not cover.
printf 'earlier\n' >report.json
{ limited 0 "$B/dcinfer" ref/model.dcm --data "$MNIST" --device cpu --threads 1 --json report.json 2>&1
  echo "exit $?"; } | cat >json_limit.log
[ "$(tail -n 1 json_limit.log)" = "exit 1" ] || fail "json_limit: $(tail -n 1 json_limit.log), expected exit 1"
grep -q "^dcinfer: report\.json\.tmp: write failed: File too large; the earlier report\.json, if any, is intact$" json_limit.log ||
    fail "json_limit: no line naming the file and the reason: $(grep dcinfer: json_limit.log | head -c 300)"
[ "$(cat report.json)" = earlier ] || fail "json_limit: the earlier report.json changed"
! ls report.json.tmp >/dev/null 2>&1 || fail "json_limit: report.json.tmp left"

# ---- read-only run folder: resuming into it fails on the first write ----
# root writes through chmod 555, so the run that must fail runs as nobody
as_user() {
    if [ "$(id -u)" = 0 ]; then setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; else "$@"; fi
}
run 0 ro_first dct --out ro --stop-after 1
chmod 755 "$T"
chmod 555 ro
if as_user touch ro/probe 2>/dev/null; then
    rm -f ro/probe
    echo "cli_io_errors: cannot make a folder read-only for this user (root without setpriv?): read-only case skipped"
else
    cp ro/checkpoint.bin ro_ckpt_copy
    run 1 read_only as_user "$B/dctrain" io.ini "${Q[@]}" --out ro --resume ro/checkpoint.bin &&
        one_line read_only "^dctrain: ro/(metrics\.csv: cannot open|summary\.json\.tmp: cannot create): Permission denied"
    cmp -s ro/checkpoint.bin ro_ckpt_copy || fail "read_only: the checkpoint changed"
fi
chmod 755 ro
intact read_only ro

# ---- the run folder removed mid-run: stopped after epoch 1's metrics row, folder removed, continued ----
DC_KILL_AT=epoch:1:stop "$B/dctrain" io.ini "${Q[@]}" --out gone >out 2>err &
pid=$!
for _ in $(seq 600); do
    [ "$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)" = T ] && break
    sleep 0.05
done
if [ "$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)" = T ]; then
    rm -rf gone
    kill -CONT $pid
    wait $pid
    RC=$?
    [ "$RC" = 1 ] || fail "folder_removed: exit $RC, expected 1: $(head -c 300 err)"
    one_line folder_removed "^dctrain: gone/checkpoint\.bin\.tmp: cannot create: No such file or directory \(was its folder removed\?\)"
else
    kill -9 $pid 2>/dev/null
    fail "folder_removed: dctrain never stopped at DC_KILL_AT=epoch:1:stop: $(head -c 300 err)"
fi

# ---- output paths that cannot be created: each named, the checkpoint before intact ----
run 0 paths_first dct --out paths --stop-after 2
for f in model.dcm summary.json; do
    mkdir "paths/$f.tmp"
    re=${f/./\\.}
    run 1 "$f blocked" dct --out paths --resume paths/checkpoint.bin &&
        one_line "$f blocked" "^dctrain: paths/$re\.tmp: cannot create: Is a directory; the earlier paths/$re, if any, is intact$"
    rmdir "paths/$f.tmp"
done
intact paths_blocked paths
mkdir -p metrics_dir/metrics.csv
run 1 metrics_blocked dct --out metrics_dir &&
    one_line metrics_blocked "^dctrain: metrics_dir/metrics\.csv: cannot open: Is a directory$"
mkdir -p sens/sensitivity.csv
run 1 sensitivity_blocked dct --out sens --sensitivity &&
    one_line sensitivity_blocked "^dctrain: sens/sensitivity\.csv: cannot create: Is a directory$"

cli_finish cli_io_errors
