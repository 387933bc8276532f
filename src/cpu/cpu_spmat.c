/* cpu_spmat.c: the compressed-inference ops of the CPU backend: threading
 * over row ranges, small batches one vector at a time and larger ones
 * through padded transposes, the dense baseline (OpenBLAS sgemv up to batch
 * 3, the backend's gemm and convolution otherwise) and im2col for
 * convolutions.  The inner loops live in cpu_spmat_kernels.c.
 *
 * Legend: N batch, M rows (outputs), K columns (inputs, or C*R*S). */
#include <string.h>

#ifdef DC_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "cpu/cpu_internal.h"

/* Batches up to these sizes run one vector at a time (see dc_cpu_spmat_fc),
 * measured on Zen 4 with 1 thread.  csr: 2 vectors took 375 us on VGG-16
 * FC7 (in cache) against 850 as a padded tile of 8, but 4,920 against 4,260
 * on AlexNet FC6; 3 vectors lose on FC6 (8,240).  codebook: 3 vectors took
 * 3,600 us on FC6 against 4,490 as a tile, 4 about the same.  dense: 3
 * OpenBLAS sgemv calls took 1.3-2.7x less time than its sgemm with 3 rows
 * on AlexNet FC6 and FC8 and VGG-16 FC7; at 4 rows sgemm won on FC6. */
#define DC_CSR_SPMV_MAX_N 2
#define DC_CODEBOOK_SPMV_MAX_N 3
#define DC_SGEMV_MAX_N 3

/* A convolution's im2col matrix holds several images up to this many floats (1 MiB). */
#define DC_SPMAT_COL_FLOATS ((size_t)1 << 18)

enum dc_status dc_cpu_spmat_prepare(struct dc_backend *be, struct dc_spmat *a)
{
    a->impl = NULL; /* the CPU kernels read the arrays; the codebook form in slices of 8 rows */
    return a->format == DC_FORMAT_CODEBOOK && a->slices == 0 ? dc_cpu_spmat_slice(be, a) : DC_OK;
}

void dc_cpu_spmat_release(struct dc_backend *be, struct dc_spmat *a)
{
    (void)be;
    a->impl = NULL;
}

/* Rows of A split into one contiguous range per thread, [r0, r1) (or the
 * slices of the codebook form, [s0, s1), balanced by entries, with row slots
 * r0 = 8 s0, r1 = 8 s1); small products stay on one thread. */
#define DC_SPMAT_RANGES(be, a, work, body)                                               \
    do {                                                                                 \
        int units_ = (a)->slices > 0 ? (a)->slices : (a)->rows;                          \
        int nt_ = dc_cpu_ctx(be)->threads;                                               \
        if ((work) < (1 << 15) || nt_ > units_)                                          \
            nt_ = (work) < (1 << 15) ? 1 : units_;                                       \
        DC_OMP_FOR(nt_, nt_ > 1)                                                         \
        for (int t_ = 0; t_ < nt_; t_++) {                                               \
            int s0 = 0, s1 = 0, r0, r1;                                                  \
            if ((a)->slices > 0) {                                                       \
                dc_cpu_spmat_slice_range((a), t_, nt_, &s0, &s1);                        \
                r0 = 8 * s0, r1 = 8 * s1;                                                \
            } else {                                                                     \
                r0 = (int)((int64_t)(a)->rows * t_ / nt_);                               \
                r1 = (int)((int64_t)(a)->rows * (t_ + 1) / nt_);                         \
            }                                                                            \
            (void)s0, (void)s1, (void)r0, (void)r1;                                      \
            body;                                                                        \
        }                                                                                \
    } while (0)

/* y [N,M] or [N,M,HW]: y = y * scale[m] + shift[m] (the dense path's epilogue) */
static void dc_cpu_spmat_epilogue(struct dc_backend *be, const struct dc_spmat *a, int n, int hw, float *y)
{
    if (!a->scale && !a->shift)
        return;
    const int m = a->rows;
    DC_OMP_FOR_COLLAPSE2(dc_cpu_ctx(be)->threads, (size_t)n * m * hw > DC_CPU_PAR_MIN)
    for (int b = 0; b < n; b++) {
        for (int r = 0; r < m; r++) {
            float *p = y + ((size_t)b * m + r) * hw;
            float s = a->scale ? a->scale[r] : 1.0f, t = a->shift ? a->shift[r] : 0.0f;
            for (int i = 0; i < hw; i++)
                p[i] = a->scale ? p[i] * s + t : p[i] + t;
        }
    }
}

