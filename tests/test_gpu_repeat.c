/* test_gpu_repeat.c: every op of the CUDA backend, run twice on the same
 * inputs, must give bit-identical outputs (issue 12: training must be
 * repeatable and a resumed run bit-identical), in FP32 and with TF32 on.
 * Sizes are above 4096 blocks x 256 threads where an op has a grid-stride
 * loop, so the loops really loop.  Beyond the per-op runs: a second backend
 * (a fresh plan cache, as a resumed process has) must give the same
 * convolution results, shapes run small -> large -> small (workspace growth)
 * and more shapes than the plan cache holds (re-planned after eviction) must
 * reproduce their first results.  Parity with the CPU is tests/
 * test_gpu_parity.c and tests/test_gpu_edges.c.  DC_TEST_QUICK=1 runs the
 * VGG-19 shapes at batch 2 instead of 128.  Exits 77 when no GPU answers.
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
#include "dc/spmat.h"
#include "gpu_pair.h"

static struct dc_backend *be; /* the backend under test */
static int vgg_batch = 128; /* DC_TEST_QUICK=1: 2, for a quick look */

/* Past 4096 blocks x 256 threads: every grid-stride loop takes a second turn. */
#define BIG ((size_t)4096 * 256 * 2 + 77)

/* Backend buffer with `bytes` from host (NULL: filled with 0xff, NaN as floats). */
static void *dnew(const void *host, size_t bytes)
{
    void *d = NULL, *h = NULL;
    CHECK_OK(be->ops.alloc(be, &d, bytes));
    if (!host) {
        h = xmalloc(bytes);
        memset(h, 0xff, bytes);
        host = h;
    }
    if (d)
        CHECK_OK(be->ops.upload(be, d, host, bytes));
    free(h);
    return d;
}

static float *drand(size_t n, float lo, float hi)
{
    float *h = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        h[i] = lo + (hi - lo) * dc_rng_uniform(&rng);
    float *d = dnew(h, n * sizeof(float));
    free(h);
    return d;
}

static float *dnan(size_t n) { return dnew(NULL, n * sizeof(float)); }

/* A fresh copy of a backend buffer (for ops that update in place). */
static void *dcopy(const void *src, size_t bytes)
{
    void *d = NULL;
    CHECK_OK(be->ops.alloc(be, &d, bytes));
    if (d)
        CHECK_OK(be->ops.copy(be, d, src, bytes));
    return d;
}

static void dfree(void *p) { be->ops.release(be, p); }

/* The two runs' outputs must be the same bytes; prints the first difference. */
static void same(const char *op, const char *what, void *const run[2], size_t bytes)
{
    unsigned char *h[2];
    for (int r = 0; r < 2; r++) {
        h[r] = xmalloc(bytes);
        memset(h[r], r ? 0x55 : 0xaa, bytes);
        CHECK_OK(be->ops.download(be, h[r], run[r], bytes));
    }
    for (size_t i = 0; i < bytes; i++)
        if (h[0][i] != h[1][i]) {
            fprintf(stderr, "%s (%s, %s): runs differ at byte %zu of %zu (float %zu: %.9g vs %.9g)\n", op, what,
                    be->opts.tf32 ? "TF32" : "FP32", i, bytes, i / 4, (double)((float *)h[0])[i / 4],
                    (double)((float *)h[1])[i / 4]);
            dc_test_failures++;
            break;
        }
    free(h[0]);
    free(h[1]);
}

/* out[r] = a NaN-filled buffer of n floats per run; compared and freed by done(). */
struct twice {
    void *out[2];
    size_t bytes;
};
static struct twice twice_new(size_t bytes)
{
    struct twice t = {{dnew(NULL, bytes), dnew(NULL, bytes)}, bytes};
    return t;
}
static void twice_done(const char *op, const char *what, struct twice *t)
{
    same(op, what, t->out, t->bytes);
    dfree(t->out[0]);
    dfree(t->out[1]);
}
#define OUTF(t, r) ((float *)(t).out[r])

/* ---- per-op runs ---- */

