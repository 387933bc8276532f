/* cuda_spmat.cu: compressed inference on the GPU, the products of a weight
 * matrix A in one of the layouts of dc/spmat.h: dense through cuBLAS, csr
 * through cuSPARSE's generic SpMV / SpMM, and the codebook form through our
 * own kernels (cuSPARSE has no 8-bit-index, shared-weight format; decoding it
 * in the kernel is the point of that form: 2 bytes read per weight).
 *
 * Legend: M rows of A (fc outputs, conv filters K'), K columns of A (fc
 * inputs, conv C*R*S), N right-hand columns (fc batch), PQ output pixels of
 * one image, E stored entries of the codebook form.
 *
 * State: a csr matrix keeps its cuSPARSE descriptor and a SpMV/SpMM
 * workspace in a->impl, made at prepare for products of up to a->max_n
 * columns.  Convolutions use the backend's grow-only scratch for the im2col
 * matrix and the product before it is reordered, and grow the matrix's
 * workspace on the first call of a shape (both grow only on a first call,
 * so warm up before capturing a CUDA graph, as with cuDNN's workspace). */
#include <stdlib.h>

#include "cuda_internal.h"
#include "dc/spmat.h"

#define DC_CB_WARPS 8          /* rows of A per block in the codebook kernels (one warp each) */
#define DC_CB_NT 8             /* fc batch columns a warp accumulates per decode of its row */
#define DC_CB_CT 4             /* groups of 32 right-hand columns a warp accumulates in conv */
#define DC_CB_MAX_GRID_Y 65535 /* CUDA's limit; the kernels loop over further tiles */
/* Most scratch a convolution chunk may use (im2col + product); bigger
 * batches run in chunks of images, smaller ones in one go. */
#define DC_SPMAT_CONV_SCRATCH ((size_t)256 << 20)
#define DC_FULL_MASK 0xffffffffu

/* The backend state of one csr matrix (a->impl). */
struct dc_cuda_spmat {
    cusparseSpMatDescr_t csr; /* NULL when nnz = 0: the product is then all zero */
    void *buf;                /* cuSPARSE workspace for SpMV and SpMM, grown on demand */
    size_t buf_bytes;
};

static const float dc_one = 1.0f, dc_zero = 0.0f;

/* ---- kernels ---- */

/* acc * scale[r] + shift[r], rounded separately (the CPU's sparse kernels,
 * built with -ffp-contract=fast, may fuse the two: parity is to rounding) */
static __device__ inline float dc_epilogue(float acc, const float *scale, const float *shift, int r)
{
    if (scale)
        acc = __fmul_rn(acc, scale[r]);
    if (shift)
        acc = __fadd_rn(acc, shift[r]);
    return acc;
}

/* y [*, M, plane] in place: fc output (plane 1) or one image of a conv. */
static __global__ void k_spmat_epilogue(float *y, size_t total, int m, size_t plane, const float *scale,
                                        const float *shift)
{
    DC_CUDA_FOR(i, total) y[i] = dc_epilogue(y[i], scale, shift, (int)((i / plane) % (size_t)m));
}

/* dst [NB, M, PQ] from src [M, NB*PQ] (a chunk of images multiplied at
 * once) with the epilogue: the product's columns are image-major. */
static __global__ void k_spmat_reorder(const float *src, float *dst, int m, size_t plane, int nb,
                                       const float *scale, const float *shift)
{
    const size_t per_img = (size_t)m * plane, total = per_img * (size_t)nb;
    DC_CUDA_FOR(i, total) {
        size_t img = i / per_img, rem = i % per_img, r = rem / plane, pq = rem % plane;
        dst[i] = dc_epilogue(src[r * nb * plane + img * plane + pq], scale, shift, (int)r);
    }
}

/* col [C*R*S, NB*P*Q] from x [NB, C, H, W]; row c*R*S + kr*S + ks matches A's
 * column order, column img*PQ + p*Q + q; zeros where the window is padding. */
