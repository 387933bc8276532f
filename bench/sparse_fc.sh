#!/usr/bin/env bash
# Layer-wise speed of compressed fc layers (Han et al. 2016, Appendix A,
# Table 8): bench_spmat (dense OpenBLAS, our dense / csr / codebook forms)
# against PyTorch dense and sparse CSR (bench/peer_torch_spmat.py) on the same
# matrices, for each thread count, one program at a time, then ours with the
# layers of each network in turn (bench_spmat --chain, not with --flush); writes
# bench/results/sparse_fc_<date>.md (or $OUT).
#   bench/sparse_fc.sh [--build DIR] [--threads "1 2"] [--batch 1,64] [--seconds 0.3]
#                      [--layers a,b] [--flush] [--dcm FILE.dcm]... [--data DIR (data/mnist)] [--no-e2e]
#                      [--e2e-runs N (1)] [--no-layers]
# End to end (when BUILD/dcinfer exists): each --dcm model (default the
# LeNet-300-100 and LeNet-5 of runs/*_dc/model.dcm) through dcinfer with every
# form, at the same thread counts and batches; with --e2e-runs N each form runs
# N times (the forms taking turns, a process each) and the table gives the
# median latency and the range: on a shared machine one process can land in a
# slow spell.  Beside them each PyTorch peer runs the file's decoded weights as
# a dense network (dcexport, then bench/peer_torch_e2e.py).  --no-layers skips
# the layer tables (the end-to-end part alone).
# Peers: Debian's python3-torch through /usr/bin/python3 and, when it exists,
# a PyPI torch in .venv-torch/ (either one is enough).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; root="$(dirname "$here")"
build="$root/build"; threads_list="1 2"; batch=1,64; seconds=0.3; layers=""; flush=""
dcms=(); data="$root/data/mnist"; e2e=1; e2e_runs=1; layer_tables=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --threads) threads_list="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --layers) layers="$2"; shift 2 ;;
    --flush) flush="--flush"; shift ;;
    --dcm) dcms+=("$2"); shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --no-e2e) e2e=0; shift ;;
    --e2e-runs) e2e_runs="$2"; shift 2 ;;
    --no-layers) layer_tables=0; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "sparse_fc.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
prog="$build/bench/bench_spmat"; [ -x "$prog" ] || prog="$build/bench_spmat"
[ -x "$prog" ] || { echo "no bench_spmat under $build (build it, or pass --build DIR)" >&2; exit 1; }
. "$here/peer_blas_env.sh" "$build"
peers=()  # "label:python"
for py in /usr/bin/python3 "$root/.venv-torch/bin/python"; do
  [ -x "$py" ] || continue
  v="$("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null)" || continue
  peers+=("torch $v:$py")
