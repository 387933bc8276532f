/* test_gpu_parity.c: every op of the backend table on the CUDA backend
 * against the CPU reference.  Fresh random non-zero inputs go to both
 * backends; outputs start as NaN on both, so an element the GPU forgets to
 * write fails; results must satisfy |ref - got| <= atol + rtol*|ref| with a
 * tolerance per op, and the first mismatch is printed.  The loop runs over
 * enum dc_op with a switch that has no default, so an op added to the table
 * breaks this build until it is tested here.  Exits 77 when no GPU answers.
 * DC_TEST_SMALL=1 cuts the two large cases (a 9 Mi-element sgd_multi tensor,
 * k-means over 30,000 values) to sizes compute-sanitizer gets through in
 * seconds (scripts/gpu-check.sh); every case still runs.
 *
 * Legend: N batch, C channels, H W input size, K output channels/classes,
 * R S kernel size, P Q output size, M clusters. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dc/backend.h"
#include "dc/rng.h"
#include "gpu_pair.h"

/* Per-op tolerance (atol, rtol); ops not listed must agree exactly. */
static const struct { float atol, rtol; } tol[DC_OP_COUNT] = {
    [DC_OP_GEMM] = {2e-4f, 1e-4f},           [DC_OP_BIAS_GRAD] = {1e-5f, 1e-5f},
    [DC_OP_CONV_FWD] = {3e-4f, 2e-4f},       [DC_OP_CONV_BWD_DATA] = {3e-4f, 2e-4f},
    [DC_OP_CONV_BWD_FILTER] = {3e-4f, 2e-4f}, [DC_OP_POOL_FWD] = {1e-6f, 1e-5f},
    [DC_OP_POOL_BWD] = {1e-6f, 1e-5f},       [DC_OP_BN_FWD_TRAIN] = {2e-5f, 1e-4f},
    [DC_OP_BN_FWD_INFER] = {1e-5f, 1e-5f},   [DC_OP_BN_BWD] = {2e-5f, 1e-4f},
    [DC_OP_SOFTMAX_XENT] = {1e-6f, 1e-5f},   [DC_OP_SGD_UPDATE] = {1e-7f, 1e-6f},
    [DC_OP_KMEANS_1D] = {1e-7f, 1e-6f},      [DC_OP_CODEBOOK_GRAD] = {1e-5f, 1e-5f},
};

static int small; /* DC_TEST_SMALL: cut-down sizes, see the file comment */

static void fetch(const struct buf *b, void *host[2])
{
    for (int s = 0; s < 2; s++) {
        host[s] = xmalloc(b->bytes);
        memset(host[s], 0xff, b->bytes);
        CHECK_OK(BE(s)->ops.download(BE(s), host[s], b->p[s], b->bytes));
    }
}

static void cmp_f(const char *what, enum dc_op op, const struct buf *b)
{
    void *h[2];
    char name[96];
    snprintf(name, sizeof name, "%s: %s", dc_op_name(op), what);
    fetch(b, h);
    check_close(name, h[0], h[1], b->bytes / sizeof(float), tol[op].atol, tol[op].rtol);
    free(h[0]);
    free(h[1]);
}

/* Integers and bytes must agree exactly; allowed > 0 tolerates that many
 * differing elements (k-means labels at a boundary one rounding apart). */
static void cmp_int(const char *what, enum dc_op op, const struct buf *b, size_t elem, size_t allowed)
{
    void *h[2];
    fetch(b, h);
    size_t n = b->bytes / elem, diff = 0;
    for (size_t i = 0; i < n; i++) {
        long r = elem == 4 ? ((int32_t *)h[0])[i] : ((uint8_t *)h[0])[i];
        long g = elem == 4 ? ((int32_t *)h[1])[i] : ((uint8_t *)h[1])[i];
        if (r != g && diff++ == 0)
            fprintf(stderr, "%s: %s: mismatch at %zu: ref %ld got %ld\n", dc_op_name(op), what, i, r, g);
    }
    if (diff > allowed) {
        fprintf(stderr, "%s: %s: %zu of %zu elements differ (allowed %zu)\n", dc_op_name(op), what, diff, n,
                allowed);
        dc_test_failures++;
    }
    free(h[0]);
    free(h[1]);
}

/* ---- memory ---- */