static __global__ void k_spmat_im2col(const float *x, float *col, struct dc_conv_desc d, int nb)
{
    const size_t plane = (size_t)d.p * d.q, ncols = plane * (size_t)nb;
    const size_t total = (size_t)d.c * d.r * d.s * ncols;
    DC_CUDA_FOR(i, total) {
        size_t row = i / ncols, j = i % ncols;
        int img = (int)(j / plane), pq = (int)(j % plane);
        int ks = (int)(row % d.s), kr = (int)(row / d.s % d.r), ch = (int)(row / ((size_t)d.r * d.s));
        int ih = (pq / d.q) * d.stride - d.pad + kr, iw = (pq % d.q) * d.stride - d.pad + ks;
        col[i] = (ih >= 0 && ih < d.h && iw >= 0 && iw < d.w)
                     ? x[(((size_t)img * d.c + ch) * d.h + ih) * d.w + iw]
                     : 0.0f;
    }
}

/* The codebook [256] into shared memory; every thread of the block calls it. */
static __device__ inline void dc_cb_load(float *cb, const float *codebook)
{
    for (int i = threadIdx.x; i < 256; i += blockDim.x)
        cb[i] = codebook[i];
    __syncthreads();
}

/* Decode entries e0 .. e0+31 of a row (those below `end`): lane i gets the
 * column and weight of entry e0+i.  Columns are a prefix sum of increments
 * (gap+1, or 255 for a filler), so a warp-wide inclusive scan gives all 32 at
 * once; *prev carries the last position (or filler end) to the next chunk.
 * Fillers and lanes past the end are not valid. */
static __device__ inline void dc_cb_decode(const uint8_t *gaps, const uint8_t *codes, const float *cb,
                                           int64_t e0, int64_t end, int lane, int *prev, int *col, float *w,
                                           int *valid)
{
    const int64_t e = e0 + lane;
    int inc = 0, ok = 0;
    float wv = 0.0f;
    if (e < end) {
        int g = gaps[e];
        ok = g != DC_SPMAT_FILLER;
        inc = ok ? g + 1 : DC_SPMAT_FILLER;
        wv = ok ? cb[codes[e]] : 0.0f;
    }
    int sum = inc;
    for (int o = 1; o < 32; o <<= 1) {
        int t = __shfl_up_sync(DC_FULL_MASK, sum, o);
        if (lane >= o)
            sum += t;
    }
    *col = *prev + sum;
    *prev += __shfl_sync(DC_FULL_MASK, sum, 31);
    *w = wv;
    *valid = ok;
}

/* y [N,M] = x [N,K] A^T for the codebook form, with the epilogue.  One warp
 * per row of A; its lanes walk the row 32 entries at a time and gather x;
 * each decode serves DC_CB_NT batch columns (blockIdx.y picks the tile). */
static __global__ void __launch_bounds__(DC_CB_WARPS * 32)
    k_spmat_cb_fc(int m, int k, int n, const int32_t *rowptr, const uint8_t *gaps, const uint8_t *codes,
                  const float *codebook, const float *x, const float *scale, const float *shift, float *y)
{
    __shared__ float cb[256];
    dc_cb_load(cb, codebook);
    const int lane = threadIdx.x & 31, row = blockIdx.x * DC_CB_WARPS + (threadIdx.x >> 5);
    if (row >= m) /* the whole warp leaves together: the shuffles stay full */
        return;
    const int64_t begin = rowptr[row], end = rowptr[row + 1];
    for (int n0 = blockIdx.y * DC_CB_NT; n0 < n; n0 += gridDim.y * DC_CB_NT) {
        float acc[DC_CB_NT];
#pragma unroll
        for (int t = 0; t < DC_CB_NT; t++)
            acc[t] = 0.0f;
        int prev = -1;
        for (int64_t e0 = begin; e0 < end; e0 += 32) {
            int col, valid;
            float w;
            dc_cb_decode(gaps, codes, cb, e0, end, lane, &prev, &col, &w, &valid);
            if (!valid)
                continue;
#pragma unroll
            for (int t = 0; t < DC_CB_NT; t++)
                if (n0 + t < n)
                    acc[t] += w * x[(size_t)(n0 + t) * k + col];
        }
#pragma unroll
        for (int t = 0; t < DC_CB_NT; t++) {
            float v = acc[t];
            for (int o = 16; o > 0; o >>= 1)
                v += __shfl_xor_sync(DC_FULL_MASK, v, o);
            if (lane == 0 && n0 + t < n)
                y[(size_t)(n0 + t) * m + row] = dc_epilogue(v, scale, shift, row);
        }
    }
}