static void gemm_twice(int ta, int tb, int m, int n, int k, int pad, float alpha, float beta)
{
    int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    float *a = drand((size_t)(ta ? k : m) * lda + 1, -1, 1), *b = drand((size_t)(tb ? n : k) * ldb + 1, -1, 1);
    float *c0 = drand((size_t)m * ldc, -1, 1);
    struct twice t = {{dcopy(c0, (size_t)m * ldc * 4), dcopy(c0, (size_t)m * ldc * 4)}, (size_t)m * ldc * 4};
    for (int r = 0; r < 2; r++)
        CHECK_OK(be->ops.gemm(be, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, OUTF(t, r), ldc));
    char what[80];
    snprintf(what, sizeof what, "ta %d tb %d %dx%dx%d pad %d", ta, tb, m, n, k, pad);
    twice_done("gemm", what, &t);
    dfree(a);
    dfree(b);
    dfree(c0);
}

static struct dc_conv_desc conv_make(int n, int c, int h, int w, int k, int r, int stride, int pad)
{
    struct dc_conv_desc d = {n, c, h, w, k, r, r, stride, pad, 0, 0};
    d.p = (h + 2 * pad - r) / stride + 1;
    d.q = (w + 2 * pad - r) / stride + 1;
    return d;
}

/* One direction of one shape, twice; with keep, run 0's output is returned
 * (the caller frees it) instead of being freed. */
static void *conv_twice(enum dc_op op, const struct dc_conv_desc *d, void **keep)
{
    size_t nx = (size_t)d->n * d->c * d->h * d->w, nw = (size_t)d->k * d->c * d->r * d->s;
    size_t ny = (size_t)d->n * d->k * d->p * d->q;
    dc_rng_seed(&rng, 1000u + (uint64_t)nx * 31u + nw); /* same inputs whenever this shape comes back */
    float *x = drand(nx, -1, 1), *w = drand(nw, -1, 1), *y = drand(ny, -1, 1);
    size_t nout = op == DC_OP_CONV_FWD ? ny : op == DC_OP_CONV_BWD_DATA ? nx : nw;
    struct twice t = twice_new(nout * sizeof(float));
    for (int r = 0; r < 2; r++) {
        if (op == DC_OP_CONV_FWD)
            CHECK_OK(be->ops.conv_fwd(be, d, x, w, OUTF(t, r)));
        else if (op == DC_OP_CONV_BWD_DATA)
            CHECK_OK(be->ops.conv_bwd_data(be, d, w, y, OUTF(t, r)));
        else
            CHECK_OK(be->ops.conv_bwd_filter(be, d, x, y, OUTF(t, r)));
    }
    char what[96];
    snprintf(what, sizeof what, "x[%d,%d,%d,%d] w[%d,%d,%d,%d] stride %d pad %d", d->n, d->c, d->h, d->w, d->k,
             d->c, d->r, d->s, d->stride, d->pad);
    same(dc_op_name(op), what, t.out, t.bytes);
    void *kept = NULL;
    if (keep) {
        kept = t.out[0];
        *keep = kept;
    } else {
        dfree(t.out[0]);
    }
    dfree(t.out[1]);
    dfree(x);
    dfree(w);
    dfree(y);
    return kept;
}

/* VGG-19's convolutions on 32x32 CIFAR images, batch 128. */
static const int vgg_conv[][3] = {{3, 64, 32},   {64, 64, 32},   {64, 128, 16},  {128, 128, 16}, {128, 256, 8},
                                  {256, 256, 8}, {256, 512, 4},  {512, 512, 4},  {512, 512, 2}};

static void test_conv(enum dc_op op)
{
    conv_twice(op, &(struct dc_conv_desc){1, 3, 32, 32, 64, 3, 3, 1, 1, 32, 32}, NULL); /* batch 1 */
    conv_twice(op, &(struct dc_conv_desc){1, 512, 2, 2, 512, 3, 3, 1, 1, 2, 2}, NULL);
    for (size_t i = 0; i < sizeof vgg_conv / sizeof vgg_conv[0]; i++) {
        struct dc_conv_desc d = conv_make(vgg_batch, vgg_conv[i][0], vgg_conv[i][2], vgg_conv[i][2], vgg_conv[i][1],
                                          3, 1, 1);
        conv_twice(op, &d, NULL);
    }
}

/* Small -> large -> small (the workspace grows in between), then more
 * shapes than the plan cache holds, then the first shapes again: each must
 * reproduce its first result bit for bit. */
