/* test_gradcheck.c: finite-difference gradient check of every layer type and
 * of the softmax cross-entropy loss on the CPU backend, and of a small whole
 * network (so the wiring of activations and gradients between layers is
 * checked too).  For a layer, L = sum(y * r) for a fixed random r; each
 * sampled entry of dx and of every parameter gradient is compared with the
 * central difference (L(v + eps) - L(v - eps)) / 2 eps in float32.
 *
 * Where the function has kinks (ReLU, max pooling) the values are kept away
 * from them by construction: a central difference across a kink is wrong by
 * up to the slope change, and a Fire bias moves a whole channel, so random
 * weights would cross one in most runs.  The Fire module gets biases large
 * against the rest of each pre-activation, fixing the sign of every ReLU
 * input (half the channels on, half off); the whole-network check uses
 * smooth layers only (the kinked ones are checked alone). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dc/layer.h"
#include "dc/net.h"
#include "dc/rng.h"

#define GC_SAMPLES 50

struct gc_opts {
    float eps, atol, rtol;
};

static const struct gc_opts gc_default = {1e-2f, 2e-3f, 2e-2f};
/* the Fire module's gradients are small by construction (see gc_fire_margins) */
static const struct gc_opts gc_fine = {1e-2f, 3e-4f, 2e-2f};

static struct dc_rng gc_rng;

static float *gc_random(size_t n, float lo, float hi)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * dc_rng_uniform(&gc_rng);
    return v;
}

/* The function being differentiated: L of the current backend values. */
struct gc_target {
    double (*loss)(void *ctx);
    void *ctx;
};

/* A tensor whose analytic gradient is checked: each sampled entry of the host
 * copy is perturbed, uploaded to `dev`, and L evaluated (at most GC_SAMPLES
 * entries, so a test stays fast). */
struct gc_tensor_ref {
    const char *what;
    float *value;     /* host copy, perturbed in place */
    const float *grad; /* analytic gradient */
    size_t count;
    struct dc_backend *be;
    float *dev;       /* backend memory the value lives in */
};

static void gc_compare(const struct gc_target *t, struct gc_tensor_ref *ref, const struct gc_opts *o)
{
    size_t samples = ref->count < GC_SAMPLES ? ref->count : GC_SAMPLES;
    float *num = malloc(samples * sizeof *num), *ana = malloc(samples * sizeof *ana);
    float max_ana = 0.0f;
    for (size_t s = 0; s < samples; s++) {
        size_t i = ref->count <= GC_SAMPLES ? s : (size_t)dc_rng_below(&gc_rng, (uint32_t)ref->count);
        float v = ref->value[i];
        size_t bytes = ref->count * sizeof(float);
        ref->value[i] = v + o->eps;
        CHECK_OK(ref->be->ops.upload(ref->be, ref->dev, ref->value, bytes));
        double lp = t->loss(t->ctx);
        ref->value[i] = v - o->eps;
        CHECK_OK(ref->be->ops.upload(ref->be, ref->dev, ref->value, bytes));
        double lm = t->loss(t->ctx);
        ref->value[i] = v;
        CHECK_OK(ref->be->ops.upload(ref->be, ref->dev, ref->value, bytes));
        num[s] = (float)((lp - lm) / (2.0 * o->eps));
        ana[s] = ref->grad[i];
        if (fabsf(ana[s]) > max_ana)
            max_ana = fabsf(ana[s]);
    }
    check_close(ref->what, num, ana, samples, o->atol, o->rtol);
    /* an all-zero analytic gradient would pass against a constant loss */
    if (!(max_ana > 1e-4f)) {
        fprintf(stderr, "%s: analytic gradient is zero at every sampled entry\n", ref->what);
        dc_test_failures++;
    }
    free(num);
    free(ana);
}

