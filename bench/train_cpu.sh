#!/usr/bin/env bash
# One training epoch of LeNet-300-100 and LeNet-5 on MNIST and of the squeezed
# VGG on CIFAR-10 (its first SQ_LIMIT images, default 6400, with the config's
# augmentation on both sides; squeezevgg_wide is the wider one, squeezenet11
# SqueezeNet v1.1's Fire sequence, vgg19 VGG-19 with batch norm), ours and PyTorch's (Debian python3-torch) on
# the CPU, same model, batch size and thread count, in one run; prints the
# ratio and writes bench/results/train_cpu_<threads>t_<date>.md (or $OUT).
#   [MODELS="lenet300 lenet5 squeezevgg squeezevgg_wide squeezenet11 vgg19"] bench/train_cpu.sh [BUILD_DIR] [THREADS] [EPOCHS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; root="$(dirname "$here")"
build="${1:-$root/build}"; threads="${2:-$(nproc)}"; epochs="${3:-2}"
models="${MODELS:-lenet300 lenet5 squeezevgg}"; sq_limit="${SQ_LIMIT:-6400}"
py=/usr/bin/python3
"$py" -c 'import torch' 2>/dev/null || { echo "needs Debian python3-torch (apt-get install python3-torch)" >&2; exit 1; }
prog="$build/bench/bench_train"; [ -x "$prog" ] || prog="$build/bench_train"
[ -x "$prog" ] || { echo "no bench_train under $build (build it, or pass BUILD_DIR)" >&2; exit 1; }
. "$here/peer_blas_env.sh" "$build"
cd "$root"
out="${OUT:-$here/results/train_cpu_${threads}t_$(date +%Y-%m-%d).md}"
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
{
  echo "# Training epoch time on the CPU: deepcompress vs PyTorch"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- machine: $cpu, $(nproc) cores; threads used: $threads; OpenBLAS kernels: ${OPENBLAS_CORETYPE:-as OpenBLAS chose}"
  echo "- peer: PyTorch $("$py" -c 'import torch; print(torch.__version__)') (Debian python3-torch); LeNets: bench/peer_torch_train.py, data pre-normalised in memory; CIFAR-10 models: bench/peer_torch_squeeze.py on the first $sq_limit CIFAR-10 images, crop + flip + normalise per batch on both sides"
  echo "- command: MODELS=\"$models\" bench/train_cpu.sh $build $threads $epochs (best of $epochs epochs each, training steps only)"
  echo
  echo "| model | batch | ours s/epoch | PyTorch s/epoch | ours img/s | PyTorch img/s | speed ratio (ours/PyTorch) |"
  echo "|---|---|---|---|---|---|---|"
} > "$out.tmp"
for m in $models; do
  case "$m" in
    squeezevgg | squeezevgg_wide) cfg="configs/${m}_cifar.ini" ;;
    squeezenet11) cfg="configs/squeezenet11_cifar.ini" ;;
    vgg19) cfg="configs/vgg19_cifar_train.ini" ;;
    *) cfg="configs/${m}_mnist.ini" ;;
  esac
  batch=$(awk -F= '/^\[train\]/{t=1} /^\[/{if($0!~/train/)t=0} t&&$1~/^ *batch *$/{gsub(/ /,"",$2);print $2}' "$cfg")
  if [ "$m" != lenet300 ] && [ "$m" != lenet5 ]; then
    ours=$("$prog" "$cfg" --device cpu --epochs "$epochs" --set train.threads="$threads" --set data.train_limit="$sq_limit")
    peer=$(OMP_NUM_THREADS="$threads" "$py" "$here/peer_torch_squeeze.py" --config "$cfg" --data data/cifar10 \
           --threads "$threads" --epochs "$epochs" --limit "$sq_limit" --no-test | tail -n 1)
  else
    ours=$("$prog" "$cfg" --device cpu --epochs "$epochs" --set train.threads="$threads")
    peer=$(OMP_NUM_THREADS="$threads" "$py" "$here/peer_torch_train.py" --model "$m" --data data/mnist \
           --batch "$batch" --threads "$threads" --epochs "$epochs")
  fi
  echo "ours: $ours"; echo "peer: $peer"
  "$py" - "$m" "$batch" "$ours" "$peer" >> "$out.tmp" <<'PY'
import json, sys
m, b, o, p = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
print(f"| {m} | {b} | {o['epoch_seconds_best']:.2f} | {p['epoch_seconds_best']:.2f} | "
      f"{o['images_per_second']:.0f} | {p['images_per_second']:.0f} | "
      f"{p['epoch_seconds_best'] / o['epoch_seconds_best']:.2f}x |")
PY
done
mv "$out.tmp" "$out"
cat "$out"