done
[ ${#peers[@]} -gt 0 ] || { echo "needs PyTorch: apt-get install python3-torch, or pip install torch in $root/.venv-torch" >&2; exit 1; }
cd "$root"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/mats" "$here/results"
out="${OUT:-$here/results/sparse_fc_$(date -u +%Y-%m-%d)${flush:+_cold}.md}"
opt=(--batch "$batch" --seconds "$seconds" ${layers:+--layers "$layers"} $flush)
cmds="$tmp/cmds.txt"; : > "$cmds"
run() { echo "$*" | sed "s#$tmp#\$TMP#g; s#$root/##g" >> "$cmds"; "$@"; }
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
first=1
: > "$tmp/log.txt"; : > "$tmp/cuda_ours.txt"; : > "$tmp/cuda_peer.txt"
for t in $threads_list; do
  [ $layer_tables = 1 ] || break
  dump=(); [ $first = 0 ] || dump=(--dump "$tmp/mats")   # the same seed makes the same matrices every run
  run "$prog" --threads "$t" "${opt[@]}" "${dump[@]}" --out "$tmp/ours_$t.tsv" | tee -a "$tmp/log.txt"
  first=0
  i=0
  for p in "${peers[@]}"; do
    run "${p#*:}" "$here/peer_torch_spmat.py" "$tmp/mats" --threads "$t" "${opt[@]}" --out "$tmp/peer${i}_$t.tsv" \
      | tee -a "$tmp/log.txt"
    i=$((i + 1))
  done
  [ -n "$flush" ] || run "$prog" --threads "$t" --chain --batch "$batch" --seconds "$seconds" ${layers:+--layers "$layers"} \
    --out "$tmp/chain_$t.tsv" | tee -a "$tmp/log.txt"
done
# The GPU side: both answer "no GPU" on a machine without one.
if [ $layer_tables = 1 ]; then
  run "$prog" --device cuda "${opt[@]}" --out "$tmp/ours_cuda.tsv" | tee "$tmp/cuda_ours.txt"
  run "${peers[0]#*:}" "$here/peer_torch_spmat.py" "$tmp/mats" --device cuda "${opt[@]}" --out "$tmp/peer0_cuda.tsv" \
    | tee "$tmp/cuda_peer.txt"
fi
# End to end through dcinfer, one run at a time.
[ ${#dcms[@]} -gt 0 ] || dcms=(runs/lenet300_dc/model.dcm runs/lenet5_dc/model.dcm)
e2e_note=""
if [ $e2e = 0 ]; then e2e_note="Skipped (--no-e2e)."
elif [ ! -x "$build/dcinfer" ]; then e2e_note="Skipped: $build/dcinfer does not exist in this build."
else
  for f in "${dcms[@]}"; do
    [ -f "$f" ] || { e2e_note="$e2e_note Missing model file $f (skipped)."; continue; }
    m="$(basename "$(dirname "$f")")"
    # The PyTorch peers run the same file's decoded weights as a dense network.
    npz="$tmp/$m.npz"
    [ -x "$build/dcexport" ] && run "$build/dcexport" "$f" "$npz" > "$tmp/e2e.log" 2>&1 \
      || { e2e_note="$e2e_note No PyTorch row for $f (dcexport: $(tail -1 "$tmp/e2e.log"))."; npz=""; }
    for t in $threads_list; do
      for b in ${batch//,/ }; do
        for r in $(seq 1 "$e2e_runs"); do
          for form in dense csr codebook auto; do
            j="$tmp/e2e_${m}_${t}_${b}_${form}_$r.json"
            run "$build/dcinfer" "$f" --data "$data" --device cpu --batch "$b" --format "$form" --threads "$t" \
                --json "$j" > "$tmp/e2e.log" 2>&1 \
              || { e2e_note="$e2e_note dcinfer failed on $f ($form, batch $b, $t threads): $(tail -1 "$tmp/e2e.log")."
                   rm -f "$j"; continue 5; }  # one note per model
          done
          i=0
          for p in "${peers[@]}"; do
            [ -n "$npz" ] || break
            j="$tmp/e2e_${m}_${t}_${b}_torch${i}_$r.json"
            run "${p#*:}" "$here/peer_torch_e2e.py" "$npz" --data "$data" --batch "$b" --threads "$t" --json "$j" \
                > "$tmp/e2e.log" 2>&1 \
              || { e2e_note="$e2e_note ${p%%:*} failed on $f (batch $b, $t threads): $(tail -1 "$tmp/e2e.log")."
                   rm -f "$j"; }
            i=$((i + 1))
          done
        done
      done
    done
  done
fi
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

dcm_args=""   # the models timed end to end, as the command line gave them
if [ $e2e = 1 ] && [ ${#dcms[@]} -gt 0 ]; then
  for f in "${dcms[@]}"; do dcm_args="$dcm_args --dcm ${f#$root/}"; done
  [ "$data" = "$root/data/mnist" ] || dcm_args="$dcm_args --data ${data#$root/}"
fi
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
desc="$(grep -m1 '^# bench_spmat' "$tmp/log.txt" | sed 's/^# bench_spmat: //; s/;.*//' || true)"
{
  if [ $layer_tables = 1 ]; then echo "# Compressed fc layers, layer by layer (Deep Compression Appendix A, Table 8)"
  else echo "# Compressed models end to end (dcinfer, each form)"; fi
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- machine: $cpu, $(nproc) cores, $(grep -m1 MemTotal /proc/meminfo | awk '{printf "%.0f GiB", $2/1048576}') RAM;"
  echo "  L3 $(lscpu 2>/dev/null | awk -F: '/L3 cache/ {gsub(/^ +/, "", $2); print $2}')${desc:+; ours: $desc}"
  echo "- threads: $threads_list (each run alone; ours and torch get the same count)"
  echo "- load average (1/5/15 min) before: $load_before, after: $load_after"
  for p in "${peers[@]}"; do echo "- peer: ${p%%:*} (${p#*:}), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"; done
  echo "- command: bench/sparse_fc.sh --build ${build#$root/} --threads \"$threads_list\" --batch $batch --seconds $seconds${layers:+ --layers $layers}${flush:+ --flush}$([ "$e2e_runs" = 1 ] || echo " --e2e-runs $e2e_runs")$([ $layer_tables = 1 ] || echo " --no-layers")$([ $e2e = 1 ] || echo " --no-e2e")$dcm_args"
  echo "- it ran:"
  echo
  sed 's/^/      /' "$cmds"
  echo
  if [ $layer_tables = 1 ]; then
    echo "Matrices: random [M,K], each weight kept with probability = density, kept values"
    echo "gaussian, then quantized to 5 bits (32 linear centroids between min and max, nearest"
    echo "centroid; FC8 too), so every form holds exactly the same matrix. x is gaussian (no"
    echo "zeros). Every method is checked against a double-precision product before it is timed"
    echo "(|ref - got| <= 1e-4 (1 + |ref|)), torch against the same reference. A time is the"
    echo "median of >= 5 calls (about ${seconds} s per cell) after two warm-up calls, on"
    if [ -n "$flush" ]; then echo "cold caches (a 64 MiB buffer is written before every timed call)."
    else echo "hot caches: the same matrix every call, so forms smaller than L3 run from cache."; fi
    echo "us = microseconds per sample (call time / batch). Bytes: the weight arrays"
    echo "(dense 4MK; csr rowptr + int32 colidx + f32 values; codebook rowptr + 1-byte gaps +"
    echo "1-byte codes + codebook; torch CSR int64 crow/col + f32 values). x = speed-up over"
    echo "dense OpenBLAS (cblas_sgemv at batch 1, cblas_sgemm above), same thread count."
  fi
  echo
} > "$tmp/head.md"
/usr/bin/python3 - "$tmp" "$threads_list" "$batch" "${#peers[@]}" > "$tmp/tables.md" <<'PY'
import csv, glob, os, sys
tmp, threads, batches, npeers = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(","), int(sys.argv[4])

def rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))

def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

def mb(b):
    return f"{int(b) / 1e6:.1f}M" if b not in (None, "") else "-"

def us(v):
    x = num(v)
    return f"{x:.1f}" if x is not None else (v or "-")

cuda_ours = rows(f"{tmp}/ours_cuda.tsv")
cuda_peer = rows(f"{tmp}/peer0_cuda.tsv")
gpu_none = not cuda_ours and (not cuda_peer or cuda_peer[0]["method"] == "no GPU")
gpu = {}
for r in cuda_ours + cuda_peer:
    if r["method"] != "no GPU":
        gpu[(r["layer"], r["batch"], r["method"])] = r["us_per_sample"]
for t in threads:
    ours = {(r["layer"], r["batch"], r["method"]): r for r in rows(f"{tmp}/ours_{t}.tsv")}
    peers = [rows(f"{tmp}/peer{i}_{t}.tsv") for i in range(npeers)]
    versions = [p[0]["torch"] if p else "?" for p in peers]
    peer = [{(r["layer"], r["batch"], r["method"]): r for r in p} for p in peers]
    layers = []
    for (l, _, _) in ours:
        if l not in layers:
            layers.append(l)
    for b in batches:
        print(f"### {t} thread{'s' if t != '1' else ''}, batch {b}\n")
        head = ["layer", "density", "nnz", "dense OpenBLAS us", "our dense us", "our csr us", "our codebook us"]
        for v in versions:
            head += [f"torch {v} dense us", f"torch {v} CSR us"]
        head += ["bytes dense / csr / codebook / torch CSR", "csr x", "codebook x"]
        head += [f"torch {v} CSR x" for v in versions]
        head += [f"codebook vs torch {v} CSR" for v in versions]
        head += ["GPU us (ours codebook / torch CSR)"]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for l in layers:
            g = lambda m: ours.get((l, b, m), {})
            ob, od, oc, ok = g("openblas"), g("dense"), g("csr"), g("codebook")
            if not ob:
                continue
            base = num(ob["us_per_sample"])
            cells = [l, f"{float(ob['density']):.0%}", ob["nnz"], us(ob["us_per_sample"]), us(od.get("us_per_sample")),
                     us(oc.get("us_per_sample")), us(ok.get("us_per_sample"))]
            tcsr = []
            for p in peer:
                d, c = p.get((l, b, "torch-dense"), {}), p.get((l, b, "torch-csr"), {})
                cells += [us(d.get("us_per_sample")), us(c.get("us_per_sample"))]
                tcsr.append(c)
            tbytes = next((c.get("bytes") for c in tcsr if c.get("bytes")), None)
            cells.append(" / ".join(mb(x) for x in (ob.get("bytes"), oc.get("bytes"), ok.get("bytes"), tbytes)))
            ratio = lambda a, bb: f"{a / bb:.2f}x" if a and bb else "-"
            cells += [ratio(base, num(oc.get("us_per_sample"))), ratio(base, num(ok.get("us_per_sample")))]
            cells += [ratio(base, num(c.get("us_per_sample"))) for c in tcsr]
            cells += [ratio(num(c.get("us_per_sample")), num(ok.get("us_per_sample"))) for c in tcsr]
            if gpu_none:
                cells.append("no GPU")
            else:
                cells.append(f"{us(gpu.get((l, b, 'codebook')))} / {us(gpu.get((l, b, 'torch-csr')))}")
            print("| " + " | ".join(cells) + " |")
        print()
chain = {t: rows(f"{tmp}/chain_{t}.tsv") for t in threads}
if any(chain.values()):
    print("### Layers in turn (bench_spmat --chain)\n")
    print("Each network's fc6, fc7, fc8 run one after the other, as a forward pass runs them, and each")
    print("layer is timed inside that sequence: between two calls of a layer the other two layers'")
    print("weights go through the same caches (alone, a csr form under the L3's size stays in it).")
    print("Same matrices and checks as above; median of the passes; codebook vs csr > 1: codebook faster.\n")
    print("| threads | batch | layer | dense OpenBLAS us | our csr us | our codebook us | bytes csr / codebook "
          "| csr x | codebook x | codebook vs csr |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for t in threads:
        c = {(r["layer"], r["batch"], r["method"]): r for r in chain[t]}
        names = []
        for r in chain[t]:
            if r["layer"] not in names:
                names.append(r["layer"])
        for b in batches:
            for l in names:
                ob, oc, ok = (c.get((l, b, m), {}) for m in ("openblas", "csr", "codebook"))
                if not ob:
                    continue
                f = lambda r: num(r.get("us_per_sample"))
                ratio = lambda a, bb: f"{a / bb:.2f}x" if a and bb else "-"
                print(f"| {t} | {b} | {l} | {us(ob['us_per_sample'])} | {us(oc.get('us_per_sample'))} | "
                      f"{us(ok.get('us_per_sample'))} | {mb(oc.get('bytes'))} / {mb(ok.get('bytes'))} | "
                      f"{ratio(f(ob), f(oc))} | {ratio(f(ob), f(ok))} | {ratio(f(oc), f(ok))} |")
    print()
PY
{
  cat "$tmp/head.md"
  if [ $layer_tables = 1 ]; then
    echo "## CPU"
    echo
    cat "$tmp/tables.md"
    echo "## GPU"
    echo
    echo "- ours: $(grep -v '^#' "$tmp/cuda_ours.txt" | head -1)"
    echo "- torch: $(grep -v '^#' "$tmp/cuda_peer.txt" | head -1)"
    if ! grep -q 'no GPU' "$tmp/cuda_ours.txt"; then echo; echo '```'; grep -v '^#' "$tmp/cuda_ours.txt" "$tmp/cuda_peer.txt"; echo '```'; fi
    echo
  fi
  echo "## End to end (each --dcm model through dcinfer; PyTorch dense beside)"
  echo
  [ -z "$e2e_note" ] || echo "$e2e_note"
  if ls "$tmp"/e2e_*.json > /dev/null 2>&1; then
    echo "dcinfer FILE.dcm --device cpu --format F --batch B --threads T: the whole network run from the"
    echo "model file's compressed form over the test set; latency = median time of one batch"
    echo "(dcinfer's own timing, --repeats 50 after warm-up), then the median over $e2e_runs process(es), the"
    echo "forms taking turns (range: fastest and slowest process); x = speed-up over --format dense;"
    echo "auto vs best = auto's latency over the fastest one-form latency (under 1.10: within 10%)."
    echo "auto times each weight's forms alone, then whole forwards of plans, at load (load ms: median"
    echo "time to load the plan, timing included); forms chosen: each distinct plan, with its count."
    echo "torch rows: bench/peer_torch_e2e.py, the file's decoded weights (dcexport to .npz) in a dense"
    echo "PyTorch network built from the description the file carries, timed the same way (first B"
    echo "test images, 3 warm-up forwards, median of 50, under torch.inference_mode); its test"
    echo "accuracy must equal our dense form's, else the row says so; x is its speed over our dense form."
    echo
    /usr/bin/python3 - "$tmp" <<'PY'
import glob, json, os, statistics, sys
from collections import Counter, defaultdict
runs = defaultdict(list)
for p in sorted(glob.glob(os.path.join(sys.argv[1], "e2e_*.json"))):
    model, t, b, form, _ = os.path.basename(p)[4:-5].rsplit("_", 4)
    with open(p) as f:
        runs[(model, int(t), int(b), form)].append(json.load(f))
lat = {k: statistics.median(r["latency_us"] for r in v) for k, v in runs.items()}
print("| model | threads | batch | form | test accuracy | latency us | range us | images/s | weight bytes | load ms "
      "| x vs dense | auto vs best | forms chosen |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
order = ["dense", "csr", "codebook", "auto"]
rank = lambda f: order.index(f) if f in order else len(order) + int(f[5:])  # torchN after ours
for k in sorted(runs, key=lambda k: (k[0], k[1], k[2], rank(k[3]))):
    model, t, b, form = k
    v = runs[k]
    d = lat.get((model, t, b, "dense"))
    x = f"{d / lat[k]:.2f}x" if d else "-"
    lo, hi = min(r["latency_us"] for r in v), max(r["latency_us"] for r in v)
    if form.startswith("torch"):
        ours = runs.get((model, t, b, "dense"))
        same = ours is None or all(r["test_accuracy"] == ours[0]["test_accuracy"] for r in v)
        print(f"| {model} | {t} | {b} | {v[0]['peer']} dense | {v[0]['test_accuracy']:.4f}"
              f"{'' if same else ' (differs from ours!)'} | {lat[k]:.1f} | {lo:.0f}-{hi:.0f} | {b * 1e6 / lat[k]:.0f} | "
              f"{v[0]['weight_bytes']} | | {x} | | |")
        continue
    uni = [lat[(model, t, b, f)] for f in order[:3] if (model, t, b, f) in lat]
    vs = f"{lat[k] / min(uni):.2f}" if form == "auto" and uni else ""
    plans = Counter(" ".join(f"{w['name'].split('.')[0]}:{w['format']}" for w in r["weights"]) for r in v)
    chosen = "; ".join(f"{p} (x{c})" if len(v) > 1 else p for p, c in plans.most_common())
    print(f"| {model} | {t} | {b} | {form} | {v[0]['test_accuracy']:.4f} | {lat[k]:.1f} | {lo:.0f}-{hi:.0f} | "
          f"{b * 1e6 / lat[k]:.0f} | {v[0]['weight_bytes']} | {statistics.median(r.get('load_ms', 0) for r in v):.0f} | "
          f"{x} | {vs} | {chosen} |")
PY
  fi
  echo
  echo "## Raw output"
  echo
  echo '```'
  cat "$tmp/log.txt"
  echo '```'
} > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
