#!/usr/bin/env bash
# Training throughput on one GPU, ours (CUDA backend) and PyTorch's in the same
# run, at batch 64, 128 and 256, FP32 on both sides (TF32 off: cuDNN/cuBLAS
# FMA math here; torch.backends.*.allow_tf32 = False there).
#   bench/train_gpu.sh [BUILD_DIR] [EPOCHS]
# Writes bench/results/train_gpu_<date>.md.  Needs a GPU, the CUDA build and
# PyTorch with CUDA (python3 -c 'import torch; torch.cuda.is_available()').
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; root="$(dirname "$here")"
build="${1:-$root/build}"; epochs="${2:-2}"
py="${PYTHON:-python3}"
prog="$build/bench/bench_train"; [ -x "$prog" ] || prog="$build/bench_train"
[ -x "$prog" ] || { echo "no bench_train under $build (build it, or pass BUILD_DIR)" >&2; exit 1; }
cd "$root"
"$py" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' ||
  { echo "train_gpu: PyTorch sees no GPU" >&2; exit 77; }
gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"
out="$here/results/train_gpu_$(date +%Y-%m-%d).md"
{
  echo "# Training throughput on the GPU: deepcompress vs PyTorch (FP32, TF32 off)"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); GPU: $gpu"
  echo "- peer: PyTorch $("$py" -c 'import torch; print(torch.__version__)'); same model, batch, SGD momentum 0.9"
  echo "- command: bench/train_gpu.sh $build $epochs (best of $epochs epochs, training steps only)"
  echo
  echo "| model | batch | ours img/s | PyTorch img/s | ratio (ours/PyTorch) |"
  echo "|---|---|---|---|---|"
} > "$out.tmp"
for spec in lenet300:configs/lenet300_mnist.ini:data/mnist lenet5:configs/lenet5_mnist.ini:data/mnist \
            vgg19:configs/vgg19_cifar_train.ini:data/cifar10; do
  IFS=: read -r m cfg data <<< "$spec"
  for b in 64 128 256; do
    ours=$("$prog" "$cfg" --device cuda --epochs "$epochs" --set train.batch="$b" --set train.tf32=0)
    peer=$(DC_TORCH_TF32=0 "$py" "$here/peer_torch_train.py" --model "$m" --data "$data" --batch "$b" \
           --epochs "$epochs" --device cuda --no-tf32)
    "$py" - "$m" "$b" "$ours" "$peer" >> "$out.tmp" <<'PY'
import json, sys
m, b, o, p = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
print(f"| {m} | {b} | {o['images_per_second']:.0f} | {p['images_per_second']:.0f} | "
      f"{o['images_per_second'] / p['images_per_second']:.2f}x |")
PY
  done
done
mv "$out.tmp" "$out"
cat "$out"