/* Every trainable parameter's gradient (already computed into p->g) against t. */
static void gc_check_params(struct dc_backend *be, const struct gc_target *t, struct dc_param *const *params,
                            int nparams, const char *what, const struct gc_opts *o)
{
    for (int i = 0; i < nparams; i++) {
        struct dc_param *p = params[i];
        if (!p->trainable)
            continue;
        size_t count = dc_param_count(p);
        float *wh = malloc(count * sizeof(float)), *gh = malloc(count * sizeof(float));
        CHECK_OK(dc_tensor_download(be, &p->w, wh));
        CHECK_OK(dc_tensor_download(be, &p->g, gh));
        char label[128];
        snprintf(label, sizeof label, "%s d(%s)", what, p->name);
        struct gc_tensor_ref ref = {label, wh, gh, count, be, p->w.data};
        gc_compare(t, &ref, o);
        free(wh);
        free(gh);
    }
}

/* ---- one layer: L = sum(y * r) ---- */

struct gc_layer_ctx {
    struct dc_backend *be;
    struct dc_layer *l;
    struct dc_tensor x, y, dy, dx;
    struct dc_pass pass;
    float *r, *yh;
};

static double gc_layer_loss(void *p)
{
    struct gc_layer_ctx *c = p;
    CHECK_OK(c->l->ops->forward(c->l, c->be, &c->x, &c->y, &c->pass));
    CHECK_OK(dc_tensor_download(c->be, &c->y, c->yh));
    double sum = 0.0;
    for (size_t i = 0; i < dc_tensor_count(&c->y); i++)
        sum += (double)c->yh[i] * c->r[i];
    return sum;
}

/* Check dx (when check_dx) and every trainable parameter gradient of l on the
 * host input xh [n, in_c, in_h, in_w]. */
static void gc_layer(struct dc_backend *be, const char *what, struct dc_layer *l, int n, float *xh,
                     const struct dc_pass *pass, const struct gc_opts *o)
{
    struct gc_layer_ctx c = {.be = be, .l = l, .pass = *pass};
    CHECK_OK(dc_tensor_alloc(be, &c.x, n, l->in_c, l->in_h, l->in_w));
    CHECK_OK(dc_tensor_alloc(be, &c.dx, n, l->in_c, l->in_h, l->in_w));
    CHECK_OK(dc_tensor_alloc(be, &c.y, n, l->out_c, l->out_h, l->out_w));
    CHECK_OK(dc_tensor_alloc(be, &c.dy, n, l->out_c, l->out_h, l->out_w));
    size_t ycount = dc_tensor_count(&c.y), xcount = dc_tensor_count(&c.x);
    c.r = gc_random(ycount, -1.0f, 1.0f);
    c.yh = malloc(ycount * sizeof(float));
    CHECK_OK(dc_tensor_upload(be, &c.x, xh));
    CHECK_OK(dc_tensor_upload(be, &c.dy, c.r));

    struct gc_target t = {gc_layer_loss, &c};
    gc_layer_loss(&c);
    CHECK(c.y.n == n && c.y.c == l->out_c && c.y.h == l->out_h && c.y.w == l->out_w);
    CHECK_OK(l->ops->backward(l, be, &c.x, &c.y, &c.dy, &c.dx));
    CHECK(c.dx.n == n && c.dx.c == l->in_c && c.dx.h == l->in_h && c.dx.w == l->in_w);

    char label[128];
    float *dxh = malloc(xcount * sizeof(float));
    CHECK_OK(dc_tensor_download(be, &c.dx, dxh));
    snprintf(label, sizeof label, "%s dx", what);
    struct gc_tensor_ref xref = {label, xh, dxh, xcount, be, c.x.data};
    gc_compare(&t, &xref, o);
    free(dxh);

    gc_check_params(be, &t, l->params, l->nparams, what, o);
    free(c.r);
    free(c.yh);
    dc_tensor_free(be, &c.x);
    dc_tensor_free(be, &c.dx);
    dc_tensor_free(be, &c.y);
    dc_tensor_free(be, &c.dy);
}