static void test_conv_plans(void)
{
    enum { SHAPES = 72 }; /* > DC_CUDA_MAX_PLANS (64) */
    const enum dc_op ops[3] = {DC_OP_CONV_FWD, DC_OP_CONV_BWD_DATA, DC_OP_CONV_BWD_FILTER};
    struct dc_conv_desc small = conv_make(2, 8, 9, 9, 16, 3, 1, 1);
    struct dc_conv_desc large = conv_make(vgg_batch, 64, 32, 32, 64, 3, 1, 1);
    for (int o = 0; o < 3; o++) {
        void *first = NULL, *again = NULL;
        size_t bytes = ops[o] == DC_OP_CONV_FWD ? (size_t)2 * 16 * 81 * 4
                       : ops[o] == DC_OP_CONV_BWD_DATA ? (size_t)2 * 8 * 81 * 4 : (size_t)16 * 8 * 9 * 4;
        conv_twice(ops[o], &small, &first);
        conv_twice(ops[o], &large, NULL);
        for (int i = 0; i < SHAPES; i++) { /* evicts `small` from the cache */
            struct dc_conv_desc d =
                conv_make(1 + i % 3, 2 + i % 5, 5 + i, 6 + i % 4, 3 + i % 7, 1 + 2 * (i % 2), 1, i % 2);
            conv_twice(ops[o], &d, NULL);
        }
        conv_twice(ops[o], &small, &again);
        void *pair[2] = {first, again};
        same(dc_op_name(ops[o]), "after workspace growth and plan eviction", pair, bytes);
        dfree(first);
        dfree(again);
    }
}

static void test_pool(enum dc_op op)
{
    const struct dc_pool_desc shapes[] = {
        {128, 64, 32, 32, 2, 2, 0, 16, 16, 1}, /* VGG max pool, 8M inputs */
        {64, 32, 33, 33, 3, 2, 1, 17, 17, 1},  /* overlapping, padded */
        {64, 32, 16, 16, 3, 1, 1, 16, 16, 0},  /* average */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct dc_pool_desc *d = &shapes[i];
        size_t nx = (size_t)d->n * d->c * d->h * d->w, ny = (size_t)d->n * d->c * d->p * d->q;
        float *x = drand(nx, -1, 1), *dy = drand(ny, -1, 1), *y = dnan(ny);
        CHECK_OK(be->ops.pool_fwd(be, d, x, y));
        struct twice t = twice_new((op == DC_OP_POOL_FWD ? ny : nx) * sizeof(float));
        for (int r = 0; r < 2; r++)
            CHECK_OK(op == DC_OP_POOL_FWD ? be->ops.pool_fwd(be, d, x, OUTF(t, r))
                                          : be->ops.pool_bwd(be, d, x, y, dy, OUTF(t, r)));
        char what[32];
        snprintf(what, sizeof what, "shape %zu", i);
        twice_done(dc_op_name(op), what, &t);
        dfree(x);
        dfree(dy);
        dfree(y);
    }
}

static void test_bn(enum dc_op op)
{
    const struct dc_bn_desc shapes[] = {
        {128, 64, 1024, 1e-5f, 0.1f}, {1, 300, 1, 1e-5f, 0.1f}, {2, 3, 300000, 1e-3f, 0.2f}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct dc_bn_desc *d = &shapes[i];
        size_t nx = (size_t)d->n * d->c * d->hw, c = (size_t)d->c;
        float *x = drand(nx, -1, 3), *gamma = drand(c, 0.5f, 1.5f), *beta = drand(c, -0.5f, 0.5f);
        float *rmean = drand(c, -0.2f, 0.2f), *rvar = drand(c, 0.5f, 1.5f), *dy = drand(nx, -1, 1);
        float *sm = dnan(c), *si = dnan(c), *y = dnan(nx);
        CHECK_OK(be->ops.bn_fwd_train(be, d, x, gamma, beta, rmean, rvar, y, sm, si));
        struct twice ty = twice_new(nx * 4), ta = twice_new(c * 4), tb = twice_new(c * 4), tc = twice_new(c * 4),
                     td = twice_new(c * 4);
        for (int r = 0; r < 2; r++) {
            if (op == DC_OP_BN_FWD_INFER) {
                CHECK_OK(be->ops.bn_fwd_infer(be, d, x, gamma, beta, rmean, rvar, OUTF(ty, r)));
            } else if (op == DC_OP_BN_FWD_TRAIN) {
                CHECK_OK(be->ops.copy(be, ta.out[r], rmean, c * 4));
                CHECK_OK(be->ops.copy(be, tb.out[r], rvar, c * 4));
                CHECK_OK(be->ops.bn_fwd_train(be, d, x, gamma, beta, OUTF(ta, r), OUTF(tb, r), OUTF(ty, r),
                                              OUTF(tc, r), OUTF(td, r)));
            } else {
                CHECK_OK(be->ops.bn_bwd(be, d, x, dy, gamma, sm, si, OUTF(ty, r), OUTF(ta, r), OUTF(tb, r)));
                CHECK_OK(be->ops.fill(be, OUTF(tc, r), 0.0f, c));
                CHECK_OK(be->ops.fill(be, OUTF(td, r), 0.0f, c));
            }
            if (op == DC_OP_BN_FWD_INFER) {
                CHECK_OK(be->ops.fill(be, OUTF(ta, r), 0.0f, c));
                CHECK_OK(be->ops.fill(be, OUTF(tb, r), 0.0f, c));
                CHECK_OK(be->ops.fill(be, OUTF(tc, r), 0.0f, c));
                CHECK_OK(be->ops.fill(be, OUTF(td, r), 0.0f, c));
            }
        }
        char what[48];
        snprintf(what, sizeof what, "[%d,%d,%d]", d->n, d->c, d->hw);
        twice_done(dc_op_name(op), what, &ty);
        twice_done(dc_op_name(op), what, &ta);
        twice_done(dc_op_name(op), what, &tb);
        twice_done(dc_op_name(op), what, &tc);
        twice_done(dc_op_name(op), what, &td);
        void *all[] = {x, gamma, beta, rmean, rvar, dy, sm, si, y};
        for (size_t j = 0; j < sizeof all / sizeof all[0]; j++)
            dfree(all[j]);
    }
}

