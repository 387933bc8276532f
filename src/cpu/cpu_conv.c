/* cpu_conv.c: 2-D convolution on the CPU as im2col + GEMM.
 *
 * A chunk of nb images is unfolded into one column matrix col [CRS, nb*PQ]
 * (column b*PQ + p*Q + q holds the receptive field of output (b,p,q)), so each
 * direction is a single large GEMM that BLAS runs well on all threads:
 *   forward:        out [K, nb*PQ] = w [K,CRS] col            -> y [nb,K,PQ]
 *   backward data:  col [CRS, nb*PQ] = w^T dyT [K, nb*PQ]     -> col2im -> dx
 *   backward filter: dw [K,CRS] += dyT [K, nb*PQ] col^T       (chunks in order)
 * The chunk size depends only on the shapes, and every output element is
 * written by exactly one thread in a fixed order, so results are the same run
 * to run (resume must be bit-identical).  1x1 stride-1 pad-0 convolutions skip
 * im2col: x[n] is already [C, HW], so a chunk is a plain block copy.
 *
 * Legend: N C H W input, K R S weight, P Q output. */
#include <string.h>

#include "cpu/cpu_internal.h"

/* Upper bound on the column buffer, in floats (16 MiB): large enough for one
 * big GEMM on LeNet-sized layers, small enough to stay near the caches. */
#define DC_CONV_COL_BUDGET ((size_t)4 << 20)

static enum dc_status dc_conv_check(const struct dc_conv_desc *d, const char *op)
{
    if (d->n <= 0 || d->c <= 0 || d->h <= 0 || d->w <= 0 || d->k <= 0 || d->r <= 0 || d->s <= 0 ||
        d->stride <= 0 || d->pad < 0)
        return DC_ERROR(DC_ERR_ARG, "%s: bad shape x[%d,%d,%d,%d] w[%d,%d,%d,%d] stride %d pad %d",
                        op, d->n, d->c, d->h, d->w, d->k, d->c, d->r, d->s, d->stride, d->pad);
    int p = (d->h + 2 * d->pad - d->r) / d->stride + 1;
    int q = (d->w + 2 * d->pad - d->s) / d->stride + 1;
    if (d->h + 2 * d->pad < d->r || d->w + 2 * d->pad < d->s || d->p != p || d->q != q)
        return DC_ERROR(DC_ERR_ARG, "%s: output %dx%d does not match input %dx%d, kernel %dx%d, "
                        "stride %d, pad %d (expected %dx%d)", op, d->p, d->q, d->h, d->w, d->r,
                        d->s, d->stride, d->pad, p, q);
    return DC_OK;
}

static int dc_conv_is_pointwise(const struct dc_conv_desc *d)
{
    return d->r == 1 && d->s == 1 && d->stride == 1 && d->pad == 0;
}

/* Images per chunk so that col [CRS, nb*PQ] fits the budget (at least one). */
static int dc_conv_chunk(const struct dc_conv_desc *d)
{
    size_t per_image = (size_t)d->c * d->r * d->s * d->p * d->q;
    size_t nb = DC_CONV_COL_BUDGET / (per_image ? per_image : 1);
    if (nb < 1)
        nb = 1;
    return nb < (size_t)d->n ? (int)nb : d->n;
}

/* Output columns q whose input column q*stride - pad + s lies inside [0, W). */
static void dc_conv_valid_q(const struct dc_conv_desc *d, int s, int *q_lo, int *q_hi)
{
    int lo = 0;
    while (lo < d->q && lo * d->stride - d->pad + s < 0)
        lo++;
    int hi = d->q;
    while (hi > lo && (hi - 1) * d->stride - d->pad + s >= d->w)
        hi--;
    *q_lo = lo;
    *q_hi = hi;
}

/* Copy between [nb, K, PQ] (image-major, as tensors are) and [K, nb*PQ] (as
 * the chunk GEMMs want): to_chunk = 1 gathers src images into dst chunk, 0
 * scatters a src chunk into dst images. */
static void dc_conv_reorder(struct dc_backend *be, int nb, int k, int pq, const float *src,
                            float *dst, int to_chunk)
{
    const size_t ld = (size_t)nb * pq;
    DC_OMP_FOR_COLLAPSE2(dc_cpu_ctx(be)->threads, (size_t)k * ld > 65536)
    for (int b = 0; b < nb; b++) {
        for (int kk = 0; kk < k; kk++) {
            size_t img = ((size_t)b * k + kk) * pq, ch = kk * ld + (size_t)b * pq;
            memcpy(dst + (to_chunk ? ch : img), src + (to_chunk ? img : ch),
                   (size_t)pq * sizeof(float));
        }
    }
}

