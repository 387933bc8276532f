/* test_gpu_edges.c: the CUDA backend against the CPU reference on the edge
 * cases the review of issue 12 found untested: bias_grad with small planes,
 * C > 65536 and N = 1; max pooling on constant and ReLU-zero planes (ties go
 * to the first maximum on both sides, bit for bit); batch norm with one
 * value per channel and with large planes; convolutions at batch 1 and at
 * VGG-19's shapes at batch 128; GEMM with k = 0, m = 1, n = 1, alpha = 0 and
 * padded leading dimensions on every transpose; the loss with n = 1, k = 1,
 * n not a multiple of 8, a large k and an invalid label; k-means with m = 1,
 * fewer values than clusters, equal values, -0/+0 and midpoint ties;
 * codebook_grad with many values in few clusters and an assignment >= M; the
 * batch builder with padding 4 and 3 channels; and the convolutions and GEMM
 * again with TF32 on (looser tolerance).  An error the GPU finds inside a
 * kernel (invalid label or assignment) may surface at the next download or
 * sync instead of the call; either way its message must be the CPU's.
 * DC_TEST_QUICK=1 leaves out the VGG-19 shapes at batch 128 (the slow part:
 * the CPU reference).  Exits 77 when no GPU answers.
 *
 * Legend: N batch, C channels, H W input size, K output channels/classes,
 * R S kernel size, P Q output size, M clusters. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/backend.h"
#include "dc/rng.h"
#include "gpu_pair.h"

static struct buf buf_host(const float *h, size_t n) { return buf_new(h, n * sizeof(float)); }

static void fetch(const struct buf *b, size_t bytes, void *host[2])
{
    for (int s = 0; s < 2; s++) {
        host[s] = xmalloc(bytes);
        memset(host[s], 0xff, bytes);
        CHECK_OK(BE(s)->ops.download(BE(s), host[s], b->p[s], bytes));
    }
}

/* |ref - got| <= atol + rtol*|ref|, atol relative to the largest |ref| when
 * scaled (long reductions: the error grows with the sums, not each element). */
static void cmp(const char *what, const struct buf *b, size_t n, float atol, float rtol, int scaled)
{
    void *h[2];
    fetch(b, n * sizeof(float), h);
    float big = 0.0f;
    for (size_t i = 0; scaled && i < n; i++)
        big = fabsf(((float *)h[0])[i]) > big ? fabsf(((float *)h[0])[i]) : big;
    check_close(what, h[0], h[1], n, scaled ? atol * (big > 1.0f ? big : 1.0f) : atol, rtol);
    free(h[0]);
    free(h[1]);
}

/* Same bytes on both sides (ties, signed zeros, integer results). */
static void cmp_bits(const char *what, const struct buf *b, size_t bytes)
{
    void *h[2];
    fetch(b, bytes, h);
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char *)h[0])[i] != ((unsigned char *)h[1])[i]) {
            fprintf(stderr, "%s: differs at byte %zu of %zu\n", what, i, bytes);
            dc_test_failures++;
            break;
        }
    free(h[0]);
    free(h[1]);
}

/* ---- bias_grad ---- */

static void test_bias_grad(void)
{
    const int shapes[][3] = {{128, 512, 4}, {128, 512, 16}, {1, 70000, 3}, {1, 70000, 100},
                             {1, 64, 1024}, {1, 5, 40},     {3, 7, 63}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int n = shapes[i][0], c = shapes[i][1], hw = shapes[i][2];
        struct buf dy = buf_rand((size_t)n * c * hw, -1, 1), db = buf_nan((size_t)c);
        BOTH(s, BE(s)->ops.bias_grad(BE(s), F(dy, s), F(db, s), n, c, hw));
        char what[64];
        snprintf(what, sizeof what, "bias_grad [%d,%d,%d]", n, c, hw);
        cmp(what, &db, (size_t)c, 1e-5f, 1e-5f, 0);
        buf_free(&dy);
        buf_free(&db);
    }
}