/* dst [cols, ldd] = src [rows, lds]^T; columns rows..ldd-1 of dst are zero */
static void dc_cpu_transpose(struct dc_backend *be, int rows, int cols, const float *src, int lds, float *dst,
                             int ldd)
{
    DC_OMP_FOR(dc_cpu_ctx(be)->threads, (size_t)ldd * cols > DC_CPU_PAR_MIN)
    for (int c = 0; c < cols; c++) {
        for (int r = 0; r < rows; r++)
            dst[(size_t)c * ldd + r] = src[(size_t)r * lds + c];
        for (int r = rows; r < ldd; r++)
            dst[(size_t)c * ldd + r] = 0.0f;
    }
}

/* out [M, ldo] = A times B [K, ldb], ncols columns: the whole tiles of 8 in
 * place, the last ncols % 8 columns through a copy padded with zeros to one
 * tile (a convolution's output plane of 2x2 or 13x13 at batch 1; a scalar
 * loop over such a tail cost more per column than a whole tile). */
static enum dc_status dc_cpu_spmm(struct dc_backend *be, const struct dc_spmat *a, int ncols, const float *b,
                                  int ldb, float *out, int ldo)
{
    const int n8 = ncols / 8 * 8, nt = ncols - n8;
    if (n8 > 0) {
        int64_t work = a->entries * n8 + a->rows;
        DC_SPMAT_RANGES(be, a, work, dc_cpu_spmm_rows(a, r0, r1, n8, b, ldb, out, ldo));
    }
    if (nt == 0)
        return DC_OK;
    float *bt, *ot;
    DC_TRY(dc_cpu_scratch(be, DC_CPU_SCRATCH_SPMAT_TAIL, 8 * ((size_t)a->cols + a->rows), &bt));
    ot = bt + 8 * (size_t)a->cols;
    for (int k = 0; k < a->cols; k++)
        for (int t = 0; t < 8; t++)
            bt[8 * (size_t)k + t] = t < nt ? b[(size_t)k * ldb + n8 + t] : 0.0f;
    int64_t work = a->entries * 8 + a->rows;
    DC_SPMAT_RANGES(be, a, work, dc_cpu_spmm_rows(a, r0, r1, 8, bt, 8, ot, 8));
    for (int r = 0; r < a->rows; r++)
        memcpy(out + (size_t)r * ldo + n8, ot + 8 * (size_t)r, sizeof(float) * nt);
    return DC_OK;
}

static enum dc_status dc_cpu_spmat_dense_fc(struct dc_backend *be, const struct dc_spmat *a, int n,
                                            const float *x, float *y)
{
#ifdef DC_HAVE_OPENBLAS
    if (n <= DC_SGEMV_MAX_N) {
        for (int b = 0; b < n; b++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, a->rows, a->cols, 1.0f, a->values, a->cols,
                        x + (size_t)b * a->cols, 1, 0.0f, y + (size_t)b * a->rows, 1);
        dc_cpu_spmat_epilogue(be, a, n, 1, y);
        return DC_OK;
    }
#endif
    DC_TRY(dc_cpu_gemm(be, 0, 1, n, a->rows, a->cols, 1.0f, x, a->cols, a->values, a->cols, 0.0f, y, a->rows));
    dc_cpu_spmat_epilogue(be, a, n, 1, y);
    return DC_OK;
}

