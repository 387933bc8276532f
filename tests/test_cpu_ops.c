/* test_cpu_ops.c: every op of the CPU backend against a plain reference
 * written here for clarity (direct loops, double precision), on random
 * non-zero inputs with odd sizes.  The CPU backend's memory is host memory,
 * so host arrays are passed to the ops directly.  Set DC_TEST_SEED to vary
 * the inputs.
 *
 * Legend: N C H W input, K R S weight, P Q output, M clusters. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kmeans_ref.h"
#include "cpu/cpu_internal.h"
#include "dc/backend.h"
#include "dc/rng.h"
#include "dc/status.h"

static struct dc_rng rng;

/* Uniform in [-1, 1], never exactly zero. */
static float rnd(void)
{
    float v = 2.0f * dc_rng_uniform(&rng) - 1.0f;
    return v == 0.0f ? 0.5f : v;
}

static float *rnd_array(size_t n)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = rnd();
    return x;
}

static float *poisoned(size_t n) /* outputs start as NaN so unwritten elements fail */
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = NAN;
    return x;
}

/* ------------------------------------------------------------------ gemm */

static void ref_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int p = 0; p < k; p++)
                s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) *
                     (tb ? b[j * ldb + p] : b[p * ldb + j]);
            float old = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
            c[i * ldc + j] = (float)(alpha * s) + old;
        }
}

static void test_gemm_case(struct dc_backend *be, int ta, int tb, int m, int n, int k, float beta)
{
    int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
    size_t sa = (size_t)(ta ? k : m) * lda, sb = (size_t)(tb ? n : k) * ldb, sc = (size_t)m * ldc;
    float *a = rnd_array(sa), *b = rnd_array(sb), *c0 = rnd_array(sc);
    float *ref = malloc(sc * sizeof *ref), *blas = malloc(sc * sizeof *ref),
          *port = malloc(sc * sizeof *ref);
    if (beta == 0.0f) /* beta = 0 must ignore NaN in C */
        for (size_t i = 0; i < sc; i++)
            c0[i] = NAN;
    memcpy(ref, c0, sc * sizeof *ref);
    memcpy(blas, c0, sc * sizeof *ref);
    memcpy(port, c0, sc * sizeof *ref);
    ref_gemm(ta, tb, m, n, k, 0.7f, a, lda, b, ldb, beta, ref, ldc);
    CHECK_OK(be->ops.gemm(be, ta, tb, m, n, k, 0.7f, a, lda, b, ldb, beta, blas, ldc));
    CHECK_OK(dc_cpu_gemm_portable(2, ta, tb, m, n, k, 0.7f, a, lda, b, ldb, beta, port, ldc));
    char what[96];
    float tol = 1e-5f * (float)k;
    for (int i = 0; i < m; i++) { /* only the [m,n] part: padding columns stay as they were */
        snprintf(what, sizeof what, "gemm ta=%d tb=%d %dx%dx%d row %d (backend)", ta, tb, m, n, k, i);
        check_close(what, ref + i * ldc, blas + i * ldc, (size_t)n, tol, 1e-5f);
        snprintf(what, sizeof what, "gemm ta=%d tb=%d %dx%dx%d row %d (portable)", ta, tb, m, n, k, i);
        check_close(what, ref + i * ldc, port + i * ldc, (size_t)n, tol, 1e-5f);
        snprintf(what, sizeof what, "gemm ta=%d tb=%d row %d (portable vs backend)", ta, tb, i);
        check_close(what, blas + i * ldc, port + i * ldc, (size_t)n, tol, 1e-5f);
        CHECK(isnan(blas[i * ldc + n]) == isnan(c0[i * ldc + n]));
    }
    free(a), free(b), free(c0), free(ref), free(blas), free(port);
}

static void test_gemm(struct dc_backend *be)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            test_gemm_case(be, ta, tb, 13, 17, 11, 0.3f);
            test_gemm_case(be, ta, tb, 7, 5, 3, 0.0f);
            test_gemm_case(be, ta, tb, 37, 533, 301, 1.0f); /* crosses the portable blocks */
            test_gemm_case(be, ta, tb, 301, 37, 45, 0.5f);  /* taller than wide: row slices */
        }
    float c[6] = {1, 2, 3, 4, 5, 6}, a[1] = {0}, b[1] = {0};
    CHECK_OK(be->ops.gemm(be, 0, 0, 2, 3, 0, 1.0f, a, 1, b, 3, 2.0f, c, 3)); /* k = 0 scales C */
    CHECK(c[0] == 2.0f && c[5] == 12.0f);
    CHECK(be->ops.gemm(be, 0, 0, 2, 3, 4, 1.0f, a, 3, b, 3, 0.0f, c, 3) == DC_ERR_ARG);
}

/* ------------------------------------------------------------ convolution */

static void conv_desc(struct dc_conv_desc *d, int n, int c, int h, int w, int k, int r, int s,
                      int stride, int pad)
{
    *d = (struct dc_conv_desc){n, c, h, w, k, r, s, stride, pad, 0, 0};
    d->p = (h + 2 * pad - r) / stride + 1;
    d->q = (w + 2 * pad - s) / stride + 1;
}

/* Calls f(x index, w index, y index) for every multiply of the convolution. */
#define CONV_LOOPS(d, BODY)                                                                \
    for (int n = 0; n < d->n; n++)                                                         \
        for (int k = 0; k < d->k; k++)                                                     \
            for (int p = 0; p < d->p; p++)                                                 \
                for (int q = 0; q < d->q; q++)                                             \
                    for (int c = 0; c < d->c; c++)                                         \
                        for (int r = 0; r < d->r; r++)                                     \
                            for (int s = 0; s < d->s; s++) {                               \
                                int h = p * d->stride - d->pad + r;                        \
                                int w = q * d->stride - d->pad + s;                        \
                                if (h < 0 || h >= d->h || w < 0 || w >= d->w)              \
                                    continue;                                              \
                                size_t xi = (((size_t)n * d->c + c) * d->h + h) * d->w + w; \
                                size_t wi = (((size_t)k * d->c + c) * d->r + r) * d->s + s; \
                                size_t yi = (((size_t)n * d->k + k) * d->p + p) * d->q + q; \
                                BODY;                                                      \
                            }