/* ---- max pooling ties ---- */

static void pool_case(const char *what, const struct dc_pool_desc *d, const float *hx)
{
    size_t nx = (size_t)d->n * d->c * d->h * d->w, ny = (size_t)d->n * d->c * d->p * d->q;
    struct buf x = buf_host(hx, nx), y = buf_nan(ny), dy = buf_rand(ny, -1, 1), dx = buf_nan(nx);
    BOTH(s, BE(s)->ops.pool_fwd(BE(s), d, F(x, s), F(y, s)));
    BOTH(s, BE(s)->ops.pool_bwd(BE(s), d, F(x, s), F(y, s), F(dy, s), F(dx, s)));
    char name[96];
    snprintf(name, sizeof name, "pool %dx%d/%d pad %d %s: y", d->size, d->size, d->stride, d->pad, what);
    cmp_bits(name, &y, ny * sizeof(float));
    snprintf(name, sizeof name, "pool %dx%d/%d pad %d %s: dx (first maximum)", d->size, d->size, d->stride, d->pad,
             what);
    cmp_bits(name, &dx, nx * sizeof(float));
    buf_free(&x);
    buf_free(&y);
    buf_free(&dy);
    buf_free(&dx);
}

static void test_pool_ties(void)
{
    const struct dc_pool_desc shapes[] = {
        {2, 6, 28, 28, 2, 2, 0, 14, 14, 1}, /* LeNet-5's first pooling */
        {3, 4, 7, 9, 2, 2, 0, 3, 4, 1},     /* odd sizes: last row and column unused */
        {2, 5, 13, 13, 3, 2, 1, 7, 7, 1},   /* overlapping, padded */
        {1, 3, 6, 6, 3, 1, 0, 4, 4, 1},     /* stride 1: a cell is the maximum of several windows */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct dc_pool_desc *d = &shapes[i];
        size_t nx = (size_t)d->n * d->c * d->h * d->w;
        float *h = xmalloc(nx * sizeof(float));
        for (size_t j = 0; j < nx; j++)
            h[j] = 0.75f;
        pool_case("constant", d, h);
        for (size_t j = 0; j < nx; j++) { /* after ReLU: mostly exact zeros, some of them -0 */
            float v = dc_rng_uniform(&rng) - 0.8f;
            h[j] = v > 0.0f ? v : (j % 3 == 0 ? -0.0f : 0.0f);
        }
        pool_case("ReLU zeros", d, h);
        for (size_t j = 0; j < nx; j++) /* saturated pixels: few values, many ties */
            h[j] = (float)dc_rng_below(&rng, 3);
        pool_case("three levels", d, h);
        free(h);
    }
}

/* ---- batch norm ---- */

static void bn_case(const struct dc_bn_desc *d, float atol, float rtol)
{
    size_t nx = (size_t)d->n * d->c * d->hw, c = (size_t)d->c;
    struct buf x = buf_rand(nx, -1, 3), gamma = buf_rand(c, 0.5f, 1.5f), beta = buf_rand(c, -0.5f, 0.5f);
    struct buf rmean = buf_rand(c, -0.2f, 0.2f), rvar = buf_rand(c, 0.5f, 1.5f), y = buf_nan(nx);
    struct buf sm = buf_nan(c), si = buf_nan(c), dy = buf_rand(nx, -1, 1), dx = buf_nan(nx), dg = buf_nan(c),
               db = buf_nan(c), yi = buf_nan(nx);
    BOTH(s, BE(s)->ops.bn_fwd_train(BE(s), d, F(x, s), F(gamma, s), F(beta, s), F(rmean, s), F(rvar, s), F(y, s),
                                    F(sm, s), F(si, s)));
    BOTH(s, BE(s)->ops.bn_bwd(BE(s), d, F(x, s), F(dy, s), F(gamma, s), F(sm, s), F(si, s), F(dx, s), F(dg, s),
                              F(db, s)));
    BOTH(s, BE(s)->ops.bn_fwd_infer(BE(s), d, F(x, s), F(gamma, s), F(beta, s), F(rmean, s), F(rvar, s),
                                    F(yi, s)));
    char what[96];
    const char *names[] = {"y", "running_mean", "running_var", "save_mean", "save_invstd",
                           "dx", "dgamma", "dbeta", "y (inference)"};
    struct buf *outs[] = {&y, &rmean, &rvar, &sm, &si, &dx, &dg, &db, &yi};
    for (int k = 0; k < 9; k++) {
        size_t n = outs[k] == &y || outs[k] == &dx || outs[k] == &yi ? nx : c;
        snprintf(what, sizeof what, "bn [%d,%d,%d]: %s", d->n, d->c, d->hw, names[k]);
        cmp(what, outs[k], n, atol, rtol, k == 6 || k == 7); /* dgamma, dbeta: sums over N*HW */
    }
    struct buf *all[] = {&x, &gamma, &beta, &rmean, &rvar, &y, &sm, &si, &dy, &dx, &dg, &db, &yi};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        buf_free(all[k]);
}

