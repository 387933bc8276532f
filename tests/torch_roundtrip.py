#!/usr/bin/python3
"""torch_roundtrip.py: bring a PyTorch model, take it back.

Trains LeNet-300-100 (784-300-100-10, ReLU) in PyTorch on MNIST, saves it as
.npz (NumPy's savez, our parameter names) and as .safetensors (written by
hand in the format's layout, names prefixed "model." and in sorted order as
the safetensors package writes them, so dctrain pairs them through an
[init] map given with --set).  For each file: dctrain --init FILE --stages
compress (prune rounds, quantization, Huffman encoding; no training), dcexport
the .dcm to the same container, load it back into the PyTorch model with
load_state_dict(strict=True), and count correct test images in PyTorch and
with dceval on the .dcm: the counts must be equal, and the compression rate
at least --min-rate.

usage: torch_roundtrip.py --build DIR --data MNIST_DIR --work DIR
           [--config INI] [--epochs N] [--retrain-epochs N] [--min-rate X]
Exit 0 pass, 1 fail, 77 when torch or numpy is missing.  Prints one result
line per container, e.g.
  roundtrip npz: rate 42.1x, torch 9851/10000, dceval 9851/10000: equal
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import time

try:
    import numpy as np
    import torch
except ImportError as e:
    print("torch_roundtrip: %s: skipped" % e)
    sys.exit(77)

MEAN, STD = np.float32(0.1307), np.float32(0.3081)  # as src/data/data_mnist.c
NAMES = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]


class LeNet300(torch.nn.Module):
    """The network of configs/lenet300_mnist_dc.ini, with its parameter names."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 300)
        self.fc2 = torch.nn.Linear(300, 100)
        self.fc3 = torch.nn.Linear(100, 10)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def idx(data, name, offset):
    p = os.path.join(data, name)
    raw = gzip.open(p + ".gz").read() if os.path.exists(p + ".gz") else open(p, "rb").read()
    return np.frombuffer(raw, np.uint8, offset=offset)


def mnist(data, split):
    img = idx(data, "%s-images-idx3-ubyte" % split, 16).reshape(-1, 784)
    lab = idx(data, "%s-labels-idx1-ubyte" % split, 8).astype(np.int64)
    x = (img.astype(np.float32) / np.float32(255.0) - MEAN) / STD  # float32 throughout, as ours
    return torch.from_numpy(x), torch.from_numpy(lab)