static void test_loss(enum dc_op op)
{
    const int shapes[][2] = {{1000, 10}, {5003, 1000}, {3, 20000}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int n = shapes[i][0], k = shapes[i][1];
        float *logits = drand((size_t)n * k, -4, 4);
        int32_t *hl = xmalloc((size_t)n * sizeof(int32_t));
        for (int j = 0; j < n; j++)
            hl[j] = (int32_t)dc_rng_below(&rng, (uint32_t)k);
        int32_t *labels = dnew(hl, (size_t)n * sizeof(int32_t));
        const float init[2] = {0.5f, 2.0f};
        struct twice t = twice_new((size_t)n * k * 4), st = {{dnew(init, 8), dnew(init, 8)}, 8},
                     pred = twice_new((size_t)n * 4);
        for (int r = 0; r < 2; r++) {
            if (op == DC_OP_SOFTMAX_XENT) {
                CHECK_OK(be->ops.softmax_xent(be, n, k, logits, labels, NULL, 1.0f / n, OUTF(t, r), OUTF(st, r)));
                CHECK_OK(be->ops.softmax_xent(be, n, k, logits, labels, NULL, 1.0f, NULL, OUTF(st, r)));
                CHECK_OK(be->ops.fill(be, OUTF(pred, r), 0.0f, (size_t)n));
            } else {
                CHECK_OK(be->ops.argmax(be, n, k, logits, (int32_t *)pred.out[r]));
                CHECK_OK(be->ops.fill(be, OUTF(t, r), 0.0f, (size_t)n * k));
                CHECK_OK(be->ops.fill(be, OUTF(st, r), 0.0f, 2));
            }
        }
        char what[32];
        snprintf(what, sizeof what, "[%d,%d]", n, k);
        twice_done(dc_op_name(op), what, &t);
        twice_done(dc_op_name(op), what, &st);
        twice_done(dc_op_name(op), what, &pred);
        dfree(logits);
        dfree(labels);
        free(hl);
    }
}

static uint8_t *assign_rand(size_t n, int m)
{
    uint8_t *h = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        h[i] = (uint8_t)dc_rng_below(&rng, (uint32_t)m);
    uint8_t *d = dnew(h, n);
    free(h);
    return d;
}