static void test_bn(void)
{
    bn_case(&(struct dc_bn_desc){1, 300, 1, 1e-5f, 0.1f}, 1e-6f, 1e-6f); /* one value per channel */
    bn_case(&(struct dc_bn_desc){1, 4, 1, 1e-3f, 0.5f}, 1e-6f, 1e-6f);
    bn_case(&(struct dc_bn_desc){2, 3, 300000, 1e-5f, 0.1f}, 1e-4f, 1e-3f); /* large planes */
    bn_case(&(struct dc_bn_desc){128, 16, 64, 1e-5f, 0.1f}, 2e-5f, 1e-4f);
}

/* ---- convolution ---- */

static struct dc_conv_desc conv_make(int n, int c, int h, int w, int k, int r, int stride, int pad)
{
    struct dc_conv_desc d = {n, c, h, w, k, r, r, stride, pad, 0, 0};
    d.p = (h + 2 * pad - r) / stride + 1;
    d.q = (w + 2 * pad - r) / stride + 1;
    return d;
}

/* All three directions of one shape on both sides; tolerances scale with the
 * largest |ref| since each output is a long sum. */
static void conv_case(const struct dc_conv_desc *d, float tol)
{
    size_t nx = (size_t)d->n * d->c * d->h * d->w, nw = (size_t)d->k * d->c * d->r * d->s;
    size_t ny = (size_t)d->n * d->k * d->p * d->q;
    struct buf x = buf_rand(nx, -1, 1), w = buf_rand(nw, -1, 1), dy = buf_rand(ny, -1, 1);
    struct buf y = buf_nan(ny), dx = buf_nan(nx), dw = buf_nan(nw);
    BOTH(s, BE(s)->ops.conv_fwd(BE(s), d, F(x, s), F(w, s), F(y, s)));
    BOTH(s, BE(s)->ops.conv_bwd_data(BE(s), d, F(w, s), F(dy, s), F(dx, s)));
    BOTH(s, BE(s)->ops.conv_bwd_filter(BE(s), d, F(x, s), F(dy, s), F(dw, s)));
    char what[128];
    const char *dir[3] = {"conv_fwd", "conv_bwd_data", "conv_bwd_filter"};
    struct buf *out[3] = {&y, &dx, &dw};
    size_t n[3] = {ny, nx, nw};
    for (int k = 0; k < 3; k++) {
        snprintf(what, sizeof what, "%s x[%d,%d,%d,%d] w[%d,%d,%d,%d] stride %d pad %d%s", dir[k], d->n, d->c, d->h,
                 d->w, d->k, d->c, d->r, d->s, d->stride, d->pad, BE(1)->opts.tf32 ? " TF32" : "");
        cmp(what, out[k], n[k], tol, tol, 1);
    }
    struct buf *all[] = {&x, &w, &dy, &y, &dx, &dw};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        buf_free(all[k]);
}

