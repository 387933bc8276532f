/* test_prune.c: magnitude pruning on the CPU backend: the std threshold is
 * quality x std of the surviving weights; a target sparsity prunes exactly
 * that many weights; the gradual schedule and per-layer overrides; masks only
 * ever shrink (a pruned weight never returns); and pruned weights stay
 * exactly zero through SGD steps with momentum and weight decay. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dc/config.h"
#include "dc/net.h"
#include "dc/prune.h"
#include "dc/rng.h"

enum { NB = 8, IN = 20, CLASSES = 4 };

static const char net_text[] = "[fc]\nname = fc1\noutputs = 50\nactivation = relu\n"
                               "[fc]\nname = fc2\noutputs = 4\nprune = 0.4\n";

static struct dc_rng rng;

static void download(struct dc_backend *be, const float *src, float *dst, size_t n)
{
    CHECK_OK(be->ops.download(be, dst, src, n * 4));
}

static size_t count_nonzero(const float *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += v[i] != 0.0f;
    return k;
}

static void test_thresholds(struct dc_backend *be, struct dc_net *net)
{
    struct dc_param *p = dc_net_find_param(net, "fc1.weight");
    size_t n = dc_param_count(p);
    float *w = malloc(n * 4), *m = malloc(n * 4);
    download(be, p->w.data, w, n);
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++)
        s += w[i], s2 += (double)w[i] * w[i];
    double sd = sqrt(s2 / (double)n - (s / (double)n) * (s / (double)n));
    float t;
    CHECK_OK(dc_prune_threshold(be, p, DC_PRUNE_STD, 0.8f, &t));
    CHECK(fabs(t - 0.8 * sd) <= 1e-5 * sd);
    /* sparsity 0.3: exactly round(0.3 n) of the (distinct) magnitudes go */
    size_t kept;
    CHECK_OK(dc_prune_threshold(be, p, DC_PRUNE_SPARSITY, 0.3f, &t));
    CHECK_OK(dc_prune_apply(be, p, t, &kept));
    CHECK(kept == n - (size_t)llround(0.3 * (double)n));
    download(be, p->w.data, w, n);
    download(be, p->mask, m, n);
    CHECK(count_nonzero(w, n) == kept && count_nonzero(m, n) == kept);
    /* now the std is over the survivors only */
    s = s2 = 0;
    for (size_t i = 0; i < n; i++)
        if (m[i] != 0.0f)
            s += w[i], s2 += (double)w[i] * w[i];
    sd = sqrt(s2 / (double)kept - (s / (double)kept) * (s / (double)kept));
    CHECK_OK(dc_prune_threshold(be, p, DC_PRUNE_STD, 1.0f, &t));
    CHECK(fabs(t - sd) <= 1e-5 * sd);
    /* fresh non-zero values everywhere, then a threshold that keeps all: the mask stays */
    for (size_t i = 0; i < n; i++)
        w[i] = 1.0f + dc_rng_uniform(&rng);
    CHECK_OK(be->ops.upload(be, p->w.data, w, n * 4));
    CHECK_OK(dc_prune_apply(be, p, -1.0f, &kept));
    CHECK(kept == n - (size_t)llround(0.3 * (double)n));
    download(be, p->w.data, w, n);
    for (size_t i = 0; i < n; i++)
        CHECK((w[i] != 0.0f) == (m[i] != 0.0f));
    CHECK(dc_prune_threshold(be, p, DC_PRUNE_SPARSITY, 1.5f, &t) == DC_ERR_ARG);
    CHECK_OK(dc_prune_threshold(be, p, DC_PRUNE_SPARSITY, 0.0f, &t));
    CHECK(t < 0.0f);
    free(w), free(m);
}