static void test_compress(enum dc_op op)
{
    const size_t n = BIG;
    float *g = drand(n, -1, 1), *mask = dnan(n);
    CHECK_OK(be->ops.threshold_mask(be, n, g, 0.2f, mask));
    if (op == DC_OP_KMEANS_1D) {
        float *x = drand(n, -0.1f, 0.1f), c0[32];
        for (int j = 0; j < 32; j++)
            c0[j] = -0.1f + 0.2f * (float)j / 31.0f;
        struct twice tc = {{dnew(c0, sizeof c0), dnew(c0, sizeof c0)}, sizeof c0}, ta = twice_new(n);
        for (int r = 0; r < 2; r++)
            CHECK_OK(be->ops.kmeans_1d(be, n, x, mask, OUTF(tc, r), 32, 20, (uint8_t *)ta.out[r]));
        twice_done("kmeans_1d", "centroids", &tc);
        twice_done("kmeans_1d", "assignments", &ta);
        dfree(x);
    } else {
        const int ms[] = {2, 32, 256};
        for (int i = 0; i < 3; i++) {
            uint8_t *assign = assign_rand(n, ms[i]);
            float *code = drand((size_t)ms[i], -1, 1);
            struct twice t = twice_new(op == DC_OP_CODEBOOK_GRAD ? (size_t)ms[i] * 4 : n * 4);
            struct twice u = twice_new(op == DC_OP_CODEBOOK_GRAD ? (size_t)ms[i] * 4 : n * 4);
            for (int r = 0; r < 2; r++) {
                if (op == DC_OP_CODEBOOK_GRAD) {
                    CHECK_OK(be->ops.codebook_grad(be, n, assign, g, mask, ms[i], OUTF(t, r)));
                    CHECK_OK(be->ops.codebook_grad(be, n, assign, g, NULL, ms[i], OUTF(u, r)));
                } else {
                    CHECK_OK(be->ops.codebook_gather(be, n, assign, code, mask, OUTF(t, r)));
                    CHECK_OK(be->ops.codebook_gather(be, n, assign, code, NULL, OUTF(u, r)));
                }
            }
            char what[32];
            snprintf(what, sizeof what, "M = %d, masked", ms[i]);
            twice_done(dc_op_name(op), what, &t);
            snprintf(what, sizeof what, "M = %d", ms[i]);
            twice_done(dc_op_name(op), what, &u);
            dfree(assign);
            dfree(code);
        }
    }
    dfree(g);
    dfree(mask);
}

static void test_data(enum dc_op op)
{
    const int count = 300, n = 128, c = 3, h = 32, w = 32;
    const size_t chw = (size_t)c * h * w;
    uint8_t *img = xmalloc(count * chw), lab[300];
    int32_t idx[128];
    for (size_t i = 0; i < count * chw; i++)
        img[i] = (uint8_t)dc_rng_below(&rng, 256);
    for (int i = 0; i < count; i++)
        lab[i] = (uint8_t)dc_rng_below(&rng, 10);
    for (int i = 0; i < n; i++)
        idx[i] = (int32_t)dc_rng_below(&rng, (uint32_t)count);
    uint8_t *images = dnew(img, count * chw), *labels = dnew(lab, sizeof lab);
    int32_t *ib = dnew(idx, sizeof idx);
    if (op == DC_OP_BATCH_LABELS) {
        struct twice t = twice_new(sizeof idx);
        for (int r = 0; r < 2; r++)
            CHECK_OK(be->ops.batch_labels(be, n, labels, ib, (int32_t *)t.out[r]));
        twice_done("batch_labels", "128 rows", &t);
    } else {
        struct dc_batch_desc d = {c, h, w, n, 4, 1, 0x1234abcdull, {0.49f, 0.48f, 0.45f}, {0.25f, 0.24f, 0.26f}};
        struct twice t = twice_new((size_t)n * chw * 4);
        for (int r = 0; r < 2; r++)
            CHECK_OK(be->ops.batch_images(be, &d, images, ib, OUTF(t, r)));
        twice_done("batch_images", "pad 4, flip, 3 channels", &t);
    }
    dfree(images);
    dfree(labels);
    dfree(ib);
    free(img);
}