static void test_conv_case(struct dc_backend *be, int n, int c, int h, int w, int k, int r, int s,
                           int stride, int pad, float tol)
{
    struct dc_conv_desc dd, *d = &dd;
    conv_desc(d, n, c, h, w, k, r, s, stride, pad);
    size_t nx = (size_t)n * c * h * w, nw = (size_t)k * c * r * s, ny = (size_t)n * k * d->p * d->q;
    float *x = rnd_array(nx), *wt = rnd_array(nw), *dy = rnd_array(ny);
    double *ry = calloc(ny, sizeof *ry), *rdx = calloc(nx, sizeof *rdx), *rdw = calloc(nw, sizeof *rdw);
    CONV_LOOPS(d, ry[yi] += (double)x[xi] * wt[wi]; rdx[xi] += (double)wt[wi] * dy[yi];
               rdw[wi] += (double)x[xi] * dy[yi]);
    float *fy = malloc(ny * sizeof *fy), *fdx = malloc(nx * sizeof *fdx), *fdw = malloc(nw * sizeof *fdw);
    for (size_t i = 0; i < ny; i++) fy[i] = (float)ry[i];
    for (size_t i = 0; i < nx; i++) fdx[i] = (float)rdx[i];
    for (size_t i = 0; i < nw; i++) fdw[i] = (float)rdw[i];

    float *y = poisoned(ny), *dx = poisoned(nx), *dw = poisoned(nw), *dw2 = poisoned(nw);
    CHECK_OK(be->ops.conv_fwd(be, d, x, wt, y));
    CHECK_OK(be->ops.conv_bwd_data(be, d, wt, dy, dx));
    CHECK_OK(be->ops.conv_bwd_filter(be, d, x, dy, dw));
    CHECK_OK(be->ops.conv_bwd_filter(be, d, x, dy, dw2));
    char what[128];
    snprintf(what, sizeof what, "conv N%d C%d %dx%d K%d %dx%d stride %d pad %d", n, c, h, w, k, r,
             s, stride, pad);
    fprintf(stderr, "  %s\n", what);
    check_close("  conv_fwd", fy, y, ny, tol, 1e-4f);
    check_close("  conv_bwd_data", fdx, dx, nx, tol, 1e-4f);
    check_close("  conv_bwd_filter", fdw, dw, nw, tol * 4, 1e-4f);
    CHECK(memcmp(dw, dw2, nw * sizeof *dw) == 0); /* same inputs, same bits */
    free(x), free(wt), free(dy), free(ry), free(rdx), free(rdw), free(fy), free(fdx), free(fdw);
    free(y), free(dx), free(dw), free(dw2);
}

static void test_conv(struct dc_backend *be)
{
    for (int stride = 1; stride <= 2; stride++)
        for (int pad = 0; pad <= 1; pad++) {
            test_conv_case(be, 3, 5, 7, 6, 4, 3, 3, stride, pad, 1e-4f);
            test_conv_case(be, 3, 5, 7, 6, 4, 3, 2, stride, pad, 1e-4f);
        }
    test_conv_case(be, 3, 5, 7, 6, 4, 1, 1, 1, 0, 1e-4f);   /* 1x1: no im2col */
    test_conv_case(be, 1, 5, 7, 6, 4, 1, 1, 1, 0, 1e-4f);   /* 1x1, one image: in place */
    test_conv_case(be, 3, 5, 7, 6, 4, 1, 1, 2, 1, 1e-4f);   /* 1x1 with stride and pad */
    test_conv_case(be, 1, 3, 5, 5, 2, 5, 5, 1, 0, 1e-4f);   /* kernel = input */
    test_conv_case(be, 3, 36, 72, 72, 4, 3, 3, 1, 1, 1e-3f); /* one image per group */
    test_conv_case(be, 37, 6, 4, 4, 5, 1, 1, 1, 0, 1e-4f);   /* groups of 16, 16, 5 images */
    test_conv_case(be, 37, 6, 4, 4, 5, 3, 3, 1, 1, 1e-4f);   /* the same through im2col */
}

/* --------------------------------------------------------------- pooling */

static void ref_pool(const struct dc_pool_desc *d, const float *x, const float *dy, float *y, float *dx)
{
    memset(dx, 0, (size_t)d->n * d->c * d->h * d->w * sizeof *dx);
    for (int pl = 0; pl < d->n * d->c; pl++)
        for (int p = 0; p < d->p; p++)
            for (int q = 0; q < d->q; q++) {
                const float *xp = x + (size_t)pl * d->h * d->w;
                int best = -1, count = 0;
                double sum = 0.0;
                for (int i = 0; i < d->size; i++)
                    for (int j = 0; j < d->size; j++) {
                        int h = p * d->stride - d->pad + i, w = q * d->stride - d->pad + j;
                        if (h < 0 || h >= d->h || w < 0 || w >= d->w)
                            continue;
                        int at = h * d->w + w;
                        if (best < 0 || xp[at] > xp[best])
                            best = at;
                        sum += xp[at];
                        count++;
                    }
                size_t yi = ((size_t)pl * d->p + p) * d->q + q;
                y[yi] = d->is_max ? xp[best] : (float)(sum / count);
                float *dxp = dx + (size_t)pl * d->h * d->w;
                if (d->is_max) {
                    dxp[best] += dy[yi];
                    continue;
                }
                for (int i = 0; i < d->size; i++)
                    for (int j = 0; j < d->size; j++) {
                        int h = p * d->stride - d->pad + i, w = q * d->stride - d->pad + j;
                        if (h >= 0 && h < d->h && w >= 0 && w < d->w)
                            dxp[h * d->w + w] += dy[yi] / (float)count;
                    }
            }
}