static void test_conv(float tol, int vgg)
{
    conv_case(&(struct dc_conv_desc){1, 1, 28, 28, 20, 5, 5, 1, 0, 24, 24}, tol); /* LeNet-5, batch 1 */
    conv_case(&(struct dc_conv_desc){1, 3, 32, 32, 64, 3, 3, 1, 1, 32, 32}, tol);
    conv_case(&(struct dc_conv_desc){1, 512, 2, 2, 512, 3, 3, 1, 1, 2, 2}, tol);
    conv_case(&(struct dc_conv_desc){5, 16, 13, 13, 48, 3, 3, 2, 1, 7, 7}, tol);
    if (!vgg)
        return;
    /* VGG-19's convolutions on CIFAR-10 at batch 128 (one of each shape);
     * the CPU reference makes this the slow part of the test. */
    static const int shapes[][3] = {{3, 64, 32},  {64, 64, 32},   {64, 128, 16}, {128, 128, 16}, {128, 256, 8},
                                    {256, 256, 8}, {256, 512, 4}, {512, 512, 4}, {512, 512, 2}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        struct dc_conv_desc d = conv_make(128, shapes[i][0], shapes[i][2], shapes[i][2], shapes[i][1], 3, 1, 1);
        conv_case(&d, tol);
    }
}

/* ---- GEMM ---- */

static void gemm_case(int ta, int tb, int m, int n, int k, int pad, float alpha, float beta, float tol)
{
    int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    if (lda < 1)
        lda = 1;
    if (ldb < 1)
        ldb = 1;
    struct buf a = buf_rand((size_t)(ta ? k : m) * lda + 1, -1, 1), b = buf_rand((size_t)(tb ? n : k) * ldb + 1, -1, 1);
    struct buf c = beta != 0.0f ? buf_rand((size_t)m * ldc, -1, 1) : buf_nan((size_t)m * ldc);
    BOTH(s, BE(s)->ops.gemm(BE(s), ta, tb, m, n, k, alpha, F(a, s), lda, F(b, s), ldb, beta, F(c, s), ldc));
    char what[96];
    snprintf(what, sizeof what, "gemm ta %d tb %d %dx%dx%d pad %d alpha %g beta %g%s", ta, tb, m, n, k, pad,
             (double)alpha, (double)beta, BE(1)->opts.tf32 ? " TF32" : "");
    /* with beta != 0 all of C, padding included (left alone on both sides);
     * with beta = 0 the padding stays NaN, so only the n written columns */
    if (beta != 0.0f || pad == 0) {
        cmp(what, &c, (size_t)m * ldc, tol, tol, 1);
    } else {
        void *h[2];
        fetch(&c, (size_t)m * ldc * sizeof(float), h);
        for (int i = 0; i < m; i++)
            if (!check_close(what, (float *)h[0] + (size_t)i * ldc, (float *)h[1] + (size_t)i * ldc, (size_t)n,
                             tol * 8.0f, tol))
                break;
        free(h[0]);
        free(h[1]);
    }
    buf_free(&a);
    buf_free(&b);
    buf_free(&c);
}

static void test_gemm(float tol)
{
    for (int t = 0; t < 4; t++) {
        const int ta = t & 1, tb = t >> 1;
        gemm_case(ta, tb, 7, 5, 0, 2, 1.0f, 0.5f, tol);    /* k = 0: C = beta C */
        gemm_case(ta, tb, 7, 5, 0, 0, 1.0f, 0.0f, tol);    /* k = 0, beta = 0: C = 0 */
        gemm_case(ta, tb, 1, 300, 200, 3, 0.75f, 0.5f, tol); /* m = 1 */
        gemm_case(ta, tb, 300, 1, 200, 3, 0.75f, 0.5f, tol); /* n = 1 */
        gemm_case(ta, tb, 1, 1, 1000, 0, 1.0f, 0.0f, tol);
        gemm_case(ta, tb, 40, 30, 20, 5, 0.0f, 0.5f, tol);  /* alpha = 0 */
        gemm_case(ta, tb, 129, 65, 257, 7, -1.25f, 0.0f, tol);
    }
}

