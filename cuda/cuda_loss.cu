/* cuda_loss.cu: softmax cross-entropy (hard or soft targets) and arg-max,
 * one warp per row.  The loss sum and the correct count are added into
 * `stats` in device memory, so a training epoch reads them back only once.  Like the CPU reference the row
 * sum of exp(x - max) and the loss are computed in double, and dlogits =
 * (expf(x - max) * (float)(1/sum) - onehot) * grad_scale in float.  The
 * statistics are repeatable: each block writes its double partial sums to the
 * step buffer and one block adds them in block order (the grid depends on N
 * only), then adds the float results to stats as the CPU does.
 *
 * A label outside [0, K) cannot be reported from the device without a sync:
 * the row gets no loss, no count and a zero gradient, and the launch records
 * the error (struct dc_cuda_deferred, kept here with its host side); the next
 * download or sync (the trainer reads the statistics with a download) fails
 * with the CPU reference's message, so the phase stops there.
 *
 * Legend: logits, dlogits [N,K]; labels, pred [N]; stats [2]. */
#include <math.h>

#include "cuda_internal.h"

#define DC_ROWS_PER_BLOCK (DC_CUDA_THREADS / 32)

/* First maximum of row[0..k) across the warp: (value, index), ties to the
 * lower index.  NaNs as the CPU's scan (cpu_loss.c) meets them: a NaN first
 * element wins, later ones never do (a lane must not keep one it met first). */
static __device__ void warp_argmax(const float *row, int k, float *best_v, int *best_j)
{
    int lane = threadIdx.x & 31;
    float v = -INFINITY;
    int j = k; /* "none yet": loses every comparison below */
    for (int t = lane; t < k; t += 32) {
        const float r = row[t];
        if (!isnan(r) && (j == k || r > v)) {
            v = r;
            j = t;
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, o);
        int oj = __shfl_xor_sync(0xffffffffu, j, o);
        if (oj < k && (j == k || ov > v || (ov == v && oj < j))) {
            v = ov;
            j = oj;
        }
    }
    if (isnan(row[0]) || j == k) { /* j == k: every element is NaN */
        v = row[0];
        j = 0;
    }
    *best_v = v;
    *best_j = j;
}

static __device__ double warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* The soft-target row (struct dc_soft_target) across the warp, the same
 * arithmetic as the CPU reference's dc_soft_row; returns the row's loss
 * (every lane), writes drow when not NULL.  sum = sum_j exp(z_j - max). */
static __device__ double soft_row(const struct dc_soft_target &st, int k, const float *row, const float *trow,
                                  int label, float max, double sum, float grad_scale, float *drow)
{
    const int lane = threadIdx.x & 31;
    const float eps = st.smoothing, a = st.alpha, T = st.temperature;
    double logsum = 0.0;
    for (int j = lane; j < k; j += 32)
        logsum += (double)(row[j] - max);
    logsum = warp_sum(logsum);
    const double lse = log(sum);
    double loss = (1.0 - a) * ((1.0 - eps) * (lse - (double)(row[label] - max)) + eps * (lse - logsum / k));
    double rsum = 0.0, qsum = 0.0;
    float tmax = 0.0f;
    if (a > 0.0f) {
        int tj;
        warp_argmax(trow, k, &tmax, &tj);
        for (int j = lane; j < k; j += 32) {
            rsum += exp((double)((row[j] - max) / T));
            qsum += exp((double)((trow[j] - tmax) / T));
        }
        rsum = warp_sum(rsum);
        qsum = warp_sum(qsum);
        const double lr = log(rsum), lq = log(qsum);
        double kl = 0.0;
        for (int j = lane; j < k; j += 32) {
            const double logq = (double)((trow[j] - tmax) / T) - lq, logr = (double)((row[j] - max) / T) - lr;
            kl += exp(logq) * (logq - logr);
        }
        loss += (double)a * T * T * warp_sum(kl);
    }
    if (drow) {
        const float inv = (float)(1.0 / sum), rinv = (float)(1.0 / rsum), qinv = (float)(1.0 / qsum);
        for (int j = lane; j < k; j += 32) {
            float target = __fadd_rn(j == label ? 1.0f - eps : 0.0f, eps / (float)k);
            float g = __fmul_rn(1.0f - a, __fsub_rn(__fmul_rn(expf(row[j] - max), inv), target));
            if (a > 0.0f)
                g = __fadd_rn(g, __fmul_rn(__fmul_rn(a, T), __fsub_rn(__fmul_rn(expf((row[j] - max) / T), rinv),
                                                                    __fmul_rn(expf((trow[j] - tmax) / T), qinv))));
            drow[j] = __fmul_rn(g, grad_scale);
        }
    }
    return loss;
}

