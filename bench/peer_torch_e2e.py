#!/usr/bin/env python3
"""The PyTorch peer for dcinfer end to end: a model's decoded weights, as
`dcexport MODEL.dcm W.npz` writes them, in an ordinary dense PyTorch network
built from the network description the file carries; test accuracy over the
whole test set, then the latency of a batch timed as dcinfer times it (the
first B test images, 3 warm-up forwards, the median of --repeats forwards).

  peer_torch_e2e.py W.npz --data DIR --batch B --threads T [--repeats 50] --json OUT.json

Layers: conv (with batch_normalize), fc, maxpool, avgpool, relu, batchnorm,
dropout (identity at test time); a description with any other layer (fire) is
refused with one line, as is a weight missing from the file."""
import argparse, json, os, statistics, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_torch_train import find, read_idx  # the same IDX reader as the training peer


def fail(msg):
    sys.exit(f"peer_torch_e2e: {msg}")


def parse_net(text):
    """[(section, {key: value})] in file order."""
    layers = []
    for raw in text.splitlines():
        line = raw.split("#")[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            layers.append((line[1:-1].strip(), {}))
        elif "=" in line and layers:
            k, v = line.split("=", 1)
            layers[-1][1][k.strip()] = v.strip()
    return layers


class Net(nn.Module):
    """The description's layers in order, with our default names (conv1, fc2, pool1, ...)."""

    def __init__(self, desc, w, in_shape):
        super().__init__()
        self.steps = []
        counts = {}
        c, h, wd = in_shape
        flat = None

        def param(name):
            if name not in w:
                fail(f"the file has no tensor {name}")
            return torch.from_numpy(np.ascontiguousarray(w[name], dtype=np.float32))

        def bn(prefix):
            return [param(prefix + s) for s in (".weight", ".bias", ".running_mean", ".running_var")]

        for sec, kv in desc:
            stem = "pool" if sec in ("maxpool", "avgpool") else {"batchnorm": "bn"}.get(sec, sec)
            counts[stem] = counts.get(stem, 0) + 1
            name = kv.get("name", f"{stem}{counts[stem]}")
            act = kv.get("activation", "linear")
            if act not in ("linear", "relu"):
                fail(f"layer {name}: activation {act} is not supported here")
            if sec == "conv":
                size, stride = int(kv["size"]), int(kv.get("stride", 1))
                pad = int(kv.get("pad", size // 2))
                weight = param(name + ".weight")
                bias = param(name + ".bias") if name + ".bias" in w else None
                norm = bn(name + ".bn") if kv.get("batch_normalize", "0") == "1" else None
                self.steps.append(("conv", weight, bias, stride, pad, norm, act == "relu"))
                c = weight.shape[0]
                h, wd = (h + 2 * pad - size) // stride + 1, (wd + 2 * pad - size) // stride + 1
            elif sec == "fc":
                weight = param(name + ".weight")
                bias = param(name + ".bias") if name + ".bias" in w else None
                self.steps.append(("fc", weight, bias, act == "relu"))
                c, h, wd = weight.shape[0], 1, 1
            elif sec in ("maxpool", "avgpool"):
                size = int(kv.get("size", 2 if sec == "maxpool" else 0))
                if size == 0:  # global average
                    self.steps.append(("gap",))
                    h = wd = 1
                    continue
                stride, pad = int(kv.get("stride", size)), int(kv.get("pad", 0))
                self.steps.append((sec, size, stride, pad))
                h, wd = (h + 2 * pad - size) // stride + 1, (wd + 2 * pad - size) // stride + 1
            elif sec == "relu":
                self.steps.append(("relu",))
            elif sec == "batchnorm":
                self.steps.append(("bn", bn(name)))
            elif sec == "dropout":
                continue
            else:
                fail(f"layer [{sec}] ({name}) is not supported by this peer")
        self.out_shape = (c, h, wd)

    def forward(self, x):
        for s in self.steps:
            k = s[0]
            if k == "conv":
                _, wt, b, stride, pad, norm, relu = s
                x = F.conv2d(x, wt, b, stride, pad)
                if norm:
                    x = F.batch_norm(x, norm[2], norm[3], norm[0], norm[1], False, 0.0, 1e-5)
                if relu:
                    x = F.relu(x)
            elif k == "fc":
                _, wt, b, relu = s
                x = F.linear(x.flatten(1), wt, b)
                if relu:
                    x = F.relu(x)
            elif k == "maxpool":
                x = F.max_pool2d(x, s[1], s[2], s[3])
            elif k == "avgpool":
                x = F.avg_pool2d(x, s[1], s[2], s[3])
            elif k == "gap":
                x = x.mean((2, 3), keepdim=True)
            elif k == "relu":
                x = F.relu(x)
            elif k == "bn":
                p = s[1]
                x = F.batch_norm(x, p[2], p[3], p[0], p[1], False, 0.0, 1e-5)
        return x.flatten(1)


def test_set(dataset, d):
    """The test split, normalised as our data loaders do (src/data/)."""
    if dataset == "mnist":
        x = read_idx(find(d, "t10k-images-idx3-ubyte")).astype(np.float32) / 255.0
        y = read_idx(find(d, "t10k-labels-idx1-ubyte")).astype(np.int64)
        return (x - 0.1307) / 0.3081, y
    if dataset == "cifar10":
        sub = os.path.join(d, "cifar-10-batches-bin")
        d = sub if os.path.isdir(sub) else d
        rec = np.fromfile(os.path.join(d, "test_batch.bin"), np.uint8).reshape(-1, 3073)
        x = rec[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
        mean = np.array([0.4914, 0.4822, 0.4465], np.float32).reshape(1, 3, 1, 1)
        std = np.array([0.2470, 0.2435, 0.2616], np.float32).reshape(1, 3, 1, 1)
        return (x - mean) / std, rec[:, 0].astype(np.int64)
    fail(f"dataset {dataset!r} is not supported")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--data", required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try:
        z = np.load(a.weights)
        w = {k: z[k] for k in z.files}
    except Exception as e:  # a damaged or foreign file: one line
        fail(f"{a.weights}: {e}")
    if "__network__" not in w or "__dataset__" not in w:
        fail(f"{a.weights}: no __network__ / __dataset__ (write it with dcexport)")
    dataset = bytes(w["__dataset__"]).decode()
    x, y = test_set(dataset, a.data)
    net = Net(parse_net(bytes(w["__network__"]).decode()), w, x.shape[1:])
    xt = torch.from_numpy(x)
    with torch.inference_mode():
        pred = torch.cat([net(xt[i:i + 1000]).argmax(1) for i in range(0, len(xt), 1000)])
        acc = float((pred.numpy() == y).mean())
        xb = xt[:a.batch].contiguous()
        for _ in range(3):
            net(xb)
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            net(xb)
            times.append(time.perf_counter() - t0)
    # conv and fc weight matrices, as dcinfer counts them (biases and batch norm apart)
    weight_bytes = sum(v.nbytes for k, v in w.items() if k.endswith(".weight") and v.ndim >= 2)
    report = {"test_accuracy": acc, "test_images": int(len(y)), "latency_us": 1e6 * statistics.median(times),
              "batch": a.batch, "threads": a.threads, "weight_bytes": weight_bytes,
              "peer": f"torch {torch.__version__}", "weights": []}
    with open(a.json, "w") as f:
        json.dump(report, f, indent=1)
    print(f"# peer_torch_e2e: torch {torch.__version__}, {a.threads} thread(s), batch {a.batch}: "
          f"accuracy {acc:.4f}, latency {report['latency_us']:.1f} us")


if __name__ == "__main__":
    main()
