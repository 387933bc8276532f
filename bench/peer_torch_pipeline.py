#!/usr/bin/env python3
"""The PyTorch peer for the whole Deep Compression pipeline (bench/pipeline_cpu.sh):
reads the same INI file as dctrain (and the same --set overrides) and runs the
same stages with the same recipe on the CPU, timing each stage the way dctrain
does, so the per-stage seconds can be set side by side.

  train       `epochs` epochs at `lr`, `schedule` (cosine per fraction of an
              epoch, as src/train/lr_schedule.c), momentum, weight decay
  prune-r     r = 1..rounds: per layer a magnitude threshold for the scheduled
              sparsity s*(1-(1-r/R)^3) (or quality*std for method = std) with
              the per-layer `prune` overrides, masks kept across rounds,
              masked gradients and updates, then `retrain_epochs` at
              `retrain_lr` cosine
  quantize    per layer 1-D k-means over the surviving weights (k = 2^bits,
              linear init between min and max, `iterations` Lloyd iterations;
              scikit-learn KMeans by default), then `finetune_epochs` at
              `finetune_lr` (constant, as dctrain) where each centroid moves by
              the sum of its members' gradients (SGD with momentum, no decay)
  evaluate    the final model on the test set (dctrain's "encode" stage writes,
              decodes and evaluates the model file instead)

As in dctrain, the test set is evaluated after every epoch and that time is
part of the stage.  Data are loaded once as normalised float tensors (not
timed), which favours the peer.  Prints one JSON object on stdout.
The INI is read with a small parser of its own: Python's configparser cannot
hold the repeated [fc] sections a network is made of."""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_torch_train import find, read_idx  # noqa: E402

GLOBAL = ("data", "train", "prune", "quantize", "encode", "distill", "compress", "init")
STEMS = {"conv": "conv", "fc": "fc", "maxpool": "pool", "avgpool": "pool", "relu": "relu", "dropout": "dropout"}


# ---------------------------------------------------------------- config

def strip_comment(line):
    """'#' or ';' at the start or after whitespace starts a comment (as ini.c)."""
    for i, ch in enumerate(line):
        if ch in "#;" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def read_ini(path, depth=0):
    """[(section, {key: value})] in file order; repeated sections kept apart.
    A [base] config = FILE is merged as dctrain does (src/config/config_base.c):
    its global keys replaced by ours, its layers changed by name."""
    secs = []
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = strip_comment(raw).strip()
            if not line:
                continue
            if line.startswith("["):
                secs.append((line.strip("[]").strip(), {}))
            elif "=" in line and secs:
                k, v = line.split("=", 1)
                secs[-1][1][k.strip()] = v.strip()
            else:
                sys.exit(f"{path}:{n}: cannot read '{line}'")
    base = [kv for sec, kv in secs if sec == "base"]
    if not base:
        return secs
    if depth >= 4 or "config" not in base[0]:
        sys.exit(f"{path}: [base] needs config = FILE, at most 4 deep")
    merged = read_ini(os.path.join(os.path.dirname(path), base[0]["config"]), depth + 1)
    names = layer_names(merged)
    layers = [kv for sec, kv in merged if sec not in GLOBAL]
    for sec, kv in secs:
        if sec == "base":
            continue
        if sec in GLOBAL:
            hit = [m for s2, m in merged if s2 == sec]
            if hit:
                hit[0].update(kv)
            else:
                merged.append((sec, dict(kv)))
        elif kv.get("name") in names:
            layers[names.index(kv["name"])].update(kv)
        else:
            sys.exit(f"{path}: [{sec}] name = {kv.get('name')}: no such layer in the base")
    return merged


def layer_names(secs):
    names, counts = [], {}
    for sec, kv in secs:
        if sec in GLOBAL:
            continue
        stem = STEMS.get(sec, sec)
        counts[stem] = counts.get(stem, 0) + 1
        names.append(kv.get("name", f"{stem}{counts[stem]}"))
    return names


def apply_sets(secs, sets):
    """--set section.key=value or layer.key=value, as dctrain: a missing global
    section is created (which switches that stage on)."""
    for s in sets:
        target, rest = s.split(".", 1)
        key, value = rest.split("=", 1)
        if target in GLOBAL:
            hit = [kv for sec, kv in secs if sec == target]
            if not hit:
                secs.insert(0, (target, {}))
                hit = [secs[0][1]]
            hit[0][key] = value
            continue
        layers = [kv for sec, kv in secs if sec not in GLOBAL]
        names = layer_names(secs)
        if target not in names:
            sys.exit(f"--set {s}: no section or layer named '{target}'")
        layers[names.index(target)][key] = value