/* has_soft 0: hard labels (soft is not read) */
static __global__ void k_softmax_xent(int n, int k, const float *logits, const int32_t *labels, int has_soft,
                                      struct dc_soft_target soft, float grad_scale, float *dlogits,
                                      double *partial, struct dc_cuda_deferred *err, unsigned int seq)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    double loss = 0.0, correct = 0.0; /* meaningful on lane 0 */
    for (int i = blockIdx.x * DC_ROWS_PER_BLOCK + warp; i < n; i += gridDim.x * DC_ROWS_PER_BLOCK) {
        const float *row = logits + (size_t)i * k;
        const int label = labels[i];
        if (label < 0 || label >= k) { /* uniform across the warp */
            if (lane == 0)
                dc_cuda_defer(err, seq, DC_OP_SOFTMAX_XENT,
                              (unsigned long long)i << 32 | (unsigned int)label, k);
            if (dlogits)
                for (int j = lane; j < k; j += 32)
                    dlogits[(size_t)i * k + j] = 0.0f;
            continue;
        }
        float max;
        int top;
        warp_argmax(row, k, &max, &top);
        double sum = 0.0;
        for (int j = lane; j < k; j += 32)
            sum += exp((double)(row[j] - max));
        sum = warp_sum(sum);
        if (has_soft) {
            double l = soft_row(soft, k, row, soft.alpha > 0.0f ? soft.teacher + (size_t)i * k : NULL, label, max,
                                sum, grad_scale, dlogits ? dlogits + (size_t)i * k : NULL);
            if (lane == 0) {
                loss += l;
                correct += top == label;
            }
            continue;
        }
        if (lane == 0) {
            loss += log(sum) - (double)(row[label] - max);
            correct += top == label;
        }
        if (dlogits) {
            float *drow = dlogits + (size_t)i * k;
            const float inv = (float)(1.0 / sum);
            for (int j = lane; j < k; j += 32) {
                float p = __fmul_rn(expf(row[j] - max), inv);
                drow[j] = __fmul_rn(p - (j == label ? 1.0f : 0.0f), grad_scale);
            }
        }
    }
    loss = dc_block_sum(lane == 0 ? loss : 0.0);
    correct = dc_block_sum(lane == 0 ? correct : 0.0);
    if (threadIdx.x == 0) {
        partial[2 * blockIdx.x] = loss;
        partial[2 * blockIdx.x + 1] = correct;
    }
}

/* One block: the blocks' partial sums in a fixed order, then into stats. */
static __global__ void k_loss_stats(const double *partial, int blocks, float *stats)
{
    double loss = 0.0, correct = 0.0;
    for (int b = threadIdx.x; b < blocks; b += blockDim.x) {
        loss += partial[2 * b];
        correct += partial[2 * b + 1];
    }
    loss = dc_block_sum(loss);
    correct = dc_block_sum(correct);
    if (threadIdx.x == 0) {
        stats[0] += (float)loss;
        stats[1] += (float)correct;
    }
}

static unsigned row_blocks(int n)
{
    return dc_cuda_blocks((size_t)(n + DC_ROWS_PER_BLOCK - 1) / DC_ROWS_PER_BLOCK * DC_CUDA_THREADS);
}

static_assert(2 * DC_CUDA_MAX_BLOCKS <= DC_CUDA_STEP_DOUBLES, "the loss partials must fit the step buffer");

extern "C" enum dc_status dc_cuda_softmax_xent(struct dc_backend *be, int n, int k, const float *logits,
                                               const int32_t *labels, const struct dc_soft_target *soft,
                                               float grad_scale, float *dlogits, float *stats)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    if (n < 0 || k <= 0)
        return DC_ERROR(DC_ERR_ARG, "softmax_xent: bad shape [%d,%d]", n, k);
    DC_TRY(dc_soft_target_check(soft));
    if (n == 0)
        return DC_OK;
    const unsigned blocks = row_blocks(n);
    const struct dc_soft_target st = soft ? *soft : dc_soft_target{0.0f, 0.0f, 1.0f, NULL};
    k_softmax_xent<<<blocks, DC_CUDA_THREADS, 0, ctx->stream>>>(n, k, logits, labels, soft != NULL, st, grad_scale,
                                                               dlogits, ctx->step_buf, ctx->deferred,
                                                               dc_cuda_defer_seq(ctx));
    DC_CUDA_LAUNCH_CHECK("k_softmax_xent");
    k_loss_stats<<<1, DC_CUDA_THREADS, 0, ctx->stream>>>(ctx->step_buf, (int)blocks, stats);
    DC_CUDA_LAUNCH_CHECK("k_loss_stats");
    return DC_OK;
}