/* out = A b for the codebook form with b row-major [K, ncols] (an im2col
 * matrix), written as y [ncols/plane, M, plane] with the epilogue.  One warp
 * per (row, tile of 32*DC_CB_CT columns): the lanes decode 32 entries, then
 * each entry is broadcast and every lane reads its own columns of that row
 * of b, so the reads are coalesced. */
static __global__ void __launch_bounds__(DC_CB_WARPS * 32)
    k_spmat_cb_rm(int m, int64_t ncols, int64_t plane, const int32_t *rowptr, const uint8_t *gaps,
                  const uint8_t *codes, const float *codebook, const float *b, const float *scale,
                  const float *shift, float *y)
{
    __shared__ float cb[256];
    dc_cb_load(cb, codebook);
    const int lane = threadIdx.x & 31, row = blockIdx.x * DC_CB_WARPS + (threadIdx.x >> 5);
    if (row >= m)
        return;
    const int64_t begin = rowptr[row], end = rowptr[row + 1], tile = 32 * DC_CB_CT;
    for (int64_t j0 = blockIdx.y * tile; j0 < ncols; j0 += gridDim.y * tile) {
        float acc[DC_CB_CT];
#pragma unroll
        for (int t = 0; t < DC_CB_CT; t++)
            acc[t] = 0.0f;
        int prev = -1;
        for (int64_t e0 = begin; e0 < end; e0 += 32) {
            int col, valid;
            float w;
            dc_cb_decode(gaps, codes, cb, e0, end, lane, &prev, &col, &w, &valid);
            const int count = end - e0 < 32 ? (int)(end - e0) : 32;
            for (int l = 0; l < count; l++) {
                if (!__shfl_sync(DC_FULL_MASK, valid, l)) /* same value on every lane */
                    continue;
                const int c = __shfl_sync(DC_FULL_MASK, col, l);
                const float wl = __shfl_sync(DC_FULL_MASK, w, l);
                const float *brow = b + (size_t)c * ncols;
#pragma unroll
                for (int t = 0; t < DC_CB_CT; t++) {
                    int64_t j = j0 + lane + 32 * t;
                    if (j < ncols)
                        acc[t] += wl * brow[j];
                }
            }
        }
#pragma unroll
        for (int t = 0; t < DC_CB_CT; t++) {
            int64_t j = j0 + lane + 32 * t;
            if (j < ncols)
                y[((j / plane) * m + row) * plane + j % plane] = dc_epilogue(acc[t], scale, shift, row);
        }
    }
}

/* ---- launchers ---- */

static unsigned dc_cb_grid_y(int64_t tiles)
{
    return (unsigned)(tiles < 1 ? 1 : tiles > DC_CB_MAX_GRID_Y ? DC_CB_MAX_GRID_Y : tiles);
}

static enum dc_status dc_spmat_cb_fc(cudaStream_t stream, const struct dc_spmat *a, int n, const float *x,
                                     float *y)
{
    dim3 grid((unsigned)(((int64_t)a->rows + DC_CB_WARPS - 1) / DC_CB_WARPS), dc_cb_grid_y((n + DC_CB_NT - 1) / DC_CB_NT));
    k_spmat_cb_fc<<<grid, DC_CB_WARPS * 32, 0, stream>>>(a->rows, a->cols, n, a->rowptr, a->gaps, a->codes,
                                                         a->codebook, x, a->scale, a->shift, y);
    DC_CUDA_LAUNCH_CHECK("k_spmat_cb_fc");
    return DC_OK;
}