enum dc_status dc_cpu_spmat_fc(struct dc_backend *be, const struct dc_spmat *a, int n, const float *x, float *y)
{
    if (n < 1 || n > a->max_n)
        return DC_ERROR(DC_ERR_ARG, "spmat_fc: batch %d outside 1..%d (the matrix's max_n)", n, a->max_n);
    if (a->format == DC_FORMAT_DENSE)
        return dc_cpu_spmat_dense_fc(be, a, n, x, y);
    /* A small batch runs as that many products with one vector each; a
     * larger one as one product with B = x^T, padded with zero columns to a
     * multiple of 8 so that every tile is a full vector (the scalar loop for
     * a tail of columns cost more per column than a whole tile of 8: Zen 4,
     * 1 thread, VGG-16 FC7 at batch 2, csr 856 us per sample against 79 at
     * batch 8 and 192 at batch 1). */
    if (n <= (a->format == DC_FORMAT_CSR ? DC_CSR_SPMV_MAX_N : DC_CODEBOOK_SPMV_MAX_N)) {
        int64_t work = a->entries + a->rows;
        for (int b = 0; b < n; b++) {
            const float *xb = x + (size_t)b * a->cols;
            float *yb = y + (size_t)b * a->rows;
            if (a->slices > 0)
                DC_SPMAT_RANGES(be, a, work, dc_cpu_spmv_slices(a, s0, s1, xb, yb));
            else
                DC_SPMAT_RANGES(be, a, work, dc_cpu_spmv_rows(a, r0, r1, xb, yb));
        }
        return DC_OK;
    }
    const int ld = (n + 7) / 8 * 8;
    int64_t work = a->entries * ld + a->rows;
    float *xt, *yt;
    DC_TRY(dc_cpu_scratch(be, DC_CPU_SCRATCH_SPMAT_IN, (size_t)ld * a->cols, &xt));
    DC_TRY(dc_cpu_scratch(be, DC_CPU_SCRATCH_SPMAT_OUT, (size_t)ld * a->rows, &yt));
    dc_cpu_transpose(be, n, a->cols, x, a->cols, xt, ld);
    DC_SPMAT_RANGES(be, a, work, dc_cpu_spmm_rows(a, r0, r1, ld, xt, ld, yt, ld));
    dc_cpu_transpose(be, a->rows, n, yt, ld, y, a->rows);
    return DC_OK;
}

enum dc_status dc_cpu_spmat_conv(struct dc_backend *be, const struct dc_conv_desc *d, const struct dc_spmat *a,
                                 const float *x, float *y)
{
    const int crs = d->c * d->r * d->s, pq = d->p * d->q;
    if (a->rows != d->k || a->cols != crs || d->n < 1 || pq < 1)
        return DC_ERROR(DC_ERR_ARG, "spmat_conv: a %d x %d matrix for %d filters of %d x %d x %d (batch %d)",
                        a->rows, a->cols, d->k, d->c, d->r, d->s, d->n);
    if (a->format == DC_FORMAT_DENSE) {
        DC_TRY(dc_cpu_conv_fwd(be, d, x, a->values, y));
        dc_cpu_spmat_epilogue(be, a, d->n, pq, y);
        return DC_OK;
    }
    const size_t x_img = (size_t)d->c * d->h * d->w, y_img = (size_t)d->k * pq;
    if (d->r == 1 && d->s == 1 && d->stride == 1 && d->pad == 0) { /* pointwise: each image is B as it is */
        for (int b = 0; b < d->n; b++)
            DC_TRY(dc_cpu_spmm(be, a, pq, x + b * x_img, pq, y + b * y_img, pq));
        return DC_OK;
    }
    /* nb images at once (B [CRS, nb*PQ] up to DC_SPMAT_COL_FLOATS): one
     * product over all their columns, then out [M, nb*PQ] back to y
     * [nb, M, PQ]: three parallel passes per nb images instead of two per
     * image, each of which waits for the slowest thread. */
    int chunk = (size_t)crs * pq >= DC_SPMAT_COL_FLOATS ? 1 : (int)(DC_SPMAT_COL_FLOATS / ((size_t)crs * pq));
    chunk = chunk < d->n ? chunk : d->n;
    float *col, *out = NULL;
    DC_TRY(dc_cpu_scratch(be, DC_CPU_SCRATCH_COL, (size_t)crs * pq * chunk, &col));
    if (chunk > 1)
        DC_TRY(dc_cpu_scratch(be, DC_CPU_SCRATCH_SPMAT_OUT, y_img * chunk, &out));
    for (int b0 = 0; b0 < d->n; b0 += chunk) {
        const int nb = d->n - b0 < chunk ? d->n - b0 : chunk, ncols = nb * pq;
        dc_cpu_im2col(be, d, x + b0 * x_img, nb, col);
        float *o = nb > 1 ? out : y + b0 * y_img;
        DC_TRY(dc_cpu_spmm(be, a, ncols, col, ncols, o, ncols));
        if (nb == 1)
            continue;
        float *yb = y + b0 * y_img;
        DC_OMP_FOR_COLLAPSE2(dc_cpu_ctx(be)->threads, (size_t)nb * y_img > DC_CPU_PAR_MIN)
        for (int b = 0; b < nb; b++)
            for (int r = 0; r < d->k; r++)
                memcpy(yb + b * y_img + (size_t)r * pq, out + (size_t)r * ncols + (size_t)b * pq, sizeof(float) * pq);
    }
    return DC_OK;
}