static void test_pool_case(struct dc_backend *be, int size, int stride, int pad, int is_max)
{
    struct dc_pool_desc d = {3, 5, 7, 7, size, stride, pad, 0, 0, is_max};
    d.p = (d.h + 2 * pad - size) / stride + 1;
    d.q = (d.w + 2 * pad - size) / stride + 1;
    size_t nx = (size_t)d.n * d.c * d.h * d.w, ny = (size_t)d.n * d.c * d.p * d.q;
    float *x = rnd_array(nx), *dy = rnd_array(ny);
    for (size_t i = 0; i < nx; i++) /* coarse values so windows hold ties */
        x[i] = roundf(x[i] * 3.0f) / 3.0f + 0.125f;
    float *ry = malloc(ny * sizeof *ry), *rdx = malloc(nx * sizeof *rdx);
    float *y = poisoned(ny), *dx = poisoned(nx);
    ref_pool(&d, x, dy, ry, rdx);
    CHECK_OK(be->ops.pool_fwd(be, &d, x, y));
    CHECK_OK(be->ops.pool_bwd(be, &d, x, y, dy, dx));
    fprintf(stderr, "  pool %s size %d stride %d pad %d\n", is_max ? "max" : "avg", size, stride, pad);
    check_close("  pool_fwd", ry, y, ny, 1e-6f, 1e-5f);
    check_close("  pool_bwd", rdx, dx, nx, 1e-6f, 1e-5f);
    free(x), free(dy), free(ry), free(rdx), free(y), free(dx);
}

/* Max pooling with NaNs, the fast 2x2 path and the general scan alike: the
 * window's first cell seeds the maximum and a later cell replaces it only
 * when greater, so a NaN first cell wins and later NaNs are passed over
 * (the CUDA kernel's rule too).  Plane m holds NaNs at the 2x2 positions of
 * the bits of m in every 2x2 block: all 16 patterns. */
static void test_pool_nan_case(struct dc_backend *be, int size, int stride, int pad)
{
    struct dc_pool_desc d = {1, 16, 6, 6, size, stride, pad, 0, 0, 1};
    d.p = (d.h + 2 * pad - size) / stride + 1;
    d.q = (d.w + 2 * pad - size) / stride + 1;
    size_t nx = (size_t)d.c * d.h * d.w, ny = (size_t)d.c * d.p * d.q;
    float *x = rnd_array(nx), *dy = rnd_array(ny);
    for (int m = 0; m < 16; m++)
        for (int h = 0; h < d.h; h++)
            for (int w = 0; w < d.w; w++)
                if (m >> ((h % 2) * 2 + w % 2) & 1)
                    x[((size_t)m * d.h + h) * d.w + w] = NAN;
    float *ry = malloc(ny * sizeof *ry), *rdx = malloc(nx * sizeof *rdx);
    float *y = poisoned(ny), *dx = poisoned(nx);
    ref_pool(&d, x, dy, ry, rdx);
    CHECK_OK(be->ops.pool_fwd(be, &d, x, y));
    CHECK_OK(be->ops.pool_bwd(be, &d, x, y, dy, dx));
    size_t bad_y = 0, bad_dx = 0;
    for (size_t i = 0; i < ny; i++)
        bad_y += !(isnan(ry[i]) ? isnan(y[i]) : y[i] == ry[i]);
    for (size_t i = 0; i < nx; i++)
        bad_dx += !(fabsf(dx[i] - rdx[i]) <= 1e-6f);
    if (bad_y || bad_dx)
        fprintf(stderr, "  max pool with NaNs, size %d stride %d pad %d: %zu of %zu outputs, %zu of %zu input "
                "gradients differ from the scan rule\n", size, stride, pad, bad_y, ny, bad_dx, nx);
    CHECK(bad_y == 0 && bad_dx == 0);
    free(x), free(dy), free(ry), free(rdx), free(y), free(dx);
}

static void test_pool(struct dc_backend *be)
{
    test_pool_nan_case(be, 2, 2, 0);
    test_pool_nan_case(be, 3, 2, 1);
    for (int is_max = 0; is_max <= 1; is_max++) {
        test_pool_case(be, 2, 2, 0, is_max);
        test_pool_case(be, 3, 2, 1, is_max);
        test_pool_case(be, 3, 1, 1, is_max);
        test_pool_case(be, 7, 1, 0, is_max); /* global */
    }
}

/* ------------------------------------------------------------ batch norm */

/* y = gamma * (x - mean) / sqrt(var + eps) + beta per channel, in double. */
static void ref_bn(const struct dc_bn_desc *d, const double *x, const double *gamma,
                   const double *beta, double *y, double *mean, double *var)
{
    double m = (double)d->n * d->hw;
    for (int c = 0; c < d->c; c++) {
        double s = 0.0, sq = 0.0;
        for (int n = 0; n < d->n; n++)
            for (int i = 0; i < d->hw; i++)
                s += x[((size_t)n * d->c + c) * d->hw + i];
        mean[c] = s / m;
        for (int n = 0; n < d->n; n++)
            for (int i = 0; i < d->hw; i++) {
                double t = x[((size_t)n * d->c + c) * d->hw + i] - mean[c];
                sq += t * t;
            }
        var[c] = sq / m;
        for (int n = 0; n < d->n; n++)
            for (int i = 0; i < d->hw; i++) {
                size_t at = ((size_t)n * d->c + c) * d->hw + i;
                y[at] = gamma[c] * (x[at] - mean[c]) / sqrt(var[c] + d->eps) + beta[c];
            }
    }
}