/* spmat ops: a random 10%-dense [300,2000] matrix in each format. */
static void test_spmat(enum dc_op op)
{
    const int rows = 300, cols = 2000, max_n = 64;
    uint32_t *pos = xmalloc((size_t)rows * cols * sizeof(uint32_t));
    float *vals = xmalloc((size_t)rows * cols * sizeof(float)), cb[16];
    uint8_t *codes = xmalloc((size_t)rows * cols);
    int64_t nnz = 0;
    for (uint32_t at = 0; at < (uint32_t)(rows * cols); at++)
        if (dc_rng_uniform(&rng) < 0.1f) {
            pos[nnz] = at;
            codes[nnz] = (uint8_t)dc_rng_below(&rng, 16);
            vals[nnz++] = dc_rng_uniform(&rng) - 0.5f;
        }
    for (int j = 0; j < 16; j++)
        cb[j] = -0.4f + 0.05f * (float)j;
    for (int f = 0; f < DC_FORMAT_COUNT; f++) {
        struct dc_spmat_src src = {rows, cols, nnz, pos, f == DC_FORMAT_CODEBOOK ? NULL : vals,
                                   f == DC_FORMAT_CODEBOOK ? codes : NULL, cb, 16};
        struct dc_spmat *a = NULL;
        CHECK_OK(dc_spmat_create(be, (enum dc_spmat_format)f, &src, max_n, &a));
        if (!a)
            continue;
        struct twice t;
        if (op == DC_OP_SPMAT_CONV) { /* A as 300 filters of [C=8, 250 = 5x50]: x [2,8,9,54] -> y [2,300,5,5] */
            struct dc_conv_desc d = {2, 8, 9, 54, 300, 5, 50, 1, 0, 5, 5};
            float *x = drand((size_t)2 * 8 * 9 * 54, -1, 1);
            t = twice_new((size_t)2 * 300 * 25 * 4);
            for (int r = 0; r < 2; r++)
                CHECK_OK(be->ops.spmat_conv(be, &d, a, x, OUTF(t, r)));
            dfree(x);
        } else { /* fc at batch 1 (SpMV) and batch max_n */
            float *x = drand((size_t)max_n * cols, -1, 1);
            t = twice_new((size_t)(1 + max_n) * rows * 4);
            for (int r = 0; r < 2; r++) {
                CHECK_OK(be->ops.spmat_fc(be, a, 1, x, OUTF(t, r)));
                CHECK_OK(be->ops.spmat_fc(be, a, max_n, x, OUTF(t, r) + rows));
            }
            dfree(x);
        }
        twice_done(dc_op_name(op), dc_spmat_format_name((enum dc_spmat_format)f), &t);
        dc_spmat_free(be, a);
    }
    free(pos);
    free(vals);
    free(codes);
}

static void test_dense(enum dc_op op)
{
    const size_t n = BIG;
    float *x = drand(n, -1, 1), *y = drand(n, -1, 1);
    struct twice t = twice_new(n * 4);
    switch (op) {
    case DC_OP_GEMM:
        for (int tr = 0; tr < 4; tr++) {
            gemm_twice(tr & 1, tr >> 1, 300, 200, 500, 3, 0.75f, 0.5f);
            gemm_twice(tr & 1, tr >> 1, 128, 4096, 512, 0, 1.0f, 0.0f);
        }
        break;
    case DC_OP_AXPBY:
        for (int r = 0; r < 2; r++) {
            CHECK_OK(be->ops.copy(be, t.out[r], y, n * 4));
            CHECK_OK(be->ops.axpby(be, n, 1.5f, x, -0.75f, OUTF(t, r)));
        }
        break;
    case DC_OP_MUL:
        for (int r = 0; r < 2; r++)
            CHECK_OK(be->ops.mul(be, n, x, y, OUTF(t, r)));
        break;
    case DC_OP_BIAS_ADD: { /* [8,64,4096] */
        float *bias = drand(64, -1, 1);
        for (int r = 0; r < 2; r++) {
            CHECK_OK(be->ops.copy(be, t.out[r], y, (size_t)8 * 64 * 4096 * 4));
            CHECK_OK(be->ops.bias_add(be, OUTF(t, r), bias, 8, 64, 4096));
        }
        dfree(bias);
        break;
    }
    case DC_OP_BIAS_GRAD: { /* small planes, C > 65536, N = 1, and conv shapes */
        const int shapes[][3] = {{128, 512, 4},  {128, 512, 1},    {1, 70000, 3},
                                 {1, 64, 1024},  {128, 64, 1024},  {2, 4, 100000}};
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            const int nn = shapes[i][0], c = shapes[i][1], hw = shapes[i][2];
            float *dy = drand((size_t)nn * c * hw, -1, 1);
            struct twice db = twice_new((size_t)c * 4);
            for (int r = 0; r < 2; r++)
                CHECK_OK(be->ops.bias_grad(be, dy, OUTF(db, r), nn, c, hw));
            char what[48];
            snprintf(what, sizeof what, "[%d,%d,%d]", nn, c, hw);
            twice_done("bias_grad", what, &db);
            dfree(dy);
        }
        break;
    }
    default:
        break;
    }
    twice_done(dc_op_name(op), "elementwise", &t);
    dfree(x);
    dfree(y);
}