/* ---- loss ---- */

static struct buf labels_new(const int32_t *h, int n) { return buf_new(h, (size_t)n * sizeof(int32_t)); }

static void loss_case(int n, int k)
{
    float *h = xmalloc((size_t)n * k * sizeof(float));
    int32_t *lab = xmalloc((size_t)n * sizeof(int32_t));
    for (size_t i = 0; i < (size_t)n * k; i++)
        h[i] = 8.0f * dc_rng_uniform(&rng) - 4.0f;
    for (int i = 0; i < n; i++)
        lab[i] = (int32_t)dc_rng_below(&rng, (uint32_t)k);
    if (n > 2 && k > 1) /* a tied row */
        for (int j = 0; j < k; j++)
            h[(size_t)2 * k + j] = 1.0f;
    const float init[2] = {0.5f, 2.0f};
    struct buf logits = buf_host(h, (size_t)n * k), labels = labels_new(lab, n), dl = buf_nan((size_t)n * k);
    struct buf stats = buf_host(init, 2), pred = buf_nan((size_t)n);
    BOTH(s, BE(s)->ops.softmax_xent(BE(s), n, k, F(logits, s), I32(labels, s), NULL, 1.0f / n, F(dl, s), F(stats, s)));
    BOTH(s, BE(s)->ops.softmax_xent(BE(s), n, k, F(logits, s), I32(labels, s), NULL, 1.0f, NULL, F(stats, s)));
    BOTH(s, BE(s)->ops.argmax(BE(s), n, k, F(logits, s), I32(pred, s)));
    char what[64];
    snprintf(what, sizeof what, "softmax_xent [%d,%d]: dlogits", n, k);
    cmp(what, &dl, (size_t)n * k, 1e-6f, 1e-5f, 0);
    snprintf(what, sizeof what, "softmax_xent [%d,%d]: stats", n, k);
    cmp(what, &stats, 2, 1e-6f, 1e-5f, 0);
    snprintf(what, sizeof what, "argmax [%d,%d]", n, k);
    cmp_bits(what, &pred, (size_t)n * sizeof(int32_t));
    struct buf *all[] = {&logits, &labels, &dl, &stats, &pred};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        buf_free(all[i]);
    free(h);
    free(lab);
}

/* An op that must fail with the CPU's message: the GPU may report it at the
 * call or at the next download (a kernel found it); the download after that
 * must succeed again (the error is reported once). */
static void expect_same_error(const char *what, enum dc_status st[2], char msg[2][512], const struct buf *probe)
{
    for (int s = 0; s < 2; s++) {
        if (st[s] == DC_OK) {
            float tmp[2];
            st[s] = BE(s)->ops.download(BE(s), tmp, probe->p[s], sizeof tmp);
            snprintf(msg[s], 512, "%s", dc_error_msg());
            CHECK_OK(BE(s)->ops.download(BE(s), tmp, probe->p[s], sizeof tmp));
        }
    }
    if (st[0] != DC_ERR_ARG || st[1] != DC_ERR_ARG || strcmp(msg[0], msg[1]) != 0) {
        fprintf(stderr, "%s: CPU gives %s \"%s\", GPU gives %s \"%s\"\n", what, dc_status_str(st[0]), msg[0],
                dc_status_str(st[1]), msg[1]);
        dc_test_failures++;
    }
}

/* CALL (an op on BE(s)) on both backends, then expect_same_error */
#define EXPECT_SAME_ERROR(what, probe, call)                                                \
    do {                                                                                    \
        enum dc_status st_[2];                                                              \
        char msg_[2][512];                                                                  \
        for (int s = 0; s < 2; s++) {                                                       \
            st_[s] = (call);                                                                \
            snprintf(msg_[s], sizeof msg_[s], "%s", st_[s] == DC_OK ? "" : dc_error_msg()); \
        }                                                                                   \
        expect_same_error(what, st_, msg_, probe);                                          \
    } while (0)

