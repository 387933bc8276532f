#!/usr/bin/env bash
# gpu-check.sh OUTDIR [--data DIR] [--budget SECONDS]: everything the GPU side
# needs checked, in one run on a machine with one NVIDIA GPU.  It builds with
# CUDA into OUTDIR/build (sm_90 and the GPU's own architecture; cuDNN found as
# CMakeLists.txt finds it: CUDNN_ROOT, the toolkit, or PyTorch's Python
# packages), then runs these steps, each command under `timeout` and the whole
# run within the budget (default 540 s, build not counted):
#   ctest       the whole suite with DC_REQUIRE_GPU=1 (a GPU test that skips fails)
#   sanitizers  compute-sanitizer memcheck, racecheck, synccheck on test_gpu_parity, test_gpu_spmat
#   kmeans      bench_kmeans: GPU k-means against the CPU's on freshly trained LeNet-300-100 weights
#   dcinfer     dctrain (2,000 MNIST images, every stage, on the GPU), then dcinfer --device cuda --verify
#   sparse_fc   bench/sparse_fc.sh (its GPU columns; needs PyTorch); result file copied here
#   train       bench_train vs PyTorch at batch 128, FP32 and TF32: images/s and peak GPU memory
#   vgg19       a short VGG-19 CIFAR-10 schedule on the GPU: test accuracy a broken training cannot reach
# Data: DIR/mnist and DIR/cifar10 as scripts/fetch-data.sh lays them out (default: data/).
# Writes OUTDIR/report.md, OUTDIR/logs/ and OUTDIR/work/ (a rerun replaces
# them and reuses OUTDIR/build).  Exit: 0 every step passed or was
# skipped for a missing prerequisite, 1 a step failed, 2 usage, 77 no GPU.
set -u

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
usage() { echo "usage: scripts/gpu-check.sh OUTDIR [--data DIR] [--budget SECONDS]" >&2; exit 2; }

out=""; data="$root/data"; budget=540
while [ $# -gt 0 ]; do
    case "$1" in
    --data) [ $# -ge 2 ] || usage; data="$2"; shift 2 ;;
    --budget)
        if [ $# -lt 2 ] || ! [ "$2" -gt 0 ] 2>/dev/null; then usage; fi
        budget="$2"; shift 2 ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "gpu-check: unknown option $1" >&2; usage ;;
    *) [ -z "$out" ] || usage; out="$1"; shift ;;
    esac
done
[ -n "$out" ] || usage

# ---- is there a GPU?  One line and 77 when not.
why=""
if ! command -v nvidia-smi >/dev/null 2>&1; then
    why="nvidia-smi not found"
elif ! gpus="$(nvidia-smi -L 2>&1)"; then
    why="nvidia-smi: $(printf '%s\n' "$gpus" | head -1)"
elif ! printf '%s\n' "$gpus" | grep -q '^GPU [0-9]'; then
    why="nvidia-smi lists no GPU"
fi
if [ -n "$why" ]; then
    echo "gpu-check: no NVIDIA GPU answers ($why); nothing to check"
    exit 77
fi
ngpus="$(printf '%s\n' "$gpus" | grep -c '^GPU [0-9]')"
[ "$ngpus" = 1 ] || export CUDA_VISIBLE_DEVICES=0   # one GPU: the first
gpu_query() { nvidia-smi -i 0 --query-gpu="$1" --format=csv,noheader 2>/dev/null | head -1 | sed 's/^ *//; s/ *$//'; }
gpu_name="$(gpu_query name)"; gpu_driver="$(gpu_query driver_version)"; gpu_mem="$(gpu_query memory.total)"
gpu_cc="$(gpu_query compute_cap)"   # drivers before R510 lack this field: then sm_90 alone
case "$gpu_cc" in [0-9]*.[0-9]*) ;; *) gpu_cc="" ;; esac
cuda_drv="$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1)"

