/* cpu_pool.c: max and average pooling on the CPU, forward and backward.
 * Semantics follow PyTorch: max pooling routes the gradient to the first
 * maximum of each window (row-major scan); average pooling divides by the
 * cells inside the input (count_include_pad=False).  Work is split over
 * (n, c) planes, each written by one thread, so results are deterministic.
 *
 * Legend: x [N,C,H,W], y [N,C,P,Q]. */
#include <math.h>
#include <string.h>

#include "cpu/cpu_internal.h"

static enum dc_status dc_pool_check(const struct dc_pool_desc *d, const char *op)
{
    if (d->n <= 0 || d->c <= 0 || d->h <= 0 || d->w <= 0 || d->size <= 0 || d->stride <= 0 ||
        d->pad < 0 || d->pad >= d->size || d->p <= 0 || d->q <= 0)
        return DC_ERROR(DC_ERR_ARG, "%s: bad shape x[%d,%d,%d,%d] size %d stride %d pad %d -> %dx%d",
                        op, d->n, d->c, d->h, d->w, d->size, d->stride, d->pad, d->p, d->q);
    return DC_OK;
}

/* The window of output (p, q) clipped to the input: rows [*h0,*h1), cols [*w0,*w1). */
static void dc_pool_window(const struct dc_pool_desc *d, int p, int q, int *h0, int *h1, int *w0,
                           int *w1)
{
    int hs = p * d->stride - d->pad, ws = q * d->stride - d->pad;
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = hs + d->size < d->h ? hs + d->size : d->h;
    *w1 = ws + d->size < d->w ? ws + d->size : d->w;
}

/* Offset of the first maximum in the window inside its plane (-1 if empty).
 * Written with selects instead of branches: on random data a branch on
 * `v > best` mispredicts half the time and made pooling slower than the
 * convolution before it. */
static long dc_pool_argmax(const struct dc_pool_desc *d, const float *plane, int p, int q)
{
    int h0, h1, w0, w1;
    dc_pool_window(d, p, q, &h0, &h1, &w0, &w1);
    if (h0 >= h1 || w0 >= w1)
        return -1;
    long best = (long)h0 * d->w + w0;
    float best_v = plane[best];
    for (int h = h0; h < h1; h++)
        for (int w = w0; w < w1; w++) {
            const long at = (long)h * d->w + w;
            const float v = plane[at];
            const int better = v > best_v;
            best = better ? at : best;
            best_v = better ? v : best_v;
        }
    return best;
}

/* Mean of the window over its in-input cells. */
static float dc_pool_mean(const struct dc_pool_desc *d, const float *plane, int p, int q)
{
    int h0, h1, w0, w1;
    dc_pool_window(d, p, q, &h0, &h1, &w0, &w1);
    float sum = 0.0f;
    for (int h = h0; h < h1; h++)
        for (int w = w0; w < w1; w++)
            sum += plane[(size_t)h * d->w + w];
    int count = (h1 - h0) * (w1 - w0);
    return count > 0 ? sum / (float)count : 0.0f;
}

/* Spread g evenly over the in-input cells of window (p, q). */
static void dc_pool_mean_bwd(const struct dc_pool_desc *d, int p, int q, float g, float *plane)
{
    int h0, h1, w0, w1;
    dc_pool_window(d, p, q, &h0, &h1, &w0, &w1);
    int count = (h1 - h0) * (w1 - w0);
    if (count <= 0)
        return;
    float share = g / (float)count;
    for (int h = h0; h < h1; h++)
        for (int w = w0; w < w1; w++)
            plane[(size_t)h * d->w + w] += share;
}

/* 2x2 stride-2 unpadded max pooling (LeNet, VGG) gets its own loops: the
 * windows do not overlap, so every cell is written once without branches and
 * the compiler can vectorise.  Comparing the two rows' pair maxima with `>`
 * picks the same first maximum as the scan-order rule, NaNs included: the
 * scan lets a NaN win only as the window's first cell, so the second row's
 * pair passes over a NaN in its first cell (dc_max2_right). */
static inline int dc_max2_right(float left, float right, int row)
{
    /* bitwise, not ||: a branch on random data made the backward pass 14x slower */
    return (right > left) | (row & (left != left));
}
static int dc_pool_is_max2(const struct dc_pool_desc *d)
{
    return d->is_max && d->size == 2 && d->stride == 2 && d->pad == 0 && 2 * d->p <= d->h &&
           2 * d->q <= d->w;
}