/* sum(y * dy) for the finite-difference check of bn_bwd */
static double bn_objective(const struct dc_bn_desc *d, const double *x, const double *g,
                           const double *b, const float *dy, double *work, double *mean, double *var)
{
    ref_bn(d, x, g, b, work, mean, var);
    double s = 0.0;
    for (size_t i = 0; i < (size_t)d->n * d->c * d->hw; i++)
        s += work[i] * dy[i];
    return s;
}

static void test_bn(struct dc_backend *be)
{
    struct dc_bn_desc d = {5, 3, 7, 1e-5f, 0.1f};
    size_t nx = (size_t)d.n * d.c * d.hw;
    float *x = rnd_array(nx), *dy = rnd_array(nx), *gamma = rnd_array(3), *beta = rnd_array(3);
    for (size_t i = 0; i < nx; i++)
        x[i] = 3.0f + 2.0f * x[i];
    float rm[3], rv[3], rm0[3], rv0[3], sm[3], si[3], dg[3], db[3];
    for (int c = 0; c < 3; c++)
        rm[c] = rm0[c] = rnd(), rv[c] = rv0[c] = 1.0f + 0.5f * rnd();
    float *y = poisoned(nx), *dx = poisoned(nx), *yi = poisoned(nx);
    CHECK_OK(be->ops.bn_fwd_train(be, &d, x, gamma, beta, rm, rv, y, sm, si));
    CHECK_OK(be->ops.bn_bwd(be, &d, x, dy, gamma, sm, si, dx, dg, db));

    double *xd = malloc(nx * sizeof *xd), *yd = malloc(nx * sizeof *yd), gd[3], bd[3], mean[3], var[3];
    for (size_t i = 0; i < nx; i++) xd[i] = x[i];
    for (int c = 0; c < 3; c++) gd[c] = gamma[c], bd[c] = beta[c];
    ref_bn(&d, xd, gd, bd, yd, mean, var);
    float *fy = malloc(nx * sizeof *fy);
    for (size_t i = 0; i < nx; i++) fy[i] = (float)yd[i];
    check_close("bn_fwd_train y", fy, y, nx, 1e-5f, 1e-4f);
    double m = (double)d.n * d.hw;
    for (int c = 0; c < 3; c++) { /* running stats: unbiased variance, PyTorch momentum */
        float erm = (float)(0.9 * rm0[c] + 0.1 * mean[c]);
        float erv = (float)(0.9 * rv0[c] + 0.1 * var[c] * m / (m - 1.0));
        float einv = (float)(1.0 / sqrt(var[c] + d.eps)), emean = (float)mean[c];
        check_close("bn running_mean", &erm, &rm[c], 1, 1e-6f, 1e-5f);
        check_close("bn running_var", &erv, &rv[c], 1, 1e-6f, 1e-5f);
        check_close("bn save_mean", &emean, &sm[c], 1, 1e-6f, 1e-5f);
        check_close("bn save_invstd", &einv, &si[c], 1, 1e-6f, 1e-5f);
        /* with gamma = 1, beta = 0 the output has mean 0 and variance 1 */
        double s = 0.0, sq = 0.0;
        for (int n = 0; n < d.n; n++)
            for (int i = 0; i < d.hw; i++) {
                size_t at = ((size_t)n * d.c + c) * d.hw + i;
                double xh = (y[at] - beta[c]) / gamma[c];
                s += xh, sq += xh * xh;
            }
        CHECK(fabs(s / m) < 1e-4 && fabs(sq / m - 1.0) < 1e-3);
    }
    /* bn_bwd against central differences of sum(y * dy) */
    double *work = malloc(nx * sizeof *work), mm[3], vv[3], h = 1e-4;
    float *num_dx = malloc(nx * sizeof *num_dx), num_dg[3], num_db[3];
    for (size_t i = 0; i < nx; i++) {
        double keep = xd[i];
        xd[i] = keep + h;
        double up = bn_objective(&d, xd, gd, bd, dy, work, mm, vv);
        xd[i] = keep - h;
        double down = bn_objective(&d, xd, gd, bd, dy, work, mm, vv);
        xd[i] = keep;
        num_dx[i] = (float)((up - down) / (2 * h));
    }
    for (int c = 0; c < 3; c++) {
        double keep = gd[c];
        gd[c] = keep + h;
        double up = bn_objective(&d, xd, gd, bd, dy, work, mm, vv);
        gd[c] = keep - h;
        num_dg[c] = (float)((up - bn_objective(&d, xd, gd, bd, dy, work, mm, vv)) / (2 * h));
        gd[c] = keep;
        keep = bd[c];
        bd[c] = keep + h;
        up = bn_objective(&d, xd, gd, bd, dy, work, mm, vv);
        bd[c] = keep - h;
        num_db[c] = (float)((up - bn_objective(&d, xd, gd, bd, dy, work, mm, vv)) / (2 * h));
        bd[c] = keep;
    }
    check_close("bn_bwd dx", num_dx, dx, nx, 1e-4f, 1e-3f);
    check_close("bn_bwd dgamma", num_dg, dg, 3, 1e-4f, 1e-3f);
    check_close("bn_bwd dbeta", num_db, db, 3, 1e-4f, 1e-3f);

    CHECK_OK(be->ops.bn_fwd_infer(be, &d, x, gamma, beta, rm, rv, yi));
    for (size_t i = 0; i < nx; i++) {
        int c = (int)(i / d.hw % d.c);
        fy[i] = (float)(gamma[c] * (x[i] - (double)rm[c]) / sqrt((double)rv[c] + d.eps) + beta[c]);
    }
    check_close("bn_fwd_infer", fy, yi, nx, 1e-5f, 1e-4f);
    free(x), free(dy), free(gamma), free(beta), free(y), free(dx), free(yi), free(xd), free(yd);
    free(fy), free(work), free(num_dx);
}

/* ----------------------------------------------------------- elementwise */

