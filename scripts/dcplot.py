#!/usr/bin/python3
"""dcplot.py RUN_DIR: the figures of a dctrain run, as PNG and SVG in RUN_DIR.

  weights.*      per layer, the weight histogram after training (or import),
                 after the last prune round and after quantization, with the
                 shared values marked before (green x) and after (red dot)
                 fine-tuning, as in Han et al. 2016, Figures 4-5
                 (from weights_<stage>.csv)
  sensitivity.*  per layer, test accuracy against the sparsity of that layer
                 alone (from sensitivity.csv: dctrain --sensitivity)
  training.*     test accuracy and training loss per epoch across training,
                 every prune round's retraining and the centroid fine-tuning
                 (from metrics.csv; accuracy right after each prune and after
                 clustering from summary.json)
  sizes.*        bytes per layer and in total: dense -> pruned -> quantized ->
                 Huffman, with the compression rate (from summary.json's
                 encode record)

A figure whose data the run lacks is skipped with one line.  The names of the
files written are added to summary.json as "figures".  Needs python3 with
matplotlib (Debian: python3-matplotlib); exit 1 with one line on missing or
damaged input, 2 on usage errors.
"""
import csv
import json
import os
import re
import sys

USAGE = "usage: dcplot.py RUN_DIR [--formats png,svg] [--title TEXT]"


def fail(msg, code=1):
    print("dcplot: " + msg, file=sys.stderr)
    sys.exit(code)