static enum dc_status dc_spmat_cb_rm(cudaStream_t stream, const struct dc_spmat *a, int64_t ncols, int64_t plane,
                                     const float *b, float *y)
{
    const int64_t tile = 32 * DC_CB_CT;
    dim3 grid((unsigned)(((int64_t)a->rows + DC_CB_WARPS - 1) / DC_CB_WARPS), dc_cb_grid_y((ncols + tile - 1) / tile));
    k_spmat_cb_rm<<<grid, DC_CB_WARPS * 32, 0, stream>>>(a->rows, ncols, plane, a->rowptr, a->gaps, a->codes,
                                                         a->codebook, b, a->scale, a->shift, y);
    DC_CUDA_LAUNCH_CHECK("k_spmat_cb_rm");
    return DC_OK;
}

/* The epilogue in place on y [count, M, plane]; nothing to do without one. */
static enum dc_status dc_spmat_epilogue(cudaStream_t stream, const struct dc_spmat *a, size_t count, size_t plane,
                                        float *y)
{
    const size_t total = count * (size_t)a->rows * plane;
    if ((!a->scale && !a->shift) || total == 0)
        return DC_OK;
    DC_CUDA_LAUNCH_N(k_spmat_epilogue, total, stream, y, total, a->rows, plane, a->scale, a->shift);
    return DC_OK;
}

/* ---- cuSPARSE ---- */

/* Never empty: a size of 0 would leave the pointer NULL, which some cuSPARSE
 * versions reject as an external buffer.  A reallocation bumps buffer_gen as
 * dc_cuda_workspace does: a graph recorded before it holds the old address. */
static enum dc_status dc_spmat_workspace(struct dc_cuda_ctx *ctx, struct dc_cuda_spmat *st, size_t bytes)
{
    if (bytes < 256)
        bytes = 256;
    if (bytes > st->buf_bytes)
        ctx->buffer_gen++;
    return dc_cuda_grow(&st->buf, &st->buf_bytes, bytes, "cuSPARSE workspace");
}

/* CSR_ALG2, not the default (CSR_ALG1): the cuSPARSE documentation promises
 * bit-identical results run to run only for CSR_ALG2 (A not transposed),
 * and our products must repeat exactly (tests/test_gpu_repeat.c).  SpMM
 * keeps its default: with A not transposed its documentation makes no such
 * exception. */
#define DC_SPMV_ALG CUSPARSE_SPMV_CSR_ALG2

/* y [M] = A x [K] */
static enum dc_status dc_spmat_spmv_run(struct dc_cuda_ctx *ctx, struct dc_cuda_spmat *st,
                                        cusparseConstDnVecDescr_t vx, cusparseDnVecDescr_t vy, int query_only)
{
    size_t need = 0;
    DC_CUSPARSE_CHECK(cusparseSpMV_bufferSize(ctx->sparse, CUSPARSE_OPERATION_NON_TRANSPOSE, &dc_one, st->csr,
                                              vx, &dc_zero, vy, CUDA_R_32F, DC_SPMV_ALG, &need));
    DC_TRY(dc_spmat_workspace(ctx, st, need));
    if (query_only)
        return DC_OK;
    DC_CUSPARSE_CHECK(cusparseSpMV(ctx->sparse, CUSPARSE_OPERATION_NON_TRANSPOSE, &dc_one, st->csr, vx, &dc_zero,
                                   vy, CUDA_R_32F, DC_SPMV_ALG, st->buf));
    return DC_OK;
}

/* *v stays NULL unless creation succeeds, so the caller destroys only a real one. */
static enum dc_status dc_spmat_make_vec(cusparseDnVecDescr_t *v, int64_t size, float *values)
{
    cusparseDnVecDescr_t d = NULL;
    DC_CUSPARSE_CHECK(cusparseCreateDnVec(&d, size, values, CUDA_R_32F));
    *v = d;
    return DC_OK;
}