static void test_memory(enum dc_op op)
{
    size_t n = 1001;
    float *h = rand_host(n, -2.0f, 2.0f);
    struct buf a = buf_new(h, n * sizeof(float)); /* alloc + upload */
    struct buf b = buf_nan(n);
    void *back[2];
    switch (op) {
    case DC_OP_ALLOC:
    case DC_OP_RELEASE:
    case DC_OP_UPLOAD:
    case DC_OP_DOWNLOAD:
        fetch(&a, back);
        for (int s = 0; s < 2; s++) {
            CHECK(memcmp(back[s], h, n * sizeof(float)) == 0);
            free(back[s]);
        }
        break;
    case DC_OP_COPY: /* a part of a into the middle of b; the rest of b stays NaN */
        BOTH(s, BE(s)->ops.copy(BE(s), F(b, s) + 50, F(a, s) + 100, 600 * sizeof(float)));
        fetch(&b, back);
        for (int s = 0; s < 2; s++) {
            CHECK(memcmp((float *)back[s] + 50, h + 100, 600 * sizeof(float)) == 0);
            CHECK(isnan(((float *)back[s])[49]) && isnan(((float *)back[s])[650]));
            free(back[s]);
        }
        break;
    case DC_OP_FILL: /* a non-zero value (kernel path) and zero (memset path) */
        BOTH(s, BE(s)->ops.fill(BE(s), F(b, s), 3.25f, n));
        BOTH(s, BE(s)->ops.fill(BE(s), F(a, s), 0.0f, n - 1));
        cmp_f("value", op, &b);
        cmp_f("zero", op, &a);
        break;
    case DC_OP_SYNC:
        BOTH(s, BE(s)->ops.sync(BE(s)));
        break;
    default:
        break;
    }
    FREE_ALL(&a, &b);
    free(h);
}

/* ---- dense ---- */

static void gemm_case(int ta, int tb, int m, int n, int k, int pad, float beta)
{
    int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + (beta != 0.0f ? pad : 0);
    struct buf a = buf_rand((size_t)(ta ? k : m) * lda, -1, 1), b = buf_rand((size_t)(tb ? n : k) * ldb, -1, 1);
    /* beta = 0: C is write-only (BLAS rule), so NaN there must not survive */
    struct buf c = beta != 0.0f ? buf_rand((size_t)m * ldc, -1, 1) : buf_nan((size_t)m * ldc);
    BOTH(s, BE(s)->ops.gemm(BE(s), ta, tb, m, n, k, 0.75f, F(a, s), lda, F(b, s), ldb, beta, F(c, s), ldc));
    char what[64];
    snprintf(what, sizeof what, "ta %d tb %d %dx%dx%d beta %g", ta, tb, m, n, k, (double)beta);
    cmp_f(what, DC_OP_GEMM, &c);
    FREE_ALL(&a, &b, &c);
}

static void test_dense(enum dc_op op)
{
    const size_t n = 4099;
    struct buf x = buf_rand(n, -1, 1), y = buf_rand(n, -1, 1), out = buf_nan(n);
    switch (op) {
    case DC_OP_GEMM:
        for (int t = 0; t < 4; t++) {
            gemm_case(t & 1, t >> 1, 37, 29, 53, 3, 0.5f);
            gemm_case(t & 1, t >> 1, 17, 300, 784, 0, 0.0f);
        }
        break;
    case DC_OP_AXPBY:
        BOTH(s, BE(s)->ops.axpby(BE(s), n, 1.5f, F(x, s), -0.75f, F(y, s)));
        BOTH(s, BE(s)->ops.axpby(BE(s), n, 0.25f, F(x, s), 0.0f, F(out, s))); /* y write-only */
        cmp_f("y", op, &y);
        cmp_f("b = 0", op, &out);
        break;
    case DC_OP_MUL:
        BOTH(s, BE(s)->ops.mul(BE(s), n, F(x, s), F(y, s), F(out, s)));
        BOTH(s, BE(s)->ops.mul(BE(s), n, F(x, s), F(y, s), F(x, s))); /* in place */
        cmp_f("out", op, &out);
        cmp_f("aliased", op, &x);
        break;
    case DC_OP_BIAS_ADD: {
        struct buf yy = buf_rand(3 * 5 * 7, -1, 1), bias = buf_rand(5, -1, 1);
        BOTH(s, BE(s)->ops.bias_add(BE(s), F(yy, s), F(bias, s), 3, 5, 7));
        cmp_f("y", op, &yy);
        FREE_ALL(&yy, &bias);
        break;
    }
    case DC_OP_BIAS_GRAD: {
        struct buf dy = buf_rand(9 * 6 * 100, -1, 1), db = buf_nan(6), db1 = buf_nan(40);
        BOTH(s, BE(s)->ops.bias_grad(BE(s), F(dy, s), F(db, s), 9, 6, 100));
        BOTH(s, BE(s)->ops.bias_grad(BE(s), F(dy, s), F(db1, s), 17, 40, 1)); /* fc shape */
        cmp_f("conv", op, &db);
        cmp_f("fc", op, &db1);
        FREE_ALL(&dy, &db, &db1);
        break;
    }
    default:
        break;
    }
    FREE_ALL(&x, &y, &out);
}