def read_csv(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError as e:
        fail("%s: cannot read: %s" % (path, e.strerror))


def number(row, key, path):
    try:
        return float(row[key])
    except (KeyError, TypeError, ValueError):
        fail("%s: column %s: %r is not a number" % (path, key, row.get(key)))


# ---- weight histograms -------------------------------------------------------

def read_weights(path):
    """{param: {"bins": [(lo, hi, n)], "zero": n, "total": n, "centroids": [(c, n)]}}"""
    out = {}
    for row in read_csv(path):
        p = out.setdefault(row.get("param"), {"bins": [], "zero": 0, "total": 0, "centroids": []})
        kind = row.get("kind")
        lo, hi, n = number(row, "lo", path), number(row, "hi", path), number(row, "count", path)
        if kind == "bin":
            p["bins"].append((lo, hi, n))
        elif kind == "zero":
            p["zero"] = n
        elif kind == "total":
            p["total"] = n
        elif kind == "centroid":
            p["centroids"].append((lo, n))
        else:
            fail("%s: unknown row kind %r" % (path, kind))
    return out


def histogram(ax, d, color, label):
    if d["bins"]:
        ax.stairs([b[2] for b in d["bins"]], [b[0] for b in d["bins"]] + [d["bins"][-1][1]], fill=True,
                  color=color, label=label)


def plot_weights(plt, run, summary, title):
    listed = summary.get("weights_csv") or []
    labels = [f[len("weights_"):-len(".csv")] for f in listed]
    first = "train" if "train" in labels else ("init" if "init" in labels else None)
    prunes = sorted((l for l in labels if l.startswith("prune-")), key=lambda l: int(l.split("-")[1]))
    cols = [(first, "after training" if first == "train" else "imported / initial")]
    if prunes:
        cols.append((prunes[-1], "after pruning (%s)" % prunes[-1]))
    if "quantize" in labels:
        cols.append(("quantize", "after quantization"))
    cols = [c for c in cols if c[0]]
    if not cols:
        return "no weights_<stage>.csv listed in summary.json (rerun dctrain with this build)"
    snaps = {l: read_weights(os.path.join(run, "weights_%s.csv" % l)) for l, _ in cols}
    clustered = read_weights(os.path.join(run, "weights_clustered.csv")) if "clustered" in labels else {}
    params = list(snaps[cols[0][0]])
    fig, axes = plt.subplots(len(params), len(cols), figsize=(3.6 * len(cols), 2.3 * len(params)),
                             squeeze=False)
    for r, param in enumerate(params):
        for c, (label, head) in enumerate(cols):
            ax = axes[r][c]
            d = snaps[label].get(param)
            if not d:
                ax.set_axis_off()
                continue
            if label == "quantize" and prunes and param in snaps[prunes[-1]]:
                # the weights before sharing, with the shared values on the axis
                histogram(ax, snaps[prunes[-1]][param], "#9ecae1", "before quantization")
            else:
                histogram(ax, d, "#3182bd", None)
            kept = d["total"] - d["zero"]
            note = "%d weights" % d["total"]
            if d["zero"]:
                note += "\n%.1f%% kept" % (100.0 * kept / d["total"])
            if label == "quantize":
                pre = clustered.get(param, {}).get("centroids", [])
                if pre:
                    ax.plot([x for x, _ in pre], [0] * len(pre), "x", color="#31a354", ms=5, clip_on=False,
                            label="centroids, k-means")
                post = d["centroids"]
                ax.plot([x for x, _ in post], [0] * len(post), "o", color="#de2d26", ms=3.5, clip_on=False,
                        label="centroids, fine-tuned")
                note += "\n%d shared values" % len(post)
                if r == 0:
                    ax.legend(loc="upper left", fontsize=6, frameon=False)
            ax.text(0.98, 0.95, note, transform=ax.transAxes, ha="right", va="top", fontsize=7)
            ax.set_ylim(bottom=0)
            ax.tick_params(labelsize=7)
            if r == 0:
                ax.set_title(head, fontsize=9)
            if c == 0:
                ax.set_ylabel(param + "\ncount", fontsize=8)
            if r == len(params) - 1:
                ax.set_xlabel("weight value", fontsize=8)
    fig.suptitle("%s: weight distribution per layer (zeros of pruned weights not counted)" % title, fontsize=10)
    fig.tight_layout()
    return fig


# ---- sensitivity ---------------------------------------------------------------

def plot_sensitivity(plt, run, summary, title):
    path = os.path.join(run, "sensitivity.csv")
    if not os.path.exists(path):
        return "no sensitivity.csv (run dctrain CONFIG --init TRAINED --sensitivity --out %s)" % run
    curves = {}
    for row in read_csv(path):
        curves.setdefault(row.get("param"), []).append((number(row, "sparsity", path),
                                                         number(row, "test_accuracy", path)))
    fig, ax = plt.subplots(figsize=(6, 4))
    for param, pts in curves.items():
        pts.sort()
        ax.plot([100 * s for s, _ in pts], [100 * a for _, a in pts], "o-", ms=3, label=param)
    ax.set_xlabel("weights pruned in this layer alone (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("%s: pruning sensitivity, no retraining" % title, fontsize=10)
    fig.tight_layout()
    return fig


# ---- training curves -----------------------------------------------------------

def plot_training(plt, run, summary, title):
    path = os.path.join(run, "metrics.csv")
    if not os.path.exists(path):
        return "no metrics.csv"
    rows = read_csv(path)
    if not rows:
        return "metrics.csv has no epochs"
    fig, (ax_a, ax_l) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    stages, x = [], 0
    for row in rows:
        if not stages or stages[-1][0] != row["stage"]:
            stages.append((row["stage"], []))
        x += 1
        stages[-1][1].append((x, number(row, "test_accuracy", path), number(row, "train_loss", path),
                              number(row, "train_accuracy", path)))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    records = {s.get("stage"): s for s in summary.get("stages", [])}
    drops = []
    for i, (name, pts) in enumerate(stages):
        col = colors[i % len(colors)]
        xs = [p[0] for p in pts]
        ax_a.plot(xs, [100 * p[1] for p in pts], "o-", ms=2.5, color=col, label=name)
        ax_l.plot(xs, [p[2] for p in pts], "o-", ms=2.5, color=col)
        start = xs[0] - 0.5
        ax_a.axvline(start, color="0.8", lw=0.8)
        ax_l.axvline(start, color="0.8", lw=0.8)
        # the drop a stage starts with: accuracy right after pruning or clustering
        rec = records.get("quantize" if name == "finetune" else name, {})
        before = rec.get("test_accuracy_pruned", rec.get("test_accuracy_quantized", -1))
        if before is not None and before >= 0:
            ax_a.plot([start], [100 * before], "v", color=col, ms=6)
            drops.append(100 * before)
    enc = records.get("encode")
    if enc:
        ax_a.plot([x + 0.5], [100 * enc["test_accuracy"]], "*", color="k", ms=9,
                  label="decoded .dcm (%.2f%%)" % (100 * enc["test_accuracy"]))
    ax_a.set_ylabel("test accuracy (%)")
    ax_l.set_ylabel("training loss")
    ax_l.set_yscale("log")
    ax_l.set_xlabel("epoch (all stages in order; triangle: accuracy right after pruning or clustering)")
    ax_a.legend(fontsize=7, ncol=4, loc="best")
    ax_a.grid(alpha=0.3)
    ax_l.grid(alpha=0.3)
    lo = min([100 * p[1] for _, pts in stages for p in pts] + drops)
    ax_a.set_ylim(max(lo - 1, 0), 100)
    ax_a.set_title("%s: training, retraining after each prune round, centroid fine-tuning" % title, fontsize=10)
    fig.tight_layout()
    return fig


# ---- size waterfall ------------------------------------------------------------

def layer_sizes(layer):
    """Bytes of one parameter at each step: dense, pruned (float32 values with
    their relative indices, filler entries included), quantized (codes and
    indices at their fixed widths plus the codebook), Huffman (as stored)."""
    dense = 4 * layer["weights"]
    if layer.get("kind") != "coded":
        return [dense, dense, dense, layer["bytes"]]
    entries, ib, wb = layer["entries"], layer["index_bits"], layer["bits"]
    pruned = entries * (32 + ib) / 8.0
    quant = entries * ((wb if wb else 32) + ib) / 8.0 + layer["codebook_bytes"]
    return [dense, pruned, quant, layer["bytes"]]


def plot_sizes(plt, run, summary, title):
    enc = next((s for s in summary.get("stages", []) if s.get("stage") == "encode"), None)
    if not enc or not enc.get("layers"):
        return "no encode record in summary.json"
    steps = ["dense", "pruned", "quantized", "Huffman"]
    weights = [l for l in enc["layers"] if l.get("prunable")]
    rest = [l for l in enc["layers"] if not l.get("prunable")]
    groups = [(l["name"], layer_sizes(l)) for l in weights]
    if rest:
        groups.append(("other (biases, bn)", [sum(layer_sizes(l)[k] for l in rest) for k in range(4)]))
    header = enc["file_bytes"] - sum(l["bytes"] for l in enc["layers"])  # file header, network text
    total = [sum(g[1][k] for g in groups) + header for k in range(4)]
    total[0] = enc["dense_bytes"]
    fig, (ax_l, ax_t) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [len(groups) + 1, 2]})
    colors = ["#636363", "#3182bd", "#31a354", "#e6550d"]
    w = 0.2
    for k in range(4):
        xs = [i + (k - 1.5) * w for i in range(len(groups))]
        ax_l.bar(xs, [max(g[1][k], 1) for g in groups], w, color=colors[k], label=steps[k])
    for i, (_, b) in enumerate(groups):
        ax_l.text(i + 1.5 * w, b[3], "%.0fx" % (b[0] / b[3]), ha="center", va="bottom", fontsize=7)
    ax_l.set_xticks(range(len(groups)))
    ax_l.set_xticklabels([g[0] for g in groups], fontsize=8)
    ax_l.set_yscale("log")
    ax_l.set_ylabel("bytes (log scale)")
    ax_l.legend(fontsize=8)
    ax_l.set_title("per layer (label: rate dense / Huffman)", fontsize=9)
    ax_t.bar(range(4), total, color=colors)
    for k in range(4):
        ax_t.text(k, total[k], "%s B\n%.1fx" % (format(int(round(total[k])), ","), total[0] / total[k]),
                  ha="center", va="bottom", fontsize=7)
    ax_t.set_xticks(range(4))
    ax_t.set_xticklabels(steps, fontsize=8)
    ax_t.set_yscale("log")
    ax_t.set_ylim(top=total[0] * 4)
    ax_t.set_title("whole model (file %s B, %.1fx)" % (format(enc["file_bytes"], ","), enc["compression_rate"]),
                   fontsize=9)
    fig.suptitle("%s: size after each step" % title, fontsize=10)
    fig.tight_layout()
    return fig