/* Rows with NaNs, 40 wide so two elements fall in one warp lane: the first
 * element NaN (it wins, as in the CPU's scan), a NaN before the maximum in
 * the same lane (skipped), a NaN elsewhere, and a row of NaNs. */
static void test_argmax_nan(void)
{
    enum { N = 4, K = 40 };
    float h[N * K];
    for (int i = 0; i < N * K; i++)
        h[i] = (float)(i % 7) - 3.0f;
    h[0] = NAN;                                   /* row 0 */
    h[K + 3] = NAN, h[K + 35] = 9.0f;             /* row 1: lane 3 meets the NaN first */
    h[2 * K + 20] = NAN, h[2 * K + 6] = 8.0f;     /* row 2 */
    for (int j = 0; j < K; j++)
        h[3 * K + j] = NAN;                       /* row 3 */
    struct buf logits = buf_host(h, N * K), pred = buf_nan(N);
    BOTH(s, BE(s)->ops.argmax(BE(s), N, K, F(logits, s), I32(pred, s)));
    cmp_bits("argmax with NaNs", &pred, N * sizeof(int32_t));
    buf_free(&logits);
    buf_free(&pred);
}

static void test_loss(void)
{
    test_argmax_nan();
    loss_case(1, 10);
    loss_case(1, 1);
    loss_case(13, 1);
    loss_case(13, 10); /* n not a multiple of 8 rows per block */
    loss_case(1001, 7);
    loss_case(3, 50000); /* large k */
    loss_case(20000, 10); /* many blocks of partial sums */
    /* an invalid label: row 5 of 13 (and row 9, which must not be the one reported) */
    const int n = 13, k = 10;
    int32_t lab[13];
    for (int i = 0; i < n; i++)
        lab[i] = i % k;
    lab[5] = k;
    lab[9] = -1;
    const float init[2] = {0, 0};
    struct buf logits = buf_rand((size_t)n * k, -2, 2), labels = labels_new(lab, n), dl = buf_nan((size_t)n * k);
    struct buf stats = buf_host(init, 2);
    EXPECT_SAME_ERROR("softmax_xent with label 10 of 10 classes", &stats,
                      BE(s)->ops.softmax_xent(BE(s), n, k, F(logits, s), I32(labels, s), NULL, 1.0f, F(dl, s),
                                              F(stats, s)));
    struct buf *all[] = {&logits, &labels, &dl, &stats};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        buf_free(all[i]);
}

/* ---- k-means and codebook ---- */

static void kmeans_case(const char *what, size_t n, const float *hx, int m, const float *c0, int iters)
{
    struct buf x = buf_host(hx, n), cent = buf_host(c0, (size_t)m), assign = buf_new(NULL, n ? n : 1);
    BOTH(s, BE(s)->ops.kmeans_1d(BE(s), n, F(x, s), NULL, F(cent, s), m, iters, U8(assign, s)));
    char name[96];
    snprintf(name, sizeof name, "kmeans_1d %s: centroids", what);
    cmp(name, &cent, (size_t)m, 1e-7f, 1e-6f, 0);
    snprintf(name, sizeof name, "kmeans_1d %s: assignments", what);
    if (n)
        cmp_bits(name, &assign, n);
    buf_free(&x);
    buf_free(&cent);
    buf_free(&assign);
}