mkdir -p "$out" || exit 1
out="$(cd "$out" && pwd)"; data="$(cd "$data" 2>/dev/null && pwd || echo "$data")"
build="$out/build"; logs="$out/logs"; work="$out/work"
rm -rf "$logs" "$work"; mkdir -p "$logs" "$work" || exit 1
cd "$root" || exit 1
jobs="$(nproc)"
py_torch=""   # a Python whose torch sees the GPU, found before the steps
for py in ${PYTHON:-} python3 /usr/bin/python3; do
    command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
        py_torch="$(command -v "$py")"; break
    fi
done
have_mnist=0; [ -e "$data/mnist/train-images-idx3-ubyte.gz" ] || [ -e "$data/mnist/train-images-idx3-ubyte" ] && have_mnist=1
have_cifar=0; [ -e "$data/cifar10/cifar-10-batches-bin/data_batch_1.bin" ] && have_cifar=1

# ---- step bookkeeping: name, status, seconds, one line of figures; details in work/<step>.md
names=(); states=(); secs=(); notes=()
cmds="$work/commands.txt"; : >"$cmds"
step_end=0; deadline=0

# run_cmd LOG LIMIT CMD...: CMD under `timeout` (LIMIT seconds, or less when the
# step's or the run's time is nearly spent), output appended to LOG.
run_cmd() {
    local log="$1" limit="$2" now left rc
    shift 2
    now=$(date +%s); left=$((step_end - now))
    [ "$limit" -le "$left" ] || limit=$left
    if [ "$limit" -lt 5 ]; then
        echo "not run (time budget spent): $*" >>"$log"
        return 124
    fi
    { printf 'timeout %s' "$limit"; printf ' %q' "$@"; printf '\n'; } | tee -a "$log" >>"$cmds"
    timeout -k 10 "$limit" "$@" >>"$log" 2>&1
    rc=$?
    echo "(exit $rc after $(($(date +%s) - now)) s)" >>"$log"
    [ "$rc" != 124 ] && [ "$rc" != 137 ] || echo "TIMEOUT after $limit s" >>"$log"
    return "$rc"
}

# step NAME LIMIT FUNC: FUNC returns 0 pass, 77 skipped (a prerequisite is missing), else fail;
# it sets `note` (figures for the summary table) and may write work/NAME.md.
step() {
    local name="$1" limit="$2" fn="$3" t0 rc state
    t0=$(date +%s); step_end=$((t0 + limit)); [ "$step_end" -le "$deadline" ] || step_end=$deadline
    note=""
    echo "== $name (up to $((step_end - t0)) s)" >&2
    if [ $((step_end - t0)) -lt 5 ]; then
        rc=124; note="not run: the time budget ($budget s) was spent"
    else
        echo "### $name" >>"$cmds"
        "$fn"; rc=$?
    fi
    case "$rc" in 0) state=PASS ;; 77) state=SKIP ;; *) state=FAIL ;; esac
    names+=("$name"); states+=("$state"); secs+=("$(($(date +%s) - t0))"); notes+=("${note:-exit $rc}")
    echo "   $state ($(($(date +%s) - t0)) s): ${note:-exit $rc}" >&2
}