/* ---- activations, concat, optimiser, pruning mask ---- */

static void test_elementwise(enum dc_op op)
{
    const size_t n = 5003;
    struct buf x = buf_rand(n, -1, 1), y = buf_nan(n), z = buf_nan(n);
    switch (op) {
    case DC_OP_RELU_FWD:
        BOTH(s, BE(s)->ops.relu_fwd(BE(s), n, F(x, s), F(y, s)));
        cmp_f("y", op, &y);
        break;
    case DC_OP_RELU_BWD: {
        struct buf dy = buf_rand(n, -1, 1);
        BOTH(s, BE(s)->ops.relu_bwd(BE(s), n, F(x, s), F(dy, s), F(y, s)));
        cmp_f("dx", op, &y);
        buf_free(&dy);
        break;
    }
    case DC_OP_DROPOUT_FWD:
        BOTH(s, BE(s)->ops.dropout_fwd(BE(s), n, 0.3f, 0x5eedull, F(x, s), F(y, s), F(z, s)));
        cmp_f("mask", op, &y);
        cmp_f("y", op, &z);
        break;
    case DC_OP_THRESHOLD_MASK:
        BOTH(s, BE(s)->ops.threshold_mask(BE(s), n, F(x, s), 0.4f, F(y, s)));
        cmp_f("mask", op, &y);
        break;
    case DC_OP_CONCAT:
    case DC_OP_SPLIT: { /* a [3,4,10], b [3,6,10] <-> joined [3,10,10] */
        struct buf a = buf_rand(120, -1, 1), b = buf_rand(180, -1, 1), j = buf_nan(300);
        struct buf a2 = buf_nan(120), b2 = buf_nan(180);
        BOTH(s, BE(s)->ops.concat(BE(s), 3, 4, 6, 10, F(a, s), F(b, s), F(j, s)));
        cmp_f("joined", op, &j);
        if (op == DC_OP_SPLIT) {
            BOTH(s, BE(s)->ops.split(BE(s), 3, 4, 6, 10, F(j, s), F(a2, s), F(b2, s)));
            cmp_f("a", op, &a2);
            cmp_f("b", op, &b2);
        }
        FREE_ALL(&a, &b, &j, &a2, &b2);
        break;
    }
    case DC_OP_SGD_UPDATE: {
        struct buf g = buf_rand(n, -1, 1), v = buf_rand(n, -0.1f, 0.1f), mask = buf_nan(n);
        BOTH(s, BE(s)->ops.threshold_mask(BE(s), n, F(x, s), 0.3f, F(mask, s)));
        for (int variant = 0; variant < 5; variant++) {
            int nesterov = variant & 1, masked = (variant >> 1) & 1, plain = variant == 4;
            BOTH(s, BE(s)->ops.sgd_update(BE(s), n, F(x, s), F(g, s), plain ? NULL : F(v, s),
                                          masked ? F(mask, s) : NULL, 0.05f, plain ? 0.0f : 0.9f, 5e-4f,
                                          nesterov));
        }
        cmp_f("w", op, &x);
        cmp_f("v", op, &v);
        FREE_ALL(&g, &v, &mask);
        break;
    }
    default:
        break;
    }
    FREE_ALL(&x, &y, &z);
}

/* ---- convolution and pooling ---- */

static struct dc_conv_desc conv_make(int n, int c, int h, int w, int k, int r, int stride, int pad)
{
    struct dc_conv_desc d = {n, c, h, w, k, r, r, stride, pad, 0, 0};
    d.p = (h + 2 * pad - r) / stride + 1;
    d.q = (w + 2 * pad - r) / stride + 1;
    return d;
}