/* y [M] = A x [K].  The descriptors live for one call only (making one is a
 * host-side struct fill), so every exit path destroys what was made.
 * query_only: size the workspace and multiply nothing (prepare). */
static enum dc_status dc_spmat_spmv(struct dc_cuda_ctx *ctx, const struct dc_spmat *a, const float *x, float *y,
                                    int query_only)
{
    struct dc_cuda_spmat *st = (struct dc_cuda_spmat *)a->impl;
    cusparseConstDnVecDescr_t vx = NULL;
    cusparseDnVecDescr_t vy = NULL;
    DC_CUSPARSE_CHECK(cusparseCreateConstDnVec(&vx, a->cols, x, CUDA_R_32F));
    enum dc_status s = dc_spmat_make_vec(&vy, a->rows, y);
    if (s == DC_OK)
        s = dc_spmat_spmv_run(ctx, st, vx, vy, query_only);
    if (vy)
        (void)cusparseDestroyDnVec(vy);
    (void)cusparseDestroyDnVec(vx);
    return s;
}

/* C [M, ncols] = A B [K, ncols], both in `order` with leading dimension ld. */
struct dc_spmm_args {
    int64_t ncols, ldb, ldc;
    cusparseOrder_t order;
    const float *b;
    float *c;
};

static enum dc_status dc_spmat_spmm_run(struct dc_cuda_ctx *ctx, struct dc_cuda_spmat *st,
                                        cusparseConstDnMatDescr_t mb, cusparseDnMatDescr_t mc, int query_only)
{
    size_t need = 0;
    DC_CUSPARSE_CHECK(cusparseSpMM_bufferSize(ctx->sparse, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                              CUSPARSE_OPERATION_NON_TRANSPOSE, &dc_one, st->csr, mb, &dc_zero, mc,
                                              CUDA_R_32F, CUSPARSE_SPMM_ALG_DEFAULT, &need));
    DC_TRY(dc_spmat_workspace(ctx, st, need));
    if (query_only)
        return DC_OK;
    DC_CUSPARSE_CHECK(cusparseSpMM(ctx->sparse, CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                   &dc_one, st->csr, mb, &dc_zero, mc, CUDA_R_32F, CUSPARSE_SPMM_ALG_DEFAULT,
                                   st->buf));
    return DC_OK;
}

static enum dc_status dc_spmat_make_mat(cusparseDnMatDescr_t *mc, int64_t rows, int64_t cols, int64_t ld,
                                        float *values, cusparseOrder_t order)
{
    cusparseDnMatDescr_t d = NULL; /* as dc_spmat_make_vec */
    DC_CUSPARSE_CHECK(cusparseCreateDnMat(&d, rows, cols, ld, values, CUDA_R_32F, order));
    *mc = d;
    return DC_OK;
}

/* query_only: size the workspace for this shape and multiply nothing (prepare). */
static enum dc_status dc_spmat_spmm(struct dc_cuda_ctx *ctx, const struct dc_spmat *a,
                                    const struct dc_spmm_args *g, int query_only)
{
    struct dc_cuda_spmat *st = (struct dc_cuda_spmat *)a->impl;
    cusparseConstDnMatDescr_t mb = NULL;
    cusparseDnMatDescr_t mc = NULL;
    DC_CUSPARSE_CHECK(cusparseCreateConstDnMat(&mb, a->cols, g->ncols, g->ldb, g->b, CUDA_R_32F, g->order));
    enum dc_status s = dc_spmat_make_mat(&mc, a->rows, g->ncols, g->ldc, g->c, g->order);
    if (s == DC_OK)
        s = dc_spmat_spmm_run(ctx, st, mb, mc, query_only);
    if (mc)
        (void)cusparseDestroyDnMat(mc);
    (void)cusparseDestroyDnMat(mb);
    return s;
}

/* ---- prepare and release ---- */

