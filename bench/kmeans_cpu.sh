#!/usr/bin/env bash
# k-means weight sharing on real trained weights: our kmeans_1d on the CPU
# (and the GPU when one answers) against scikit-learn's KMeans (Debian
# python3-sklearn) on the same values from the same linear initial centroids,
# in one run; writes bench/results/kmeans_cpu_<date>.md.
#   bench/kmeans_cpu.sh [--build DIR] [--threads N] [--repeat N] [--iters N] [--bits 5,6,8]
#                       [--sparsity S] [CONFIG:CHECKPOINT]...
# Defaults: the trained LeNet-300-100 and LeNet-5 of runs/ (a missing
# checkpoint is noted in the table and skipped).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; root="$(dirname "$here")"
build="$root/build"; threads="$(nproc)"; repeat=7; iters=30; bits=5,6,8; sparsity=""
pairs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --iters) iters="$2"; shift 2 ;;
    --bits) bits="$2"; shift 2 ;;
    --sparsity) sparsity="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "kmeans_cpu.sh: unknown option $1" >&2; exit 2 ;;
    *) pairs+=("$1"); shift ;;
  esac
done
[ ${#pairs[@]} -gt 0 ] || pairs=(configs/lenet300_mnist.ini:runs/lenet300/checkpoint.bin
                                 configs/lenet5_mnist.ini:runs/lenet5/checkpoint.bin)
py=/usr/bin/python3
"$py" -c 'import sklearn' 2>/dev/null || { echo "needs Debian python3-sklearn (apt-get install python3-sklearn)" >&2; exit 1; }
prog="$build/bench/bench_kmeans"; [ -x "$prog" ] || prog="$build/bench_kmeans"
[ -x "$prog" ] || { echo "no bench_kmeans under $build (build it, or pass --build DIR)" >&2; exit 1; }
cd "$root"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
out="$here/results/kmeans_cpu_$(date +%Y-%m-%d).md"
mkdir -p "$here/results"
extra=(); [ -z "$sparsity" ] || extra=(--sparsity "$sparsity")
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
{
  echo "# k-means weight sharing: deepcompress kmeans_1d vs scikit-learn KMeans"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- machine: $cpu, $(nproc) cores; threads used: $threads (ours and sklearn's OpenMP)"
  echo "- peer: scikit-learn $("$py" -c 'import sklearn; print(sklearn.__version__)') (Debian python3-sklearn),"
  echo "  KMeans(n_clusters=k, init=<our linear initial centroids>, n_init=1, max_iter=$iters, tol=0, algorithm=\"lloyd\")"
  echo "- command: bench/kmeans_cpu.sh --build $build --threads $threads --repeat $repeat --iters $iters --bits $bits${sparsity:+ --sparsity $sparsity} ${pairs[*]}"
  echo "- times: median of $repeat runs after a warm-up; ours = one kmeans_1d call (initial assignment +"
  echo "  up to $iters Lloyd iterations, synchronised), sklearn = KMeans.fit on the same float32 values"
  echo "- values: every weight of each prunable tensor${sparsity:+ left after pruning to sparsity $sparsity}"
  echo "  (only the survivors when the checkpoint holds masks); inertia = sum of squared distances"
  echo "  to the nearest final centroid, in float64, computed the same way for both"
  echo "- iters: Lloyd iterations run before the assignment stopped changing (sklearn counts"
  echo "  the iteration that found no change, so converged runs read one more)"
  echo "- empty@init: clusters with no member under the initial assignment. Ours keeps an empty"
  echo "  cluster's centroid; sklearn moves it to the farthest point, so where this is > 0 its"
  echo "  inertia is lower. 'numpy same rule' is a plain numpy Lloyd with our rule: it checks ours."
  echo
} > "$tmp/head.md"
rows="$tmp/rows.md"; : > "$rows"; devs="$tmp/devs.txt"; : > "$devs"
for pair in "${pairs[@]}"; do
  cfg="${pair%%:*}"; ckpt="${pair#*:}"; model="$(basename "$cfg" .ini)"
  if [ ! -f "$ckpt" ]; then
    echo "| $model | (no checkpoint $ckpt) |$(printf ' |%.0s' $(seq 12))" >> "$rows"; continue
  fi
  mkdir -p "$tmp/$model"
  "$prog" "$cfg" "$ckpt" --threads "$threads" --repeat "$repeat" --iters "$iters" --bits "$bits" \
          --dump "$tmp/$model" "${extra[@]}" > "$tmp/$model/ours.jsonl"
  "$py" "$here/peer_sklearn_kmeans.py" "$tmp/$model/ours.jsonl" --threads "$threads" > "$tmp/$model/both.jsonl"
  "$py" - "$model" "$tmp/$model/both.jsonl" "$rows" "$devs" <<'PY'
import json, sys
model, path, rows, devs = sys.argv[1:]
fmt = lambda v, f: "-" if v is None else format(v, f)
with open(path) as f, open(rows, "a") as r, open(devs, "a") as d:
    for line in f:
        x = json.loads(line)
        if x["kind"] == "info":
            d.write(f"{x['cpu']}\t{x['cuda']}\n")
            continue
        o, g, s = x["cpu"], x["cuda"], x["sklearn"]
        if "skipped" in s:
            r.write(f"| {model} | {x['param']} | {x['kept']} | {x['k']} | {x['iters_run']} | {o['ms_median']:.2f} | "
                    f"{fmt(g and g['ms_median'], '.2f')} | {s['skipped']} | | {o['inertia']:.6g} | | | | |\n")
            continue
        rel = (o["inertia"] - s["inertia"]) / s["inertia"] if s["inertia"] else 0.0
        r.write(f"| {model} | {x['param']} | {x['kept']} | {x['k']} | {x['iters_run']} / {s['n_iter']} | "
                f"{o['ms_median']:.2f} | {fmt(g and g['ms_median'], '.2f')} | {s['ms_median']:.2f} | "
                f"{s['ms_median'] / o['ms_median']:.1f}x | {o['inertia']:.6g} | {s['inertia']:.6g} | {rel:+.2e} | "
                f"{s['inertia_keep_empty_numpy']:.6g} | {s['empty_init']} |\n")
PY
done
{
  cat "$tmp/head.md"
  sort -u "$devs" | while IFS=$'\t' read -r c g; do echo "- ours on the CPU: $c; CUDA: $g"; done
  echo
  echo "| model | tensor | values | k | iters (ours / sklearn) | ours CPU ms | ours CUDA ms | sklearn ms | sklearn / ours CPU | inertia ours | inertia sklearn | (ours - sklearn) / sklearn | inertia numpy same rule | empty@init |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  cat "$rows"
} > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
