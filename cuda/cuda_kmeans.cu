/* cuda_kmeans.cu: 1-D k-means for weight sharing, and the codebook ops of
 * trained quantisation (gather shared weights, sum gradients per centroid).
 *
 * kmeans_1d gives the CPU reference's answer (src/cpu/cpu_kmeans.c): Lloyd
 * over the values whose mask is non-zero; assign, then up to `iters` times
 * move each centroid to the mean of its members (empty clusters keep theirs),
 * re-assign, stop when no assignment changed.  "Nearest" is the smallest
 * fabsf(x - c) in float, ties to the lower centroid index, found by the same
 * binary search over centroids sorted by (value, index) plus a walk over
 * equal rounded distances.
 *
 * The GPU way: the kept values are sorted once (cub radix sort); since the
 * nearest centroid only moves right as x grows, each cluster is then a range
 * of the sorted values, so one iteration is a binary search per centroid for
 * the range boundaries (O(M log n), one block), then blocks over fixed
 * chunks of the sorted values sum each cluster's part in double (k_km_sums)
 * and one thread per cluster adds its chunks' parts in order (k_km_mean).
 * Sums in double make the means agree with the CPU's index-order double sums
 * to rounding (prefix-sum differences would lose digits on small clusters).  Every iteration's kernels read a device flag set when the
 * assignment stops changing, so the loop needs no host round trip.
 *
 * Legend: x, mask, assign, g, w [n]; centroids, codebook, dcode [M]. */
#include <math.h>

#include <cub/device/device_radix_sort.cuh>

#include "cuda_internal.h"

#define DC_KM_MAX_M 256       /* assignments are uint8 */
#define DC_KM_RANGE_THREADS 512 /* >= M + 1 boundaries in one pass */

/* Sorted position of the centroid nearest to x (ties to the lower index);
 * sv ascending, si the centroid index of sv[j], ascending among equal values. */