static void test_elementwise(enum dc_op op)
{
    const size_t n = BIG;
    float *x = drand(n, -1, 1), *g = drand(n, -1, 1), *v = drand(n, -0.1f, 0.1f), *mask = dnan(n);
    CHECK_OK(be->ops.threshold_mask(be, n, x, 0.3f, mask));
    struct twice t = twice_new(n * 4), u = twice_new(n * 4);
    for (int r = 0; r < 2; r++) {
        switch (op) {
        case DC_OP_RELU_FWD:
            CHECK_OK(be->ops.relu_fwd(be, n, x, OUTF(t, r)));
            CHECK_OK(be->ops.relu_fwd(be, n, g, OUTF(u, r)));
            break;
        case DC_OP_RELU_BWD:
            CHECK_OK(be->ops.relu_bwd(be, n, x, g, OUTF(t, r)));
            CHECK_OK(be->ops.relu_bwd(be, n, g, x, OUTF(u, r)));
            break;
        case DC_OP_DROPOUT_FWD:
            CHECK_OK(be->ops.dropout_fwd(be, n, 0.3f, 0x5eedull, x, OUTF(t, r), OUTF(u, r)));
            break;
        case DC_OP_THRESHOLD_MASK:
            CHECK_OK(be->ops.threshold_mask(be, n, x, 0.4f, OUTF(t, r)));
            CHECK_OK(be->ops.threshold_mask(be, n, g, 0.0f, OUTF(u, r)));
            break;
        case DC_OP_CONCAT: /* [2, 300 + 700, 1000] */
            CHECK_OK(be->ops.concat(be, 2, 300, 700, 1000, x, g, OUTF(t, r)));
            CHECK_OK(be->ops.fill(be, OUTF(u, r), 0.0f, n));
            break;
        case DC_OP_SPLIT:
            CHECK_OK(be->ops.split(be, 2, 300, 700, 1000, x, OUTF(t, r), OUTF(u, r)));
            break;
        case DC_OP_SGD_UPDATE: /* momentum + mask + nesterov, then plain */
            CHECK_OK(be->ops.copy(be, t.out[r], x, n * 4));
            CHECK_OK(be->ops.copy(be, u.out[r], v, n * 4));
            CHECK_OK(be->ops.sgd_update(be, n, OUTF(t, r), g, OUTF(u, r), mask, 0.05f, 0.9f, 5e-4f, 1));
            CHECK_OK(be->ops.sgd_update(be, n, OUTF(t, r), g, OUTF(u, r), NULL, 0.05f, 0.9f, 5e-4f, 0));
            CHECK_OK(be->ops.sgd_update(be, n, OUTF(t, r), g, NULL, NULL, 0.01f, 0.0f, 0.0f, 0));
            break;
        default:
            break;
        }
    }
    twice_done(dc_op_name(op), "out", &t);
    twice_done(dc_op_name(op), "second out", &u);
    dfree(x);
    dfree(g);
    dfree(v);
    dfree(mask);
}

static void test_memory(enum dc_op op)
{
    const size_t n = BIG;
    float *x = drand(n, -2, 2);
    struct twice t = twice_new(n * 4);
    for (int r = 0; r < 2; r++) {
        if (op == DC_OP_FILL) {
            CHECK_OK(be->ops.fill(be, OUTF(t, r), 3.25f, n));
            CHECK_OK(be->ops.fill(be, OUTF(t, r) + 1000, 0.0f, n - 2000));
        } else {
            CHECK_OK(be->ops.copy(be, t.out[r], x, n * 4));
        }
    }
    if (op == DC_OP_MOMENTS) {
        double m[2][3];
        for (int r = 0; r < 2; r++)
            CHECK_OK(be->ops.moments(be, n, x, m[r]));
        if (memcmp(m[0], m[1], sizeof m[0]) != 0) {
            fprintf(stderr, "moments: runs differ: %.17g %.17g %.17g vs %.17g %.17g %.17g\n", m[0][0], m[0][1],
                    m[0][2], m[1][0], m[1][1], m[1][2]);
            dc_test_failures++;
        }
    }
    if (op == DC_OP_SYNC)
        CHECK_OK(be->ops.sync(be));
    twice_done(dc_op_name(op), "out", &t);
    dfree(x);
}