extern "C" void dc_cuda_spmat_release(struct dc_backend *be, struct dc_spmat *a)
{
    (void)be;
    struct dc_cuda_spmat *st = (struct dc_cuda_spmat *)a->impl;
    if (!st)
        return;
    if (st->csr)
        (void)cusparseDestroySpMat(st->csr);
    if (st->buf)
        (void)cudaFree(st->buf); /* synchronises: no queued product still uses it */
    free(st);
    a->impl = NULL;
}

/* The workspace for fc products of 1 (SpMV) and max_n (SpMM) columns, made
 * now so that inference allocates nothing.  bufferSize reads only shapes and
 * types, so the matrix's own value array stands in for x and y (it is
 * never dereferenced as them). */
static enum dc_status dc_spmat_size_fc(struct dc_cuda_ctx *ctx, struct dc_spmat *a)
{
    DC_TRY(dc_spmat_spmv(ctx, a, a->values, a->values, 1));
    if (a->max_n > 1) {
        struct dc_spmm_args g = {a->max_n, a->cols, a->rows, CUSPARSE_ORDER_COL, a->values, a->values};
        DC_TRY(dc_spmat_spmm(ctx, a, &g, 1));
    }
    return DC_OK;
}

/* int32 row offsets and columns, base 0, float values: the arrays as dc_spmat_create made them */
static enum dc_status dc_spmat_make_csr(struct dc_cuda_spmat *st, struct dc_spmat *a)
{
    cusparseSpMatDescr_t d = NULL; /* st->csr is set only once it is real: release destroys it */
    DC_CUSPARSE_CHECK(cusparseCreateCsr(&d, a->rows, a->cols, a->nnz, a->rowptr, a->colidx, a->values,
                                        CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO,
                                        CUDA_R_32F));
    st->csr = d;
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_spmat_prepare(struct dc_backend *be, struct dc_spmat *a)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    dc_cuda_spmat_release(be, a);
    if (a->format < 0 || a->format >= DC_FORMAT_COUNT)
        return DC_ERROR(DC_ERR_ARG, "spmat_prepare: unknown format %d", (int)a->format);
    if (a->format == DC_FORMAT_CODEBOOK && (a->slices || a->pairs))
        return DC_ERROR(DC_ERR_ARG, "spmat_prepare: the CUDA kernels read the codebook form's row layout, "
                        "not the CPU's sliced one");
    if (a->format != DC_FORMAT_CSR)
        return DC_OK; /* dense and codebook kernels read the arrays as they are */
    struct dc_cuda_spmat *st = (struct dc_cuda_spmat *)calloc(1, sizeof *st);
    if (!st)
        return DC_ERROR(DC_ERR_NOMEM, "out of host memory for a cuSPARSE matrix state");
    a->impl = st;
    if (a->nnz == 0)
        return DC_OK; /* cuSPARSE is never called: the product is zero */
    enum dc_status s = dc_spmat_make_csr(st, a);
    if (s == DC_OK)
        s = dc_spmat_size_fc(ctx, a);
    if (s != DC_OK)
        dc_cuda_spmat_release(be, a);
    return s;
}

/* ---- the ops ---- */

/* csr y [N,M] = x [N,K] A^T without the epilogue: row-major x is
 * column-major B [K,N] (ld K) and row-major y is column-major C [M,N] (ld M). */
static enum dc_status dc_spmat_csr_fc(struct dc_cuda_ctx *ctx, const struct dc_spmat *a, int n, const float *x,
                                      float *y)
{
    const struct dc_cuda_spmat *st = (const struct dc_cuda_spmat *)a->impl;
    if (!st)
        return DC_ERROR(DC_ERR_ARG, "spmat_fc: this csr matrix has no CUDA state; make it with dc_spmat_create "
                        "on the CUDA backend");
    if (!st->csr) {
        DC_CUDA_CHECK(cudaMemsetAsync(y, 0, (size_t)n * a->rows * sizeof(float), ctx->stream));
        return DC_OK;
    }
    if (n == 1)
        return dc_spmat_spmv(ctx, a, x, y, 0);
    struct dc_spmm_args g = {n, a->cols, a->rows, CUSPARSE_ORDER_COL, x, y};
    return dc_spmat_spmm(ctx, a, &g, 0);
}