static void test_elementwise(struct dc_backend *be)
{
    const size_t n = 100003; /* above the parallel threshold, odd */
    float *x = rnd_array(n), *y = rnd_array(n), *out = poisoned(n), *ref = malloc(n * sizeof *ref);
    float *y0 = malloc(n * sizeof *y0);
    memcpy(y0, y, n * sizeof *y0);
    CHECK_OK(be->ops.axpby(be, n, 0.5f, x, -1.5f, y));
    for (size_t i = 0; i < n; i++) ref[i] = 0.5f * x[i] + -1.5f * y0[i];
    check_close("axpby", ref, y, n, 1e-6f, 1e-6f);
    CHECK_OK(be->ops.mul(be, n, x, y0, out));
    for (size_t i = 0; i < n; i++) ref[i] = x[i] * y0[i];
    check_close("mul", ref, out, n, 0.0f, 0.0f);
    CHECK_OK(be->ops.relu_fwd(be, n, x, out));
    for (size_t i = 0; i < n; i++) ref[i] = x[i] > 0.0f ? x[i] : 0.0f;
    check_close("relu_fwd", ref, out, n, 0.0f, 0.0f);
    CHECK_OK(be->ops.relu_bwd(be, n, out, y0, out)); /* in place */
    for (size_t i = 0; i < n; i++) ref[i] = x[i] > 0.0f ? y0[i] : 0.0f;
    check_close("relu_bwd", ref, out, n, 0.0f, 0.0f);
    CHECK_OK(be->ops.fill(be, out, 2.5f, n));
    CHECK(out[0] == 2.5f && out[n - 1] == 2.5f);

    /* dropout: mask is 0 or 1/(1-p), drawn from dc_hash_uniform(seed, i) */
    float *mask = poisoned(n);
    CHECK_OK(be->ops.dropout_fwd(be, n, 0.3f, 1234u, x, mask, out));
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        float m = dc_hash_uniform(1234u, i) >= 0.3f ? 1.0f / 0.7f : 0.0f;
        CHECK(mask[i] == m && out[i] == x[i] * m);
        if (mask[i] != m || out[i] != x[i] * m)
            break;
        kept += m != 0.0f;
    }
    CHECK(fabs((double)kept / n - 0.7) < 0.01);
    CHECK(be->ops.dropout_fwd(be, n, 1.0f, 1u, x, mask, out) == DC_ERR_ARG);

    /* bias over [N,C,HW] */
    int bn = 3, bc = 5, bhw = 7;
    size_t nb = (size_t)bn * bc * bhw;
    float *bias = rnd_array(bc), db[5], rdb[5] = {0};
    memcpy(out, x, nb * sizeof *out);
    CHECK_OK(be->ops.bias_add(be, out, bias, bn, bc, bhw));
    CHECK_OK(be->ops.bias_grad(be, x, db, bn, bc, bhw));
    for (size_t i = 0; i < nb; i++) {
        ref[i] = x[i] + bias[i / bhw % bc];
        rdb[i / bhw % bc] += x[i];
    }
    check_close("bias_add", ref, out, nb, 0.0f, 0.0f);
    check_close("bias_grad", rdb, db, 5, 1e-5f, 1e-5f);

    /* concat then split gives the parts back; concat puts a before b per image */
    int ca = 3, cb = 4, hw = 5;
    float *a = rnd_array((size_t)bn * ca * hw), *b = rnd_array((size_t)bn * cb * hw);
    float *cat = poisoned((size_t)bn * (ca + cb) * hw);
    float *a2 = poisoned((size_t)bn * ca * hw), *b2 = poisoned((size_t)bn * cb * hw);
    CHECK_OK(be->ops.concat(be, bn, ca, cb, hw, a, b, cat));
    CHECK(cat[(size_t)1 * (ca + cb) * hw + ca * hw] == b[(size_t)cb * hw]);
    CHECK(cat[(size_t)2 * (ca + cb) * hw + 1] == a[(size_t)2 * ca * hw + 1]);
    CHECK_OK(be->ops.split(be, bn, ca, cb, hw, cat, a2, b2));
    check_close("split a", a, a2, (size_t)bn * ca * hw, 0.0f, 0.0f);
    check_close("split b", b, b2, (size_t)bn * cb * hw, 0.0f, 0.0f);

    /* threshold mask and moments */
    CHECK_OK(be->ops.threshold_mask(be, n, x, 0.4f, mask));
    double mo[3], s = 0.0, sq = 0.0, nz = 0.0;
    CHECK_OK(be->ops.moments(be, n, mask, mo));
    for (size_t i = 0; i < n; i++) {
        CHECK(mask[i] == (fabsf(x[i]) > 0.4f ? 1.0f : 0.0f));
        nz += mask[i] != 0.0f;
    }
    CHECK(mo[0] == nz && mo[1] == nz && mo[2] == nz);
    CHECK_OK(be->ops.moments(be, n, x, mo));
    nz = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i], sq += (double)x[i] * x[i], nz += x[i] != 0.0f;
    CHECK(fabs(mo[0] - s) < 1e-9 && fabs(mo[1] - sq) < 1e-9 && mo[2] == nz);
    free(x), free(y), free(out), free(ref), free(y0), free(mask), free(bias), free(a), free(b);
    free(cat), free(a2), free(b2);
}

/* ------------------------------------------------------------------ loss */


/* Soft targets against the definition written out (struct dc_soft_target):
 * the distributions s, p, r, q formed explicitly in double. */