class Config:
    """The typed values the pipeline uses, with dctrain's defaults."""

    def __init__(self, secs):
        g = {sec: kv for sec, kv in secs if sec in GLOBAL}
        self.has = {sec: sec in g for sec in GLOBAL}
        get = lambda sec, key, d, t=str: t(g.get(sec, {}).get(key, d))  # noqa: E731
        self.data_dir = get("data", "dir", "data/mnist")
        self.dataset = get("data", "set", "mnist")
        self.train_limit, self.test_limit = get("data", "train_limit", 0, int), get("data", "test_limit", 0, int)
        self.epochs, self.batch = get("train", "epochs", 10, int), get("train", "batch", 64, int)
        self.lr, self.momentum = get("train", "lr", 0.01, float), get("train", "momentum", 0.9, float)
        self.wd, self.nesterov = get("train", "weight_decay", 0, float), get("train", "nesterov", 0, int)
        self.schedule = get("train", "schedule", "const")
        self.step_epochs, self.gamma = get("train", "step_epochs", 10, int), get("train", "gamma", 0.1, float)
        self.warmup = get("train", "warmup_epochs", 0, int)
        self.seed = get("train", "seed", 1, int)
        self.method = get("prune", "method", "std")
        self.quality = {True: get("prune", "quality_conv", 1.0, float), False: get("prune", "quality_fc", 1.0, float)}
        self.sparsity = {True: get("prune", "sparsity_conv", 0.0, float),
                         False: get("prune", "sparsity_fc", 0.0, float)}
        self.rounds, self.retrain_epochs = get("prune", "rounds", 3, int), get("prune", "retrain_epochs", 2, int)
        self.retrain_lr = get("prune", "retrain_lr", 0.001, float)
        self.bits = {True: get("quantize", "bits_conv", 8, int), False: get("quantize", "bits_fc", 5, int)}
        self.kinit, self.kiters = get("quantize", "init", "linear"), get("quantize", "iterations", 30, int)
        self.finetune_epochs = get("quantize", "finetune_epochs", 1, int)
        self.finetune_lr = get("quantize", "finetune_lr", 0.001, float)
        self.layers = [(sec, kv, name) for (sec, kv), name in
                       zip([s for s in secs if s[0] not in GLOBAL], layer_names(secs))]


def lr_at(cfg, peak, schedule, epochs, t):
    """src/train/lr_schedule.c: rate at fractional epoch t of a phase."""
    lr, f = peak, t / max(epochs, 1)
    if schedule == "step":
        lr *= cfg.gamma ** math.floor(t / max(cfg.step_epochs, 1))
    elif schedule == "cosine":
        lr *= 0.5 * (1 + math.cos(math.pi * min(f, 1)))
    elif schedule == "onecycle":
        lo = peak / 25
        end = lo / 1e4
        if f < 0.3:
            return lo + (peak - lo) * 0.5 * (1 - math.cos(math.pi * f / 0.3))
        g = (f - 0.3) / 0.7
        return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * min(g, 1)))
    if cfg.warmup > 0 and t < cfg.warmup:
        lr *= 0.1 + 0.9 * t / cfg.warmup
    return lr


# ---------------------------------------------------------------- model and data