static const struct dc_pass gc_train = {.train = 1, .seed = 0x5eedull};

/* Random input in [-1, 1] with |x| >= 0.1, away from the ReLU kink. */
static float *gc_input_away_from_zero(size_t n)
{
    float *v = gc_random(n, 0.1f, 1.0f);
    for (size_t i = 0; i < n; i++)
        if (dc_rng_uniform(&gc_rng) < 0.5f)
            v[i] = -v[i];
    return v;
}

/* Distinct values 0.05 apart in random order: no two within 2 eps, so a
 * perturbation never changes which element of a window is the maximum. */
static float *gc_input_distinct(size_t n)
{
    int32_t *perm = malloc(n * sizeof *perm);
    for (size_t i = 0; i < n; i++)
        perm[i] = (int32_t)i;
    dc_rng_shuffle(&gc_rng, perm, (int)n);
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = 0.05f * ((float)perm[i] - 0.5f * (float)n);
    free(perm);
    return v;
}

static void gc_run(struct dc_backend *be, const char *what, struct dc_layer *l, int n, float *xh,
                   const struct gc_opts *o)
{
    if (!l) {
        dc_test_failures++;
        free(xh);
        return;
    }
    gc_layer(be, what, l, n, xh, &gc_train, o);
    free(xh);
    dc_layer_free(be, l);
}

static size_t gc_in(const struct dc_layer *l, int n)
{
    return (size_t)n * l->in_c * l->in_h * l->in_w;
}

static void test_conv_fc(struct dc_backend *be)
{
    struct dc_layer *l = NULL;
    CHECK_OK(dc_layer_conv_create(be, "conv_b", 3, 7, 6, 4, 3, 1, 0, 1, 2, &gc_rng, &l));
    gc_run(be, "conv bias s1 p0", l, 2, gc_random(gc_in(l, 2), -1, 1), &gc_default);
    l = NULL;
    CHECK_OK(dc_layer_conv_create(be, "conv_nb", 2, 8, 7, 3, 3, 2, 1, 0, 3, &gc_rng, &l));
    CHECK(l && l->nparams == 1 && l->out_h == 4 && l->out_w == 4);
    gc_run(be, "conv nobias s2 p1", l, 3, gc_random(gc_in(l, 3), -1, 1), &gc_default);
    l = NULL;
    CHECK_OK(dc_layer_conv_create(be, "conv_5", 2, 9, 9, 3, 5, 2, 2, 1, 2, &gc_rng, &l));
    gc_run(be, "conv bias 5x5 s2 p2", l, 2, gc_random(gc_in(l, 2), -1, 1), &gc_default);
    l = NULL;
    CHECK_OK(dc_layer_fc_create(be, "fc", 2, 3, 4, 5, 3, &gc_rng, &l));
    gc_run(be, "fc", l, 3, gc_random(gc_in(l, 3), -1, 1), &gc_default);
}

static void test_pool(struct dc_backend *be)
{
    struct dc_layer *l = NULL;
    CHECK_OK(dc_layer_pool_create(be, "max2", 3, 6, 6, 1, 2, 2, 0, 2, &l));
    gc_run(be, "maxpool 2/2", l, 2, gc_input_distinct(gc_in(l, 2)), &gc_default);
    l = NULL;
    CHECK_OK(dc_layer_pool_create(be, "max3", 2, 7, 5, 1, 3, 2, 1, 2, &l));
    CHECK(l && l->out_h == 4 && l->out_w == 3);
    gc_run(be, "maxpool 3/2 pad 1", l, 2, gc_input_distinct(gc_in(l, 2)), &gc_default);
    l = NULL;
    CHECK_OK(dc_layer_pool_create(be, "avg2", 3, 6, 4, 0, 2, 2, 0, 2, &l));
    gc_run(be, "avgpool 2/2", l, 2, gc_random(gc_in(l, 2), -1, 1), &gc_default);
    l = NULL;
    CHECK_OK(dc_layer_pool_create(be, "avg3", 2, 5, 5, 0, 3, 2, 1, 2, &l));
    gc_run(be, "avgpool 3/2 pad 1", l, 2, gc_random(gc_in(l, 2), -1, 1), &gc_default);
    l = NULL;
    CHECK_OK(dc_layer_pool_create(be, "gap", 4, 5, 5, 0, 0, 0, 0, 3, &l));
    CHECK(l && l->out_c == 4 && l->out_h == 1 && l->out_w == 1);
    gc_run(be, "global avgpool", l, 3, gc_random(gc_in(l, 3), -1, 1), &gc_default);
}