static void test_soft_xent(struct dc_backend *be, int n, int k, const float *logits, const int32_t *labels)
{
    float *teacher = rnd_array((size_t)n * k), *dl = poisoned((size_t)n * k), *ref = malloc((size_t)n * k * sizeof *ref);
    for (int i = 0; i < n * k; i++)
        teacher[i] = 6.0f * teacher[i] + (i / k == 2 ? -500.0f : 0.0f);
    const struct dc_soft_target cases[] = {{0.1f, 0.0f, 1.0f, NULL}, {0.0f, 1.0f, 1.0f, teacher},
                                           {0.05f, 0.7f, 4.0f, teacher}, {0.2f, 0.3f, 0.5f, teacher}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const struct dc_soft_target *st = &cases[c];
        const double a = st->alpha, eps = st->smoothing, T = st->temperature;
        double loss = 0.0;
        for (int i = 0; i < n; i++) {
            const float *z = logits + (size_t)i * k, *t = teacher + (size_t)i * k;
            double mz = -INFINITY, mt = -INFINITY, sp = 0, sr = 0, sq = 0;
            for (int j = 0; j < k; j++)
                mz = z[j] > mz ? z[j] : mz, mt = t[j] > mt ? t[j] : mt;
            for (int j = 0; j < k; j++)
                sp += exp(z[j] - mz), sr += exp((z[j] - mz) / T), sq += exp((t[j] - mt) / T);
            for (int j = 0; j < k; j++) {
                double p = exp(z[j] - mz) / sp, r = exp((z[j] - mz) / T) / sr, q = exp((t[j] - mt) / T) / sq;
                double sj = (j == labels[i] ? 1.0 - eps : 0.0) + eps / k;
                loss += (1 - a) * -sj * log(p) + (a > 0 ? a * T * T * q * log(q / r) : 0.0);
                ref[i * k + j] = (float)(((1 - a) * (p - sj) + a * T * (r - q)) * 0.5);
            }
        }
        float stats[2] = {0.0f, 0.0f};
        CHECK_OK(be->ops.softmax_xent(be, n, k, logits, labels, st, 0.5f, dl, stats));
        check_close("soft softmax_xent dlogits", ref, dl, (size_t)n * k, 1e-6f, 1e-5f);
        check_close("soft softmax_xent loss", (float[]){(float)loss}, stats, 1, 1e-4f, 1e-5f);
    }
    /* the teacher's own logits at alpha 1: nothing to learn */
    float stats[2] = {0.0f, 0.0f};
    const struct dc_soft_target self = {0.0f, 1.0f, 2.0f, logits};
    CHECK_OK(be->ops.softmax_xent(be, n, k, logits, labels, &self, 1.0f, dl, stats));
    for (int i = 0; i < n * k; i++)
        CHECK(fabsf(dl[i]) < 1e-6f);
    CHECK(fabsf(stats[0]) < 1e-5f);
    const struct dc_soft_target bad[] = {{1.0f, 0.0f, 1.0f, NULL}, {-0.1f, 0.0f, 1.0f, NULL},
                                         {0.0f, 0.5f, 1.0f, NULL}, {0.0f, 0.5f, 0.0f, teacher},
                                         {0.0f, 1.5f, 1.0f, teacher}};
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        dc_error_clear();
        CHECK(be->ops.softmax_xent(be, n, k, logits, labels, &bad[c], 1.0f, dl, stats) == DC_ERR_ARG);
        CHECK(strstr(dc_error_msg(), "softmax_xent") != NULL);
    }
    free(teacher), free(dl), free(ref);
}
static void test_loss(struct dc_backend *be)
{
    const int n = 7, k = 10;
    float *logits = rnd_array((size_t)n * k), *dl = poisoned((size_t)n * k);
    float *ref = malloc((size_t)n * k * sizeof *ref);
    int32_t labels[7], pred[7];
    for (int i = 0; i < n; i++) {
        labels[i] = (int32_t)dc_rng_below(&rng, (uint32_t)k);
        for (int j = 0; j < k; j++)
            logits[i * k + j] = 8.0f * logits[i * k + j] + (i == 3 ? 1000.0f : 0.0f); /* stability */
    }
    logits[5 * k + 2] = logits[5 * k + 6] = 50.0f; /* tie: first maximum wins */
    labels[5] = 6;
    double loss = 0.0, correct = 0.0;
    for (int i = 0; i < n; i++) {
        double mx = -INFINITY, sum = 0.0;
        int top = 0;
        for (int j = 0; j < k; j++)
            if (logits[i * k + j] > mx)
                mx = logits[i * k + j], top = j;
        for (int j = 0; j < k; j++)
            sum += exp(logits[i * k + j] - mx);
        loss += log(sum) + mx - logits[i * k + labels[i]];
        correct += top == labels[i];
        for (int j = 0; j < k; j++)
            ref[i * k + j] = (float)((exp(logits[i * k + j] - mx) / sum - (j == labels[i])) * 0.25);
    }
    float stats[2] = {1.5f, 2.0f}; /* accumulates onto what is there */
    CHECK_OK(be->ops.softmax_xent(be, n, k, logits, labels, NULL, 0.25f, dl, stats));
    float want[2] = {(float)(1.5 + loss), (float)(2.0 + correct)};
    check_close("softmax_xent dlogits", ref, dl, (size_t)n * k, 1e-6f, 1e-5f);
    check_close("softmax_xent stats", want, stats, 2, 1e-4f, 1e-5f);
    CHECK_OK(be->ops.argmax(be, n, k, logits, pred));
    CHECK(pred[5] == 2);
    test_soft_xent(be, n, k, logits, labels);
    labels[0] = k;
    CHECK(be->ops.softmax_xent(be, n, k, logits, labels, NULL, 1.0f, dl, stats) == DC_ERR_ARG);
    free(logits), free(dl), free(ref);
}

/* ------------------------------------------------------------- optimiser */