/* col [CRS, nb*PQ] from x [nb,C,H,W]; padding reads as zero. */
void dc_cpu_im2col(struct dc_backend *be, const struct dc_conv_desc *d, const float *x, int nb, float *col)
{
    const int rs = d->r * d->s, crs = d->c * rs, pq = d->p * d->q;
    const size_t ld = (size_t)nb * pq;
    DC_OMP_FOR_COLLAPSE2(dc_cpu_ctx(be)->threads, (size_t)crs * ld > 16384)
    for (int row = 0; row < crs; row++) {
        for (int b = 0; b < nb; b++) {
            const int c = row / rs, r = (row / d->s) % d->r, s = row % d->s;
            const float *plane = x + ((size_t)b * d->c + c) * d->h * d->w;
            float *dst = col + row * ld + (size_t)b * pq;
            int q_lo, q_hi;
            dc_conv_valid_q(d, s, &q_lo, &q_hi);
            for (int p = 0; p < d->p; p++, dst += d->q) {
                int h = p * d->stride - d->pad + r;
                if (h < 0 || h >= d->h || q_lo >= q_hi) {
                    memset(dst, 0, (size_t)d->q * sizeof(float));
                    continue;
                }
                /* input column of output q_lo; stays inside the plane */
                const float *src = plane + (size_t)h * d->w + (q_lo * d->stride - d->pad + s);
                for (int q = 0; q < q_lo; q++)
                    dst[q] = 0.0f;
                if (d->stride == 1)
                    memcpy(dst + q_lo, src, (size_t)(q_hi - q_lo) * sizeof(float));
                else
                    for (int q = q_lo; q < q_hi; q++)
                        dst[q] = src[(q - q_lo) * d->stride];
                for (int q = q_hi; q < d->q; q++)
                    dst[q] = 0.0f;
            }
        }
    }
}

/* dx [nb,C,H,W] = sum of col [CRS, nb*PQ] folded back (overwrites dx). */
static void dc_col2im(struct dc_backend *be, const struct dc_conv_desc *d, const float *col, int nb,
                      float *dx)
{
    const int rs = d->r * d->s, pq = d->p * d->q;
    const size_t ld = (size_t)nb * pq, hw = (size_t)d->h * d->w;
    DC_OMP_FOR_COLLAPSE2(dc_cpu_ctx(be)->threads, (size_t)d->c * rs * ld > 16384)
    for (int b = 0; b < nb; b++) {
        for (int c = 0; c < d->c; c++) {
            float *plane = dx + ((size_t)b * d->c + c) * hw;
            memset(plane, 0, hw * sizeof(float));
            for (int r = 0; r < d->r; r++) {
                for (int s = 0; s < d->s; s++) {
                    const float *src = col + ((size_t)c * rs + r * d->s + s) * ld + (size_t)b * pq;
                    int q_lo, q_hi;
                    dc_conv_valid_q(d, s, &q_lo, &q_hi);
                    for (int p = 0; p < d->p; p++, src += d->q) {
                        int h = p * d->stride - d->pad + r;
                        if (h < 0 || h >= d->h || q_lo >= q_hi)
                            continue;
                        float *dst = plane + (size_t)h * d->w + (q_lo * d->stride - d->pad + s);
                        for (int q = q_lo; q < q_hi; q++)
                            dst[(q - q_lo) * d->stride] += src[q];
                    }
                }
            }
        }
    }
}

/* What the three directions share: sizes, the chunk of images per GEMM and
 * the scratch buffers. */
struct dc_conv_plan {
    int crs, pq, chunk;
    size_t x_img, y_img; /* floats per image of x and y */
    float *col;          /* [CRS, chunk*PQ] */
    float *ky;           /* [K, chunk*PQ]; NULL when chunk == 1 (one image is used in place) */
};

static enum dc_status dc_conv_plan(struct dc_backend *be, const struct dc_conv_desc *d,
                                   const char *op, struct dc_conv_plan *pl)
{
    DC_TRY(dc_conv_check(d, op));
    *pl = (struct dc_conv_plan){.crs = d->c * d->r * d->s, .pq = d->p * d->q};
    pl->x_img = (size_t)d->c * d->h * d->w;
    pl->y_img = (size_t)d->k * pl->pq;
    pl->chunk = dc_conv_chunk(d);
    DC_TRY(dc_cpu_scratch(be, DC_CPU_SCRATCH_COL, (size_t)pl->crs * pl->chunk * pl->pq, &pl->col));
    if (pl->chunk > 1)
        DC_TRY(dc_cpu_scratch(be, DC_CPU_SCRATCH_OUT, (size_t)d->k * pl->chunk * pl->pq, &pl->ky));
    return DC_OK;
}