/* gamma and beta start at 1 and 0; random values check their roles are not swapped */
static void gc_bn_randomise(struct dc_backend *be, struct dc_layer *l)
{
    for (int i = 0; i < 2; i++) {
        float *v = gc_random(dc_param_count(l->params[i]), 0.5f, 1.5f);
        CHECK_OK(dc_tensor_upload(be, &l->params[i]->w, v));
        free(v);
    }
}

/* Every ReLU input of the Fire module keeps its sign within eps: biases of
 * magnitude 1..1.5 (alternating sign by channel, so some channels are cut),
 * weights small enough that the rest of the pre-activation stays below 0.8
 * (inputs in [-1, 1]: squeeze 4 x 0.2; expand1 3 x 0.05 x 2.3; expand3 27 x 0.01 x 2.3). */
static void gc_fire_margins(struct dc_backend *be, struct dc_layer *l)
{
    static const float wmax[3] = {0.2f, 0.05f, 0.01f};
    for (int conv = 0; conv < 3; conv++) {
        struct dc_param *w = l->params[2 * conv], *b = l->params[2 * conv + 1];
        float *wh = gc_random(dc_param_count(w), -wmax[conv], wmax[conv]);
        float *bh = gc_random(dc_param_count(b), 1.0f, 1.5f);
        for (size_t k = 1; k < dc_param_count(b); k += 2)
            bh[k] = -bh[k];
        CHECK_OK(dc_tensor_upload(be, &w->w, wh));
        CHECK_OK(dc_tensor_upload(be, &b->w, bh));
        free(wh);
        free(bh);
    }
}

static void test_elementwise(struct dc_backend *be)
{
    struct dc_layer *l = NULL;
    CHECK_OK(dc_layer_relu_create(be, "relu", 3, 4, 5, 2, &l));
    gc_run(be, "relu", l, 2, gc_input_away_from_zero(gc_in(l, 2)), &gc_default);
    l = NULL;
    CHECK_OK(dc_layer_bn_create(be, "bn", 3, 4, 3, 4, &l));
    if (l)
        gc_bn_randomise(be, l);
    gc_run(be, "batchnorm train", l, 4, gc_random(gc_in(l, 4), -2, 3), &gc_default);
    l = NULL;
    CHECK_OK(dc_layer_dropout_create(be, "drop", 3, 4, 4, 0.3f, 2, &l));
    if (l)
        l->index = 3;
    gc_run(be, "dropout", l, 2, gc_random(gc_in(l, 2), -1, 1), &gc_default);
    l = NULL;
    CHECK_OK(dc_layer_fire_create(be, "fire", 4, 5, 5, 3, 4, 5, 2, &gc_rng, &l));
    CHECK(l && l->out_c == 9 && l->nparams == 6);
    if (l)
        gc_fire_margins(be, l);
    gc_run(be, "fire", l, 2, gc_random(gc_in(l, 2), -1, 1), &gc_fine);
}

/* ---- forward against plain host loops ----
 * A forward that is wrong but consistent with its backward (say, output rows
 * and columns swapped in the descriptor) passes any gradient check, so the
 * layers that fill descriptors are also compared with a direct computation. */