static void test_sgd(struct dc_backend *be)
{
    const size_t n = 1001;
    const float lr = 0.05f, mom = 0.9f, wd = 5e-4f;
    for (int case_ = 0; case_ < 4; case_++) {
        int nesterov = case_ & 1, masked = case_ >> 1;
        float *w = rnd_array(n), *g = rnd_array(n), *v = rnd_array(n), *mask = rnd_array(n);
        float *rw = malloc(n * sizeof *rw), *rv = malloc(n * sizeof *rv);
        for (size_t i = 0; i < n; i++)
            mask[i] = mask[i] > 0.0f ? 1.0f : 0.0f;
        for (int step = 0; step < 3; step++) {
            for (size_t i = 0; i < n; i++) { /* the formula of backend.h, by hand */
                float wi = step ? rw[i] : w[i], vi = step ? rv[i] : v[i];
                float gi = g[i] + wd * wi;
                if (masked)
                    gi *= mask[i];
                vi = mom * vi + gi;
                wi -= lr * (nesterov ? gi + mom * vi : vi);
                rw[i] = masked ? wi * mask[i] : wi;
                rv[i] = vi;
            }
            CHECK_OK(be->ops.sgd_update(be, n, w, g, v, masked ? mask : NULL, lr, mom, wd, nesterov));
        }
        check_close("sgd_update w", rw, w, n, 1e-6f, 1e-5f);
        check_close("sgd_update v", rv, v, n, 1e-6f, 1e-5f);
        for (size_t i = 0; masked && i < n; i++)
            CHECK(mask[i] != 0.0f || w[i] == 0.0f);
        free(w), free(g), free(v), free(mask), free(rw), free(rv);
    }
}

/* sgd_multi over tensors with and without mask and velocity (and an empty
 * one) equals one sgd_update per tensor bit for bit; a NULL velocity means
 * no momentum for that tensor. */
static void test_sgd_multi(struct dc_backend *be)
{
    enum { T = 5 };
    const size_t sizes[T] = {1001, 0, 17, 40000, 3};
    const float lr = 0.05f, mom = 0.9f, wd = 5e-4f;
    float *w[T], *w2[T], *g[T], *v[T], *v2[T], *mask[T];
    struct dc_sgd_tensor list[T];
    for (int t = 0; t < T; t++) {
        size_t n = sizes[t];
        w[t] = rnd_array(n), g[t] = rnd_array(n), v[t] = rnd_array(n), mask[t] = rnd_array(n);
        w2[t] = malloc((n ? n : 1) * sizeof(float)), v2[t] = malloc((n ? n : 1) * sizeof(float));
        for (size_t i = 0; i < n; i++)
            mask[t][i] = mask[t][i] > 0.0f ? 1.0f : 0.0f;
        memcpy(w2[t], w[t], n * sizeof(float));
        memcpy(v2[t], v[t], n * sizeof(float));
        list[t] = (struct dc_sgd_tensor){w[t], g[t], t == 2 ? NULL : v[t], t % 2 ? NULL : mask[t], n};
    }
    for (int step = 0; step < 4; step++) {
        int nesterov = step & 1;
        CHECK_OK(be->ops.sgd_multi(be, T, list, &lr, mom, wd, nesterov));
        for (int t = 0; t < T; t++)
            CHECK_OK(be->ops.sgd_update(be, sizes[t], w2[t], g[t], t == 2 ? NULL : v2[t], t % 2 ? NULL : mask[t],
                                        lr, t == 2 ? 0.0f : mom, wd, nesterov));
    }
    for (int t = 0; t < T; t++) {
        CHECK(memcmp(w[t], w2[t], sizes[t] * sizeof(float)) == 0);
        CHECK(memcmp(v[t], v2[t], sizes[t] * sizeof(float)) == 0);
        free(w[t]), free(w2[t]), free(g[t]), free(v[t]), free(v2[t]), free(mask[t]);
    }
    CHECK_OK(be->ops.sgd_multi(be, 0, NULL, &lr, mom, wd, 0));
    CHECK(be->ops.sgd_multi(be, 1, NULL, &lr, mom, wd, 0) == DC_ERR_ARG);
    dc_error_clear();
    CHECK(be->ops.graph_begin(be) == DC_ERR_UNSUPPORTED); /* the CPU runs steps eagerly */
    dc_error_clear();
}

/* ------------------------------------------------------------- k-means */

static void test_kmeans_case(struct dc_backend *be, size_t n, int m, int iters, int use_mask, int grid)
{
    float *x = rnd_array(n), *mask = rnd_array(n), cent[256], rcent[256];
    uint8_t *assign = malloc(n), *rassign = malloc(n);
    for (size_t i = 0; i < n; i++) {
        mask[i] = mask[i] > -0.4f ? 1.0f : 0.0f;
        if (grid) /* values and centroids on a coarse grid: many exact ties */
            x[i] = roundf(x[i] * 8.0f) / 8.0f;
    }
    for (int j = 0; j < m; j++) /* linear init, as the quantiser does, then a duplicate */
        cent[j] = m > 1 ? -1.0f + 2.0f * (float)j / (float)(m - 1) : 0.1f;
    if (grid)
        cent[m - 1] = cent[1], cent[2] = 0.0625f;
    memcpy(rcent, cent, sizeof cent);
    const float *mk = use_mask ? mask : NULL;
    reference_kmeans(n, x, mk, rcent, m, iters, rassign);
    CHECK_OK(be->ops.kmeans_1d(be, n, x, mk, cent, m, iters, assign));
    char what[80];
    snprintf(what, sizeof what, "kmeans_1d n %zu M %d iters %d mask %d grid %d", n, m, iters,
             use_mask, grid);
    check_close(what, rcent, cent, (size_t)m, 0.0f, 0.0f);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += assign[i] != rassign[i];
    if (bad)
        fprintf(stderr, "%s: %zu assignments differ\n", what, bad);
    CHECK(bad == 0);

    /* codebook ops on the result */
    float *w = poisoned(n), *g = rnd_array(n), dcode[256];
    double rd[256] = {0};
    CHECK_OK(be->ops.codebook_gather(be, n, assign, cent, mk, w));
    CHECK_OK(be->ops.codebook_grad(be, n, assign, g, mk, m, dcode));
    for (size_t i = 0; i < n; i++) {
        float want = cent[assign[i]] * (mk ? mk[i] : 1.0f);
        CHECK(w[i] == want);
        if (w[i] != want)
            break;
        if (!mk || mk[i] != 0.0f)
            rd[assign[i]] += g[i];
    }
    float frd[256];
    for (int j = 0; j < m; j++)
        frd[j] = (float)rd[j];
    check_close("codebook_grad", frd, dcode, (size_t)m, 1e-5f, 1e-5f);
    free(x), free(mask), free(assign), free(rassign), free(w), free(g);
}