static void test_conv(enum dc_op op)
{
    const struct dc_conv_desc shapes[] = {
        conv_make(2, 3, 11, 9, 4, 3, 1, 1), conv_make(3, 5, 12, 12, 6, 5, 2, 2),
        conv_make(2, 8, 7, 7, 16, 1, 1, 0), conv_make(4, 16, 8, 8, 32, 3, 1, 1),
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct dc_conv_desc *d = &shapes[i];
        size_t nx = (size_t)d->n * d->c * d->h * d->w, nw = (size_t)d->k * d->c * d->r * d->s;
        size_t ny = (size_t)d->n * d->k * d->p * d->q;
        struct buf x = buf_rand(nx, -1, 1), w = buf_rand(nw, -1, 1), y = buf_rand(ny, -1, 1), out;
        char what[48];
        snprintf(what, sizeof what, "shape %zu", i);
        if (op == DC_OP_CONV_FWD) {
            out = buf_nan(ny);
            BOTH(s, BE(s)->ops.conv_fwd(BE(s), d, F(x, s), F(w, s), F(out, s)));
        } else if (op == DC_OP_CONV_BWD_DATA) {
            out = buf_nan(nx);
            BOTH(s, BE(s)->ops.conv_bwd_data(BE(s), d, F(w, s), F(y, s), F(out, s)));
        } else {
            out = buf_nan(nw);
            BOTH(s, BE(s)->ops.conv_bwd_filter(BE(s), d, F(x, s), F(y, s), F(out, s)));
        }
        cmp_f(what, op, &out);
        FREE_ALL(&x, &w, &y, &out);
    }
}

static void test_pool(enum dc_op op)
{
    const struct dc_pool_desc shapes[] = {
        {2, 3, 8, 8, 2, 2, 0, 4, 4, 1}, /* LeNet / VGG max pool */
        {2, 3, 9, 9, 3, 2, 1, 5, 5, 1}, /* overlapping, padded */
        {2, 3, 7, 7, 3, 1, 1, 7, 7, 0}, /* average, padding counted out */
        {2, 4, 5, 5, 5, 5, 0, 1, 1, 0}, /* global average */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct dc_pool_desc *d = &shapes[i];
        size_t nx = (size_t)d->n * d->c * d->h * d->w, ny = (size_t)d->n * d->c * d->p * d->q;
        struct buf x = buf_rand(nx, -1, 1), y = buf_nan(ny), dy = buf_rand(ny, -1, 1), dx = buf_nan(nx);
        char what[48];
        snprintf(what, sizeof what, "shape %zu", i);
        BOTH(s, BE(s)->ops.pool_fwd(BE(s), d, F(x, s), F(y, s)));
        if (op == DC_OP_POOL_FWD) {
            cmp_f(what, op, &y);
        } else {
            BOTH(s, BE(s)->ops.pool_bwd(BE(s), d, F(x, s), F(y, s), F(dy, s), F(dx, s)));
            cmp_f(what, op, &dx);
        }
        FREE_ALL(&x, &y, &dy, &dx);
    }
}

/* ---- batch norm ---- */

static void test_bn(enum dc_op op)
{
    const struct dc_bn_desc shapes[] = {{4, 5, 6, 1e-5f, 0.1f}, {8, 16, 49, 1e-3f, 0.3f}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct dc_bn_desc *d = &shapes[i];
        size_t nx = (size_t)d->n * d->c * d->hw, c = (size_t)d->c;
        struct buf x = buf_rand(nx, -1, 3), gamma = buf_rand(c, 0.5f, 1.5f), beta = buf_rand(c, -0.5f, 0.5f);
        struct buf rmean = buf_rand(c, -0.2f, 0.2f), rvar = buf_rand(c, 0.5f, 1.5f);
        struct buf y = buf_nan(nx), smean = buf_nan(c), sinv = buf_nan(c);
        if (op == DC_OP_BN_FWD_INFER) {
            BOTH(s, BE(s)->ops.bn_fwd_infer(BE(s), d, F(x, s), F(gamma, s), F(beta, s), F(rmean, s),
                                            F(rvar, s), F(y, s)));
            cmp_f("y", op, &y);
        } else {
            BOTH(s, BE(s)->ops.bn_fwd_train(BE(s), d, F(x, s), F(gamma, s), F(beta, s), F(rmean, s), F(rvar, s),
                                            F(y, s), F(smean, s), F(sinv, s)));
        }
        if (op == DC_OP_BN_FWD_TRAIN) {
            cmp_f("y", op, &y);
            cmp_f("running_mean", op, &rmean);
            cmp_f("running_var", op, &rvar);
            cmp_f("save_mean", op, &smean);
            cmp_f("save_invstd", op, &sinv);
        }
        if (op == DC_OP_BN_BWD) {
            struct buf dy = buf_rand(nx, -1, 1), dx = buf_nan(nx), dg = buf_nan(c), db = buf_nan(c);
            BOTH(s, BE(s)->ops.bn_bwd(BE(s), d, F(x, s), F(dy, s), F(gamma, s), F(smean, s), F(sinv, s),
                                      F(dx, s), F(dg, s), F(db, s)));
            cmp_f("dx", op, &dx);
            cmp_f("dgamma", op, &dg);
            cmp_f("dbeta", op, &db);
            FREE_ALL(&dy, &dx, &dg, &db);
        }
        FREE_ALL(&x, &gamma, &beta, &rmean, &rvar, &y, &smean, &sinv);
    }
}