/* x of images n0..n0+nb unfolded as [CRS, nb*PQ].  A 1x1 convolution needs
 * no im2col: one image is already [C, HW], and a chunk is a block copy. */
static const float *dc_conv_cols(struct dc_backend *be, const struct dc_conv_desc *d,
                                 const struct dc_conv_plan *pl, const float *x, int n0, int nb)
{
    const float *src = x + n0 * pl->x_img;
    if (!dc_conv_is_pointwise(d)) {
        dc_cpu_im2col(be, d, src, nb, pl->col);
        return pl->col;
    }
    if (nb == 1)
        return src;
    dc_conv_reorder(be, nb, d->c, pl->pq, src, pl->col, 1);
    return pl->col;
}

/* dy of images n0..n0+nb as [K, nb*PQ]: in place for one image, else gathered. */
static const float *dc_conv_dy_chunk(struct dc_backend *be, const struct dc_conv_desc *d,
                                     const struct dc_conv_plan *pl, const float *dy, int n0, int nb)
{
    const float *src = dy + n0 * pl->y_img;
    if (nb == 1)
        return src;
    dc_conv_reorder(be, nb, d->k, pl->pq, src, pl->ky, 1);
    return pl->ky;
}

enum dc_status dc_cpu_conv_fwd(struct dc_backend *be, const struct dc_conv_desc *d, const float *x,
                               const float *w, float *y)
{
    struct dc_conv_plan pl;
    DC_TRY(dc_conv_plan(be, d, "conv_fwd", &pl));
    const int pq = pl.pq;
    for (int n0 = 0; n0 < d->n; n0 += pl.chunk) {
        int nb = d->n - n0 < pl.chunk ? d->n - n0 : pl.chunk;
        const float *cols = dc_conv_cols(be, d, &pl, x, n0, nb);
        float *dst = nb > 1 ? pl.ky : y + n0 * pl.y_img;
        DC_TRY(dc_cpu_gemm(be, 0, 0, d->k, nb * pq, pl.crs, 1.0f, w, pl.crs, cols, nb * pq, 0.0f,
                           dst, nb * pq));
        if (nb > 1)
            dc_conv_reorder(be, nb, d->k, pq, pl.ky, y + n0 * pl.y_img, 0);
    }
    return DC_OK;
}

enum dc_status dc_cpu_conv_bwd_data(struct dc_backend *be, const struct dc_conv_desc *d,
                                    const float *w, const float *dy, float *dx)
{
    struct dc_conv_plan pl;
    DC_TRY(dc_conv_plan(be, d, "conv_bwd_data", &pl));
    const int pq = pl.pq;
    for (int n0 = 0; n0 < d->n; n0 += pl.chunk) {
        int nb = d->n - n0 < pl.chunk ? d->n - n0 : pl.chunk;
        const float *dyc = dc_conv_dy_chunk(be, d, &pl, dy, n0, nb);
        float *dxc = dx + n0 * pl.x_img;
        const int pointwise = dc_conv_is_pointwise(d);
        float *dst = pointwise && nb == 1 ? dxc : pl.col; /* 1x1: the columns are dx */
        DC_TRY(dc_cpu_gemm(be, 1, 0, pl.crs, nb * pq, d->k, 1.0f, w, pl.crs, dyc, nb * pq, 0.0f,
                           dst, nb * pq));
        if (!pointwise)
            dc_col2im(be, d, pl.col, nb, dxc);
        else if (nb > 1)
            dc_conv_reorder(be, nb, d->c, pq, pl.col, dxc, 0);
    }
    return DC_OK;
}

enum dc_status dc_cpu_conv_bwd_filter(struct dc_backend *be, const struct dc_conv_desc *d,
                                      const float *x, const float *dy, float *dw)
{
    struct dc_conv_plan pl;
    DC_TRY(dc_conv_plan(be, d, "conv_bwd_filter", &pl));
    const int pq = pl.pq;
    for (int n0 = 0; n0 < d->n; n0 += pl.chunk) {
        int nb = d->n - n0 < pl.chunk ? d->n - n0 : pl.chunk;
        const float *dyc = dc_conv_dy_chunk(be, d, &pl, dy, n0, nb);
        const float *cols = dc_conv_cols(be, d, &pl, x, n0, nb);
        DC_TRY(dc_cpu_gemm(be, 0, 1, d->k, pl.crs, nb * pq, 1.0f, dyc, nb * pq, cols, nb * pq,
                           n0 == 0 ? 0.0f : 1.0f, dw, pl.crs));
    }
    return DC_OK;
}