def train(model, x, y, epochs, seed):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    steps = epochs * ((len(x) + 63) // 64)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[b]), y[b]).backward()
            opt.step()
            sched.step()


def correct(model, x, y):
    with torch.no_grad():
        return int((model(x).argmax(1) == y).sum())


def write_safetensors(path, tensors):
    """The safetensors layout: u64 header size, JSON header (padded with
    spaces to 8 bytes), raw little-endian data in header order."""
    header, blobs, off = {}, [], 0
    for name, a in tensors:
        a = np.ascontiguousarray(a, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    hdr.pop("__metadata__", None)
    dt = {"F32": "<f4", "F64": "<f8", "U8": "u1"}
    return {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dt[v["dtype"]])
            .reshape(v["shape"]) for k, v in hdr.items()}


def run(cmd, log):
    t0 = time.time()
    with open(log, "w") as f:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    if rc != 0:
        tail = open(log).read()[-1500:]
        raise RuntimeError("%s exited %d after %.0fs:\n%s" % (" ".join(cmd), rc, time.time() - t0, tail))
    return open(log).read()


def roundtrip(a, ext, weights, xt, yt):
    out = os.path.join(a.work, ext)
    sets = ["--set", "data.dir=" + a.data, "--set", "train.threads=1"]
    if a.retrain_epochs is not None:
        sets += ["--set", "prune.retrain_epochs=%d" % a.retrain_epochs]
    if ext == "safetensors":  # foreign names in a foreign order: the [init] map pairs them
        sets += ["--set", "init.map=" + ", ".join("model.%s:%s" % (n, n) for n in NAMES)]
    t0 = time.time()
    log = run([os.path.join(a.build, "dctrain"), a.config, "--init", weights, "--stages", "compress",
               "--device", "cpu", "--out", out] + sets, out + ".dctrain.log")
    secs = time.time() - t0
    summary = json.load(open(os.path.join(out, "summary.json")))
    if [s["stage"] for s in summary["stages"]][0] != "prune-1":
        raise RuntimeError("--stages compress ran %s first" % summary["stages"][0]["stage"])
    if ext == "safetensors" and "paired by name after [init] map" not in log:
        raise RuntimeError("dctrain printed no pairing table for the [init] map")
    enc = [s for s in summary["stages"] if s["stage"] == "encode"][0]
    dcm = enc["file"]
    back = os.path.join(out, "back." + ext)
    run([os.path.join(a.build, "dcexport"), dcm, back], out + ".dcexport.log")
    ev = run([os.path.join(a.build, "dceval"), dcm, "--data", a.data, "--device", "cpu", "--threads", "1"],
             out + ".dceval.log")
    # "...: test accuracy 98.51% (10000 images, ...": two decimals of 10,000 images are exact
    pct = float(ev.split("test accuracy ")[1].split("%")[0])
    n = int(ev.split("% (")[1].split(" images")[0])
    ours = int(round(pct * n / 100.0))
    z = np.load(back) if ext == "npz" else read_safetensors(back)
    model = LeNet300()
    model.load_state_dict({k: torch.from_numpy(np.array(z[k], dtype=np.float32)) for k in NAMES}, strict=True)
    theirs = correct(model, xt, yt)
    kept = sum(int((np.asarray(z[k]) != 0).sum()) for k in NAMES if k.endswith("weight"))
    rate = enc["compression_rate"]
    ok = theirs == ours and n == len(yt) and rate >= a.min_rate
    print("roundtrip %s: rate %.1fx (%d bytes, %d weights kept), torch %d/%d, dceval %d/%d: %s (dctrain %.0fs)"
          % (ext, rate, enc["file_bytes"], kept, theirs, len(yt), ours, n,
             "equal" if theirs == ours else "DIFFERENT", secs))
    if rate < a.min_rate:
        print("torch_roundtrip: %s: compression rate %.2f is below %.1f" % (ext, rate, a.min_rate))
    return ok, theirs


def main():
    ap = argparse.ArgumentParser(description="PyTorch -> dctrain --stages compress -> dcexport -> PyTorch")
    ap.add_argument("--build", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--config", default=os.path.join(os.path.dirname(__file__), "..", "configs",
                                                     "lenet300_mnist_dc.ini"))
    ap.add_argument("--epochs", type=int, default=10, help="PyTorch training epochs")
    ap.add_argument("--retrain-epochs", type=int, default=None, help="override [prune] retrain_epochs")
    ap.add_argument("--min-rate", type=float, default=40.0)
    ap.add_argument("--formats", default="npz,safetensors")
    a = ap.parse_args()
    a.data = os.path.abspath(a.data)
    os.makedirs(a.work, exist_ok=True)
    torch.manual_seed(1)
    torch.set_num_threads(1)
    x, y = mnist(a.data, "train")
    xt, yt = mnist(a.data, "t10k")
    model = LeNet300()
    t0 = time.time()
    train(model, x, y, a.epochs, 1)
    dense = correct(model, xt, yt)
    print("torch: LeNet-300-100 trained %d epochs in %.0fs: %d/%d test images correct"
          % (a.epochs, time.time() - t0, dense, len(yt)))
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    files = {"npz": os.path.join(a.work, "torch_lenet300.npz"),
             "safetensors": os.path.join(a.work, "torch_lenet300.safetensors")}
    np.savez(files["npz"], **sd)
    write_safetensors(files["safetensors"], sorted(("model." + k, v) for k, v in sd.items()))
    ok = True
    for ext in a.formats.split(","):
        try:
            good, _ = roundtrip(a, ext, files[ext], xt, yt)
        except (RuntimeError, OSError, KeyError, IndexError, ValueError) as e:
            print("torch_roundtrip: %s: %s" % (ext, e))
            good = False
        ok &= good
    print("torch_roundtrip: %s" % ("pass" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