/* ---- loss ---- */

static struct buf labels_rand(int n, int k)
{
    int32_t *h = xmalloc((size_t)n * sizeof(int32_t));
    for (int i = 0; i < n; i++)
        h[i] = (int32_t)dc_rng_below(&rng, (uint32_t)k);
    struct buf b = buf_new(h, (size_t)n * sizeof(int32_t));
    free(h);
    return b;
}

static void test_loss(enum dc_op op)
{
    const int n = 37, ks[] = {10, 100};
    for (int t = 0; t < 2; t++) {
        const int k = ks[t];
        float *h = rand_host((size_t)n * k, -4, 4);
        for (int j = 0; j < k; j++) /* ties: row 3 all equal, row 4 two maxima */
            h[3 * k + j] = 1.0f;
        h[4 * k + 2] = h[4 * k + k - 1] = 9.0f;
        struct buf logits = buf_new(h, (size_t)n * k * sizeof(float)), labels = labels_rand(n, k);
        if (op == DC_OP_ARGMAX) {
            struct buf pred = buf_poison((size_t)n * sizeof(int32_t), 0xff);
            BOTH(s, BE(s)->ops.argmax(BE(s), n, k, F(logits, s), I32(pred, s)));
            cmp_int("pred", op, &pred, 4, 0);
            buf_free(&pred);
        } else {
            const float init[2] = {0.5f, 2.0f};
            struct buf dl = buf_nan((size_t)n * k), stats = buf_new(init, sizeof init);
            BOTH(s, BE(s)->ops.softmax_xent(BE(s), n, k, F(logits, s), I32(labels, s), NULL, 1.0f / n, F(dl, s),
                                            F(stats, s)));
            BOTH(s, BE(s)->ops.softmax_xent(BE(s), n, k, F(logits, s), I32(labels, s), NULL, 1.0f, NULL,
                                            F(stats, s))); /* statistics only */
            cmp_f("dlogits", op, &dl);
            cmp_f("stats", op, &stats);
            /* soft targets: smoothing alone, then a teacher at a temperature */
            float *th = rand_host((size_t)n * k, -6, 6);
            struct buf teacher = buf_new(th, (size_t)n * k * sizeof(float));
            const float cases[2][3] = {{0.1f, 0.0f, 1.0f}, {0.05f, 0.7f, 4.0f}};
            for (int c = 0; c < 2; c++) {
                struct buf sdl = buf_nan((size_t)n * k), sstats = buf_new(init, sizeof init);
                struct dc_soft_target soft[2];
                for (int s = 0; s < 2; s++)
                    soft[s] = (struct dc_soft_target){cases[c][0], cases[c][1], cases[c][2], F(teacher, s)};
                BOTH(s, BE(s)->ops.softmax_xent(BE(s), n, k, F(logits, s), I32(labels, s), &soft[s], 1.0f / n,
                                                F(sdl, s), F(sstats, s)));
                cmp_f(c ? "dlogits, distilled" : "dlogits, smoothed", op, &sdl);
                cmp_f(c ? "stats, distilled" : "stats, smoothed", op, &sstats);
                FREE_ALL(&sdl, &sstats);
            }
            FREE_ALL(&dl, &stats, &teacher);
            free(th);
        }
        FREE_ALL(&logits, &labels);
        free(h);
    }
}

/* ---- compression ---- */

/* One k-means run on both sides; x roughly normal like trained weights. */
static void kmeans_case(const char *what, size_t n, int masked, int m, const float *init, int iters)
{
    float *h = xmalloc(n * sizeof(float)), *hm = xmalloc(n * sizeof(float));
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        h[i] = 0.05f * dc_rng_normal(&rng);
        hm[i] = masked == 2 ? 0.0f : (!masked || dc_rng_uniform(&rng) < 0.75f) ? 1.0f : 0.0f;
        if (hm[i] != 0.0f) {
            lo = h[i] < lo ? h[i] : lo;
            hi = h[i] > hi ? h[i] : hi;
        }
    }
    float c0[256];
    for (int j = 0; j < m; j++) /* linear initialisation unless given */
        c0[j] = init ? init[j] : (lo < hi ? lo + (hi - lo) * (float)j / (float)(m - 1 > 0 ? m - 1 : 1) : 0.5f);
    struct buf x = buf_new(h, n * sizeof(float)), mask = buf_new(hm, n * sizeof(float));
    struct buf cent = buf_new(c0, (size_t)m * sizeof(float)), assign = buf_poison(n, 0xab);
    BOTH(s, BE(s)->ops.kmeans_1d(BE(s), n, F(x, s), masked ? F(mask, s) : NULL, F(cent, s), m, iters,
                                 U8(assign, s)));
    cmp_f(what, DC_OP_KMEANS_1D, &cent);
    cmp_int(what, DC_OP_KMEANS_1D, &assign, 1, n / 1000);
    FREE_ALL(&x, &mask, &cent, &assign);
    free(h);
    free(hm);
}

