/* cpu_conv.c: 2-D convolution on the CPU as im2col + GEMM.
 *
 * The batch is cut into groups of nb images, just enough that a group's GEMM
 * is DC_CONV_GROUP_COLS columns wide (one image when P*Q is that large), and
 * the threads split the groups: each runs its own contiguous run of groups
 * (a "part"; dc_cpu_pieces of them, so one thread runs the same two parts as
 * two threads do) with single-threaded BLAS and its own buffers, so a group's
 * unfolded columns stay in that core's cache from im2col to GEMM to col2im,
 * and every pass is parallel.  A group is unfolded as col [CRS, nb*PQ]
 * (column b*PQ + p*Q + q holds the receptive field of output (b,p,q)):
 *   forward:         y [K, nb*PQ] = w [K,CRS] col
 *   backward data:   col [CRS, nb*PQ] = w^T dy [K, nb*PQ]   -> col2im -> dx
 *   backward filter: dw [K,CRS] += dy [K, nb*PQ] col^T
 * For one image [K, PQ] is the tensor's own layout, so y and dy are used in
 * place; larger groups gather and scatter through a small buffer.  1x1
 * stride-1 pad-0 convolutions skip im2col: x[n] is already [C, HW].
 *
 * Every element of y and dx is written by one thread; dw is summed per part
 * in group order and the parts are added in part order, so results are the
 * same run to run, and the same at 1 and 2 threads (resume must be
 * bit-identical; a result must not hang on the thread count).
 *
 * Legend: N C H W input, K R S weight, P Q output. */
#include <string.h>

#include "cpu/cpu_internal.h"

/* Columns a group's GEMM should have at least: narrower products leave
 * BLAS's kernels starved (a 4x4 map is only 16 columns per image). */
#define DC_CONV_GROUP_COLS 256
/* At most this many parts (threads) per convolution. */
#define DC_CONV_MAX_PARTS 256

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