static float *gc_download_param(struct dc_backend *be, const struct dc_param *p)
{
    float *h = malloc(dc_param_count(p) * sizeof(float));
    CHECK_OK(dc_tensor_download(be, &p->w, h));
    return h;
}

/* x [N,C,H,W], w [K,C,R,R], b [K] or NULL -> y [N,K,P,Q]; also pooling when w is NULL */
struct gc_win {
    int n, c, h, w, k, size, stride, pad, p, q, is_max;
};

static float gc_window(const struct gc_win *g, const float *x, const float *w, int n, int k, int p, int q)
{
    double acc = 0.0, best = -1e30;
    int cells = 0;
    for (int c = w ? 0 : k; c < (w ? g->c : k + 1); c++)
        for (int r = 0; r < g->size; r++)
            for (int t = 0; t < g->size; t++) {
                int hi = p * g->stride - g->pad + r, wi = q * g->stride - g->pad + t;
                if (hi < 0 || hi >= g->h || wi < 0 || wi >= g->w)
                    continue;
                double v = x[(((size_t)n * g->c + c) * g->h + hi) * g->w + wi];
                if (w)
                    v *= w[(((size_t)k * g->c + c) * g->size + r) * g->size + t];
                acc += v;
                best = v > best ? v : best;
                cells++;
            }
    if (w)
        return (float)acc;
    return (float)(g->is_max ? best : acc / cells);
}

/* y [N,K,P,Q] from x by the window g, with weights w and bias b (either may be NULL) */
static void gc_window_all(const struct gc_win *g, const float *x, const float *w, const float *b, float *y)
{
    for (int n = 0; n < g->n; n++)
        for (int k = 0; k < g->k; k++)
            for (int p = 0; p < g->p; p++)
                for (int q = 0; q < g->q; q++)
                    y[(((size_t)n * g->k + k) * g->p + p) * g->q + q] =
                        gc_window(g, x, w, n, k, p, q) + (b ? b[k] : 0.0f);
}

/* Run l on random x [N, in] and compare with ref(x) */
typedef void (*gc_ref_fn)(struct dc_backend *be, const struct dc_layer *l, const struct gc_win *g, const float *x,
                          float *y);

static void gc_forward_check(struct dc_backend *be, const char *what, struct dc_layer *l, const struct gc_win *g,
                             gc_ref_fn fn)
{
    if (!l) {
        dc_test_failures++;
        return;
    }
    struct dc_tensor x, y;
    CHECK_OK(dc_tensor_alloc(be, &x, g->n, l->in_c, l->in_h, l->in_w));
    CHECK_OK(dc_tensor_alloc(be, &y, g->n, l->out_c, l->out_h, l->out_w));
    CHECK(l->out_h == g->p && l->out_w == g->q);
    float *xh = gc_random(dc_tensor_count(&x), -1, 1), *yh = malloc(dc_tensor_count(&y) * sizeof(float));
    float *ref = malloc(dc_tensor_count(&y) * sizeof(float));
    fn(be, l, g, xh, ref);
    CHECK_OK(dc_tensor_upload(be, &x, xh));
    CHECK_OK(l->ops->forward(l, be, &x, &y, &gc_train));
    CHECK_OK(dc_tensor_download(be, &y, yh));
    check_close(what, ref, yh, dc_tensor_count(&y), 1e-5f, 1e-4f);
    free(xh), free(yh), free(ref);
    dc_tensor_free(be, &x);
    dc_tensor_free(be, &y);
    dc_layer_free(be, l);
}

/* conv, fc (params[0] weight, params[1] bias if any) and pooling (no params) */
static void gc_ref_window(struct dc_backend *be, const struct dc_layer *l, const struct gc_win *g, const float *x,
                          float *y)
{
    float *wh = l->nparams > 0 ? gc_download_param(be, l->params[0]) : NULL;
    float *bh = l->nparams > 1 ? gc_download_param(be, l->params[1]) : NULL;
    gc_window_all(g, x, wh, bh, y);
    free(wh), free(bh);
}

