#!/usr/bin/env bash
# The whole Deep Compression pipeline of LeNet-300-100 on MNIST on the CPU:
# dctrain against the PyTorch peer (bench/peer_torch_pipeline.py, Debian
# python3-torch) reading the same config with the same overrides and thread
# count, one after the other in one run; prints per-stage seconds and test
# accuracies side by side and writes bench/results/pipeline_cpu_<date>.md.
#   bench/pipeline_cpu.sh [--build DIR] [--threads N] [--config FILE] [--kmeans sklearn|torch]
#                         [--quick] [--set SECTION.KEY=VALUE]... [--out FILE]
# --quick cuts the run to a check (2 training epochs, 1 retrain epoch per
# round, 1 fine-tune epoch) and writes ..._quick.md; --set goes to both sides.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; root="$(dirname "$here")"
build="$root/build"; threads="$(nproc)"; config=configs/lenet300_mnist_dc.ini; kmeans=sklearn
quick=0; out=""; sets=(); args="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --kmeans) kmeans="$2"; shift 2 ;;
    --quick) quick=1; shift ;;
    --set) sets+=("$2"); shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "pipeline_cpu.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$quick" = 0 ] || sets=(train.epochs=2 prune.retrain_epochs=1 quantize.finetune_epochs=1 "${sets[@]}")
py=/usr/bin/python3
"$py" -c 'import torch' 2>/dev/null || { echo "needs Debian python3-torch (apt-get install python3-torch)" >&2; exit 1; }
[ "$kmeans" != sklearn ] || "$py" -c 'import sklearn' 2>/dev/null ||
  { echo "needs Debian python3-sklearn (or --kmeans torch)" >&2; exit 1; }
[ -x "$build/dctrain" ] || { echo "no dctrain under $build (build it, or pass --build DIR)" >&2; exit 1; }
. "$here/peer_blas_env.sh" "$build"
cd "$root"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
mkdir -p "$here/results"
[ -n "$out" ] || out="$here/results/pipeline_cpu_$(date +%Y-%m-%d)$([ "$quick" = 0 ] || echo _quick).md"
ours_sets=(--set "train.threads=$threads"); peer_sets=()
for s in "${sets[@]}"; do ours_sets+=(--set "$s"); peer_sets+=(--set "$s"); done

echo "== ours: dctrain $config --device cpu ${ours_sets[*]}" >&2
t0=$(date +%s.%N)
"$build/dctrain" "$config" --device cpu --out "$tmp/ours" "${ours_sets[@]}" >&2
ours_wall=$(awk "BEGIN{print $(date +%s.%N) - $t0}")
echo "== peer: peer_torch_pipeline.py $config --threads $threads --kmeans $kmeans ${peer_sets[*]}" >&2
t0=$(date +%s.%N)
OMP_NUM_THREADS="$threads" "$py" "$here/peer_torch_pipeline.py" "$config" --threads "$threads" --kmeans "$kmeans" \
    "${peer_sets[@]}" > "$tmp/peer.json"
peer_wall=$(awk "BEGIN{print $(date +%s.%N) - $t0}")

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
"$py" - "$tmp/ours/summary.json" "$tmp/peer.json" "$ours_wall" "$peer_wall" > "$tmp/table.md" <<'PY'
import json, os, sys
ours, peer = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
ow, pw = float(sys.argv[3]), float(sys.argv[4])
peer_by = {s["stage"]: s for s in peer["stages"]}
print(f"- ours: {ours['device']}; peer: {peer['impl']}, {peer['threads']} threads, k-means by {peer['kmeans']}, "
      f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}")
print()
print("| stage | ours s | peer s | peer / ours | ours test acc | peer test acc |")
print("|---|---|---|---|---|---|")
to = tp = 0.0
for s in ours["stages"]:
    name = s["stage"]
    p = peer_by.get("evaluate" if name == "encode" else name)
    label = "encode (ours: write, decode, evaluate) / evaluate (peer)" if name == "encode" else name
    to += s["seconds"]
    if p is None:
        print(f"| {label} | {s['seconds']:.2f} | - | - | {100 * s['test_accuracy']:.2f}% | - |")
        continue
    tp += p["seconds"]
    ratio = p["seconds"] / s["seconds"] if s["seconds"] > 0 else float("nan")
    print(f"| {label} | {s['seconds']:.2f} | {p['seconds']:.2f} | {ratio:.2f}x | "
          f"{100 * s['test_accuracy']:.2f}% | {100 * p['test_accuracy']:.2f}% |")
print(f"| **all stages** | {to:.2f} | {tp:.2f} | {tp / to:.2f}x | | |")
print(f"| wall clock incl. start-up and data loading | {ow:.2f} | {pw:.2f} | {pw / ow:.2f}x | | |")
enc = [s for s in ours["stages"] if s["stage"] == "encode"]
print()
if enc:
    e = enc[0]
    print(f"- ours: model file {e['file_bytes']} bytes, {e['compression_rate']:.1f}x smaller than float32; "
          f"decoded test accuracy {100 * e['test_accuracy']:.2f}% (error {100 * (1 - e['test_accuracy']):.2f}%)")
kept = [s for s in ours["stages"] if "kept_fraction" in s]
if kept:
    print(f"- weights kept after pruning: ours {100 * kept[-1]['kept_fraction']:.2f}%, "
          f"peer {100 * peer['kept_fraction']:.2f}%")
print(f"- peer final test accuracy {100 * peer['test_accuracy']:.2f}% "
      f"({peer['train_images']} training, {peer['test_images']} test images)")
PY
{
  echo "# Deep Compression pipeline on the CPU: dctrain vs PyTorch"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- machine: $cpu, $(nproc) cores; threads used: $threads (both)"
  echo "- config: $config${sets[*]:+; overrides: ${sets[*]}}"
  echo "- command: bench/pipeline_cpu.sh $args"
  echo "- stage seconds: dctrain's summary.json; the peer times its stages the same way (test-set"
  echo "  evaluation after every epoch included). The peer has its data as normalised float"
  echo "  tensors in memory, and writes neither checkpoints nor a model file."
  cat "$tmp/table.md"
} > "$out.tmp"
mv "$out.tmp" "$out"
# dctrain's own record (per-layer table, every stage's accuracy) beside the table
cp "$tmp/ours/summary.json" "${out%.md}.summary.json"
cat "$out"
