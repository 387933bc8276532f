#!/usr/bin/env python3
"""The scikit-learn peer for bench_kmeans: clusters exactly the weights that
bench_kmeans dumped, from exactly its initial centroids, with
KMeans(n_clusters=k, init=<those centroids>, n_init=1, max_iter=<same>, tol=0,
algorithm="lloyd"), times fit() (warm-up, then the median of --repeat runs)
and computes the inertia in float64 the same way bench_kmeans does, so the two
Lloyd runs can be compared value for value.

Reads bench_kmeans's JSON lines (run with --dump DIR) from a file or stdin and
prints each "kmeans" line again with a "sklearn" record added (the "info" line
gets the peer's versions and thread count).  "inertia_keep_empty_numpy" is
a plain numpy Lloyd with our empty-cluster rule: it should match ours.

One known difference: scikit-learn moves an empty cluster onto the point
farthest from its centroid, while ours keeps an empty cluster's centroid
where it was; with linear initialisation and k = 256 a few clusters can start
empty, and then sklearn's inertia can come out lower.  "empty_init" counts
the clusters that are empty under the initial assignment."""
import argparse
import json
import os
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ours", help="bench_kmeans output (JSON lines), '-' for stdin")
    ap.add_argument("--threads", type=int, default=0, help="OpenMP threads for sklearn (0: all)")
    ap.add_argument("--repeat", type=int, default=0, help="timed runs (0: bench_kmeans's count)")
    ap.add_argument("--warmup", type=int, default=1)
    return ap.parse_args()


a = parse_args()
if a.threads > 0:  # before numpy and sklearn load their thread pools
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(a.threads)

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # older Debian: the environment variables above do it
    threadpool_limits = None


def nearest(x, centers):
    """Distance from each x to its nearest centre, and that centre's index,
    in float64 (binary search over the sorted centres)."""
    order = np.argsort(centers, kind="stable")
    c = centers[order].astype(np.float64)
    xd = x.astype(np.float64)
    hi = np.clip(np.searchsorted(c, xd), 0, len(c) - 1)
    lo = np.maximum(hi - 1, 0)
    dlo, dhi = np.abs(xd - c[lo]), np.abs(xd - c[hi])
    pick = np.where(dlo <= dhi, lo, hi)
    return np.minimum(dlo, dhi), order[pick]


def inertia(x, centers):
    d, _ = nearest(x, centers)
    return float(np.sum(d * d))


def empty_clusters(x, c0):
    """Clusters with no member under the initial assignment."""
    _, idx = nearest(x, c0)
    return int(len(c0) - len(np.unique(idx)))


def lloyd_keep_empty(x, c0, iters):
    """Our rule in numpy, as an independent check of bench_kmeans's inertia:
    assign, then up to `iters` times move each centroid to its members' mean
    (an empty cluster keeps its centroid), re-assign, stop when nothing moved."""
    c = c0.astype(np.float64).copy()
    xd = x.astype(np.float64)
    _, a = nearest(x, c)
    for _ in range(iters):
        cnt = np.bincount(a, minlength=len(c))
        s = np.bincount(a, weights=xd, minlength=len(c))
        c = np.where(cnt > 0, s / np.maximum(cnt, 1), c).astype(np.float32)
        _, b = nearest(x, c)
        if np.array_equal(a, b):
            break
        a = b
    return inertia(x, c)


def run_one(rec, repeat, warmup):
    x = np.fromfile(rec["values_file"], dtype="<f4")
    c0 = np.fromfile(rec["init_file"], dtype="<f4")
    k, iters = rec["k"], rec["iters"]
    if len(x) < k:
        return {"skipped": f"{len(x)} values for {k} clusters"}
    X, init = x.reshape(-1, 1), c0.reshape(-1, 1)

    def fit():
        km = KMeans(n_clusters=k, init=init, n_init=1, max_iter=iters, tol=0.0, algorithm="lloyd")
        t0 = time.perf_counter()
        km.fit(X)
        return time.perf_counter() - t0, km

    for _ in range(warmup):
        fit()
    times, km = [], None
    for _ in range(repeat):
        t, km = fit()
        times.append(t)
    centers = km.cluster_centers_.ravel()
    return {"ms_median": 1e3 * float(np.median(times)), "ms_min": 1e3 * min(times), "inertia": inertia(x, centers),
            "inertia_sklearn": float(km.inertia_), "n_iter": int(km.n_iter_), "empty_init": empty_clusters(x, c0),
            "inertia_keep_empty_numpy": lloyd_keep_empty(x, c0, iters)}


def main():
    f = sys.stdin if a.ours == "-" else open(a.ours)
    info = {}
    for line in f:
        line = line.strip()
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        if rec.get("kind") == "info":
            info = rec
            rec["sklearn_version"] = sklearn.__version__
            rec["numpy_version"] = np.__version__
            rec["sklearn_threads"] = a.threads
        elif rec.get("kind") == "kmeans":
            if "values_file" not in rec:
                sys.exit("peer_sklearn_kmeans: bench_kmeans ran without --dump DIR; no values to cluster")
            repeat = a.repeat or info.get("repeat", 7)
            if threadpool_limits and a.threads > 0:
                with threadpool_limits(limits=a.threads):
                    rec["sklearn"] = run_one(rec, repeat, a.warmup)
            else:
                rec["sklearn"] = run_one(rec, repeat, a.warmup)
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