static void gc_relu_host(float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = v[i] > 0.0f ? v[i] : 0.0f;
}

/* relu(concat(expand1(s), expand3(s))) with s = relu(squeeze(x)); g is the squeeze window */
static void gc_ref_fire(struct dc_backend *be, const struct dc_layer *l, const struct gc_win *g, const float *x,
                        float *y)
{
    float *w[6];
    for (int i = 0; i < 6; i++)
        w[i] = gc_download_param(be, l->params[i]);
    int sq = l->params[0]->w.n, e1 = l->params[2]->w.n, e3 = l->params[4]->w.n, hw = g->h * g->w;
    struct gc_win gs = *g, g1 = *g, g3 = *g;
    gs.k = sq, gs.size = 1, gs.pad = 0;
    g1.c = sq, g1.k = e1, g1.size = 1, g1.pad = 0;
    g3.c = sq, g3.k = e3, g3.size = 3, g3.pad = 1;
    float *s = malloc((size_t)g->n * sq * hw * sizeof(float));
    float *a = malloc((size_t)g->n * e1 * hw * sizeof(float)), *b = malloc((size_t)g->n * e3 * hw * sizeof(float));
    gc_window_all(&gs, x, w[0], w[1], s);
    gc_relu_host(s, (size_t)g->n * sq * hw);
    gc_window_all(&g1, s, w[2], w[3], a);
    gc_window_all(&g3, s, w[4], w[5], b);
    for (int n = 0; n < g->n; n++) {
        memcpy(y + (size_t)n * (e1 + e3) * hw, a + (size_t)n * e1 * hw, (size_t)e1 * hw * sizeof(float));
        memcpy(y + ((size_t)n * (e1 + e3) + e1) * hw, b + (size_t)n * e3 * hw, (size_t)e3 * hw * sizeof(float));
    }
    gc_relu_host(y, (size_t)g->n * (e1 + e3) * hw);
    free(s), free(a), free(b);
    for (int i = 0; i < 6; i++)
        free(w[i]);
}

static void test_forward(struct dc_backend *be)
{
    struct dc_layer *l = NULL;
    CHECK_OK(dc_layer_conv_create(be, "conv", 3, 8, 7, 4, 3, 2, 1, 1, 2, &gc_rng, &l));
    gc_forward_check(be, "conv forward", l, &(struct gc_win){2, 3, 8, 7, 4, 3, 2, 1, 4, 4, 0}, gc_ref_window);
    l = NULL;
    CHECK_OK(dc_layer_conv_create(be, "conv5", 2, 9, 6, 3, 5, 1, 2, 0, 2, &gc_rng, &l));
    gc_forward_check(be, "conv 5x5 forward", l, &(struct gc_win){2, 2, 9, 6, 3, 5, 1, 2, 9, 6, 0}, gc_ref_window);
    l = NULL;
    /* an fc layer is a conv whose kernel covers the whole input */
    CHECK_OK(dc_layer_fc_create(be, "fc", 2, 3, 3, 5, 3, &gc_rng, &l));
    gc_forward_check(be, "fc forward", l, &(struct gc_win){3, 2, 3, 3, 5, 3, 1, 0, 1, 1, 0}, gc_ref_window);
    l = NULL;
    CHECK_OK(dc_layer_pool_create(be, "max", 3, 7, 5, 1, 3, 2, 1, 2, &l));
    gc_forward_check(be, "maxpool forward", l, &(struct gc_win){2, 3, 7, 5, 3, 3, 2, 1, 4, 3, 1}, gc_ref_window);
    l = NULL;
    CHECK_OK(dc_layer_pool_create(be, "avg", 2, 6, 5, 0, 3, 2, 1, 2, &l));
    gc_forward_check(be, "avgpool forward", l, &(struct gc_win){2, 2, 6, 5, 2, 3, 2, 1, 3, 3, 0}, gc_ref_window);
    l = NULL;
    CHECK_OK(dc_layer_pool_create(be, "gap", 3, 4, 4, 0, 0, 0, 0, 2, &l));
    gc_forward_check(be, "global avgpool forward", l, &(struct gc_win){2, 3, 4, 4, 3, 4, 4, 0, 1, 1, 0}, gc_ref_window);
    l = NULL;
    CHECK_OK(dc_layer_fire_create(be, "fire", 3, 5, 4, 4, 3, 5, 2, &gc_rng, &l));
    gc_forward_check(be, "fire forward", l, &(struct gc_win){2, 3, 5, 4, 4, 1, 1, 0, 5, 4, 0}, gc_ref_fire);
}