def build(cfg, in_c, hw):
    """nn.Sequential from the layer sections; prunable (weight, section) pairs."""
    mods, prunable, c, h, flat = [], [], in_c, hw, False
    for sec, kv, name in cfg.layers:
        if sec == "conv":
            if int(kv.get("batch_normalize", 0)):
                sys.exit("peer_torch_pipeline: batch_normalize is not supported by the peer")
            k, size = int(kv["filters"]), int(kv["size"])
            stride, pad = int(kv.get("stride", 1)), int(kv.get("pad", size // 2))
            m = nn.Conv2d(c, k, size, stride, pad)
            c, h = k, (h + 2 * pad - size) // stride + 1
        elif sec == "fc":
            if not flat:
                mods.append(nn.Flatten())
                flat = True
            m = nn.Linear(c * h * h, int(kv["outputs"]))
            c, h = int(kv["outputs"]), 1
        elif sec in ("maxpool", "avgpool"):
            size = int(kv.get("size", 0)) or h
            stride, pad = int(kv.get("stride", size)), int(kv.get("pad", 0))
            m = (nn.MaxPool2d if sec == "maxpool" else nn.AvgPool2d)(size, stride, pad)
            h = (h + 2 * pad - size) // stride + 1
        elif sec == "relu":
            m = nn.ReLU()
        elif sec == "dropout":
            m = nn.Dropout(float(kv.get("probability", 0.5)))
        else:
            sys.exit(f"peer_torch_pipeline: [{sec}] is not supported by the peer")
        mods.append(m)
        if sec in ("conv", "fc"):
            prunable.append((m.weight, kv, sec == "conv", name))
            if kv.get("activation", "linear") == "relu":
                mods.append(nn.ReLU())
    return nn.Sequential(*mods), prunable


def load_data(cfg):
    if cfg.dataset != "mnist":
        sys.exit("peer_torch_pipeline: only MNIST is supported")

    def split(img, lab, limit):
        x = read_idx(find(cfg.data_dir, img)).astype(np.float32) / 255.0
        y = read_idx(find(cfg.data_dir, lab)).astype(np.int64)
        if limit:
            x, y = x[:limit], y[:limit]
        return torch.from_numpy(np.ascontiguousarray((x - 0.1307) / 0.3081)), torch.from_numpy(y)

    return (split("train-images-idx3-ubyte", "train-labels-idx1-ubyte", cfg.train_limit),
            split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", cfg.test_limit))


# ---------------------------------------------------------------- training

class Pipeline:
    def __init__(self, cfg, a):
        self.cfg, self.a = cfg, a
        (self.xtr, self.ytr), (self.xte, self.yte) = load_data(cfg)
        self.model, self.prunable = build(cfg, 1, self.xtr.shape[-1])
        self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.wd, nesterov=bool(cfg.nesterov))
        self.masks = {}   # weight -> mask
        self.quant = {}   # weight -> (assign, codebook, velocity)
        self.lossf = nn.CrossEntropyLoss()

    def evaluate(self):
        self.model.eval()
        correct, loss = 0, 0.0
        with torch.no_grad():
            for i in range(0, len(self.yte), 1000):
                out = self.model(self.xte[i:i + 1000])
                loss += float(self.lossf(out, self.yte[i:i + 1000])) * len(out)
                correct += int((out.argmax(1) == self.yte[i:i + 1000]).sum())
        return correct / len(self.yte), loss / len(self.yte)

    def step(self, lr):
        for w, m in self.masks.items():
            if w not in self.quant:
                w.grad.mul_(m)
        for w, (assign, code, vel) in self.quant.items():
            keep = self.masks[w].bool() if w in self.masks else torch.ones_like(w, dtype=torch.bool)
            dcode = torch.zeros_like(code).index_add_(0, assign[keep], w.grad[keep])
            vel.mul_(self.cfg.momentum).add_(dcode)
            code.sub_(lr * vel)
            w.grad = None  # SGD skips it: the codebook is its parameter now
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.opt.step()
        with torch.no_grad():
            for w, m in self.masks.items():
                w.mul_(m)
            for w, (assign, code, _) in self.quant.items():
                w.copy_(code[assign] * self.masks.get(w, 1.0))

    def phase(self, name, epochs, peak, schedule):
        n, b = len(self.ytr), self.cfg.batch
        steps = (n + b - 1) // b
        acc = self.evaluate() if epochs == 0 else None
        for e in range(epochs):
            self.model.train()
            perm = torch.randperm(n)
            for s in range(steps):
                idx = perm[s * b:(s + 1) * b]
                self.opt.zero_grad(set_to_none=False)
                self.lossf(self.model(self.xtr[idx]), self.ytr[idx]).backward()
                self.step(lr_at(self.cfg, peak, schedule, epochs, e + s / steps))
            acc = self.evaluate()
            print(f"peer {name} {e + 1}/{epochs}: test acc {100 * acc[0]:.2f}%", file=sys.stderr, flush=True)
        return acc

    # ------------------------------------------------------------ stages

    def prune_round(self, r):
        cfg = self.cfg
        f = min(max(r / max(cfg.rounds, 1), 0.0), 1.0)
        with torch.no_grad():
            for w, kv, is_conv, _ in self.prunable:
                over = float(kv.get("prune", -1))
                if cfg.method == "std":
                    s = (over if over >= 0 else cfg.quality[is_conv]) * f
                    nz = w[w != 0].double()
                    t = s * float(torch.sqrt(torch.clamp((nz * nz).mean() - nz.mean() ** 2, min=0))) if len(nz) else 0
                else:
                    s = (over if over >= 0 else cfg.sparsity[is_conv]) * (1 - (1 - f) ** 3)
                    k = min(int(math.floor(s * w.numel() + 0.5)), w.numel())
                    t = float(w.abs().flatten().kthvalue(k).values) if k > 0 else -1.0
                m = (w.abs() > t).float()
                self.masks[w] = self.masks[w] * m if w in self.masks else m
                w.mul_(self.masks[w])
                buf = self.opt.state.get(w, {}).get("momentum_buffer")
                if buf is not None:
                    buf.mul_(self.masks[w])

    def kmeans(self, x, c0, iters):
        k = len(c0)
        if self.a.kmeans == "sklearn" and len(x) >= k:
            from sklearn.cluster import KMeans
            km = KMeans(n_clusters=k, init=c0.reshape(-1, 1).numpy(), n_init=1, max_iter=iters, tol=0.0,
                        algorithm="lloyd").fit(x.reshape(-1, 1).numpy())
            return torch.from_numpy(km.cluster_centers_.ravel().astype(np.float32)), \
                torch.from_numpy(km.labels_.astype(np.int64))

        def assign(c):  # nearest centroid via the midpoints of the sorted centroids
            cs, order = torch.sort(c)
            return order[torch.bucketize(x, (cs[1:] + cs[:-1]) / 2)]

        c, a = c0.clone(), assign(c0)
        for _ in range(iters):
            cnt = torch.bincount(a, minlength=k)
            s = torch.zeros(k, dtype=torch.float64).index_add_(0, a, x.double())
            c = torch.where(cnt > 0, (s / cnt.clamp(min=1)).float(), c)
            b = assign(c)
            if torch.equal(a, b):
                break
            a = b
        return c, a

    def quantize(self):
        cfg = self.cfg
        if cfg.kinit != "linear":
            sys.exit("peer_torch_pipeline: only init = linear is implemented")
        with torch.no_grad():
            for w, kv, is_conv, _ in self.prunable:
                bits = int(kv.get("bits", 0)) or cfg.bits[is_conv]
                keep = self.masks[w].bool() if w in self.masks else torch.ones_like(w, dtype=torch.bool)
                x = w[keep].contiguous()
                k = 1 << bits
                c0 = torch.linspace(float(x.min()), float(x.max()), k) if len(x) else torch.zeros(k)
                code, labels = self.kmeans(x, c0, cfg.kiters)
                assign = torch.zeros(w.shape, dtype=torch.int64)
                assign[keep] = labels
                self.quant[w] = (assign, code, torch.zeros_like(code))
                w.copy_(code[assign] * keep.float())


def main():
    ap = argparse.ArgumentParser(description="PyTorch peer of dctrain's compression pipeline")
    ap.add_argument("config")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kmeans", choices=["sklearn", "torch"], default="sklearn")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    secs = read_ini(a.config)
    apply_sets(secs, a.set)
    cfg = Config(secs)
    torch.manual_seed(cfg.seed)
    p = Pipeline(cfg, a)
    stages = []

    def stage(name, fn):
        t0 = time.perf_counter()
        acc, loss = fn()
        stages.append({"stage": name, "seconds": round(time.perf_counter() - t0, 3), "test_accuracy": acc,
                       "test_loss": loss})
        print(f"peer {name}: {stages[-1]['seconds']:.1f}s, test acc {100 * acc:.2f}%", file=sys.stderr, flush=True)

    if cfg.epochs > 0:
        stage("train", lambda: p.phase("train", cfg.epochs, cfg.lr, cfg.schedule))
    for r in range(1, cfg.rounds + 1 if cfg.has["prune"] else 1):
        name = f"prune-{r}"
        stage(name, lambda: (p.prune_round(r), p.evaluate(),
                             p.phase(name, cfg.retrain_epochs, cfg.retrain_lr, "cosine"))[2])
    if cfg.has["quantize"]:
        stage("quantize", lambda: (p.quantize(), p.evaluate(),
                                   p.phase("finetune", cfg.finetune_epochs, cfg.finetune_lr, "const"))[2])
    stage("evaluate", p.evaluate)
    kept = sum(int(p.masks[w].sum()) if w in p.masks else w.numel() for w, *_ in p.prunable)
    total = sum(w.numel() for w, *_ in p.prunable)
    print(json.dumps({"impl": f"pytorch {torch.__version__}", "kmeans": a.kmeans, "threads": a.threads,
                      "config": a.config, "sets": a.set, "train_images": len(p.ytr), "test_images": len(p.yte),
                      "kept_fraction": kept / total, "stages": stages,
                      "total_seconds": round(sum(s["seconds"] for s in stages), 3),
                      "test_accuracy": stages[-1]["test_accuracy"]}))


if __name__ == "__main__":
    main()
