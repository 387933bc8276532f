#!/usr/bin/env python3
"""The PyTorch peer for bench_train: the same LeNet-300-100 / LeNet-5 / VGG-19-bn,
batch size, optimiser and thread count, timing training epochs only (data
pre-loaded as normalised float tensors, which favours the peer)."""
import argparse, gzip, json, os, struct, time

import numpy as np
import torch
import torch.nn as nn


def read_idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x803:
        h, w = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, h, w)
    return np.frombuffer(data, np.uint8, offset=8)


def find(d, name):
    for cand in (name, name + ".gz"):
        if os.path.exists(os.path.join(d, cand)):
            return os.path.join(d, cand)
    raise SystemExit(f"peer: {d}/{name}[.gz] not found")


def load_mnist(d):
    x = read_idx(find(d, "train-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(find(d, "train-labels-idx1-ubyte")).astype(np.int64)
    return (x - 0.1307) / 0.3081, y


def load_cifar(d):
    sub = os.path.join(d, "cifar-10-batches-bin")
    d = sub if os.path.isdir(sub) else d
    recs = np.concatenate([np.fromfile(os.path.join(d, f"data_batch_{i}.bin"), np.uint8).reshape(-1, 3073)
                           for i in range(1, 6)])
    x = recs[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    mean = np.array([0.4914, 0.4822, 0.4465], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.2470, 0.2435, 0.2616], np.float32).reshape(1, 3, 1, 1)
    return (x - mean) / std, recs[:, 0].astype(np.int64)


def lenet300():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                         nn.Linear(100, 10))


def lenet5():
    return nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


def vgg19():
    layers, c = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["lenet300", "lenet5", "vgg19"], required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--no-tf32", action="store_true", help="true FP32 matrix math on the GPU")
    a = ap.parse_args()
    if a.no_tf32:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    x, y = (load_cifar if a.model == "vgg19" else load_mnist)(a.data)
    if a.limit:
        x, y = x[:a.limit], y[:a.limit]
    dev = torch.device(a.device)
    x, y = torch.from_numpy(np.ascontiguousarray(x)).to(dev), torch.from_numpy(y).to(dev)
    model = {"lenet300": lenet300, "lenet5": lenet5, "vgg19": vgg19}[a.model]().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # the peer's best algorithms, as ours are found per shape
    lossf = nn.CrossEntropyLoss()
    times = []
    for _ in range(a.epochs):
        perm = torch.randperm(len(y), device=dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.train()
        for i in range(0, len(y), a.batch):
            idx = perm[i:i + a.batch]
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"impl": f"pytorch {torch.__version__}", "model": a.model, "device": a.device,
                      "threads": a.threads, "batch": a.batch, "images": len(y), "epochs": a.epochs,
                      "epoch_seconds_best": round(min(times), 4),
                      "images_per_second": round(len(y) / min(times), 1)}))


if __name__ == "__main__":
    main()