static void test_kmeans(void)
{
    enum { N = 20000 };
    float *x = xmalloc(N * sizeof(float)), c[256];
    for (int i = 0; i < N; i++)
        x[i] = 0.05f * dc_rng_normal(&rng);
    c[0] = 0.01f;
    kmeans_case("m = 1", N, x, 1, c, 10);
    for (int j = 0; j < 16; j++)
        c[j] = -0.1f + 0.2f * (float)j / 15.0f;
    kmeans_case("5 values, 16 clusters", 5, x, 16, c, 10);
    kmeans_case("no values", 0, x, 16, c, 10);
    for (int i = 0; i < N; i++) /* many equal values */
        x[i] = i % 10 ? 0.125f : -0.25f;
    kmeans_case("equal values", N, x, 16, c, 10);
    for (int i = 0; i < N; i++) /* signed zeros against centroids at -0 and +0 */
        x[i] = i % 3 == 0 ? -0.0f : i % 3 == 1 ? 0.0f : (i % 2 ? 1e-3f : -1e-3f);
    const float zeros[4] = {0.0f, -0.0f, 1.0f, -1.0f};
    kmeans_case("-0/+0, no iterations", N, x, 4, zeros, 0);
    kmeans_case("-0/+0", N, x, 4, zeros, 5);
    for (int i = 0; i < N; i++) /* exactly at midpoints between centroids 0, 1, 2, 3: ties to the lower index */
        x[i] = 0.5f + (float)(i % 3) + (i % 7 == 0 ? 0.25f : 0.0f);
    const float grid[4] = {2.0f, 0.0f, 3.0f, 1.0f};
    kmeans_case("midpoint ties, no iterations", N, x, 4, grid, 0);
    kmeans_case("midpoint ties", N, x, 4, grid, 3);
    /* NaNs to cluster: the first kept one is named (value 7 is masked out, 1234 is reported) */
    float *mk = xmalloc(N * sizeof(float));
    for (int i = 0; i < N; i++)
        mk[i] = 1.0f;
    x[7] = NAN, mk[7] = 0.0f;
    x[1234] = NAN, x[5000] = NAN;
    struct buf xb = buf_host(x, N), mb = buf_host(mk, N), cent = buf_host(grid, 4), assign = buf_new(NULL, N);
    EXPECT_SAME_ERROR("kmeans_1d with NaN values", &cent,
                      BE(s)->ops.kmeans_1d(BE(s), N, F(xb, s), F(mb, s), F(cent, s), 4, 3, U8(assign, s)));
    buf_free(&xb);
    buf_free(&mb);
    buf_free(&cent);
    buf_free(&assign);
    free(mk);
    free(x);
}

static void test_codebook_grad(void)
{
    const size_t n = (size_t)4096 * 256 * 3 + 5; /* many values in few clusters, grid-stride loops loop */
    const int ms[] = {1, 2, 4};
    uint8_t *ha = xmalloc(n);
    for (int t = 0; t < 3; t++) {
        for (size_t i = 0; i < n; i++)
            ha[i] = (uint8_t)dc_rng_below(&rng, (uint32_t)ms[t]);
        struct buf assign = buf_new(ha, n), g = buf_rand(n, -1, 1), mask = buf_nan(n), out = buf_nan(4);
        BOTH(s, BE(s)->ops.threshold_mask(BE(s), n, F(g, s), 0.3f, F(mask, s)));
        char what[64];
        snprintf(what, sizeof what, "codebook_grad M = %d, masked", ms[t]);
        BOTH(s, BE(s)->ops.codebook_grad(BE(s), n, U8(assign, s), F(g, s), F(mask, s), ms[t], F(out, s)));
        cmp(what, &out, (size_t)ms[t], 1e-5f, 1e-5f, 1);
        snprintf(what, sizeof what, "codebook_grad M = %d", ms[t]);
        BOTH(s, BE(s)->ops.codebook_grad(BE(s), n, U8(assign, s), F(g, s), NULL, ms[t], F(out, s)));
        cmp(what, &out, (size_t)ms[t], 1e-5f, 1e-5f, 1);
        buf_free(&assign);
        buf_free(&g);
        buf_free(&mask);
        buf_free(&out);
    }
    /* an assignment >= M on a kept weight is an error; on a masked-out one it is ignored */
    const size_t n2 = 5000;
    float *hm = xmalloc(n2 * sizeof(float));
    for (size_t i = 0; i < n2; i++) {
        ha[i] = (uint8_t)(i % 8);
        hm[i] = 1.0f;
    }
    ha[100] = 200;
    hm[100] = 0.0f; /* masked out: ignored */
    ha[3001] = 8;   /* reported: the first kept one */
    ha[4000] = 9;
    struct buf assign = buf_new(ha, n2), g = buf_rand(n2, -1, 1), mask = buf_host(hm, n2), out = buf_nan(8);
    EXPECT_SAME_ERROR("codebook_grad with assignment 8 of 8 clusters", &g,
                      BE(s)->ops.codebook_grad(BE(s), n2, U8(assign, s), F(g, s), F(mask, s), 8, F(out, s)));
    buf_free(&assign);
    buf_free(&g);
    buf_free(&mask);
    buf_free(&out);
    free(hm);
    free(ha);
}