static void test_codebook(enum dc_op op)
{
    const size_t n = 7001;
    const int m = 32;
    uint8_t *ha = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        ha[i] = (uint8_t)dc_rng_below(&rng, (uint32_t)m);
    struct buf assign = buf_new(ha, n), code = buf_rand((size_t)m, -1, 1), g = buf_rand(n, -1, 1);
    struct buf mask = buf_nan(n), out = buf_nan(n), out2 = buf_nan(n);
    BOTH(s, BE(s)->ops.threshold_mask(BE(s), n, F(g, s), 0.2f, F(mask, s)));
    if (op == DC_OP_CODEBOOK_GATHER) {
        BOTH(s, BE(s)->ops.codebook_gather(BE(s), n, U8(assign, s), F(code, s), F(mask, s), F(out, s)));
        BOTH(s, BE(s)->ops.codebook_gather(BE(s), n, U8(assign, s), F(code, s), NULL, F(out2, s)));
    } else {
        BOTH(s, BE(s)->ops.codebook_grad(BE(s), n, U8(assign, s), F(g, s), F(mask, s), m, F(out, s)));
        BOTH(s, BE(s)->ops.codebook_grad(BE(s), n, U8(assign, s), F(g, s), NULL, m, F(out2, s)));
        out.bytes = out2.bytes = (size_t)m * sizeof(float); /* only [M] is written */
    }
    cmp_f("masked", op, &out);
    cmp_f("unmasked", op, &out2);
    FREE_ALL(&assign, &code, &g, &mask, &out, &out2);
    free(ha);
}

/* ---- data ---- */

static void test_data(enum dc_op op)
{
    const int count = 20, n = 13, c = 3, h = 9, w = 7;
    const size_t chw = (size_t)c * h * w;
    uint8_t *img = xmalloc(count * chw), lab[20];
    int32_t idx[13];
    for (size_t i = 0; i < count * chw; i++)
        img[i] = (uint8_t)dc_rng_below(&rng, 256);
    for (int i = 0; i < count; i++)
        lab[i] = (uint8_t)dc_rng_below(&rng, 10);
    for (int i = 0; i < n; i++)
        idx[i] = (int32_t)dc_rng_below(&rng, (uint32_t)count);
    struct buf images = buf_new(img, count * chw), labels = buf_new(lab, sizeof lab);
    struct buf ib = buf_new(idx, sizeof idx);
    if (op == DC_OP_BATCH_LABELS) {
        struct buf out = buf_poison(sizeof idx, 0xff);
        BOTH(s, BE(s)->ops.batch_labels(BE(s), n, U8(labels, s), I32(ib, s), I32(out, s)));
        cmp_int("labels", op, &out, 4, 0);
        buf_free(&out);
    } else {
        struct dc_batch_desc d = {c, h, w, n, 2, 1, dc_rng_next(&rng), {0.49f, 0.48f, 0.45f}, {0.25f, 0.24f, 0.26f}};
        struct buf out = buf_nan((size_t)n * chw);
        BOTH(s, BE(s)->ops.batch_images(BE(s), &d, U8(images, s), I32(ib, s), F(out, s)));
        cmp_f("crop + flip", op, &out);
        d.pad = 0; /* no augmentation, one channel (MNIST) */
        d.flip = 0;
        d.c = 1;
        BOTH(s, BE(s)->ops.batch_images(BE(s), &d, U8(images, s), I32(ib, s), F(out, s)));
        cmp_f("plain", op, &out);
        buf_free(&out);
    }
    FREE_ALL(&images, &labels, &ib);
    free(img);
}

