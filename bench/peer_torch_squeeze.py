#!/usr/bin/env python3
"""The PyTorch peer for the squeezed networks: the same squeezed LeNet (MNIST)
or squeezed VGG (CIFAR-10) as configs/lenet5_fire_mnist.ini and
configs/squeezevgg_cifar.ini, trained with the same recipe (SGD with Nesterov
momentum, weight decay on every tensor, batch, epochs, the same one-cycle or
cosine rate per step, random crop from 4 zero pixels and horizontal flip for
CIFAR-10, the same normalisation), on the same files.

It reports test accuracy after every epoch and the training time per epoch,
so it serves both as the accuracy peer (is our accuracy the architecture's?)
and as the speed peer (--epochs 1 --limit N for timing only).

  peer_torch_squeeze.py --model squeezevgg|lenet5fire --data DIR [--epochs E]
      [--batch B] [--lr LR] [--threads T] [--limit N] [--seed S] [--out FILE.json]
      [--checkpoint FILE]   (saved after every epoch; an existing one is resumed)
  peer_torch_squeeze.py --config CONFIG.ini --data DIR ...
      (the network and recipe read from one of our configs: [conv] [fire]
       [batchnorm] [maxpool] [avgpool] [fc] [dropout] layers, [train] epochs,
       batch, lr, weight_decay, schedule, label_smoothing; [data] set)
"""
import argparse, json, math, os, sys, time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_torch_train import find, read_idx  # noqa: E402  (one MNIST reader)
from peer_torch_pipeline import GLOBAL, read_ini  # noqa: E402  (one reader of our INI)


class Fire(nn.Module):
    """squeeze 1x1 + ReLU, expand 1x1 and 3x3 (pad 1) concatenated, ReLU"""

    def __init__(self, c, s, e1, e3):
        super().__init__()
        self.squeeze = nn.Conv2d(c, s, 1)
        self.expand1 = nn.Conv2d(s, e1, 1)
        self.expand3 = nn.Conv2d(s, e3, 3, padding=1)

    def forward(self, x):
        s = torch.relu(self.squeeze(x))
        return torch.relu(torch.cat([self.expand1(s), self.expand3(s)], 1))


def squeezevgg():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        Fire(32, 16, 48, 48), nn.BatchNorm2d(96), Fire(96, 24, 48, 48), nn.BatchNorm2d(96), nn.MaxPool2d(2),
        Fire(96, 32, 96, 96), nn.BatchNorm2d(192), Fire(192, 48, 96, 96), nn.BatchNorm2d(192), nn.MaxPool2d(2),
        Fire(192, 64, 192, 192), nn.BatchNorm2d(384), Fire(384, 64, 192, 192), nn.BatchNorm2d(384),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(384, 10))


def lenet5fire():
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        Fire(16, 16, 32, 32), nn.MaxPool2d(2), Fire(64, 16, 32, 32), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(576, 10))