# ---- the build (not counted in the budget; 15 minutes at most)
archs="90"; cc="${gpu_cc//./}"; [ -z "$cc" ] || [ "$cc" = 90 ] || archs="90;$cc"
do_build() {
    local extra=()
    [ -z "${CUDNN_ROOT:-}" ] || extra=(-DCUDNN_ROOT="$CUDNN_ROOT")
    # a CUDA N toolkit needs a driver for CUDA N or later: one clear line instead of every test failing
    local tk; tk="$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9]*\)\..*/\1/p' | head -1)"
    if [ -n "$tk" ] && [ -n "$cuda_drv" ] && [ "${cuda_drv%%.*}" -lt "$tk" ] 2>/dev/null; then
        note="the driver runs CUDA $cuda_drv, nvcc is CUDA $tk: its builds cannot run here (a CUDA ${cuda_drv%%.*} toolkit or a newer driver)"
        return 1
    fi
    run_cmd "$logs/build.log" 300 cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDC_CUDA=ON \
        "-DCMAKE_CUDA_ARCHITECTURES=$archs" -DDC_TEST_DATA_DIR="$data" -DDC_WERROR=ON "${extra[@]}" ||
        { note="cmake failed"; return 1; }
    local werror="warnings as errors"
    if ! run_cmd "$logs/build.log" 900 cmake --build "$build" -j "$jobs"; then
        # a toolchain we never built with may warn where ours does not: keep the session, report it
        werror="BUILT ONLY WITHOUT -Werror (the warnings: logs/build.log)"
        { run_cmd "$logs/build.log" 300 cmake -S "$root" -B "$build" -DDC_WERROR=OFF &&
            run_cmd "$logs/build.log" 900 cmake --build "$build" -j "$jobs"; } || { note="compile failed"; return 1; }
    fi
    note="sm $archs; $werror; $(grep -m1 -- '-- cuDNN:' "$logs/build.log" | sed 's/^-- //')"
}
deadline=$(($(date +%s) + 1200))
step build 1200 do_build
built=0; [ "${states[0]}" = PASS ] && built=1
# cuDNN from PyTorch's wheel has no system path: let the loader find it (and its sub-libraries)
cudnn_lib="$(sed -n 's/^DC_CUDNN_LIB:FILEPATH=//p' "$build/CMakeCache.txt" 2>/dev/null)"
if [ -f "$cudnn_lib" ]; then
    LD_LIBRARY_PATH="$(dirname "$cudnn_lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; export LD_LIBRARY_PATH
fi
need_build() { [ "$built" = 1 ] || { note="not run: the build failed"; return 1; }; }

# ---- the steps, cheapest and most telling first; the run ends within the budget
t_start=$(date +%s); deadline=$((t_start + budget))

do_ctest() {
    need_build || return 1
    local rc par=$((jobs >= 16 ? 4 : (jobs >= 4 ? 2 : 1)))
    # a few tests at once, each with its share of the cores (oversubscribed OpenMP crawls)
    run_cmd "$logs/ctest.log" 180 env DC_REQUIRE_GPU=1 OMP_NUM_THREADS="$((jobs / par))" ctest --test-dir "$build" \
        --output-on-failure --timeout 150 -j "$par"
    rc=$?
    note="$(grep -m1 'tests passed' "$logs/ctest.log")"
    local bad; bad="$(grep -E '\*\*\*' "$logs/ctest.log" |
        sed 's/^ *[0-9/]* *Test *#[0-9]*: *//; s/ *\.\.\.*/ /; s/  */ /g' | paste -sd ';' -)"
    [ -z "$bad" ] || note="$note; $bad"
    [ -n "$note" ] || note="exit $rc"
    return "$rc"
}

sanitizer=""
for s in compute-sanitizer /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
    command -v "$s" >/dev/null 2>&1 && { sanitizer="$(command -v "$s")"; break; }
done
do_sanitizers() {
    need_build || return 1
    [ -n "$sanitizer" ] || { note="compute-sanitizer not found (not in PATH nor /usr/local/cuda)"; return 77; }
    local t tool log rc fails=0 figs=() errs limit opt
    for t in test_gpu_parity test_gpu_spmat; do
        for tool in memcheck racecheck synccheck; do
            log="$logs/sanitizer_${tool}_$t.log"; limit=30; opt=()
            [ "$tool" != memcheck ] || { limit=50; opt=(--leak-check full); }
            # DC_TEST_SMALL: test_gpu_parity's cut-down sizes (test_gpu_spmat's are small); a fixed seed repeats a finding
            run_cmd "$log" "$limit" env DC_REQUIRE_GPU=1 DC_TEST_SMALL=1 DC_TEST_SEED=1 DC_TEST_DATA="$data" \
                DC_TEST_TMP="$work" "$sanitizer" --tool "$tool" "${opt[@]}" --error-exitcode 99 "$build/tests/$t"
            rc=$?
            errs="$(grep -Eo '(ERROR SUMMARY: [0-9]+ errors?|RACECHECK SUMMARY: [0-9]+ hazards? displayed \([0-9]+ errors?, [0-9]+ warnings?\))' "$log" |
                tail -1 | sed 's/ SUMMARY//; s/hazards* displayed //')"
            [ "$rc" = 0 ] || fails=$((fails + 1))
            figs+=("$t $tool: ${errs:-no summary}, exit $rc")
        done
    done
    note="$(printf '%s; ' "${figs[@]}")"
    [ "$fails" = 0 ]
}