extern "C" enum dc_status dc_cuda_spmat_fc(struct dc_backend *be, const struct dc_spmat *a, int n, const float *x,
                                           float *y)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    if (n < 1 || n > a->max_n)
        return DC_ERROR(DC_ERR_ARG, "spmat_fc: batch %d outside 1..%d (the matrix's max_n)", n, a->max_n);
    switch (a->format) {
    case DC_FORMAT_DENSE: /* y = x A^T: the backend's row-major gemm with B transposed */
        DC_TRY(dc_cuda_gemm(be, 0, 1, n, a->rows, a->cols, 1.0f, x, a->cols, a->values, a->cols, 0.0f, y,
                            a->rows));
        return dc_spmat_epilogue(ctx->stream, a, (size_t)n, 1, y);
    case DC_FORMAT_CSR:
        DC_TRY(dc_spmat_csr_fc(ctx, a, n, x, y));
        return dc_spmat_epilogue(ctx->stream, a, (size_t)n, 1, y);
    case DC_FORMAT_CODEBOOK:
        return dc_spmat_cb_fc(ctx->stream, a, n, x, y);
    default:
        return DC_ERROR(DC_ERR_ARG, "spmat_fc: unknown format %d", (int)a->format);
    }
}

static enum dc_status dc_spmat_conv_check(const struct dc_conv_desc *d, const struct dc_spmat *a)
{
    if (d->n < 1 || d->c < 1 || d->h < 1 || d->w < 1 || d->k < 1 || d->r < 1 || d->s < 1 || d->stride < 1 ||
        d->pad < 0 || d->p != (d->h + 2 * d->pad - d->r) / d->stride + 1 ||
        d->q != (d->w + 2 * d->pad - d->s) / d->stride + 1 || d->p < 1 || d->q < 1)
        return DC_ERROR(DC_ERR_ARG, "spmat_conv: bad shape x[%d,%d,%d,%d] kernel %dx%d stride %d pad %d "
                        "output %dx%d", d->n, d->c, d->h, d->w, d->r, d->s, d->stride, d->pad, d->p, d->q);
    if (a->rows != d->k || (int64_t)a->cols != (int64_t)d->c * d->r * d->s)
        return DC_ERROR(DC_ERR_ARG, "spmat_conv: a %d x %d matrix for %d filters of %d x %d x %d", a->rows,
                        a->cols, d->k, d->c, d->r, d->s);
    if ((int64_t)d->p * d->q > 0x7fffffff)
        return DC_ERROR(DC_ERR_ARG, "spmat_conv: output plane %d x %d too large", d->p, d->q);
    return DC_OK;
}

/* Images per chunk: the im2col matrix [K, NB*PQ] and, when NB > 1 and a
 * library writes the product, that product [M, NB*PQ] fit the scratch cap. */
static int dc_spmat_conv_chunk(const struct dc_conv_desc *d, const struct dc_spmat *a, int pointwise)
{
    if (pointwise) /* x itself is the right-hand matrix, one image at a time */
        return 1;
    size_t per_img = (size_t)a->cols + (a->format == DC_FORMAT_CODEBOOK ? 0 : (size_t)a->rows);
    per_img *= (size_t)d->p * d->q * sizeof(float);
    size_t nb = DC_SPMAT_CONV_SCRATCH / per_img;
    if (nb < 1)
        nb = 1;
    if (nb > (size_t)d->n)
        nb = (size_t)d->n;
    if (nb > (size_t)0x7fffffff / ((size_t)d->p * d->q)) /* ncols stays an int for cuBLAS */
        nb = (size_t)0x7fffffff / ((size_t)d->p * d->q);
    return (int)nb;
}

