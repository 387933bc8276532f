/* cuda_gemm.cu: dense linear algebra for the fully connected layers: row-major
 * gemm on column-major cuBLAS, and the small vector kernels beside it (axpby,
 * mul, bias add and bias gradient). */
#include "cuda_internal.h"

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the same
 * buffers read column-major are the transposes, so swap the operands (and m
 * with n) and keep each operand's own transpose flag. */
extern "C" enum dc_status dc_cuda_gemm(struct dc_backend *be, int trans_a, int trans_b, int m, int n,
                                       int k, float alpha, const float *a, int lda, const float *b,
                                       int ldb, float beta, float *c, int ldc)
{
    if (m < 0 || n < 0 || k < 0)
        return DC_ERROR(DC_ERR_ARG, "gemm: negative size m=%d n=%d k=%d", m, n, k);
    if (m == 0 || n == 0)
        return DC_OK;
    if (ldc < n || lda < (trans_a ? m : k) || ldb < (trans_b ? k : n))
        return DC_ERROR(DC_ERR_ARG, "gemm: leading dimension too small (lda %d ldb %d ldc %d for m=%d n=%d k=%d)",
                        lda, ldb, ldc, m, n, k);
    DC_CUBLAS_CHECK(cublasSgemm(dc_cuda_ctx_of(be)->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb, a, lda,
                                &beta, c, ldc));
    return DC_OK;
}

/* Separate rounded multiply and add, as the CPU does; b == 0 makes y
 * write-only (BLAS rule), so a NaN left in y does not survive. */
static __global__ void k_axpby(size_t n, float a, const float *x, float b, float *y)
{
    if (b == 0.0f) {
        DC_CUDA_FOR(i, n) y[i] = __fmul_rn(a, x[i]);
        return;
    }
    DC_CUDA_FOR(i, n) y[i] = __fadd_rn(__fmul_rn(a, x[i]), __fmul_rn(b, y[i]));
}

extern "C" enum dc_status dc_cuda_axpby(struct dc_backend *be, size_t n, float a, const float *x, float b,
                                        float *y)
{
    if (n == 0)
        return DC_OK;
    DC_CUDA_LAUNCH_N(k_axpby, n, dc_cuda_ctx_of(be)->stream, n, a, x, b, y);
    return DC_OK;
}

static __global__ void k_mul(size_t n, const float *x, const float *y, float *out)
{
    DC_CUDA_FOR(i, n) out[i] = x[i] * y[i];
}

extern "C" enum dc_status dc_cuda_mul(struct dc_backend *be, size_t n, const float *x, const float *y,
                                      float *out)
{
    if (n == 0)
        return DC_OK;
    DC_CUDA_LAUNCH_N(k_mul, n, dc_cuda_ctx_of(be)->stream, n, x, y, out);
    return DC_OK;
}

/* y [N,C,HW] += bias [C] */
static __global__ void k_bias_add(size_t total, float *y, const float *bias, int c, int hw)
{
    DC_CUDA_FOR(i, total) y[i] += bias[(i / (size_t)hw) % (size_t)c];
}

extern "C" enum dc_status dc_cuda_bias_add(struct dc_backend *be, float *y, const float *bias, int n, int c,
                                           int hw)
{
    size_t total = (size_t)n * (size_t)c * (size_t)hw;
    if (total == 0)
        return DC_OK;
    DC_CUDA_LAUNCH_N(k_bias_add, total, dc_cuda_ctx_of(be)->stream, total, y, bias, c, hw);
    return DC_OK;
}

/* db [C] = sum of dy [N,C,HW] over N and HW, in double and in a fixed order
 * (no atomics), so training is repeatable.  Small planes (fc layers, HW = 1):
 * one thread per channel, reads coalesced across channels.  Large planes:
 * blocks of (channel, slice of the batch) write partial sums to the fixed
 * step buffer, then one thread per channel adds its slices in order. */
static __global__ void k_bias_grad_small(const float *dy, float *db, int n, int c, int hw)
{
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c)
        return;
    double acc = 0.0;
    for (int img = 0; img < n; img++)
        for (int i = 0; i < hw; i++)
            acc += dy[((size_t)img * c + ch) * hw + i];
    db[ch] = (float)acc;
}

static __global__ void k_bias_grad_partial(const float *dy, double *partial, int n, int c, int hw)
{
    const int ch = blockIdx.x, slice = blockIdx.y, slices = gridDim.y;
    const int img0 = (int)((long long)n * slice / slices), img1 = (int)((long long)n * (slice + 1) / slices);
    double acc = 0.0;
    for (int img = img0; img < img1; img++) {
        const float *plane = dy + ((size_t)img * c + ch) * hw;
        for (int i = threadIdx.x; i < hw; i += blockDim.x)
            acc += plane[i];
    }
    acc = dc_block_sum(acc);
    if (threadIdx.x == 0)
        partial[(size_t)ch * slices + slice] = acc;
}

static __global__ void k_bias_grad_final(const double *partial, float *db, int c, int slices)
{
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c)
        return;
    double acc = 0.0;
    for (int k = 0; k < slices; k++)
        acc += partial[(size_t)ch * slices + k];
    db[ch] = (float)acc;
}

extern "C" enum dc_status dc_cuda_bias_grad(struct dc_backend *be, const float *dy, float *db, int n, int c,
                                            int hw)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    if (c <= 0)
        return DC_OK;
    if (n <= 0 || hw <= 0) {
        DC_CUDA_CHECK(cudaMemsetAsync(db, 0, (size_t)c * sizeof(float), ctx->stream));
        return DC_OK;
    }
    unsigned cblocks = (unsigned)((c + DC_CUDA_THREADS - 1) / DC_CUDA_THREADS);
    if (hw < 64 || c > DC_CUDA_STEP_DOUBLES) {
        k_bias_grad_small<<<cblocks, DC_CUDA_THREADS, 0, ctx->stream>>>(dy, db, n, c, hw);
        DC_CUDA_LAUNCH_CHECK("k_bias_grad_small");
        return DC_OK;
    }
    /* enough blocks to fill the GPU twice, within the buffer and the batch */
    int slices = (2 * ctx->sm_count + c - 1) / c;
    if (slices > DC_CUDA_STEP_DOUBLES / c)
        slices = DC_CUDA_STEP_DOUBLES / c;
    if (slices > n)
        slices = n;
    if (slices < 1)
        slices = 1;
    k_bias_grad_partial<<<dim3((unsigned)c, (unsigned)slices), DC_CUDA_THREADS, 0, ctx->stream>>>(
        dy, ctx->step_buf, n, c, hw);
    DC_CUDA_LAUNCH_CHECK("k_bias_grad_partial");
    k_bias_grad_final<<<cblocks, DC_CUDA_THREADS, 0, ctx->stream>>>(ctx->step_buf, db, c, slices);
    DC_CUDA_LAUNCH_CHECK("k_bias_grad_final");
    return DC_OK;
}