static void test_schedule(struct dc_backend *be, struct dc_net *net, struct dc_config *cfg)
{
    cfg->prune_method = DC_PRUNE_SPARSITY;
    cfg->sparsity_fc = 0.9f;
    struct dc_param *p1 = dc_net_find_param(net, "fc1.weight"), *p2 = dc_net_find_param(net, "fc2.weight");
    CHECK(fabsf(dc_prune_setting(cfg, p1) - 0.9f) < 1e-7f);
    CHECK(fabsf(dc_prune_setting(cfg, p2) - 0.4f) < 1e-7f); /* the layer's own prune = 0.4 */
    CHECK(fabsf(dc_prune_schedule(cfg, p1, 1, 3) - 0.9f * (1.0f - 8.0f / 27.0f)) < 1e-6f);
    CHECK(fabsf(dc_prune_schedule(cfg, p1, 3, 3) - 0.9f) < 1e-6f);
    static struct dc_prune_stats st;
    size_t last1 = dc_param_count(p1);
    for (int r = 1; r <= 3; r++) {
        CHECK_OK(dc_prune_round(net, cfg, r, 3, &st));
        CHECK(st.n == 2);
        for (int i = 0; i < st.n; i++) {
            struct dc_param *p = dc_net_find_param(net, st.p[i].name);
            double s = dc_prune_schedule(cfg, p, r, 3);
            CHECK(st.p[i].kept == st.p[i].total - (size_t)llround(s * (double)st.p[i].total));
        }
        CHECK(st.p[0].kept <= last1);
        last1 = st.p[0].kept;
    }
    CHECK(st.p[0].kept == dc_param_count(p1) - (size_t)llround(0.9 * (double)dc_param_count(p1)));
    struct dc_prune_stats *col = malloc(sizeof *col);
    CHECK_OK(dc_prune_collect(net, col));
    CHECK(col->kept == st.kept && col->total == st.total && col->total == 50 * 20 + 4 * 50);
    free(col);
    /* std method: quality * r / R */
    cfg->prune_method = DC_PRUNE_STD;
    cfg->quality_fc = 1.2f;
    CHECK(fabsf(dc_prune_schedule(cfg, p1, 2, 4) - 0.6f) < 1e-6f);
    CHECK(dc_prune_round(net, cfg, 0, 3, NULL) == DC_ERR_ARG);
    (void)be;
}

/* Training steps with momentum and weight decay never revive a pruned weight. */
static void test_masks_hold(struct dc_backend *be, struct dc_net *net)
{
    float x[NB * IN];
    int32_t labels[NB];
    for (int i = 0; i < NB * IN; i++)
        x[i] = dc_rng_normal(&rng);
    for (int i = 0; i < NB; i++)
        labels[i] = (int32_t)dc_rng_below(&rng, CLASSES);
    CHECK_OK(be->ops.upload(be, net->act[0].data, x, sizeof x));
    CHECK_OK(be->ops.upload(be, net->labels, labels, sizeof labels));
    struct dc_param *p = dc_net_find_param(net, "fc1.weight");
    size_t n = dc_param_count(p);
    float *m0 = malloc(n * 4), *m1 = malloc(n * 4), *w0 = malloc(n * 4), *w = malloc(n * 4);
    download(be, p->mask, m0, n);
    download(be, p->w.data, w0, n);
    struct dc_pass pass = {.train = 1, .seed = 3};
    for (int s = 0; s < 20; s++) {
        CHECK_OK(dc_net_forward(net, NB, &pass));
        CHECK_OK(dc_net_loss(net, NB));
        CHECK_OK(dc_net_backward(net, NB));
        CHECK_OK(dc_net_update(net, 0.1f, 0.9f, 1e-3f, s & 1));
    }
    download(be, p->mask, m1, n);
    download(be, p->w.data, w, n);
    CHECK(memcmp(m0, m1, n * 4) == 0);
    size_t moved = 0;
    for (size_t i = 0; i < n; i++) {
        if (m0[i] == 0.0f)
            CHECK(w[i] == 0.0f);
        moved += w[i] != w0[i];
    }
    CHECK(moved > 0 && moved <= count_nonzero(m0, n)); /* training did run, on survivors only */
    free(m0), free(m1), free(w0), free(w);
}

int main(void)
{
    dc_rng_seed(&rng, 99);
    struct dc_backend *be = NULL;
    struct dc_backend_opts opts = {0};
    CHECK_OK(dc_backend_create("cpu", &opts, &be));
    struct dc_config *cfg = calloc(1, sizeof *cfg);
    struct dc_net *net = NULL;
    CHECK_OK(dc_config_parse_net(net_text, "test_prune", cfg));
    if (be)
        CHECK_OK(dc_net_create(be, cfg, 1, 1, IN, CLASSES, NB, 11, &net));
    if (net) {
        test_thresholds(be, net);
        test_schedule(be, net, cfg);
        test_masks_hold(be, net);
        dc_net_free(net);
    }
    dc_config_free(cfg);
    free(cfg);
    dc_backend_free(be);
    return test_finish("test_prune");
}