/* out [M, ncols] = A b [K, ncols], both row-major, for dense and csr. */
static enum dc_status dc_spmat_conv_product(struct dc_backend *be, const struct dc_spmat *a, int64_t ncols,
                                            const float *b, float *out)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    if (a->format == DC_FORMAT_DENSE)
        return dc_cuda_gemm(be, 0, 0, a->rows, (int)ncols, a->cols, 1.0f, a->values, a->cols, b, (int)ncols, 0.0f,
                            out, (int)ncols);
    const struct dc_cuda_spmat *st = (const struct dc_cuda_spmat *)a->impl;
    if (!st)
        return DC_ERROR(DC_ERR_ARG, "spmat_conv: this csr matrix has no CUDA state; make it with "
                        "dc_spmat_create on the CUDA backend");
    if (!st->csr) {
        DC_CUDA_CHECK(cudaMemsetAsync(out, 0, (size_t)a->rows * ncols * sizeof(float), ctx->stream));
        return DC_OK;
    }
    struct dc_spmm_args g = {ncols, ncols, ncols, CUSPARSE_ORDER_ROW, b, out};
    return dc_spmat_spmm(ctx, a, &g, 0);
}

/* y [N,K',P,Q]: per chunk of NB images, im2col (unless 1x1 stride 1 pad 0,
 * where x [C,HW] already is the right-hand matrix), the product, then the
 * epilogue, fused with reordering [K', NB*PQ] to [NB, K', PQ] when NB > 1. */
extern "C" enum dc_status dc_cuda_spmat_conv(struct dc_backend *be, const struct dc_conv_desc *d,
                                             const struct dc_spmat *a, const float *x, float *y)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    DC_TRY(dc_spmat_conv_check(d, a));
    if (a->format < 0 || a->format >= DC_FORMAT_COUNT)
        return DC_ERROR(DC_ERR_ARG, "spmat_conv: unknown format %d", (int)a->format);
    const int pointwise = d->r == 1 && d->s == 1 && d->stride == 1 && d->pad == 0;
    const int nb = dc_spmat_conv_chunk(d, a, pointwise);
    const size_t plane = (size_t)d->p * d->q, x_img = (size_t)d->c * d->h * d->w, y_img = (size_t)d->k * plane;
    const size_t col_bytes = pointwise ? 0 : dc_cuda_align((size_t)a->cols * nb * plane * sizeof(float));
    const size_t tmp_bytes = (nb > 1 && a->format != DC_FORMAT_CODEBOOK) ? y_img * nb * sizeof(float) : 0;
    char *scratch = NULL;
    if (col_bytes + tmp_bytes > 0)
        DC_TRY(dc_cuda_scratch(ctx, col_bytes + tmp_bytes, (void **)&scratch));
    float *col = (float *)scratch, *tmp = (float *)(scratch + col_bytes);
    for (int img0 = 0; img0 < d->n; img0 += nb) {
        const int cnt = d->n - img0 < nb ? d->n - img0 : nb;
        const int64_t ncols = (int64_t)cnt * (int64_t)plane;
        const float *b = x + img0 * x_img;
        float *yb = y + img0 * y_img;
        if (!pointwise) {
            size_t total = (size_t)a->cols * (size_t)ncols;
            DC_CUDA_LAUNCH_N(k_spmat_im2col, total, ctx->stream, b, col, *d, cnt);
            b = col;
        }
        if (a->format == DC_FORMAT_CODEBOOK) {
            DC_TRY(dc_spmat_cb_rm(ctx->stream, a, ncols, (int64_t)plane, b, yb));
            continue;
        }
        DC_TRY(dc_spmat_conv_product(be, a, ncols, b, cnt == 1 ? yb : tmp));
        if (cnt == 1) {
            DC_TRY(dc_spmat_epilogue(ctx->stream, a, 1, plane, yb));
        } else {
            size_t total = y_img * cnt;
            DC_CUDA_LAUNCH_N(k_spmat_reorder, total, ctx->stream, tmp, yb, a->rows, plane, cnt, a->scale, a->shift);
        }
    }
    return DC_OK;
}
