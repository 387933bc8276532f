#!/usr/bin/env python3
"""The PyTorch peer for bench_spmat (Han et al. 2016, Appendix A, Table 8):
times y[N,M] = x[N,K] W^T on exactly the matrices bench_spmat dumped
(--dump DIR), with a dense torch.mm (what nn.Linear runs) and with PyTorch's
sparse CSR (W.to_sparse_csr() @ x^T, x^T made contiguous beforehand), at the
same thread count, batch sizes and timing rule: two warm-up calls, then
enough calls for about --seconds (at least 5), and the median.

Before timing it checks that its dense product equals bench_spmat's
double-precision reference stored in the file (so both sides hold the same
matrix) and that the CSR product equals the dense one, each with
|ref - got| <= 1e-4 * (1 + |ref|); a mismatch stops it with a message.
With a GPU (torch.cuda.is_available()) it does the same on CUDA tensors;
otherwise it writes one "no GPU" row for cuda.

File (little-endian): magic "DCSPMAT1", u32 version 1, i32 M, i32 K, i32 NX,
i64 E, then u32 pos[E] (flat r*K + c), f32 values[E], f32 x[NX,K],
f32 y_ref[NX,M].

Output: a TSV (--out) with one row per (device, layer, batch, method), and a
readable line per row on stdout."""
import argparse
import math
import os
import statistics
import sys
import time
import warnings

LAYERS = ["alexnet-fc6", "alexnet-fc7", "alexnet-fc8", "vgg16-fc6", "vgg16-fc7", "vgg16-fc8"]
FLUSH_FLOATS = 16 << 20  # 64 MiB, as bench_spmat --flush


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", help="bench_spmat --dump folder holding <layer>.spm")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--batch", default="1,64", help="comma-separated batch sizes (default 1,64)")
    ap.add_argument("--layers", default=",".join(LAYERS), help="comma-separated layer names")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "both"])
    ap.add_argument("--seconds", type=float, default=0.3, help="timed time per cell (at least 5 calls)")
    ap.add_argument("--flush", action="store_true", help="write a 64 MiB buffer before each timed call")
    ap.add_argument("--out", help="write the rows as TSV to this file")
    return ap.parse_args()


a = parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # before torch loads its pools
    os.environ[var] = str(a.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(a.threads)
torch.set_grad_enabled(False)
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


def read_spm(path):
    with open(path, "rb") as f:
        head = f.read(32)
        if len(head) < 32 or head[:8] != b"DCSPMAT1":
            sys.exit(f"{path}: not a bench_spmat dump (rerun bench_spmat --dump DIR)")
        version, m, k, nx = np.frombuffer(head[8:24], dtype="<i4")
        nnz = int(np.frombuffer(head[24:32], dtype="<i8")[0])
        if version != 1:
            sys.exit(f"{path}: version {version}, this peer reads 1 (rebuild bench_spmat and rerun it)")
        m, k, nx = int(m), int(k), int(nx)
        pos = np.fromfile(f, dtype="<u4", count=nnz)
        val = np.fromfile(f, dtype="<f4", count=nnz)
        x = np.fromfile(f, dtype="<f4", count=nx * k).reshape(nx, k)
        y = np.fromfile(f, dtype="<f4", count=nx * m).reshape(nx, m)
    if len(y) != nx:
        sys.exit(f"{path}: file ends early (rerun bench_spmat --dump DIR)")
    w = np.zeros(m * k, dtype=np.float32)
    w[pos.astype(np.int64)] = val
    return w.reshape(m, k), nnz, x, y


def check(layer, what, ref, got):
    ref = ref.double().cpu()
    got = got.double().cpu()
    bad = (ref - got).abs() > 1e-4 * (1 + ref.abs())
    if bool(bad.any()):
        i = int(bad.flatten().nonzero()[0])
        sys.exit(f"peer_torch_spmat: {layer} {what}: element {i} is {got.flatten()[i]:.7g}, "
                 f"the reference is {ref.flatten()[i]:.7g}")


def timed(fn, dev, flush):
    def once():
        if dev == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if dev == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    t0 = time.perf_counter()
    fn()
    fn()
    if dev == "cuda":
        torch.cuda.synchronize()
    est = max((time.perf_counter() - t0) / 2, 1e-7)
    reps = int(min(100000, max(5, math.ceil(a.seconds / est))))
    times = []
    for _ in range(reps):
        if flush is not None:
            flush.add_(1)
        times.append(once())
    return statistics.median(times), reps


def run_layer(layer, dev, batches, rows):
    w_np, nnz, x_np, y_np = read_spm(os.path.join(a.dir, layer + ".spm"))
    m, k = w_np.shape
    w = torch.from_numpy(w_np).to(dev)
    w_csr = w.to_sparse_csr()
    csr_bytes = sum(t.numel() * t.element_size()
                    for t in (w_csr.crow_indices(), w_csr.col_indices(), w_csr.values()))
    flush = torch.zeros(FLUSH_FLOATS, device=dev) if a.flush else None
    for n in batches:
        if n > len(x_np):
            sys.exit(f"{layer}: batch {n} but the dump holds {len(x_np)} rows of x (rerun bench_spmat with it)")
        x = torch.from_numpy(np.ascontiguousarray(x_np[:n])).to(dev)
        xt = x.t().contiguous()  # [K,N]: the layout a CSR product takes, made once outside the timing
        yd = torch.mm(x, w.t())
        check(layer, f"dense batch {n} vs bench_spmat's reference", torch.from_numpy(y_np[:n]), yd)
        methods = [("torch-dense", lambda: torch.mm(x, w.t()), 4 * m * k)]
        try:
            ys = torch.mm(w_csr, xt)
            check(layer, f"CSR batch {n} vs dense", yd.t(), ys)
            methods.append(("torch-csr", lambda: torch.mm(w_csr, xt), csr_bytes))
        except RuntimeError as e:  # e.g. a build whose CPU CSR product needs MKL
            rows.append([dev, layer, m, k, nnz, n, "torch-csr", "unsupported: " + str(e).splitlines()[0]])
            print(f"{layer:12s} {dev} batch {n:3d} torch-csr unsupported: {str(e).splitlines()[0]}", flush=True)
        base = None
        for name, fn, nbytes in methods:
            sec, reps = timed(fn, dev, flush)
            base = base or sec
            rows.append([dev, layer, m, k, nnz, n, name, f"{1e6 * sec / n:.4f}", f"{1e-9 * nbytes / sec:.4f}",
                         nbytes, f"{base / sec:.4f}", reps])
            print(f"{layer:12s} {dev} batch {n:3d} {name:11s} {1e6 * sec / n:10.2f} us/sample "
                  f"{1e-9 * nbytes / sec:8.2f} GB/s {nbytes:12d} bytes {base / sec:6.2f}x vs torch-dense "
                  f"({reps} calls)", flush=True)


def main():
    batches = [int(b) for b in a.batch.split(",")]
    layers = [l for l in a.layers.split(",") if l]
    devs = ["cpu", "cuda"] if a.device == "both" else [a.device]
    rows = []
    print(f"# peer_torch_spmat: torch {torch.__version__}, {a.threads} threads, "
          f"{'cold' if a.flush else 'hot'} caches", flush=True)
    for dev in devs:
        if dev == "cuda" and not torch.cuda.is_available():
            rows.append(["cuda", "-", "", "", "", "", "no GPU", "no GPU"])
            print("cuda: no GPU (torch.cuda.is_available() is False)", flush=True)
            continue
        for layer in layers:
            run_layer(layer, dev, batches, rows)
    if a.out:
        with open(a.out, "w") as f:
            f.write("device\tlayer\tM\tK\tnnz\tbatch\tmethod\tus_per_sample\tGBps\tbytes\tspeedup_vs_first\t"
                    "calls\ttorch\tthreads\tcache\n")
            for r in rows:
                r = r + [""] * (12 - len(r))
                f.write("\t".join(str(v) for v in r) + f"\t{torch.__version__}\t{a.threads}\t"
                        f"{'cold' if a.flush else 'hot'}\n")


main()