/* ---- softmax cross-entropy: L = mean over rows of -log p(label) ---- */

struct gc_xent_ctx {
    struct dc_backend *be;
    int n, k;
    float *logits, *dlogits, *stats;
    int32_t *labels;
    const struct dc_soft_target *soft; /* NULL: hard labels */
};

static double gc_xent_loss(void *p)
{
    struct gc_xent_ctx *c = p;
    float stats[2];
    CHECK_OK(c->be->ops.fill(c->be, c->stats, 0.0f, 2));
    CHECK_OK(c->be->ops.softmax_xent(c->be, c->n, c->k, c->logits, c->labels, c->soft, 1.0f / (float)c->n,
                                     c->dlogits, c->stats));
    CHECK_OK(c->be->ops.download(c->be, stats, c->stats, sizeof stats));
    return (double)stats[0] / c->n;
}

static void test_xent(struct dc_backend *be)
{
    struct gc_xent_ctx c = {.be = be, .n = 4, .k = 7};
    size_t count = (size_t)c.n * c.k;
    float *lh = gc_random(count, -3.0f, 3.0f), *gh = malloc(count * sizeof(float));
    int32_t labels[4];
    for (int i = 0; i < c.n; i++)
        labels[i] = (int32_t)dc_rng_below(&gc_rng, (uint32_t)c.k);
    CHECK_OK(be->ops.alloc(be, (void **)&c.logits, count * sizeof(float)));
    CHECK_OK(be->ops.alloc(be, (void **)&c.dlogits, count * sizeof(float)));
    CHECK_OK(be->ops.alloc(be, (void **)&c.stats, 2 * sizeof(float)));
    CHECK_OK(be->ops.alloc(be, (void **)&c.labels, sizeof labels));
    CHECK_OK(be->ops.upload(be, c.labels, labels, sizeof labels));
    CHECK_OK(be->ops.upload(be, c.logits, lh, count * sizeof(float)));
    /* hard labels; label smoothing; a teacher at temperature 3 beside smoothing */
    float *th = gc_random(count, -4.0f, 4.0f), *teacher = NULL;
    CHECK_OK(be->ops.alloc(be, (void **)&teacher, count * sizeof(float)));
    CHECK_OK(be->ops.upload(be, teacher, th, count * sizeof(float)));
    const struct dc_soft_target smooth = {0.1f, 0.0f, 1.0f, NULL}, distill = {0.05f, 0.6f, 3.0f, teacher};
    const struct dc_soft_target *cases[3] = {NULL, &smooth, &distill};
    const char *names[3] = {"softmax xent dlogits", "softmax xent dlogits, smoothed",
                            "softmax xent dlogits, distilled"};
    for (int i = 0; i < 3; i++) {
        c.soft = cases[i];
        double l0 = gc_xent_loss(&c);
        CHECK(l0 > 0.0);
        CHECK_OK(be->ops.download(be, gh, c.dlogits, count * sizeof(float)));
        struct gc_target t = {gc_xent_loss, &c};
        struct gc_tensor_ref ref = {names[i], lh, gh, count, be, c.logits};
        gc_compare(&t, &ref, &gc_default);
    }
    be->ops.release(be, teacher);
    free(th);
    be->ops.release(be, c.logits);
    be->ops.release(be, c.dlogits);
    be->ops.release(be, c.stats);
    be->ops.release(be, c.labels);
    free(lh);
    free(gh);
}