# tiny_config FILE STAGES: LeNet-300-100 on 2,000 MNIST images, one epoch per stage, on the GPU
tiny_config() {
    {
        printf '[data]\nset = mnist\ndir = %s\ntrain_limit = 2000\n\n' "$data/mnist"
        printf '[train]\ndevice = cuda\nepochs = 1\nbatch = 64\nlr = 0.05\n\n'
        if [ "$2" = all ]; then
            printf '[prune]\nmethod = sparsity\nsparsity_fc = 0.9\nrounds = 1\nretrain_epochs = 1\nretrain_lr = 0.01\n\n'
            printf '[quantize]\nbits_fc = 5\nfinetune_epochs = 1\n\n[encode]\nfile = tiny.dcm\n\n'
        fi
        printf '[fc]\noutputs = 300\nactivation = relu\n\n[fc]\noutputs = 100\nactivation = relu\n\n[fc]\noutputs = 10\n'
    } >"$1"
}

do_kmeans() {
    need_build || return 1
    [ "$have_mnist" = 1 ] || { note="no MNIST in $data/mnist"; return 77; }
    local log="$logs/kmeans.log" prog="$build/bench/bench_kmeans"
    [ -x "$prog" ] || prog="$build/bench_kmeans"
    tiny_config "$work/kmeans.ini" train
    run_cmd "$log" 60 "$build/dctrain" "$work/kmeans.ini" --device cuda --out "$work/kmeans" --quiet ||
        { note="dctrain on the GPU failed (see logs/kmeans.log)"; return 1; }
    run_cmd "$log" 60 "$prog" "$work/kmeans.ini" "$work/kmeans/checkpoint.bin" --bits 4,5,8 --repeat 5 ||
        { note="bench_kmeans failed"; return 1; }
    # one JSON line per tensor and width: the CPU and CUDA medians and the largest centroid difference
    grep '^{"kind": "kmeans"' "$log" | sed -E 's/.*"param": "([^"]*)".*"k": ([0-9]+).*"cpu": \{"ms_median": ([0-9.]+).*"cuda": (null|\{"ms_median": ([0-9.]+).*"max_centroid_diff_vs_cpu": ([-0-9.e+]+|nan|inf)).*/\1 \2 \3 \5 \6/' \
        >"$work/kmeans.tsv"
    {
        echo "| tensor | k | CPU ms | CUDA ms | CPU/CUDA | max centroid diff vs CPU |"
        echo "|---|---|---|---|---|---|"
        awk '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, ($4 == "" ? "none" : $4),
               ($4 > 0 ? sprintf("%.1fx", $3 / $4) : "-"), ($5 == "" ? "-" : $5) }' "$work/kmeans.tsv"
    } >"$work/kmeans.md"
    local n bad
    n="$(wc -l <"$work/kmeans.tsv")"
    bad="$(awk 'NF < 5 || $5 ~ /nan|inf/ || !($5 + 0 <= 1e-5) { n++ } END { print n + 0 }' "$work/kmeans.tsv")"
    note="$n runs (tensor x k); $bad without a CUDA result or with centroids > 1e-5 from the CPU's"
    [ "$n" -gt 0 ] && [ "$bad" = 0 ]
}