static void test_kmeans(struct dc_backend *be)
{
    test_kmeans_case(be, 5003, 16, 30, 1, 0);
    test_kmeans_case(be, 5003, 16, 30, 0, 0);
    test_kmeans_case(be, 2001, 8, 5, 1, 1);
    test_kmeans_case(be, 2001, 32, 0, 1, 1);
    test_kmeans_case(be, 70001, 256, 10, 1, 0);
    test_kmeans_case(be, 101, 1, 3, 0, 0);
}

/* ------------------------------------------------------------------ data */

static void test_batch(struct dc_backend *be)
{
    enum { COUNT = 40, N = 32, C = 3, H = 7, W = 6 };
    const size_t chw = (size_t)C * H * W;
    uint8_t *images = malloc(COUNT * chw), labels[COUNT];
    for (size_t i = 0; i < COUNT * chw; i++)
        images[i] = (uint8_t)dc_rng_below(&rng, 256);
    for (int i = 0; i < COUNT; i++)
        labels[i] = (uint8_t)dc_rng_below(&rng, 10);
    int32_t idx[N], out_labels[N];
    for (int i = 0; i < N; i++)
        idx[i] = (int32_t)dc_rng_below(&rng, COUNT);
    struct dc_batch_desc d = {C, H, W, N, 0, 0, 99u, {0.4f, 0.5f, 0.6f}, {0.2f, 0.25f, 0.3f}};
    float *out = poisoned(N * chw), *ref = malloc(N * chw * sizeof *ref);
    CHECK_OK(be->ops.batch_images(be, &d, images, idx, out));
    for (int i = 0; i < N; i++)
        for (size_t j = 0; j < chw; j++) {
            int c = (int)(j / (H * W));
            ref[i * chw + j] = ((float)images[idx[i] * chw + j] / 255.0f - d.mean[c]) / d.std[c];
        }
    check_close("batch_images (plain)", ref, out, N * chw, 0.0f, 0.0f);
    CHECK_OK(be->ops.batch_labels(be, N, labels, idx, out_labels));
    for (int i = 0; i < N; i++)
        CHECK(out_labels[i] == labels[idx[i]]);

    /* with crop and flip every image is a shifted (and maybe mirrored) copy of
     * its source, zero pixels outside; the batch uses several shifts and flips */
    d.pad = 2;
    d.flip = 1;
    CHECK_OK(be->ops.batch_images(be, &d, images, idx, out));
    int flips = 0, shifts = 0;
    for (int i = 0; i < N; i++) {
        int found = 0;
        for (int f = 0; f < 2 && !found; f++)
            for (int dy = -d.pad; dy <= d.pad && !found; dy++)
                for (int dx = -d.pad; dx <= d.pad && !found; dx++) {
                    int same = 1;
                    for (int c = 0; c < C && same; c++)
                        for (int y = 0; y < H && same; y++)
                            for (int x = 0; x < W && same; x++) {
                                int ys = y + dy, xs = (f ? W - 1 - x : x) + dx, v = 0;
                                if (ys >= 0 && ys < H && xs >= 0 && xs < W)
                                    v = images[idx[i] * chw + ((size_t)c * H + ys) * W + xs];
                                float want = ((float)v / 255.0f - d.mean[c]) / d.std[c];
                                same = out[i * chw + ((size_t)c * H + y) * W + x] == want;
                            }
                    if (same) {
                        found = 1;
                        flips += f;
                        shifts += dy != 0 || dx != 0;
                    }
                }
        CHECK(found);
    }
    CHECK(flips > 4 && flips < N - 4 && shifts > N / 2);
    free(images), free(out), free(ref);
}

/* ---------------------------------------------------------------- memory */

static void test_memory(struct dc_backend *be)
{
    CHECK(strcmp(be->name, "cpu") == 0 && be->kind == DC_DEVICE_CPU);
    CHECK(strstr(be->description, "CPU, 2 threads") != NULL);
    float *a = NULL, *b = NULL, host[5] = {1, 2, 3, 4, 5}, back[5] = {0};
    CHECK_OK(be->ops.alloc(be, (void **)&a, 5 * sizeof(float)));
    CHECK_OK(be->ops.alloc(be, (void **)&b, 5 * sizeof(float)));
    CHECK(((uintptr_t)a & 63) == 0 && ((uintptr_t)b & 63) == 0);
    CHECK_OK(be->ops.upload(be, a, host, sizeof host));
    CHECK_OK(be->ops.copy(be, b, a, sizeof host));
    CHECK_OK(be->ops.sync(be));
    CHECK_OK(be->ops.download(be, back, b, sizeof back));
    CHECK(memcmp(host, back, sizeof host) == 0);
    be->ops.release(be, a);
    be->ops.release(be, b);
}

int main(void)
{
    const char *seed = getenv("DC_TEST_SEED");
    dc_rng_seed(&rng, seed ? strtoull(seed, NULL, 10) : 20240611u);
    struct dc_backend_opts opts = {.threads = 2};
    struct dc_backend *be = NULL;
    CHECK_OK(dc_backend_create("cpu", &opts, &be));
    if (!be)
        return test_finish("test_cpu_ops");
    fprintf(stderr, "backend: %s\n", be->description);
    test_memory(be);
    test_gemm(be);
    test_conv(be);
    test_pool(be);
    test_bn(be);
    test_elementwise(be);
    test_loss(be);
    test_sgd(be);
    test_sgd_multi(be);
    test_kmeans(be);
    test_batch(be);
    dc_backend_free(be);
    return test_finish("test_cpu_ops");
}