/* ---- a small whole network: every parameter against the mean loss ----
 * Smooth layers only, so no kink can be crossed; the point is the wiring
 * between layers, the expansion of a conv section and the loss scaling. */

struct gc_net_ctx {
    struct dc_net *net;
    int n;
};

static double gc_net_loss(void *p)
{
    struct gc_net_ctx *c = p;
    double loss, correct;
    CHECK_OK(dc_net_stats_reset(c->net));
    CHECK_OK(dc_net_forward(c->net, c->n, &gc_train));
    CHECK_OK(dc_net_loss(c->net, c->n));
    CHECK_OK(dc_net_stats_read(c->net, &loss, &correct));
    return loss / c->n;
}

static void gc_cfg_layer(struct dc_config *cfg, enum dc_layer_type type, const char *name)
{
    struct dc_layer_cfg *lc = &cfg->layers[cfg->nlayers];
    memset(lc, 0, sizeof *lc);
    lc->type = type;
    snprintf(lc->name, sizeof lc->name, "%s", name);
    lc->line = 10 * (cfg->nlayers + 1);
    lc->stride = 1;
    lc->prune = -1.0f;
    cfg->nlayers++;
}

static void test_net(struct dc_backend *be)
{
    struct dc_config *cfg = calloc(1, sizeof *cfg);
    gc_cfg_layer(cfg, DC_LAYER_CONV, "conv1");
    cfg->layers[0].filters = 4, cfg->layers[0].size = 3, cfg->layers[0].pad = 1;
    cfg->layers[0].batch_normalize = 1;
    gc_cfg_layer(cfg, DC_LAYER_AVGPOOL, "pool1");
    cfg->layers[1].size = 2, cfg->layers[1].stride = 2;
    gc_cfg_layer(cfg, DC_LAYER_CONV, "conv2");
    cfg->layers[2].filters = 3, cfg->layers[2].size = 3, cfg->layers[2].pad = 1, cfg->layers[2].stride = 2;
    gc_cfg_layer(cfg, DC_LAYER_DROPOUT, "drop2");
    cfg->layers[3].probability = 0.25f;
    gc_cfg_layer(cfg, DC_LAYER_FC, "fc3");
    cfg->layers[4].outputs = 5;

    struct gc_net_ctx c = {.n = 3};
    CHECK_OK(dc_net_create(be, cfg, 2, 6, 6, 5, 4, 42, &c.net));
    if (!c.net) {
        free(cfg);
        return;
    }
    CHECK(c.net->nlayers == 6); /* conv1, conv1.bn, pool1, conv2, drop2, fc3 */
    float *xh = gc_random(dc_tensor_count(&c.net->act[0]), -1, 1);
    int32_t labels[4] = {0, 3, 4, 1};
    CHECK_OK(dc_tensor_upload(be, &c.net->act[0], xh));
    CHECK_OK(be->ops.upload(be, c.net->labels, labels, sizeof labels));
    gc_net_loss(&c);
    CHECK_OK(dc_net_backward(c.net, c.n));
    struct gc_target t = {gc_net_loss, &c};
    gc_check_params(be, &t, c.net->params, c.net->nparams, "net", &gc_default);
    free(xh);
    dc_net_free(c.net);
    free(cfg);
}

int main(void)
{
    struct dc_backend *be = NULL;
    CHECK_OK(dc_backend_create("cpu", NULL, &be));
    if (!be)
        return test_finish("test_gradcheck");
    dc_rng_seed(&gc_rng, 20240611);
    test_forward(be);
    test_conv_fc(be);
    test_pool(be);
    test_elementwise(be);
    test_xent(be);
    test_net(be);
    dc_backend_free(be);
    return test_finish("test_gradcheck");
}