def net_from_ini(secs, channels, size):
    """the layer sections of one of our configs as a torch module (same defaults as config_net.c)"""
    mods, c, hw = [], channels, size
    for name, kv in secs:
        if name in GLOBAL:
            continue
        if name == "conv":
            k, r = int(kv["filters"]), int(kv.get("size", 3))
            pad, stride = int(kv.get("pad", r // 2)), int(kv.get("stride", 1))
            bn = kv.get("batch_normalize", "0") == "1"
            mods.append(nn.Conv2d(c, k, r, stride=stride, padding=pad, bias=not bn))
            if bn:
                mods.append(nn.BatchNorm2d(k))
            if kv.get("activation", "linear") == "relu":
                mods.append(nn.ReLU())
            c, hw = k, (hw + 2 * pad - r) // stride + 1
        elif name == "fire":
            e1, e3 = int(kv["expand1x1"]), int(kv["expand3x3"])
            mods.append(Fire(c, int(kv["squeeze"]), e1, e3))
            c = e1 + e3
        elif name == "batchnorm":
            mods.append(nn.BatchNorm2d(c))
        elif name == "maxpool":
            r = int(kv.get("size", 2))
            stride = int(kv.get("stride", r))
            mods.append(nn.MaxPool2d(r, stride))
            hw = (hw - r) // stride + 1
        elif name == "avgpool":
            mods.append(nn.AdaptiveAvgPool2d(1))
            hw = 1
        elif name == "dropout":
            mods.append(nn.Dropout(float(kv.get("probability", kv.get("rate", 0.5)))))
        elif name == "fc":
            if not any(isinstance(m, nn.Flatten) for m in mods):
                mods.append(nn.Flatten())
            k = int(kv["outputs"])
            mods.append(nn.Linear(c * hw * hw, k))
            if kv.get("activation", "linear") == "relu":
                mods.append(nn.ReLU())
            c, hw = k, 1
        else:
            sys.exit(f"peer: layer [{name}] is not supported here")
    if not any(isinstance(m, nn.Flatten) for m in mods):
        mods.append(nn.Flatten())  # a net ending in a global average (SqueezeNet's conv10) has no [fc] to flatten
    return nn.Sequential(*mods)


def load_mnist(d, split):
    pre = "train" if split == "train" else "t10k"
    x = read_idx(find(d, f"{pre}-images-idx3-ubyte"))
    y = read_idx(find(d, f"{pre}-labels-idx1-ubyte")).astype(np.int64)
    return x, y, np.array([0.1307], np.float32), np.array([0.3081], np.float32)


def load_cifar(d, split):
    sub = os.path.join(d, "cifar-10-batches-bin")
    d = sub if os.path.isdir(sub) else d
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
    recs = np.concatenate([np.fromfile(os.path.join(d, f), np.uint8).reshape(-1, 3073) for f in names])
    mean = np.array([0.4914, 0.4822, 0.4465], np.float32)
    std = np.array([0.2470, 0.2435, 0.2616], np.float32)
    return recs[:, 1:].reshape(-1, 3, 32, 32), recs[:, 0].astype(np.int64), mean, std


def lr_at(kind, base, f):
    """our dc_lr_at (src/train/lr_schedule.c) at fraction f of the phase"""
    if kind == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * min(f, 1.0)))
    lo = base / 25.0
    end = lo / 1e4
    if f < 0.3:
        return lo + (base - lo) * 0.5 * (1 - math.cos(math.pi * f / 0.3))
    g = (f - 0.3) / 0.7
    return end + (base - end) * 0.5 * (1 + math.cos(math.pi * min(g, 1.0)))


def augment(xb, gen):
    """random crop from 4 zero (black) pixels of padding, then horizontal flip"""
    n, _, h, w = xb.shape
    padded = torch.nn.functional.pad(xb, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=gen)
    dx = torch.randint(0, 9, (n,), generator=gen)
    flip = torch.randint(0, 2, (n,), generator=gen).bool()
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).view(n, 1, h, 1)
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w))
    cols = torch.where(flip.view(n, 1), cols.flip(1), cols).view(n, 1, 1, w)
    idx_n = torch.arange(n).view(n, 1, 1, 1)
    idx_c = torch.arange(xb.shape[1]).view(1, -1, 1, 1)
    return padded[idx_n, idx_c, rows, cols]