static void test_moments(void)
{
    const size_t n = 100003;
    float *h = rand_host(n, -1, 1);
    for (size_t i = 0; i < n; i += 7) /* a pruned tensor has exact zeros */
        h[i] = 0.0f;
    struct buf x = buf_new(h, n * sizeof(float));
    double out[2][3];
    BOTH(s, BE(s)->ops.moments(BE(s), n, F(x, s), out[s]));
    for (int k = 0; k < 3; k++)
        if (!(fabs(out[0][k] - out[1][k]) <= 1e-9 + 1e-9 * fabs(out[0][k]))) {
            fprintf(stderr, "moments: [%d] ref %.17g got %.17g\n", k, out[0][k], out[1][k]);
            dc_test_failures++;
        }
    buf_free(&x);
    free(h);
}

/* ---- training step: multi-tensor update ---- */

/* Tensors of many sizes (empty, one element, a chunk of 16384 exactly and
 * one more, and one big enough that every block takes several chunks), with
 * and without mask and velocity, updated twice by sgd_multi on each side
 * and, on a copy, by one sgd_update per tensor: the GPU's multi-tensor update
 * must equal its per-tensor one bit for bit, and the CPU's within sgd_update's
 * tolerance. */
#define MT 8
static void test_sgd_multi(void)
{
    const size_t sizes[MT] = {0, 1, 1000, 16384, 16385, 70001, small ? 300001u : 9u << 20, 3};
    struct buf w[MT], w2[MT], g[MT], v[MT], v2[MT], mask[MT];
    for (int t = 0; t < MT; t++) {
        size_t n = sizes[t];
        w[t] = buf_rand(n, -1, 1);
        g[t] = buf_rand(n, -1, 1);
        v[t] = buf_rand(n, -0.1f, 0.1f);
        mask[t] = buf_nan(n);
        w2[t] = buf_new(NULL, n * sizeof(float));
        v2[t] = buf_new(NULL, n * sizeof(float));
        if (n) {
            BOTH(s, BE(s)->ops.threshold_mask(BE(s), n, F(w[t], s), 0.3f, F(mask[t], s)));
            BOTH(s, BE(s)->ops.copy(BE(s), w2[t].p[s], w[t].p[s], n * sizeof(float)));
            BOTH(s, BE(s)->ops.copy(BE(s), v2[t].p[s], v[t].p[s], n * sizeof(float)));
        }
    }
    const float lr_host = 0.05f, momentum = 0.9f, wd = 5e-4f;
    struct buf list = buf_new(NULL, MT * sizeof(struct dc_sgd_tensor)), lr = buf_new(&lr_host, sizeof lr_host);
    for (int s = 0; s < 2; s++) {
        struct dc_sgd_tensor host[MT];
        for (int t = 0; t < MT; t++)
            host[t] = (struct dc_sgd_tensor){F(w[t], s), F(g[t], s), t == 2 ? NULL : F(v[t], s),
                                             t % 2 ? F(mask[t], s) : NULL, sizes[t]};
        CHECK_OK(BE(s)->ops.upload(BE(s), list.p[s], host, sizeof host));
    }
    for (int rep = 0; rep < 2; rep++) {
        BOTH(s, BE(s)->ops.sgd_multi(BE(s), MT, list.p[s], F(lr, s), momentum, wd, rep));
        for (int t = 0; t < MT; t++)
            if (sizes[t])
                BOTH(s, BE(s)->ops.sgd_update(BE(s), sizes[t], F(w2[t], s), F(g[t], s), t == 2 ? NULL : F(v2[t], s),
                                              t % 2 ? F(mask[t], s) : NULL, lr_host, t == 2 ? 0.0f : momentum,
                                              wd, rep));
    }
    for (int t = 0; t < MT; t++) {
        size_t n = sizes[t];
        if (!n)
            continue;
        struct buf *pairs[2][2] = {{&w[t], &w2[t]}, {&v[t], &v2[t]}};
        for (int k = 0; k < 2; k++) {
            void *a[2], *b[2];
            char what[64];
            fetch(pairs[k][0], a);
            fetch(pairs[k][1], b);
            snprintf(what, sizeof what, "sgd_multi: tensor %d %s vs cpu", t, k ? "v" : "w");
            check_close(what, a[0], a[1], n, tol[DC_OP_SGD_UPDATE].atol, tol[DC_OP_SGD_UPDATE].rtol);
            for (int s = 0; s < 2; s++)
                if (memcmp(a[s], b[s], n * sizeof(float)) != 0) {
                    fprintf(stderr, "sgd_multi: tensor %d %s on %s differs from per-tensor sgd_update\n", t,
                            k ? "v" : "w", BE(s)->name);
                    dc_test_failures++;
                }
            free(a[0]);
            free(a[1]);
            free(b[0]);
            free(b[1]);
        }
    }
    for (int t = 0; t < MT; t++)
        FREE_ALL(&w[t], &w2[t], &g[t], &v[t], &v2[t], &mask[t]);
    FREE_ALL(&list, &lr);
}
#undef MT

