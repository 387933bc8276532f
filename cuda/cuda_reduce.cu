/* cuda_reduce.cu: reductions whose result goes to the host.  moments (sum,
 * sum of squares, non-zero count, all in double) feeds the pruning threshold
 * (quality x std) and the sparsity report.  Two passes, per-block partials
 * then one block over them, so the answer does not depend on atomics order
 * and is the same run to run.
 *
 * Legend: x [n]; host_out [3]. */
#include "cuda_internal.h"

#define DC_MOMENT_BLOCKS 1024

static __global__ void k_moments_partial(size_t n, const float *x, double *partial)
{
    double sum = 0.0, sq = 0.0, nonzero = 0.0;
    DC_CUDA_FOR(i, n)
    {
        double v = x[i];
        sum += v;
        sq += v * v;
        nonzero += x[i] != 0.0f;
    }
    sum = dc_block_sum(sum);
    sq = dc_block_sum(sq);
    nonzero = dc_block_sum(nonzero);
    if (threadIdx.x == 0) {
        partial[3 * blockIdx.x + 0] = sum;
        partial[3 * blockIdx.x + 1] = sq;
        partial[3 * blockIdx.x + 2] = nonzero;
    }
}

static __global__ void k_moments_final(int blocks, const double *partial, double *out)
{
    for (int k = 0; k < 3; k++) {
        double v = 0.0;
        for (int b = threadIdx.x; b < blocks; b += blockDim.x)
            v += partial[3 * b + k];
        v = dc_block_sum(v);
        if (threadIdx.x == 0)
            out[k] = v;
    }
}

extern "C" enum dc_status dc_cuda_moments(struct dc_backend *be, size_t n, const float *x, double *host_out)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    host_out[0] = host_out[1] = host_out[2] = 0.0;
    if (n == 0)
        return DC_OK;
    unsigned blocks = dc_cuda_blocks(n);
    if (blocks > DC_MOMENT_BLOCKS)
        blocks = DC_MOMENT_BLOCKS;
    double *partial = NULL;
    DC_TRY(dc_cuda_scratch(ctx, (3 * (size_t)blocks + 3) * sizeof(double), (void **)&partial));
    double *out = partial + 3 * (size_t)blocks;
    k_moments_partial<<<blocks, DC_CUDA_THREADS, 0, ctx->stream>>>(n, x, partial);
    DC_CUDA_LAUNCH_CHECK("k_moments_partial");
    k_moments_final<<<1, DC_CUDA_THREADS, 0, ctx->stream>>>((int)blocks, partial, out);
    DC_CUDA_LAUNCH_CHECK("k_moments_final");
    DC_CUDA_CHECK(cudaMemcpyAsync(host_out, out, 3 * sizeof(double), cudaMemcpyDeviceToHost, ctx->stream));
    DC_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    return DC_OK;
}