/* ---- kernel-found argument errors (declared in cuda_internal.h) ---- */

extern "C" enum dc_status dc_cuda_deferred_init(struct dc_cuda_ctx *ctx)
{
    DC_CUDA_CHECK(cudaMalloc(&ctx->deferred, sizeof *ctx->deferred));
    DC_CUDA_CHECK(cudaMemsetAsync(ctx->deferred, 0, sizeof *ctx->deferred, ctx->stream));
    ctx->deferred_seq = 0;
    ctx->deferred_pending = 0;
    return DC_OK;
}

extern "C" void dc_cuda_deferred_free(struct dc_cuda_ctx *ctx)
{
    if (ctx->deferred)
        (void)cudaFree(ctx->deferred);
    ctx->deferred = NULL;
}

/* A fresh non-zero launch id.  A captured graph replays its launches with the
 * ids they had at capture, so replays of one launch share an id. */
extern "C" unsigned int dc_cuda_defer_seq(struct dc_cuda_ctx *ctx)
{
    if (++ctx->deferred_seq == 0)
        ctx->deferred_seq = 1;
    ctx->deferred_pending = 1;
    return ctx->deferred_seq;
}

/* Waits for the stream; reports (and clears) a recorded error with the
 * message the CPU backend gives for the same input.  Only when a launch that
 * can record one was queued since the last check: otherwise every later
 * download and sync would pay a copy and a second wait. */
extern "C" enum dc_status dc_cuda_deferred_check(struct dc_cuda_ctx *ctx)
{
    if (!ctx->deferred || !ctx->deferred_pending)
        return DC_OK;
    struct dc_cuda_deferred h;
    DC_CUDA_CHECK(cudaMemcpyAsync(&h, ctx->deferred, sizeof h, cudaMemcpyDeviceToHost, ctx->stream));
    DC_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    ctx->deferred_pending = 0; /* the stream is idle: what ran is in h */
    if (h.seq == 0)
        return DC_OK;
    DC_CUDA_CHECK(cudaMemsetAsync(ctx->deferred, 0, sizeof h, ctx->stream));
    const unsigned long long key = ~h.inv_key;
    if (h.op == DC_OP_SOFTMAX_XENT)
        return DC_ERROR(DC_ERR_ARG, "softmax_xent: label %d of row %d is outside [0, %d)",
                        (int)(int32_t)(uint32_t)(key & 0xffffffffu), (int)(key >> 32), h.limit);
    if (h.op == DC_OP_CODEBOOK_GRAD)
        return DC_ERROR(DC_ERR_ARG, "codebook_grad: assignment %d of weight %zu is not below %d",
                        (int)(key & 0xffu), (size_t)(key >> 8), h.limit);
    return DC_ERROR(DC_ERR_DEVICE, "a GPU kernel recorded an error of unknown op %d", h.op);
}

static __global__ void k_argmax(int n, int k, const float *logits, int32_t *pred)
{
    const int warp = threadIdx.x >> 5;
    for (int i = blockIdx.x * DC_ROWS_PER_BLOCK + warp; i < n; i += gridDim.x * DC_ROWS_PER_BLOCK) {
        float v;
        int j;
        warp_argmax(logits + (size_t)i * k, k, &v, &j);
        if ((threadIdx.x & 31) == 0)
            pred[i] = j;
    }
}

extern "C" enum dc_status dc_cuda_argmax(struct dc_backend *be, int n, int k, const float *logits,
                                         int32_t *pred)
{
    if (n < 0 || k <= 0)
        return DC_ERROR(DC_ERR_ARG, "argmax: bad shape [%d,%d]", n, k);
    if (n == 0)
        return DC_OK;
    k_argmax<<<row_blocks(n), DC_CUDA_THREADS, 0, dc_cuda_ctx_of(be)->stream>>>(n, k, logits, pred);
    DC_CUDA_LAUNCH_CHECK("k_argmax");
    return DC_OK;
}