static void test_op(enum dc_op op)
{
    static const float dup_init[8] = {0.01f, -0.02f, 0.01f, 0.03f, -0.02f, 0.0f, 0.2f, -0.2f};
    switch (op) {
    case DC_OP_ALLOC:
    case DC_OP_RELEASE:
    case DC_OP_UPLOAD:
    case DC_OP_DOWNLOAD:
    case DC_OP_COPY:
    case DC_OP_FILL:
    case DC_OP_SYNC:
        test_memory(op);
        break;
    case DC_OP_SPMAT_PREPARE:
    case DC_OP_SPMAT_RELEASE:
    case DC_OP_SPMAT_FC:
    case DC_OP_SPMAT_CONV:
        break; /* every format, shape and batch: tests/test_gpu_spmat.c */
    case DC_OP_GEMM:
    case DC_OP_AXPBY:
    case DC_OP_MUL:
    case DC_OP_BIAS_ADD:
    case DC_OP_BIAS_GRAD:
        test_dense(op);
        break;
    case DC_OP_RELU_FWD:
    case DC_OP_RELU_BWD:
    case DC_OP_DROPOUT_FWD:
    case DC_OP_CONCAT:
    case DC_OP_SPLIT:
    case DC_OP_SGD_UPDATE:
    case DC_OP_THRESHOLD_MASK:
        test_elementwise(op);
        break;
    case DC_OP_CONV_FWD:
    case DC_OP_CONV_BWD_DATA:
    case DC_OP_CONV_BWD_FILTER:
        test_conv(op);
        break;
    case DC_OP_POOL_FWD:
    case DC_OP_POOL_BWD:
        test_pool(op);
        break;
    case DC_OP_BN_FWD_TRAIN:
    case DC_OP_BN_FWD_INFER:
    case DC_OP_BN_BWD:
        test_bn(op);
        break;
    case DC_OP_SOFTMAX_XENT:
    case DC_OP_ARGMAX:
        test_loss(op);
        break;
    case DC_OP_KMEANS_1D:
        kmeans_case("masked, linear init", small ? 4000 : 20000, 1, 32, NULL, 30);
        kmeans_case("dense, 256 clusters", small ? 4000 : 30000, 0, 256, NULL, 15);
        kmeans_case("duplicate unsorted init", 5000, 0, 8, dup_init, 10);
        kmeans_case("no iterations", 3000, 1, 16, NULL, 0);
        kmeans_case("all masked out", 1000, 2, 4, NULL, 5);
        break;
    case DC_OP_CODEBOOK_GATHER:
    case DC_OP_CODEBOOK_GRAD:
        test_codebook(op);
        break;
    case DC_OP_BATCH_IMAGES:
    case DC_OP_BATCH_LABELS:
        test_data(op);
        break;
    case DC_OP_MOMENTS:
        test_moments();
        break;
    case DC_OP_SGD_MULTI:
        test_sgd_multi();
        break;
    case DC_OP_GRAPH_BEGIN:
    case DC_OP_GRAPH_END:
    case DC_OP_GRAPH_LAUNCH:
    case DC_OP_GRAPH_FREE:
        break; /* no CPU counterpart to compare: graph against eager steps in tests/test_gpu_train.c */
    case DC_OP_COUNT:
        break;
    }
}

int main(void)
{
    struct dc_backend_opts opts = {0, 0, 0}; /* FP32: TF32 would miss the tolerances on purpose */
    int verdict = pair_open("test_gpu_parity", &opts);
    if (verdict >= 0)
        return verdict;
    uint64_t seed = pair_seed((uint64_t)time(NULL));
    small = getenv("DC_TEST_SMALL") != NULL;
    printf("test_gpu_parity: %s vs %s, seed %llu (DC_TEST_SEED repeats a run)%s\n", BE(1)->description,
           BE(0)->description, (unsigned long long)seed, small ? ", small sizes" : "");
    for (int op = 0; op < DC_OP_COUNT; op++) {
        int before = dc_test_failures;
        test_op((enum dc_op)op);
        BOTH(s, BE(s)->ops.sync(BE(s)));
        printf("  %-16s %s\n", dc_op_name((enum dc_op)op), dc_test_failures == before ? "ok" : "FAILED");
    }
    pair_close();
    return test_finish("test_gpu_parity");
}