do_dcinfer() {
    need_build || return 1
    [ "$have_mnist" = 1 ] || { note="no MNIST in $data/mnist"; return 77; }
    local log="$logs/dcinfer.log" m="$work/dcinfer/tiny.dcm" fmt b fails=0 acc ref="" figs=()
    tiny_config "$work/dcinfer.ini" all
    if ! run_cmd "$log" 90 "$build/dctrain" "$work/dcinfer.ini" --device cuda --out "$work/dcinfer" --quiet ||
        [ ! -s "$m" ]; then
        note="dctrain on the GPU made no model (see logs/dcinfer.log)"; return 1
    fi
    run_cmd "$logs/dcinfer_cpu.log" 30 "$build/dcinfer" "$m" --data "$data/mnist" --device cpu --batch 64 --verify
    ref="$(sed -n 's/^test accuracy \([0-9.]*\)%.*/\1/p' "$logs/dcinfer_cpu.log")"
    for fmt in auto csr codebook dense; do
        for b in 1 64; do
            : >"$work/one.log"
            if run_cmd "$work/one.log" 30 "$build/dcinfer" "$m" --data "$data/mnist" --device cuda --format "$fmt" \
                --batch "$b" --repeats 3 --verify; then
                acc="$(sed -n 's/^test accuracy \([0-9.]*\)%.*/\1/p' "$work/one.log")"
                grep -q 'verify: 0 of 10000 predictions differ' "$work/one.log" && [ -n "$acc" ] && [ "$acc" = "$ref" ] ||
                    fails=$((fails + 1))
                figs+=("$fmt/$b: ${acc:-?}% $(sed -n 's/^latency.*, \([0-9]*\) images\/s$/\1 img\/s/p' "$work/one.log")")
            else
                fails=$((fails + 1)); figs+=("$fmt/$b: failed")
            fi
            cat "$work/one.log" >>"$log"
        done
    done
    note="CPU ${ref:-?}%; cuda (format/batch): $(printf '%s, ' "${figs[@]}")$fails not verified or not equal to the CPU"
    [ "$fails" = 0 ] && [ -n "$ref" ]
}

do_sparse_fc() {
    need_build || return 1
    [ -x "$root/bench/sparse_fc.sh" ] || [ -f "$root/bench/sparse_fc.sh" ] || { note="bench/sparse_fc.sh does not exist"; return 77; }
    local log="$logs/sparse_fc.log" f keep="" rc
    f="$root/bench/results/sparse_fc_$(date -u +%Y-%m-%d).md"
    [ ! -f "$f" ] || { keep="$work/sparse_fc_before.md"; cp "$f" "$keep"; }
    run_cmd "$log" 120 bash "$root/bench/sparse_fc.sh" --build "$build" --threads 1 --batch 1,64 --seconds 0.1
    rc=$?
    if [ -f "$f" ] && [ "$rc" = 0 ]; then
        cp "$f" "$out/sparse_fc.md"
        sed -n '/^## GPU/,/^## End to end/p' "$f" | sed '$d' >"$work/sparse_fc.md"
    fi
    # the tree keeps the result file it had: this run's copy is OUTDIR/sparse_fc.md
    if [ -n "$keep" ]; then cp "$keep" "$f"; elif [ "$rc" = 0 ]; then rm -f "$f"; fi
    if [ "$rc" != 0 ] && grep -q 'needs PyTorch' "$log"; then note="no PyTorch for the peer"; return 77; fi
    note="$(grep -m1 '^- ours:' "$work/sparse_fc.md" 2>/dev/null | cut -c1-200)"
    if [ "$rc" != 0 ] || [ ! -f "$out/sparse_fc.md" ] || grep -q 'no GPU' "$out/sparse_fc.md"; then
        note="${note:-exit $rc} (no GPU figures)"; return 1
    fi
}

# peak_run LOG LIMIT CMD...: run_cmd, sampling the GPU's used memory; PEAK gets the rise in MiB
peak_run() {
    local log="$1" base poll rc
    base="$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 2>/dev/null | head -1)"
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 >"$log.mem" 2>/dev/null &
    poll=$!
    run_cmd "$@"; rc=$?
    kill "$poll" 2>/dev/null; wait "$poll" 2>/dev/null
    PEAK="$(awk -v b="${base:-0}" '$1 + 0 > m { m = $1 + 0 } END { print (m > b ? m - b : 0) }' "$log.mem")"
    return "$rc"
}