/* ---- data ---- */

static void test_batch_images(void)
{
    const int count = 200, n = 128, c = 3, h = 32, w = 32;
    const size_t chw = (size_t)c * h * w;
    uint8_t *img = xmalloc(count * chw);
    int32_t idx[128];
    for (size_t i = 0; i < count * chw; i++)
        img[i] = (uint8_t)dc_rng_below(&rng, 256);
    for (int i = 0; i < n; i++)
        idx[i] = (int32_t)dc_rng_below(&rng, (uint32_t)count);
    struct buf images = buf_new(img, count * chw), ib = buf_new(idx, sizeof idx), out = buf_nan((size_t)n * chw);
    for (int flip = 0; flip < 2; flip++) {
        struct dc_batch_desc d = {c, h, w, n, 4, flip, dc_rng_next(&rng), {0.49f, 0.48f, 0.45f}, {0.25f, 0.24f, 0.26f}};
        BOTH(s, BE(s)->ops.batch_images(BE(s), &d, U8(images, s), I32(ib, s), F(out, s)));
        cmp_bits(flip ? "batch_images pad 4, flip, 3 channels" : "batch_images pad 4, 3 channels", &out,
                 (size_t)n * chw * sizeof(float));
    }
    buf_free(&images);
    buf_free(&ib);
    buf_free(&out);
    free(img);
}

int main(void)
{
    struct dc_backend_opts opts = {0, 0, 0};
    int verdict = pair_open("test_gpu_edges", &opts);
    if (verdict >= 0)
        return verdict;
    uint64_t seed = pair_seed(20261201u);
    printf("test_gpu_edges: %s vs %s, seed %llu (DC_TEST_SEED changes it)\n", BE(1)->description,
           BE(0)->description, (unsigned long long)seed);
    struct { const char *name; void (*run)(void); } parts[] = {
        {"bias_grad", test_bias_grad}, {"max pool ties", test_pool_ties}, {"batch norm", test_bn},
        {"loss", test_loss},           {"k-means", test_kmeans},          {"codebook_grad", test_codebook_grad},
        {"batch_images", test_batch_images},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        int before = dc_test_failures;
        parts[i].run();
        printf("  %-16s %s\n", parts[i].name, dc_test_failures == before ? "ok" : "FAILED");
    }
    int before = dc_test_failures;
    test_gemm(2e-5f);
    test_conv(2e-5f, getenv("DC_TEST_QUICK") == NULL);
    printf("  %-16s %s\n", "gemm, conv", dc_test_failures == before ? "ok" : "FAILED");
    /* TF32: 10 mantissa bits, so about 1e-3 relative to the largest value */
    dc_backend_free(pair_be[1]);
    opts.tf32 = 1;
    verdict = gpu_open("test_gpu_edges", &opts, &pair_be[1]);
    if (verdict >= 0)
        return verdict;
    before = dc_test_failures;
    test_gemm(4e-3f);
    test_conv(4e-3f, 0);
    printf("  %-16s %s\n", "gemm, conv TF32", dc_test_failures == before ? "ok" : "FAILED");
    pair_close();
    return test_finish("test_gpu_edges");
}
