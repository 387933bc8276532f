/* cuda_loss.cu: softmax cross-entropy and arg-max, one warp per row.  The
 * loss sum and the correct count are added into `stats` in device memory
 * (one atomic per block), so a training epoch reads them back only once.
 * Like the CPU reference the row sum of exp(x - max) and the loss are
 * computed in double, and dlogits = (expf(x - max) * (float)(1/sum) - onehot)
 * * grad_scale in float.  A label outside [0, K) cannot be reported from the
 * device without a sync, so it adds NaN to the loss, which the trainer shows.
 *
 * Legend: logits, dlogits [N,K]; labels, pred [N]; stats [2]. */
#include <math.h>

#include "cuda_internal.h"

#define DC_ROWS_PER_BLOCK (DC_CUDA_THREADS / 32)

/* First maximum of row[0..k) across the warp: (value, index), ties to the lower index. */
static __device__ void warp_argmax(const float *row, int k, float *best_v, int *best_j)
{
    int lane = threadIdx.x & 31;
    float v = -INFINITY;
    int j = k; /* "none yet": loses every comparison below */
    for (int t = lane; t < k; t += 32)
        if (j == k || row[t] > v) {
            v = row[t];
            j = t;
        }
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, o);
        int oj = __shfl_xor_sync(0xffffffffu, j, o);
        if (oj < k && (j == k || ov > v || (ov == v && oj < j))) {
            v = ov;
            j = oj;
        }
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

static __global__ void k_softmax_xent(int n, int k, const float *logits, const int32_t *labels,
                                      float grad_scale, float *dlogits, float *stats)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    double loss = 0.0, correct = 0.0; /* meaningful on lane 0 */
    for (int i = blockIdx.x * DC_ROWS_PER_BLOCK + warp; i < n; i += gridDim.x * DC_ROWS_PER_BLOCK) {
        const float *row = logits + (size_t)i * k;
        float max;
        int top;
        warp_argmax(row, k, &max, &top);
        double sum = 0.0;
        for (int j = lane; j < k; j += 32)
            sum += exp((double)(row[j] - max));
        sum = warp_sum(sum);
        const int label = labels[i];
        const int valid = label >= 0 && label < k;
        if (lane == 0) {
            loss += valid ? log(sum) - (double)(row[label] - max) : (double)NAN;
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
        atomicAdd(&stats[0], (float)loss);
        atomicAdd(&stats[1], (float)correct);
    }
}

static unsigned row_blocks(int n)
{
    return dc_cuda_blocks((size_t)(n + DC_ROWS_PER_BLOCK - 1) / DC_ROWS_PER_BLOCK * DC_CUDA_THREADS);
}

extern "C" enum dc_status dc_cuda_softmax_xent(struct dc_backend *be, int n, int k, const float *logits,
                                               const int32_t *labels, float grad_scale, float *dlogits,
                                               float *stats)
{
    if (n < 0 || k <= 0)
        return DC_ERROR(DC_ERR_ARG, "softmax_xent: bad shape [%d,%d]", n, k);
    if (n == 0)
        return DC_OK;
    k_softmax_xent<<<row_blocks(n), DC_CUDA_THREADS, 0, dc_cuda_ctx_of(be)->stream>>>(n, k, logits, labels,
                                                                                     grad_scale, dlogits, stats);
    DC_CUDA_LAUNCH_CHECK("k_softmax_xent");
    return DC_OK;
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