static void dc_pool_max2_fwd(const struct dc_pool_desc *d, const float *xp, float *yp)
{
    for (int p = 0; p < d->p; p++) {
        const float *r0 = xp + (size_t)2 * p * d->w, *r1 = r0 + d->w;
        float *out = yp + (size_t)p * d->q;
        for (int q = 0; q < d->q; q++) {
            float m0 = dc_max2_right(r0[2 * q], r0[2 * q + 1], 0) ? r0[2 * q + 1] : r0[2 * q];
            float m1 = dc_max2_right(r1[2 * q], r1[2 * q + 1], 1) ? r1[2 * q + 1] : r1[2 * q];
            out[q] = m1 > m0 ? m1 : m0;
        }
    }
}

static void dc_pool_max2_bwd(const struct dc_pool_desc *d, const float *xp, const float *dyp,
                             float *dxp)
{
    for (int p = 0; p < d->p; p++) {
        const float *r0 = xp + (size_t)2 * p * d->w, *r1 = r0 + d->w, *g = dyp + (size_t)p * d->q;
        float *d0 = dxp + (size_t)2 * p * d->w, *d1 = d0 + d->w;
        for (int q = 0; q < d->q; q++) {
            const int right0 = dc_max2_right(r0[2 * q], r0[2 * q + 1], 0);
            const int right1 = dc_max2_right(r1[2 * q], r1[2 * q + 1], 1);
            const float m0 = right0 ? r0[2 * q + 1] : r0[2 * q];
            const float m1 = right1 ? r1[2 * q + 1] : r1[2 * q];
            const float top = m1 > m0 ? 0.0f : g[q], bottom = m1 > m0 ? g[q] : 0.0f;
            d0[2 * q] = right0 ? 0.0f : top;
            d0[2 * q + 1] = right0 ? top : 0.0f;
            d1[2 * q] = right1 ? 0.0f : bottom;
            d1[2 * q + 1] = right1 ? bottom : 0.0f;
        }
        for (int w = 2 * d->q; w < d->w; w++) /* odd width: last column gets nothing */
            d0[w] = d1[w] = 0.0f;
    }
    for (int h = 2 * d->p; h < d->h; h++)
        memset(dxp + (size_t)h * d->w, 0, (size_t)d->w * sizeof(float));
}

/* Output (p, q) of one plane: max or mean over its window. */
static float dc_pool_value(const struct dc_pool_desc *d, const float *xp, int p, int q)
{
    if (!d->is_max)
        return dc_pool_mean(d, xp, p, q);
    long at = dc_pool_argmax(d, xp, p, q);
    return at >= 0 ? xp[at] : 0.0f;
}

enum dc_status dc_cpu_pool_fwd(struct dc_backend *be, const struct dc_pool_desc *d, const float *x,
                               float *y)
{
    DC_TRY(dc_pool_check(d, "pool_fwd"));
    const int max2 = dc_pool_is_max2(d);
    const int planes = d->n * d->c;
    const size_t hw = (size_t)d->h * d->w, pq = (size_t)d->p * d->q;
    DC_OMP_FOR(dc_cpu_ctx(be)->threads, (size_t)planes * hw > DC_CPU_PAR_MIN)
    for (int pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * hw;
        float *yp = y + pl * pq;
        if (max2) {
            dc_pool_max2_fwd(d, xp, yp);
            continue;
        }
        for (int p = 0; p < d->p; p++)
            for (int q = 0; q < d->q; q++)
                yp[p * d->q + q] = dc_pool_value(d, xp, p, q);
    }
    return DC_OK;
}

enum dc_status dc_cpu_pool_bwd(struct dc_backend *be, const struct dc_pool_desc *d, const float *x,
                               const float *y, const float *dy, float *dx)
{
    (void)y; /* the first maximum is found again in x, which also breaks ties */
    DC_TRY(dc_pool_check(d, "pool_bwd"));
    const int max2 = dc_pool_is_max2(d);
    const int planes = d->n * d->c;
    const size_t hw = (size_t)d->h * d->w, pq = (size_t)d->p * d->q;
    DC_OMP_FOR(dc_cpu_ctx(be)->threads, (size_t)planes * hw > DC_CPU_PAR_MIN)
    for (int pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * hw, *dyp = dy + pl * pq;
        float *dxp = dx + pl * hw;
        if (max2) {
            dc_pool_max2_bwd(d, xp, dyp, dxp);
            continue;
        }
        memset(dxp, 0, hw * sizeof(float));
        for (int p = 0; p < d->p; p++)
            for (int q = 0; q < d->q; q++) {
                float g = dyp[p * d->q + q];
                if (d->is_max) {
                    long at = dc_pool_argmax(d, xp, p, q);
                    if (at >= 0)
                        dxp[at] += g;
                    continue;
                }
                dc_pool_mean_bwd(d, p, q, g, dxp);
            }
    }
    return DC_OK;
}
