/* cuda_gemm.cu: dense linear algebra for the fully connected layers: row-major
 * gemm on column-major cuBLAS, and the small vector kernels beside it (axpby,
 * mul, bias add and bias gradient). */
#include "cuda_index.h"
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

/* y [N,C,HW] += bias [C]; D divides indices of type I (cuda_index.h). */
template <typename I, typename D>
static __global__ void k_bias_add(I total, float *y, const float *bias, D hw, D c)
{
    DC_CUDA_FOR_T(I, i, total)
    {
        const I q = hw.div(i); /* image * C + channel */
        y[i] += bias[q - c.div(q) * (I)c.d];
    }
}

extern "C" enum dc_status dc_cuda_bias_add(struct dc_backend *be, float *y, const float *bias, int n, int c,
                                           int hw)
{
    if (n <= 0 || c <= 0 || hw <= 0)
        return DC_OK;
    size_t total = (size_t)n * (size_t)c * (size_t)hw;
    cudaStream_t stream = dc_cuda_ctx_of(be)->stream;
    const unsigned blocks = dc_cuda_blocks(total);
    if (dc_index_fits_32(total))
        k_bias_add<<<blocks, DC_CUDA_THREADS, 0, stream>>>((uint32_t)total, y, bias, dc_fastdiv_make((uint32_t)hw),
                                                           dc_fastdiv_make((uint32_t)c));
    else
        k_bias_add<<<blocks, DC_CUDA_THREADS, 0, stream>>>(total, y, bias, dc_div64{(size_t)hw},
                                                           dc_div64{(size_t)c});
    DC_CUDA_LAUNCH_CHECK("k_bias_add");
    return DC_OK;
}

/* db [C] = sum of dy [N,C,HW] over N and HW, in double and in an order fixed
 * by (N, C, HW) alone (no atomics, nothing taken from the device), so
 * training is repeatable.  Two layouts:
 *
 * Small planes (HW < 64: fc layers, VGG's 2x2 and 4x4): a block takes a tile
 * of CT = min(256 / HW, C) channels, whose CT*HW values are contiguous in
 * each image, and a slice of the batch.  Thread t reads tile offset
 * t % (CT*HW) of images img0 + t / (CT*HW), stepping by the rows of threads
 * the tile leaves, so a warp reads consecutive floats; the block then adds
 * each channel's per-thread sums in (row, plane position) order.  Slices
 * (chosen from N, C and HW, about DC_BG_SLICE_ELEMS values per block) go to
 * the fixed step buffer and one thread per channel adds them in slice order;
 * one slice writes db directly.
 *
 * Large planes: blocks of (channel, slice of the batch) reduce their planes
 * with a block tree, partial sums go to the step buffer, then one thread per
 * channel adds its slices in order (one slice, or C too large for the
 * buffer: the block writes db itself). */
#define DC_BG_THREADS 256
#define DC_BG_SLICE_ELEMS 2048
#define DC_BG_MAX_SLICES 65535 /* gridDim.y */

static __global__ void __launch_bounds__(DC_BG_THREADS)
k_bias_grad_tiles(const float *dy, double *partial, float *db, int n, int c, int hw, int ct)
{
    __shared__ double sums[DC_BG_THREADS];
    const int tw = ct * hw, rows = DC_BG_THREADS / tw, t = threadIdx.x, col = t % tw, row = t / tw;
    const int slice = blockIdx.y, slices = gridDim.y;
    const int img0 = (int)((long long)n * slice / slices), img1 = (int)((long long)n * (slice + 1) / slices);
    const size_t c0 = (size_t)blockIdx.x * ct, plane = (size_t)c * hw;
    const bool live = row < rows && c0 + col / hw < (size_t)c;
    double acc = 0.0;
    if (live) {
        const float *p = dy + c0 * hw + col;
        for (int img = img0 + row; img < img1; img += rows)
            acc += p[(size_t)img * plane];
    }
    sums[t] = acc;
    __syncthreads();
    if (t < ct && c0 + t < (size_t)c) {
        double sum = 0.0;
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < hw; k++)
                sum += sums[r * tw + t * hw + k];
        if (partial)
            partial[(c0 + t) * slices + slice] = sum;
        else
            db[c0 + t] = (float)sum;
    }
}

static __global__ void k_bias_grad_partial(const float *dy, double *partial, float *db, int n, int c, int hw)
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
    if (threadIdx.x == 0 && partial)
        partial[(size_t)ch * slices + slice] = acc;
    else if (threadIdx.x == 0)
        db[ch] = (float)acc;
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

/* `want` slices of the batch, within the batch, the step buffer (C
 * partials a slice) and the grid; 1 means the blocks write db themselves. */
static int bg_slices(long long want, int n, int c)
{
    long long most = DC_CUDA_STEP_DOUBLES / c;
    if (most > n)
        most = n;
    if (most > DC_BG_MAX_SLICES)
        most = DC_BG_MAX_SLICES;
    if (want > most)
        want = most;
    return want < 1 ? 1 : (int)want;
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
    int slices;
    if (hw < 64) {
        const int ct = DC_BG_THREADS / hw < c ? DC_BG_THREADS / hw : c;
        slices = bg_slices(((long long)n * ct * hw + DC_BG_SLICE_ELEMS - 1) / DC_BG_SLICE_ELEMS, n, c);
        const unsigned tiles = (unsigned)((c + ct - 1) / ct);
        k_bias_grad_tiles<<<dim3(tiles, (unsigned)slices), DC_BG_THREADS, 0, ctx->stream>>>(
            dy, slices > 1 ? ctx->step_buf : NULL, db, n, c, hw, ct);
        DC_CUDA_LAUNCH_CHECK("k_bias_grad_tiles");
    } else {
        /* enough blocks to fill the GPU twice, within the buffer and the batch */
        slices = bg_slices((2 * ctx->sm_count + c - 1) / c, n, c);
        k_bias_grad_partial<<<dim3((unsigned)c, (unsigned)slices), DC_CUDA_THREADS, 0, ctx->stream>>>(
            dy, slices > 1 ? ctx->step_buf : NULL, db, n, c, hw);
        DC_CUDA_LAUNCH_CHECK("k_bias_grad_partial");
    }
    if (slices > 1) {
        k_bias_grad_final<<<cblocks, DC_CUDA_THREADS, 0, ctx->stream>>>(ctx->step_buf, db, c, slices);
        DC_CUDA_LAUNCH_CHECK("k_bias_grad_final");
    }
    return DC_OK;
}