static void test_op(enum dc_op op)
{
    switch (op) {
    case DC_OP_ALLOC:
    case DC_OP_RELEASE:
    case DC_OP_UPLOAD:
    case DC_OP_DOWNLOAD:
    case DC_OP_COPY:
    case DC_OP_FILL:
    case DC_OP_SYNC:
    case DC_OP_MOMENTS:
        test_memory(op);
        break;
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
    case DC_OP_CODEBOOK_GATHER:
    case DC_OP_CODEBOOK_GRAD:
        test_compress(op);
        break;
    case DC_OP_BATCH_IMAGES:
    case DC_OP_BATCH_LABELS:
        test_data(op);
        break;
    case DC_OP_SPMAT_PREPARE:
    case DC_OP_SPMAT_RELEASE:
        break; /* exercised by every spmat_fc / spmat_conv case */
    case DC_OP_SPMAT_FC:
    case DC_OP_SPMAT_CONV:
        test_spmat(op);
        break;
    case DC_OP_SGD_MULTI:      /* equals per-tensor sgd_update bit for bit: test_gpu_parity.c */
    case DC_OP_GRAPH_BEGIN:    /* graph against eager steps, bit for bit: test_gpu_train.c */
    case DC_OP_GRAPH_END:
    case DC_OP_GRAPH_LAUNCH:
    case DC_OP_GRAPH_FREE:
        break;
    case DC_OP_COUNT:
        break;
    }
}

/* A second backend has a fresh plan cache, as a resumed process does: its
 * algorithm choice, and so its results, must be the same. */
static void test_fresh_backend(const struct dc_backend_opts *opts)
{
    struct dc_backend *first = be, *second = NULL;
    CHECK_OK(dc_backend_create("cuda", opts, &second));
    if (!second)
        return;
    const enum dc_op ops[3] = {DC_OP_CONV_FWD, DC_OP_CONV_BWD_DATA, DC_OP_CONV_BWD_FILTER};
    for (int o = 0; o < 3; o++)
        for (size_t i = 0; i < sizeof vgg_conv / sizeof vgg_conv[0]; i += 4) {
            struct dc_conv_desc d = conv_make(vgg_batch, vgg_conv[i][0], vgg_conv[i][2], vgg_conv[i][2],
                                              vgg_conv[i][1], 3, 1, 1);
            void *out[2] = {NULL, NULL}, *h[2];
            size_t bytes = 0;
            for (int side = 0; side < 2; side++) {
                be = side ? second : first;
                conv_twice(ops[o], &d, &out[side]);
            }
            bytes = ops[o] == DC_OP_CONV_FWD ? (size_t)d.n * d.k * d.p * d.q * 4
                    : ops[o] == DC_OP_CONV_BWD_DATA ? (size_t)d.n * d.c * d.h * d.w * 4 : (size_t)d.k * d.c * 9 * 4;
            for (int side = 0; side < 2; side++) {
                be = side ? second : first;
                h[side] = xmalloc(bytes);
                CHECK_OK(be->ops.download(be, h[side], out[side], bytes));
                be->ops.release(be, out[side]);
            }
            if (memcmp(h[0], h[1], bytes) != 0) {
                fprintf(stderr, "%s: a second backend gives other results for VGG-19 conv %zu (%s): "
                        "the algorithm choice is not reproducible\n", dc_op_name(ops[o]), i,
                        opts->tf32 ? "TF32" : "FP32");
                dc_test_failures++;
            }
            free(h[0]);
            free(h[1]);
        }
    be = first;
    dc_backend_free(second);
}

int main(void)
{
    if (getenv("DC_TEST_QUICK"))
        vgg_batch = 2;
    for (int tf32 = 0; tf32 < 2; tf32++) {
        struct dc_backend_opts opts = {0, tf32, 0};
        int verdict = gpu_open("test_gpu_repeat", &opts, &be);
        if (verdict >= 0)
            return verdict;
        printf("test_gpu_repeat: %s\n", be->description);
        for (int op = 0; op < DC_OP_COUNT; op++) {
            int before = dc_test_failures;
            dc_rng_seed(&rng, 12345u + (uint64_t)op); /* both runs see the same inputs anyway */
            test_op((enum dc_op)op);
            CHECK_OK(be->ops.sync(be));
            printf("  %-16s %s\n", dc_op_name((enum dc_op)op), dc_test_failures == before ? "repeatable" : "FAILED");
        }
        int before = dc_test_failures;
        test_conv_plans();
        test_fresh_backend(&opts);
        printf("  %-16s %s\n", "conv plans", dc_test_failures == before ? "repeatable" : "FAILED");
        dc_backend_free(be);
        be = NULL;
    }
    return test_finish("test_gpu_repeat");
}