def add_figures(spath, written):
    """summary.json gains "figures": [...] as its last key; the rest of the
    text stays as dctrain wrote it (one line per stage record)."""
    with open(spath) as f:
        text = f.read()
    text = re.sub(r',\n  "figures": \[[^\]]*\]', "", text).rstrip()
    if not text.endswith("}"):
        fail("%s: does not end with '}'" % spath)
    text = text[:-1].rstrip() + ',\n  "figures": %s\n}\n' % json.dumps(written)
    json.loads(text)
    tmp = spath + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, spath)


def main(argv):
    args, formats, title = [], ["png", "svg"], None
    i = 1
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            print(USAGE + "\n" + __doc__)
            return 0
        if a in ("--formats", "--title"):
            if i + 1 >= len(argv):
                fail("%s needs a value (%s)" % (a, USAGE), 2)
            if a == "--formats":
                formats = [f for f in argv[i + 1].split(",") if f]
                if not formats or any(f not in ("png", "svg", "pdf") for f in formats):
                    fail("--formats %s: use png, svg or pdf, comma separated" % argv[i + 1], 2)
            else:
                title = argv[i + 1]
            i += 2
            continue
        if a.startswith("-"):
            fail("unknown option %s (%s)" % (a, USAGE), 2)
        args.append(a)
        i += 1
    if len(args) != 1:
        fail(USAGE, 2)
    run = args[0]
    spath = os.path.join(run, "summary.json")
    try:
        with open(spath) as f:
            summary = json.load(f)
    except OSError as e:
        fail("%s: cannot read: %s (is %s a dctrain --out folder?)" % (spath, e.strerror, run))
    except ValueError as e:
        fail("%s: not valid JSON: %s" % (spath, e))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        fail("matplotlib is missing (Debian: apt-get install python3-matplotlib)")
    plt.rcParams["svg.hashsalt"] = "dcplot"  # the same run gives the same SVG
    title = title or summary.get("model", os.path.basename(os.path.normpath(run)))
    written = []
    for name, fn in (("weights", plot_weights), ("sensitivity", plot_sensitivity),
                     ("training", plot_training), ("sizes", plot_sizes)):
        fig = fn(plt, run, summary, title)
        if isinstance(fig, str):
            print("dcplot: %s: skipped: %s" % (name, fig))
            continue
        for fmt in formats:
            out = os.path.join(run, "%s.%s" % (name, fmt))
            fig.savefig(out, dpi=90, metadata={"Date": None} if fmt == "svg" else None)
            written.append(os.path.basename(out))
        plt.close(fig)
    add_figures(spath, written)
    print("dcplot: wrote %s in %s" % (", ".join(written), run))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