do_train() {
    need_build || return 1
    local prog="$build/bench/bench_train" peer="$root/bench/peer_torch_train.py" spec m cfg set limit mode
    local log o p ro rp po pp fails=0 tf32flag=() plimit=() sets=() peer_models
    [ -x "$prog" ] || prog="$build/bench_train"
    peer_models=""; [ -z "$py_torch" ] || peer_models="$("$py_torch" "$peer" --help 2>/dev/null | tr -d '\n ')"
    {
        echo "Batch 128, SGD momentum 0.9, best of 2 epochs (training steps only); peak = rise of the GPU's"
        echo "used memory during the run (nvidia-smi, 100 ms samples, CUDA context included on both sides)."
        echo "Peer: ${py_torch:+PyTorch $("$py_torch" -c 'import torch; print(torch.__version__)' 2>/dev/null) ($py_torch)}${py_torch:-none (no Python whose torch sees the GPU)}."
        echo "FP32: TF32 off on both sides. TF32: ours train.tf32=1; PyTorch --tf32 when its script has it, else its defaults (cuDNN TF32 on, matmul off)."
        echo
        echo "| model | math | images | ours img/s | PyTorch img/s | ours/PyTorch | ours peak MiB | PyTorch peak MiB |"
        echo "|---|---|---|---|---|---|---|---|"
    } >"$work/train.md"
    for spec in lenet300:lenet300_mnist:mnist:0 lenet5:lenet5_mnist:mnist:0 vgg19:vgg19_cifar_train:cifar10:10240 \
        fire:lenet5_fire_mnist:mnist:0; do
        IFS=: read -r m cfg set limit <<<"$spec"
        if { [ "$set" = mnist ] && [ "$have_mnist" = 0 ]; } || { [ "$set" = cifar10 ] && [ "$have_cifar" = 0 ]; }; then
            echo "| $m | - | no $set data in $data | | | | | |" >>"$work/train.md"; continue
        fi
        [ -f "configs/$cfg.ini" ] || { echo "| $m | - | no configs/$cfg.ini | | | | | |" >>"$work/train.md"; continue; }
        for mode in fp32 tf32; do
            log="$logs/train_${m}_$mode"
            sets=(--set train.batch=128 --set "train.tf32=$([ $mode = tf32 ] && echo 1 || echo 0)"
                --set "data.dir=$data/$set")
            [ "$limit" = 0 ] || sets+=(--set "data.train_limit=$limit")
            peak_run "$log.ours.log" 60 "$prog" "configs/$cfg.ini" --device cuda --epochs 2 "${sets[@]}" ||
                fails=$((fails + 1))
            po="$PEAK"
            o="$(sed -n 's/^{"impl": "deepcompress".*"images": \([0-9]*\).*"images_per_second": \([0-9.]*\).*/\1 \2/p' "$log.ours.log")"
            p=""; pp=""
            if [ -n "$py_torch" ] && [[ "$peer_models" == *"$m"* ]]; then
                tf32flag=(--no-tf32)
                [ $mode = fp32 ] || { tf32flag=(); [[ "$peer_models" != *--tf32* ]] || tf32flag=(--tf32); }
                plimit=(); [ "$limit" = 0 ] || plimit=(--limit "$limit")
                peak_run "$log.torch.log" 60 "$py_torch" "$peer" --model "$m" --data "$data/$set" --batch 128 \
                    --epochs 2 --device cuda "${plimit[@]}" "${tf32flag[@]}" || fails=$((fails + 1))
                pp="$PEAK"
                p="$(sed -n 's/^{"impl": "pytorch.*"images_per_second": \([0-9.]*\).*/\1/p' "$log.torch.log")"
            fi
            ro="${o#* }"; [ -n "$o" ] || ro=""
            rp="-"; [ -z "$p" ] || [ -z "$ro" ] || rp="$(awk -v a="$ro" -v b="$p" 'BEGIN { printf "%.2fx", a / b }')"
            echo "| $m | $mode | ${o%% *} | ${ro:-failed} | ${p:--} | $rp | $po | ${pp:--} |" >>"$work/train.md"
        done
    done
    note="$(awk -F' *\\| *' '/^\| (lenet300|lenet5|vgg19|fire) \| (fp32|tf32)/ { printf "%s %s %s img/s (%s); ", $2, $3, $5, $7 }' "$work/train.md")"
    note="${note}goals: >= 3.0x PyTorch on the LeNets, >= 1.0x on VGG-19 (reported, not a failure)"
    [ "$fails" = 0 ]
}