static __device__ int km_nearest_pos(const float *sv, const int *si, int m, float x)
{
    int lo = 0, hi = m; /* first position with value > x */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (sv[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    float best = INFINITY;
    if (lo > 0)
        best = fabsf(x - sv[lo - 1]);
    if (lo < m && fabsf(x - sv[lo]) < best)
        best = fabsf(x - sv[lo]);
    int idx = DC_KM_MAX_M, pos = lo > 0 ? lo - 1 : 0;
    for (int j = lo - 1; j >= 0 && fabsf(x - sv[j]) == best; j--)
        if (si[j] < idx) {
            idx = si[j];
            pos = j;
        }
    for (int j = lo; j < m && fabsf(x - sv[j]) == best; j++)
        if (si[j] < idx) {
            idx = si[j];
            pos = j;
        }
    return pos;
}

/* keys[i] = x[i] where kept, +inf elsewhere (sorted to the end); counts the
 * kept values and the kept NaNs.  The loop bound is uniform per block so
 * __syncthreads_count sees every thread. */
static __global__ void k_km_prep(size_t n, const float *x, const float *mask, float *keys, int *counts)
{
    for (size_t base = blockIdx.x * (size_t)blockDim.x; base < n; base += (size_t)gridDim.x * blockDim.x) {
        size_t i = base + threadIdx.x;
        int kept = 0, nan = 0;
        if (i < n) {
            kept = !mask || mask[i] != 0.0f;
            nan = kept && isnan(x[i]);
            keys[i] = kept ? x[i] : INFINITY;
        }
        int k = __syncthreads_count(kept), bad = __syncthreads_count(nan);
        if (threadIdx.x == 0) {
            atomicAdd(&counts[0], k);
            atomicAdd(&counts[1], bad);
        }
    }
}

struct km_state {
    float *sv;       /* [M] centroid values ascending */
    int *si;         /* [M] their centroid indices */
    int *start;      /* [M+1] first sorted value of each sorted position's cluster */
    int *prev_lo;    /* [M] per centroid index: its range at the last assignment (empty = 0,0) */
    int *prev_hi;
    int *done;       /* set once an assignment changed nothing */
};

/* One block: sort the centroids, find each cluster's range of sorted values,
 * compare with the previous assignment.  `first`: the initial assignment. */
static __global__ void k_km_ranges(const float *centroids, int m, const float *sorted, int count,
                                   struct km_state st, int first)
{
    __shared__ float sv[DC_KM_MAX_M];
    __shared__ int si[DC_KM_MAX_M];
    __shared__ int start[DC_KM_MAX_M + 1];
    if (!first && *st.done)
        return; /* uniform: every thread reads the same flag */
    const int t = threadIdx.x;
    if (t < m) { /* rank by (value, index) */
        float v = centroids[t];
        int rank = 0;
        for (int i = 0; i < m; i++) {
            float u = centroids[i];
            rank += u < v || (u == v && i < t);
        }
        sv[rank] = v;
        si[rank] = t;
    }
    __syncthreads();
    if (t <= m) {
        int lo = 0, hi = count; /* first sorted value whose nearest position is >= t */
        if (t == m)
            lo = count;
        else if (t > 0)
            while (lo < hi) {
                int mid = lo + (hi - lo) / 2;
                if (km_nearest_pos(sv, si, m, sorted[mid]) >= t)
                    hi = mid;
                else
                    lo = mid + 1;
            }
        start[t] = lo;
        st.start[t] = lo;
    }
    __syncthreads();
    int changed = 0;
    if (t < m) {
        int c = si[t], lo = start[t], hi = start[t + 1];
        if (lo == hi)
            lo = hi = 0;
        changed = !first && (st.prev_lo[c] != lo || st.prev_hi[c] != hi);
        st.prev_lo[c] = lo;
        st.prev_hi[c] = hi;
        st.sv[t] = sv[t];
        st.si[t] = c;
    }
    int any = __syncthreads_count(changed);
    if (t == 0 && !first && any == 0)
        *st.done = 1;
}

/* The update, parallel over the values rather than the clusters (a 5-bit
 * layer has only 32 clusters, and one big cluster would keep one block busy):
 * the sorted kept values [0, count) are cut into chunks of `chunk` values
 * (chosen from count alone, km_chunk); block b walks the clusters that
 * overlap its chunk in sorted-position order and writes each one's sum over
 * the overlap, in double, to part[b][j] (each thread's strided sum, then the
 * block tree of dc_block_sum).  k_km_mean then adds, for each cluster, the
 * partials of the chunks its range covers in chunk order.  The order of
 * every addition depends on count and the ranges only, so it is repeatable;
 * part[b][j] is written for exactly the (chunk, cluster) pairs k_km_mean
 * reads. */
#define DC_KM_CHUNK_MIN 4096   /* values per block: 16 per thread */
#define DC_KM_MAX_CHUNKS 4096  /* bounds the partials to 4096 x M doubles */

static int km_chunk(int count)
{
    long long per = ((long long)count + DC_KM_MAX_CHUNKS - 1) / DC_KM_MAX_CHUNKS;
    return (int)(per > DC_KM_CHUNK_MIN ? per : DC_KM_CHUNK_MIN);
}

static __global__ void k_km_sums(const float *sorted, int count, int chunk, int m, struct km_state st, double *part)
{
    if (*st.done)
        return; /* uniform */
    const int a = blockIdx.x * chunk, b = count - a < chunk ? count : a + chunk;
    int j = 0; /* first sorted position whose range ends after a; uniform */
    while (j < m && st.start[j + 1] <= a)
        j++;
    for (; j < m && st.start[j] < b; j++) {
        const int lo = st.start[j] > a ? st.start[j] : a, hi = st.start[j + 1] < b ? st.start[j + 1] : b;
        if (lo >= hi)
            continue; /* an empty cluster: uniform */
        double sum = 0.0;
        for (int i = lo + (int)threadIdx.x; i < hi; i += blockDim.x)
            sum += sorted[i];
        sum = dc_block_sum(sum);
        if (threadIdx.x == 0)
            part[(size_t)blockIdx.x * m + j] = sum;
    }
}

/* One thread per sorted position: its centroid becomes the mean of its range. */
static __global__ void k_km_mean(float *centroids, int chunk, int m, struct km_state st, const double *part)
{
    const int j = threadIdx.x;
    if (*st.done || j >= m)
        return;
    const int lo = st.start[j], hi = st.start[j + 1];
    if (hi <= lo)
        return;
    double sum = 0.0;
    for (int b = lo / chunk; b <= (hi - 1) / chunk; b++)
        sum += part[(size_t)b * m + j];
    centroids[st.si[j]] = (float)(sum / (double)(hi - lo));
}

/* assign[i] = nearest of the final centroids, 0 where masked out. */
static __global__ void k_km_assign(size_t n, const float *x, const float *mask, int m, struct km_state st,
                                   uint8_t *assign)
{
    __shared__ float sv[DC_KM_MAX_M];
    __shared__ int si[DC_KM_MAX_M];
    for (int j = threadIdx.x; j < m; j += blockDim.x) {
        sv[j] = st.sv[j];
        si[j] = st.si[j];
    }
    __syncthreads();
    DC_CUDA_FOR(i, n)
    assign[i] = (mask && mask[i] == 0.0f) ? 0 : (uint8_t)si[km_nearest_pos(sv, si, m, x[i])];
}

/* Scratch layout: keys [n], sorted [n], cub temp, the update's partials
 * [chunks][M], then the small arrays. */
struct km_layout {
    size_t keys, sorted, temp, temp_bytes, part, counts, sv, si, start, prev_lo, prev_hi, total;
};

static enum dc_status km_layout_plan(size_t n, int m, struct km_layout *L)
{
    /* km_chunk(count) makes at most this many chunks for any count <= n */
    size_t chunks = (n + DC_KM_CHUNK_MIN - 1) / DC_KM_CHUNK_MIN;
    if (chunks > DC_KM_MAX_CHUNKS)
        chunks = DC_KM_MAX_CHUNKS;
    size_t temp_bytes = 0;
    DC_CUDA_CHECK(cub::DeviceRadixSort::SortKeys(NULL, temp_bytes, (const float *)NULL, (float *)NULL, (int)n));
    size_t at = 0;
    L->keys = at, at += dc_cuda_align(n * sizeof(float));
    L->sorted = at, at += dc_cuda_align(n * sizeof(float));
    L->temp = at, L->temp_bytes = temp_bytes, at += dc_cuda_align(temp_bytes);
    L->part = at, at += dc_cuda_align(chunks * (size_t)m * sizeof(double));
    L->counts = at, at += dc_cuda_align(3 * sizeof(int)); /* kept, kept NaNs, done */
    L->sv = at, at += dc_cuda_align(DC_KM_MAX_M * sizeof(float));
    L->si = at, at += dc_cuda_align(DC_KM_MAX_M * sizeof(int));
    L->start = at, at += dc_cuda_align((DC_KM_MAX_M + 1) * sizeof(int));
    L->prev_lo = at, at += dc_cuda_align(DC_KM_MAX_M * sizeof(int));
    L->prev_hi = at, at += dc_cuda_align(DC_KM_MAX_M * sizeof(int));
    L->total = at;
    return DC_OK;
}

/* The CPU reference's message for kept NaNs, which names the first: found on
 * the host from copies of x and mask (an error path, taken once). */
static enum dc_status km_first_nan(size_t n, const float *x, const float *mask)
{
    float *hx = (float *)malloc(n * sizeof(float)), *hm = mask ? (float *)malloc(n * sizeof(float)) : NULL;
    if (!hx || (mask && !hm)) {
        free(hx);
        free(hm);
        return DC_ERROR(DC_ERR_ARG, "kmeans_1d: a value to cluster is NaN");
    }
    cudaError_t e = cudaMemcpy(hx, x, n * sizeof(float), cudaMemcpyDeviceToHost);
    if (e == cudaSuccess && mask)
        e = cudaMemcpy(hm, mask, n * sizeof(float), cudaMemcpyDeviceToHost);
    size_t i = 0;
    while (e == cudaSuccess && i < n && !(isnan(hx[i]) && !(hm && hm[i] == 0.0f)))
        i++;
    free(hx);
    free(hm);
    DC_CUDA_CHECK(e);
    return DC_ERROR(DC_ERR_ARG, "kmeans_1d: value %zu is NaN", i);
}

/* Sort the kept values; returns their count after checking values and centroids on the host. */
static enum dc_status km_sort(struct dc_cuda_ctx *ctx, size_t n, const float *x, const float *mask,
                              const float *centroids, int m, char *s, const struct km_layout *L, int *count)
{
    int *counts = (int *)(s + L->counts);
    int host_counts[2];
    float host_c[DC_KM_MAX_M];
    DC_CUDA_CHECK(cudaMemsetAsync(counts, 0, 3 * sizeof(int), ctx->stream));
    DC_CUDA_LAUNCH_N(k_km_prep, n, ctx->stream, n, x, mask, (float *)(s + L->keys), counts);
    DC_CUDA_CHECK(cudaMemcpyAsync(host_counts, counts, sizeof host_counts, cudaMemcpyDeviceToHost, ctx->stream));
    DC_CUDA_CHECK(cudaMemcpyAsync(host_c, centroids, (size_t)m * sizeof(float), cudaMemcpyDeviceToHost,
                                  ctx->stream));
    DC_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    for (int j = 0; j < m; j++)
        if (!isfinite(host_c[j]))
            return DC_ERROR(DC_ERR_ARG, "kmeans_1d: initial centroid %d is %g", j, (double)host_c[j]);
    if (host_counts[1] > 0)
        return km_first_nan(n, x, mask);
    size_t temp_bytes = L->temp_bytes;
    DC_CUDA_CHECK(cub::DeviceRadixSort::SortKeys(s + L->temp, temp_bytes, (const float *)(s + L->keys),
                                                 (float *)(s + L->sorted), (int)n, 0, 32, ctx->stream));
    *count = host_counts[0];
    return DC_OK;
}

/* The k-means scratch (about 12 bytes per value plus CUB's) is the backend's
 * grow-only scratch, which otherwise lives until shutdown.  Quantisation
 * runs k-means once per layer and then never again, so a call that leaves
 * more than DC_KM_KEEP_SCRATCH there frees it (after its kernels are done):
 * a big layer's buffer does not outlive the quantize stage, and small
 * layers in a row do not reallocate.  The next user grows it again. */
#define DC_KM_KEEP_SCRATCH ((size_t)16 << 20)

static enum dc_status km_release_scratch(struct dc_cuda_ctx *ctx)
{
    if (ctx->scratch_bytes <= DC_KM_KEEP_SCRATCH)
        return DC_OK;
    DC_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    void *s = ctx->scratch;
    ctx->scratch = NULL;
    ctx->scratch_bytes = 0;
    ctx->buffer_gen++; /* a graph holding the old address must not replay (cuda_graph.cu) */
    DC_CUDA_CHECK(cudaFree(s));
    return DC_OK;
}

static enum dc_status km_run(struct dc_cuda_ctx *ctx, size_t n, const float *x, const float *mask,
                             float *centroids, int m, int iters, uint8_t *assign)
{
    struct km_layout L = {};
    char *s = NULL;
    int count = 0;
    DC_TRY(km_layout_plan(n, m, &L));
    DC_TRY(dc_cuda_scratch(ctx, L.total, (void **)&s));
    DC_TRY(km_sort(ctx, n, x, mask, centroids, m, s, &L, &count));

    struct km_state st = {(float *)(s + L.sv), (int *)(s + L.si), (int *)(s + L.start),
                          (int *)(s + L.prev_lo), (int *)(s + L.prev_hi), (int *)(s + L.counts) + 2};
    const float *sorted = (const float *)(s + L.sorted);
    double *part = (double *)(s + L.part);
    const int chunk = km_chunk(count);
    const unsigned chunks = (unsigned)((count + (long long)chunk - 1) / chunk);
    k_km_ranges<<<1, DC_KM_RANGE_THREADS, 0, ctx->stream>>>(centroids, m, sorted, count, st, 1);
    DC_CUDA_LAUNCH_CHECK("k_km_ranges");
    for (int it = 0; it < iters; it++) {
        if (chunks > 0) {
            k_km_sums<<<chunks, DC_CUDA_THREADS, 0, ctx->stream>>>(sorted, count, chunk, m, st, part);
            DC_CUDA_LAUNCH_CHECK("k_km_sums");
        }
        k_km_mean<<<1, DC_KM_MAX_M, 0, ctx->stream>>>(centroids, chunk, m, st, part);
        DC_CUDA_LAUNCH_CHECK("k_km_mean");
        k_km_ranges<<<1, DC_KM_RANGE_THREADS, 0, ctx->stream>>>(centroids, m, sorted, count, st, 0);
        DC_CUDA_LAUNCH_CHECK("k_km_ranges");
    }
    DC_CUDA_LAUNCH_N(k_km_assign, n, ctx->stream, n, x, mask, m, st, assign);
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_kmeans_1d(struct dc_backend *be, size_t n, const float *x,
                                            const float *mask, float *centroids, int m, int iters,
                                            uint8_t *assign)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    if (m < 1 || m > DC_KM_MAX_M || iters < 0)
        return DC_ERROR(DC_ERR_ARG, "kmeans_1d: %d clusters, %d iterations; need 1..%d clusters "
                        "and iterations >= 0", m, iters, DC_KM_MAX_M);
    if (n > (size_t)INT32_MAX / 2)
        return DC_ERROR(DC_ERR_UNSUPPORTED, "kmeans_1d: %zu values; the GPU version takes up to %d per layer",
                        n, INT32_MAX / 2);
    if (n == 0)
        return DC_OK;
    enum dc_status st = km_run(ctx, n, x, mask, centroids, m, iters, assign);
    if (st != DC_OK)
        return st; /* keep the first error's message; the scratch goes at the next call or shutdown */
    return km_release_scratch(ctx);
}

static __global__ void k_codebook_gather(size_t n, const uint8_t *assign, const float *codebook,
                                         const float *mask, float *w)
{
    DC_CUDA_FOR(i, n) w[i] = mask ? codebook[assign[i]] * mask[i] : codebook[assign[i]];
}

extern "C" enum dc_status dc_cuda_codebook_gather(struct dc_backend *be, size_t n, const uint8_t *assign,
                                                  const float *codebook, const float *mask, float *w)
{
    if (n == 0)
        return DC_OK;
    DC_CUDA_LAUNCH_N(k_codebook_gather, n, dc_cuda_ctx_of(be)->stream, n, assign, codebook, mask, w);
    return DC_OK;
}

/* codebook_grad, repeatable and in double like the CPU's index-order sum:
 * block b sums a contiguous range of the weights into partial[b][M] (the
 * fixed step buffer), then one thread per cluster adds the blocks' partials in
 * block order.  Inside a block, warp w takes the 32-weight chunks w, w+W, ...
 * of the range in order; the lanes of a chunk that share a cluster are
 * grouped (__match_any_sync) and the group's lowest lane adds the members'
 * values in lane order to the warp's own double histogram; the warps'
 * histograms are then added in warp order.  No atomics touch the sums, so the
 * result depends only on n and M.  An assignment >= M (of a weight whose mask
 * is non-zero) adds nothing and is recorded for the next download or sync,
 * which fails with the CPU reference's message (struct dc_cuda_deferred). */
#define DC_CB_THREADS 512
#define DC_CB_WARPS (DC_CB_THREADS / 32)

static __global__ void __launch_bounds__(DC_CB_THREADS)
k_codebook_grad(size_t n, const uint8_t *assign, const float *g, const float *mask, int m, double *partial,
                struct dc_cuda_deferred *err, unsigned int seq)
{
    __shared__ double hist[DC_CB_WARPS][DC_KM_MAX_M];
    __shared__ float vals[DC_CB_WARPS][32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int j = threadIdx.x; j < DC_CB_WARPS * DC_KM_MAX_M; j += blockDim.x)
        hist[j / DC_KM_MAX_M][j % DC_KM_MAX_M] = 0.0;
    __syncthreads();
    const size_t per = (n + gridDim.x - 1) / gridDim.x;
    const size_t lo = blockIdx.x * per, hi = lo + per < n ? lo + per : n;
    /* `base` is the same on every lane, so the whole warp runs each chunk */
    for (size_t base = lo + (size_t)warp * 32; base < hi; base += (size_t)DC_CB_WARPS * 32) {
        const size_t i = base + lane;
        int a = m; /* m: this lane adds nothing */
        float v = 0.0f;
        if (i < hi && (!mask || mask[i] != 0.0f)) {
            const int ai = assign[i];
            if (ai < m) {
                a = ai;
                v = g[i];
            } else {
                dc_cuda_defer(err, seq, DC_OP_CODEBOOK_GRAD, (unsigned long long)i << 8 | (unsigned)ai, m);
            }
        }
        const unsigned group = __match_any_sync(0xffffffffu, a);
        vals[warp][lane] = v;
        __syncwarp();
        if (a < m && lane == __ffs(group) - 1) {
            double sum = 0.0;
            for (unsigned rest = group; rest; rest &= rest - 1)
                sum += vals[warp][__ffs(rest) - 1];
            hist[warp][a] += sum;
        }
        __syncwarp();
    }
    __syncthreads();
    for (int j = threadIdx.x; j < m; j += blockDim.x) {
        double sum = 0.0;
        for (int w = 0; w < DC_CB_WARPS; w++)
            sum += hist[w][j];
        partial[(size_t)blockIdx.x * m + j] = sum;
    }
}

/* dcode[j] = the blocks' partial sums of cluster j in block order. */
static __global__ void k_codebook_final(int m, int blocks, const double *partial, float *dcode)
{
    const int j = threadIdx.x;
    if (j >= m)
        return;
    double sum = 0.0;
    for (int b = 0; b < blocks; b++)
        sum += partial[(size_t)b * m + j];
    dcode[j] = (float)sum;
}

extern "C" enum dc_status dc_cuda_codebook_grad(struct dc_backend *be, size_t n, const uint8_t *assign,
                                                const float *g, const float *mask, int m, float *dcode)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    if (m < 1 || m > DC_KM_MAX_M)
        return DC_ERROR(DC_ERR_ARG, "codebook_grad: %d clusters; need 1..%d", m, DC_KM_MAX_M);
    /* the block count depends on n and M only, so the sums' order does too */
    size_t want = (n + 4 * (size_t)DC_CB_THREADS - 1) / (4 * (size_t)DC_CB_THREADS);
    size_t cap = (size_t)DC_CUDA_STEP_DOUBLES / (size_t)m;
    unsigned blocks = (unsigned)(want < cap ? want : cap);
    if (n > 0) {
        k_codebook_grad<<<blocks, DC_CB_THREADS, 0, ctx->stream>>>(n, assign, g, mask, m, ctx->step_buf,
                                                                   ctx->deferred, dc_cuda_defer_seq(ctx));
        DC_CUDA_LAUNCH_CHECK("k_codebook_grad");
    } else {
        blocks = 0;
    }
    k_codebook_final<<<1, DC_KM_MAX_M, 0, ctx->stream>>>(m, (int)blocks, ctx->step_buf, dcode);
    DC_CUDA_LAUNCH_CHECK("k_codebook_final");
    return DC_OK;
}