/* Images per group: enough for DC_CONV_GROUP_COLS columns, at least one. */
static int dc_conv_group(const struct dc_conv_desc *d)
{
    const int pq = d->p * d->q;
    const int nb = (DC_CONV_GROUP_COLS + pq - 1) / pq;
    return nb < d->n ? nb : d->n;
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
 * a group's GEMM wants), on the calling thread: to_chunk = 1 gathers src
 * images into the dst block, 0 scatters a src block into dst images. */
static void dc_conv_reorder(int nb, int k, int pq, const float *src, float *dst, int to_chunk)
{
    const size_t ld = (size_t)nb * pq;
    for (int b = 0; b < nb; b++) {
        for (int kk = 0; kk < k; kk++) {
            size_t img = ((size_t)b * k + kk) * pq, ch = kk * ld + (size_t)b * pq;
            memcpy(dst + (to_chunk ? ch : img), src + (to_chunk ? img : ch),
                   (size_t)pq * sizeof(float));
        }
    }
}

/* Row `row` (= c*RS + r*S + s) of col [CRS, nb*PQ] for image b of x [nb,C,H,W]. */
static void dc_im2col_row(const struct dc_conv_desc *d, const float *x, int nb, int row, int b,
                          float *col)
{
    const int rs = d->r * d->s, pq = d->p * d->q;
    const int c = row / rs, r = (row / d->s) % d->r, s = row % d->s;
    const float *plane = x + ((size_t)b * d->c + c) * d->h * d->w;
    float *dst = col + row * ((size_t)nb * pq) + (size_t)b * pq;
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

/* col [CRS, nb*PQ] from x [nb,C,H,W]; padding reads as zero. */
void dc_cpu_im2col(struct dc_backend *be, const struct dc_conv_desc *d, const float *x, int nb, float *col)
{
    const int crs = d->c * d->r * d->s;
    const size_t ld = (size_t)nb * d->p * d->q;
    DC_OMP_FOR_COLLAPSE2(dc_cpu_ctx(be)->threads, (size_t)crs * ld > 16384)
    for (int row = 0; row < crs; row++)
        for (int b = 0; b < nb; b++)
            dc_im2col_row(d, x, nb, row, b, col);
}

/* dx [nb,C,H,W] = sum of col [CRS, nb*PQ] folded back (overwrites dx). */
static void dc_col2im(const struct dc_conv_desc *d, const float *col, int nb, float *dx)
{
    const int rs = d->r * d->s, pq = d->p * d->q;
    const size_t ld = (size_t)nb * pq, hw = (size_t)d->h * d->w;
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

/* What the three directions share: sizes, the groups of images and the
 * per-part scratch buffers. */
struct dc_conv_plan {
    int crs, pq;
    int group, groups;   /* images per group (the last may have fewer), group count */
    int parts;           /* contiguous runs of groups, dc_cpu_pieces of them */
    int threads;         /* that run the parts */
    size_t x_img, y_img; /* floats per image of x and y */
    size_t col_len, ky_len; /* floats per part of col and ky (multiples of 16) */
    float *col;          /* parts x [CRS, group*PQ] */
    float *ky;           /* parts x [K, group*PQ] */
};

static size_t dc_conv_round16(size_t n)
{
    return (n + 15) / 16 * 16;
}

static enum dc_status dc_conv_plan(struct dc_backend *be, const struct dc_conv_desc *d,
                                   const char *op, struct dc_conv_plan *pl)
{
    DC_TRY(dc_conv_check(d, op));
    *pl = (struct dc_conv_plan){.crs = d->c * d->r * d->s, .pq = d->p * d->q};
    pl->x_img = (size_t)d->c * d->h * d->w;
    pl->y_img = (size_t)d->k * pl->pq;
    pl->group = dc_conv_group(d);
    pl->groups = (d->n + pl->group - 1) / pl->group;
    const int threads = dc_cpu_ctx(be)->threads, pieces = dc_cpu_pieces(threads);
    pl->parts = pieces < pl->groups ? pieces : pl->groups;
    if (pl->parts > DC_CONV_MAX_PARTS)
        pl->parts = DC_CONV_MAX_PARTS;
    pl->threads = threads < pl->parts ? threads : pl->parts;
    const size_t cols = (size_t)pl->group * pl->pq;
    pl->col_len = dc_conv_round16((size_t)pl->crs * cols);
    pl->ky_len = dc_conv_round16((size_t)d->k * cols);
    DC_TRY(dc_cpu_scratch(be, DC_CPU_SCRATCH_COL, pl->parts * pl->col_len, &pl->col));
    DC_TRY(dc_cpu_scratch(be, DC_CPU_SCRATCH_OUT, pl->parts * pl->ky_len, &pl->ky));
    return DC_OK;
}

/* Groups [*g0, *g1) of part `part`; and the images of group g. */
static void dc_conv_part_groups(const struct dc_conv_plan *pl, int part, int *g0, int *g1)
{
    *g0 = (int)((long)part * pl->groups / pl->parts);
    *g1 = (int)((long)(part + 1) * pl->groups / pl->parts);
}

static int dc_conv_group_images(const struct dc_conv_desc *d, const struct dc_conv_plan *pl, int g,
                                int *n0)
{
    *n0 = g * pl->group;
    return d->n - *n0 < pl->group ? d->n - *n0 : pl->group;
}

/* x of images n0..n0+nb unfolded as [CRS, nb*PQ], in col when it must be
 * built.  A 1x1 convolution needs no im2col: one image is already [C, HW],
 * and a group is a block copy. */
static const float *dc_conv_cols(const struct dc_conv_desc *d, const struct dc_conv_plan *pl,
                                 const float *x, int n0, int nb, float *col)
{
    const float *src = x + n0 * pl->x_img;
    if (!dc_conv_is_pointwise(d)) {
        for (int row = 0; row < pl->crs; row++)
            for (int b = 0; b < nb; b++)
                dc_im2col_row(d, src, nb, row, b, col);
        return col;
    }
    if (nb == 1)
        return src;
    dc_conv_reorder(nb, d->c, pl->pq, src, col, 1);
    return col;
}

/* dy of images n0..n0+nb as [K, nb*PQ]: in place for one image, else gathered into ky. */
static const float *dc_conv_dy_group(const struct dc_conv_desc *d, const struct dc_conv_plan *pl,
                                     const float *dy, int n0, int nb, float *ky)
{
    const float *src = dy + n0 * pl->y_img;
    if (nb == 1)
        return src;
    dc_conv_reorder(nb, d->k, pl->pq, src, ky, 1);
    return ky;
}

enum dc_conv_dir { DC_CONV_FWD, DC_CONV_BWD_DATA, DC_CONV_BWD_FILTER };

/* One direction over the whole batch: the operands, and for the filter
 * gradient where each part sums (part 0 into dw, part p into
 * partial + (p-1)*acc_len). */
struct dc_conv_job {
    const struct dc_conv_desc *d;
    const struct dc_conv_plan *pl;
    enum dc_conv_dir dir;
    const float *x, *w, *dy;
    float *out; /* y, dx or dw */
    float *partial;
    size_t acc_len;
};

/* Group g (images n0..n0+nb) of one direction, on the calling thread with
 * this part's buffers; `first` says it is the part's first group. */
static enum dc_status dc_conv_group_run(const struct dc_conv_job *j, int part, int g, int first)
{
    const struct dc_conv_desc *d = j->d;
    const struct dc_conv_plan *pl = j->pl;
    float *col = pl->col + part * pl->col_len, *ky = pl->ky + part * pl->ky_len;
    int n0;
    const int nb = dc_conv_group_images(d, pl, g, &n0), cols = nb * pl->pq;
    const int pointwise = dc_conv_is_pointwise(d);
    switch (j->dir) {
    case DC_CONV_FWD: { /* y = w col, scattered from ky when nb > 1 */
        const float *xc = dc_conv_cols(d, pl, j->x, n0, nb, col);
        float *y = j->out + n0 * pl->y_img, *dst = nb > 1 ? ky : y;
        DC_TRY(dc_cpu_gemm_serial(0, 0, d->k, cols, pl->crs, 1.0f, j->w, pl->crs, xc, cols, 0.0f, dst,
                                  cols));
        if (nb > 1)
            dc_conv_reorder(nb, d->k, pl->pq, ky, y, 0);
        return DC_OK;
    }
    case DC_CONV_BWD_DATA: { /* dcol = w^T dy, folded back (1x1: dcol is dx) */
        const float *dyc = dc_conv_dy_group(d, pl, j->dy, n0, nb, ky);
        float *dx = j->out + n0 * pl->x_img, *dst = pointwise && nb == 1 ? dx : col;
        DC_TRY(dc_cpu_gemm_serial(1, 0, pl->crs, cols, d->k, 1.0f, j->w, pl->crs, dyc, cols, 0.0f, dst,
                                  cols));
        if (!pointwise)
            dc_col2im(d, col, nb, dx);
        else if (nb > 1)
            dc_conv_reorder(nb, d->c, pl->pq, col, dx, 0);
        return DC_OK;
    }
    case DC_CONV_BWD_FILTER: { /* acc += dy col^T (= on the part's first group) */
        float *acc = part == 0 ? j->out : j->partial + (part - 1) * j->acc_len;
        const float *dyc = dc_conv_dy_group(d, pl, j->dy, n0, nb, ky);
        const float *xc = dc_conv_cols(d, pl, j->x, n0, nb, col);
        return dc_cpu_gemm_serial(0, 1, d->k, pl->crs, cols, 1.0f, dyc, cols, xc, cols,
                                  first ? 0.0f : 1.0f, acc, pl->crs);
    }
    }
    return DC_ERROR(DC_ERR_ARG, "conv: unknown direction %d", (int)j->dir);
}

/* Every part on its own thread, each running its groups in order; the first
 * failure, if any. */
static enum dc_status dc_conv_run(const struct dc_conv_job *j)
{
    const int parts = j->pl->parts;
    enum dc_status st[DC_CONV_MAX_PARTS];
    DC_OMP_FOR(j->pl->threads, j->pl->threads > 1)
    for (int part = 0; part < parts; part++) {
        int g0, g1;
        dc_conv_part_groups(j->pl, part, &g0, &g1);
        st[part] = DC_OK;
        for (int g = g0; g < g1 && st[part] == DC_OK; g++)
            st[part] = dc_conv_group_run(j, part, g, g == g0);
    }
    for (int part = 0; part < parts; part++)
        if (st[part] != DC_OK)
            return st[part];
    return DC_OK;
}

enum dc_status dc_cpu_conv_fwd(struct dc_backend *be, const struct dc_conv_desc *d, const float *x,
                               const float *w, float *y)
{
    struct dc_conv_plan pl;
    DC_TRY(dc_conv_plan(be, d, "conv_fwd", &pl));
    struct dc_conv_job j = {.d = d, .pl = &pl, .dir = DC_CONV_FWD, .x = x, .w = w, .out = y};
    return dc_conv_run(&j);
}

enum dc_status dc_cpu_conv_bwd_data(struct dc_backend *be, const struct dc_conv_desc *d,
                                    const float *w, const float *dy, float *dx)
{
    struct dc_conv_plan pl;
    DC_TRY(dc_conv_plan(be, d, "conv_bwd_data", &pl));
    struct dc_conv_job j = {.d = d, .pl = &pl, .dir = DC_CONV_BWD_DATA, .w = w, .dy = dy, .out = dx};
    return dc_conv_run(&j);
}

/* Each part sums its own groups (part 0 straight into dw, the others into
 * scratch); dw then adds parts 1, 2, ... in order, so the result depends on
 * the thread count but never on timing. */
enum dc_status dc_cpu_conv_bwd_filter(struct dc_backend *be, const struct dc_conv_desc *d,
                                      const float *x, const float *dy, float *dw)
{
    struct dc_conv_plan pl;
    DC_TRY(dc_conv_plan(be, d, "conv_bwd_filter", &pl));
    const size_t kcrs = (size_t)d->k * pl.crs;
    struct dc_conv_job j = {.d = d, .pl = &pl, .dir = DC_CONV_BWD_FILTER, .x = x, .dy = dy, .out = dw,
                            .acc_len = dc_conv_round16(kcrs)};
    if (pl.parts > 1)
        DC_TRY(dc_cpu_scratch(be, DC_CPU_SCRATCH_DW, (pl.parts - 1) * j.acc_len, &j.partial));
    DC_TRY(dc_conv_run(&j));
    for (int part = 1; part < pl.parts; part++) {
        const float *src = j.partial + (part - 1) * j.acc_len;
        for (size_t i = 0; i < kcrs; i++)
            dw[i] += src[i];
    }
    return DC_OK;
}