do_vgg19() {
    need_build || return 1
    [ "$have_cifar" = 1 ] || { note="no CIFAR-10 in $data/cifar10"; return 77; }
    [ -f configs/vgg19_cifar_train.ini ] || { note="no configs/vgg19_cifar_train.ini"; return 77; }
    local log="$logs/vgg19.log" acc s epochs=5 want=60
    # the network and recipe of vgg19_cifar.ini, training only
    run_cmd "$log" 240 "$build/dctrain" configs/vgg19_cifar_train.ini --device cuda --out "$work/vgg19" --quiet \
        --set "data.dir=$data/cifar10" --set "train.epochs=$epochs" --set train.tf32=1 ||
        { note="dctrain failed or ran out of time (see logs/vgg19.log)"; return 1; }
    acc="$(sed -n 's/.*"stage": "train".*"seconds": \([0-9.]*\).*"test_accuracy": \([0-9.]*\).*/\2 \1/p' "$work/vgg19/summary.json" | head -1)"
    [ -n "$acc" ] || acc="$(sed -n 's/.*"stage": "train".*"test_accuracy": \([0-9.]*\).*/\1 ?/p' "$work/vgg19/summary.json" | head -1)"
    s="${acc#* }"; acc="$(awk -v a="${acc%% *}" 'BEGIN { printf "%.2f", 100 * a }')"
    note="$epochs epochs (onecycle, TF32): test accuracy $acc% in $s s; wanted >= $want% (broken training stays far below)"
    awk -v a="$acc" -v w="$want" 'BEGIN { exit !(a >= w) }'
}

step ctest 180 do_ctest
step dcinfer 120 do_dcinfer
step kmeans 90 do_kmeans
step sanitizers 240 do_sanitizers
step sparse_fc 120 do_sparse_fc
step train 300 do_train
step vgg19 240 do_vgg19
t_total=$(($(date +%s) - t_start))

# ---- the report
failed=0; passed=0; skipped=0
for st in "${states[@]}"; do
    case "$st" in PASS) passed=$((passed + 1)) ;; SKIP) skipped=$((skipped + 1)) ;; *) failed=$((failed + 1)) ;; esac
done
{
    echo "# GPU check: $(date -u +%Y-%m-%d)"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(hostname)"
    echo "- GPU: $gpu_name (compute capability $gpu_cc, $gpu_mem), driver $gpu_driver, CUDA (driver) ${cuda_drv:-?}${CUDA_VISIBLE_DEVICES:+; $ngpus GPUs, used GPU 0}"
    echo "- toolkit: $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo '?'); cuDNN: ${cudnn_lib:-not found}"
    echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
    echo "- source: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
    echo "- command: scripts/gpu-check.sh $out --data $data --budget $budget; the steps took $t_total s (build not counted)"
    echo "- verdict: $passed passed, $failed failed, $skipped skipped"
    echo
    echo "| step | result | seconds | figures |"
    echo "|---|---|---|---|"
    for i in "${!names[@]}"; do
        echo "| ${names[$i]} | ${states[$i]} | ${secs[$i]} | $(printf '%s' "${notes[$i]}" | tr '|' '/') |"
    done
    for n in kmeans train sparse_fc; do
        [ -s "$work/$n.md" ] || continue
        echo; echo "## $n"; echo; cat "$work/$n.md"
    done
    echo
    echo "## Commands (logs in $logs/)"
    echo
    sed 's/^/    /' "$cmds"
} >"$out/report.md"
echo "gpu-check: $passed passed, $failed failed, $skipped skipped; report: $out/report.md"
[ "$failed" = 0 ]