def normalise(xb, mean, std):
    return (xb.float() / 255.0 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def evaluate(model, x, y, mean, std, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            correct += (model(normalise(x[i:i + batch], mean, std)).argmax(1) == y[i:i + batch]).sum().item()
    return correct


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["squeezevgg", "lenet5fire"])
    ap.add_argument("--config", help="build the network and recipe from this config instead of --model")
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=0, help="default: the config's, else 15")
    ap.add_argument("--batch", type=int, default=0, help="default: the config's (128 / 64)")
    ap.add_argument("--lr", type=float, default=0.0, help="default: the config's (0.1 / 0.05)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only (timing)")
    ap.add_argument("--no-test", action="store_true", help="timing only: skip the test pass")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="write the per-epoch record as JSON here too")
    ap.add_argument("--checkpoint", help="save model, optimiser and RNG state here after every epoch; "
                    "resume from it when it exists")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if not a.model and not a.config:
        sys.exit("peer: give --model or --config")
    secs = read_ini(a.config) if a.config else []
    cfg = {name: kv for name, kv in secs if name in ("data", "train")}
    tr = cfg.get("train", {})
    cifar = cfg["data"]["set"] == "cifar10" if a.config else a.model == "squeezevgg"
    load = load_cifar if cifar else load_mnist
    batch = a.batch or int(tr.get("batch", 128 if cifar else 64))
    base = a.lr or float(tr.get("lr", 0.1 if cifar else 0.05))
    kind = tr.get("schedule", "onecycle" if cifar else "cosine")
    wd = float(tr.get("weight_decay", 5e-4 if cifar else 1e-4))
    a.epochs = a.epochs or int(tr.get("epochs", 15))
    xtr, ytr, mean, std = load(a.data, "train")
    xte, yte, _, _ = load(a.data, "test")
    if a.limit:
        xtr, ytr = xtr[:a.limit], ytr[:a.limit]
    xtr, ytr = torch.from_numpy(np.array(xtr)), torch.from_numpy(np.array(ytr))
    xte, yte = torch.from_numpy(np.array(xte)), torch.from_numpy(np.array(yte))
    mean, std = torch.from_numpy(mean), torch.from_numpy(std)
    if a.config:
        model = net_from_ini(secs, 3 if cifar else 1, 32 if cifar else 28)
    else:
        model = squeezevgg() if cifar else lenet5fire()
    nparams = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=base, momentum=0.9, weight_decay=wd,
                          nesterov=True)
    smoothing = float(tr.get("label_smoothing", 0))
    lossf = nn.CrossEntropyLoss(label_smoothing=smoothing)  # ours: [train] label_smoothing, same definition
    gen = torch.Generator().manual_seed(a.seed)
    steps = (len(ytr) + batch - 1) // batch
    record = {"impl": f"pytorch {torch.__version__}", "model": a.config or a.model, "threads": a.threads, "batch": batch,
              "parameters": nparams, "images": len(ytr), "label_smoothing": smoothing, "epochs": []}
    first = 0
    if a.checkpoint and os.path.exists(a.checkpoint):
        ck = torch.load(a.checkpoint)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        gen.set_state(ck["gen"])
        record, first = ck["record"], ck["epoch"]
        print(f"peer: resumed {a.checkpoint} after epoch {first}", file=sys.stderr)
    for e in range(first, a.epochs):
        perm = torch.randperm(len(ytr), generator=gen)
        t0 = time.perf_counter()
        model.train()
        loss_sum = correct = 0.0
        for s in range(steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(kind, base, (e + s / steps) / a.epochs)
            idx = perm[s * batch:(s + 1) * batch]
            xb = xtr[idx]
            xb = normalise(augment(xb, gen) if cifar else xb, mean, std)
            out = model(xb)
            loss = lossf(out, ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (out.argmax(1) == ytr[idx]).sum().item()
        secs = time.perf_counter() - t0
        rec = {"epoch": e + 1, "seconds": round(secs, 2), "train_loss": round(loss_sum / len(ytr), 4),
               "train_acc": round(100 * correct / len(ytr), 2)}
        if not a.no_test:
            rec["test_acc"] = round(100 * evaluate(model, xte, yte, mean, std) / len(yte), 2)
        record["epochs"].append(rec)
        print(json.dumps(rec), flush=True)
        if a.checkpoint:
            tmp = a.checkpoint + ".tmp"
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                        "record": record, "epoch": e + 1}, tmp)
            os.replace(tmp, a.checkpoint)
    record["epoch_seconds_best"] = min(r["seconds"] for r in record["epochs"])
    record["images_per_second"] = round(len(ytr) / record["epoch_seconds_best"], 1)
    if not a.no_test:
        record["test_acc"] = record["epochs"][-1]["test_acc"]
    print(json.dumps({k: v for k, v in record.items() if k != "epochs"}))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
