/* test_bn_recal.c: batch-norm recalibration (src/train/bn_recal.c) on the
 * CPU backend, on random images.  The first batch norm's running statistics
 * after recalibrating over k batches must equal the average over those
 * batches of each batch's mean and unbiased variance of its input, computed
 * here from the convolution's output; the images are the evenly spaced
 * subset the function promises.  Scaling the convolution's weights by 3 (a
 * convolution feeding batch norm has no bias) must scale the recalibrated
 * mean by 3 and the variance by 9: the statistics follow the weights.  No
 * weight moves, dropout stays off (two runs agree bit for bit), augmented
 * images (crops, flips) give other statistics, again the same from run to
 * run, a saved copy of the statistics restores them exactly, and batches = 0
 * or a network without batch norm change nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dc/config.h"
#include "dc/net.h"
#include "dc/rng.h"
#include "dc/train.h"

#define TR_COUNT 300
#define TE_COUNT 40
#define C 3
#define HW 8
#define BATCH 32

static const char bn_net[] =
    "[conv]\nname = c1\nfilters = 4\nsize = 3\npad = 0\nbatch_normalize = 1\nactivation = relu\n"
    "[dropout]\nprobability = 0.5\n"
    "[conv]\nname = c2\nfilters = 4\nsize = 3\npad = 0\nbatch_normalize = 1\nactivation = relu\n"
    "[fc]\nname = out\noutputs = 10\n";

static const char plain_net[] = "[fc]\nname = h\noutputs = 16\nactivation = relu\n[fc]\nname = out\noutputs = 10\n";

static struct dc_net *build(struct dc_backend *be, const char *text)
{
    struct dc_config *cfg = calloc(1, sizeof *cfg);
    struct dc_net *net = NULL;
    CHECK_OK(dc_config_parse_net(text, "test", cfg));
    CHECK_OK(dc_net_create(be, cfg, C, HW, HW, 10, BATCH, 11, &net));
    dc_config_free(cfg);
    free(cfg);
    return net;
}

static void random_set(struct dc_rng *rng, struct dc_dataset *d, int count)
{
    d->count = count, d->c = C, d->h = HW, d->w = HW;
    d->images = malloc((size_t)count * C * HW * HW);
    d->labels = malloc((size_t)count);
    for (size_t i = 0; i < (size_t)count * C * HW * HW; i++)
        d->images[i] = (uint8_t)(dc_rng_next(rng) >> 56);
    for (int i = 0; i < count; i++)
        d->labels[i] = (uint8_t)(dc_rng_next(rng) % 10);
}

/* Every non-trained parameter (the running statistics) into one host array. */
static size_t stats_copy(struct dc_backend *be, struct dc_net *net, float *out)
{
    size_t n = 0;
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        if (p->trainable)
            continue;
        CHECK_OK(be->ops.download(be, out + n, p->w.data, dc_param_count(p) * sizeof(float)));
        n += dc_param_count(p);
    }
    return n;
}

static size_t weights_copy(struct dc_backend *be, struct dc_net *net, float *out)
{
    size_t n = 0;
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        if (!p->trainable)
            continue;
        CHECK_OK(be->ops.download(be, out + n, p->w.data, dc_param_count(p) * sizeof(float)));
        n += dc_param_count(p);
    }
    return n;
}

/* The mean and unbiased variance per channel of c1's output, averaged over
 * the k batches of the evenly spaced subset the recalibration reads. */
static void reference_stats(struct dc_backend *be, struct dc_net *net, struct dc_device_data *dd, int k,
                            double *mean, double *var)
{
    const int total = k * BATCH, per_ch = BATCH * (HW - 2) * (HW - 2);
    int32_t host[BATCH], *idx = NULL;
    float *y = malloc((size_t)BATCH * 4 * (HW - 2) * (HW - 2) * sizeof(float));
    CHECK_OK(be->ops.alloc(be, (void **)&idx, sizeof host));
    struct dc_pass infer = {.train = 0};
    memset(mean, 0, 4 * sizeof *mean);
    memset(var, 0, 4 * sizeof *var);
    for (int b = 0; b < k; b++) {
        for (int i = 0; i < BATCH; i++)
            host[i] = (int32_t)((int64_t)(b * BATCH + i) * dd->train_count / total);
        CHECK_OK(be->ops.upload(be, idx, host, sizeof host));
        CHECK_OK(dc_load_train_batch(net, dd, idx, BATCH, NULL, 0));
        CHECK_OK(dc_net_forward(net, BATCH, &infer)); /* act[1]: c1's output, before its batch norm */
        CHECK(net->layers[1]->type == DC_LAYER_BN);
        CHECK_OK(dc_tensor_download(be, &net->act[1], y));
        for (int c = 0; c < 4; c++) {
            double s = 0, ss = 0;
            for (int n = 0; n < BATCH; n++)
                for (int j = 0; j < (HW - 2) * (HW - 2); j++) {
                    double v = y[((size_t)n * 4 + c) * (HW - 2) * (HW - 2) + j];
                    s += v, ss += v * v;
                }
            double m = s / per_ch;
            mean[c] += m / k;
            var[c] += (ss - per_ch * m * m) / (per_ch - 1) / k;
        }
    }
    be->ops.release(be, idx);
    free(y);
}

static int close_to(double got, double want, double rel)
{
    return fabs(got - want) <= rel * (fabs(want) + 1e-6);
}

static void check_c1_stats(struct dc_backend *be, struct dc_net *net, const double *mean, const double *var,
                           double scale)
{
    float rm[4], rv[4];
    CHECK_OK(dc_tensor_download(be, &dc_net_find_param(net, "c1.bn.running_mean")->w, rm));
    CHECK_OK(dc_tensor_download(be, &dc_net_find_param(net, "c1.bn.running_var")->w, rv));
    for (int c = 0; c < 4; c++) {
        CHECK(close_to(rm[c], scale * mean[c], 1e-4));
        CHECK(close_to(rv[c], scale * scale * var[c], 1e-4));
        if (!close_to(rm[c], scale * mean[c], 1e-4) || !close_to(rv[c], scale * scale * var[c], 1e-4))
            fprintf(stderr, "  channel %d: mean %g want %g, var %g want %g\n", c, rm[c], scale * mean[c], rv[c],
                    scale * scale * var[c]);
    }
}

static void test_recalibrate(struct dc_backend *be, struct dc_device_data *dd)
{
    struct dc_config cfg = {.seed = 3, .augment = 0, .bn_recal_batches = 0};
    struct dc_net *net = build(be, bn_net);
    if (!net)
        return;
    CHECK(dc_net_has_bn(net));
    enum { MAXV = 4096 };
    float *s0 = malloc(MAXV * sizeof(float)), *s1 = malloc(MAXV * sizeof(float));
    float *w0 = malloc(MAXV * sizeof(float)), *w1 = malloc(MAXV * sizeof(float));
    size_t ns = stats_copy(be, net, s0), nw = weights_copy(be, net, w0);
    CHECK(ns == 16 && nw < MAXV);

    CHECK_OK(dc_bn_recalibrate(net, dd, &cfg)); /* off: nothing moves */
    stats_copy(be, net, s1);
    CHECK(memcmp(s0, s1, ns * sizeof(float)) == 0);

    struct dc_bn_stats saved;
    CHECK_OK(dc_bn_stats_save(net, &saved));
    const int k = 3;
    cfg.bn_recal_batches = k;
    CHECK_OK(dc_bn_recalibrate(net, dd, &cfg));
    stats_copy(be, net, s1);
    CHECK(memcmp(s0, s1, ns * sizeof(float)) != 0);
    weights_copy(be, net, w1);
    CHECK(memcmp(w0, w1, nw * sizeof(float)) == 0);
    double mean[4], var[4];
    reference_stats(be, net, dd, k, mean, var);
    check_c1_stats(be, net, mean, var, 1.0);

    /* dropout off and a fixed subset: the same statistics again, bit for bit */
    float *s2 = malloc(MAXV * sizeof(float));
    CHECK_OK(dc_bn_recalibrate(net, dd, &cfg));
    stats_copy(be, net, s2);
    CHECK(memcmp(s1, s2, ns * sizeof(float)) == 0);

    /* augmented as training is: other images, other statistics, the same each time */
    cfg.augment = 1, cfg.crop_pad = 2, cfg.flip = 1;
    CHECK_OK(dc_bn_recalibrate(net, dd, &cfg));
    stats_copy(be, net, s2);
    CHECK(memcmp(s1, s2, ns * sizeof(float)) != 0);
    CHECK_OK(dc_bn_recalibrate(net, dd, &cfg));
    stats_copy(be, net, s1);
    CHECK(memcmp(s1, s2, ns * sizeof(float)) == 0);
    cfg.augment = 0;

    /* the statistics follow the weights */
    struct dc_param *w = dc_net_find_param(net, "c1.weight");
    CHECK(w != NULL && dc_net_find_param(net, "c1.bias") == NULL);
    size_t nc1 = dc_param_count(w);
    float *wc = malloc(nc1 * sizeof(float));
    CHECK_OK(dc_tensor_download(be, &w->w, wc));
    for (size_t i = 0; i < nc1; i++)
        wc[i] *= 3.0f;
    CHECK_OK(dc_tensor_upload(be, &w->w, wc));
    CHECK_OK(dc_bn_recalibrate(net, dd, &cfg));
    check_c1_stats(be, net, mean, var, 3.0);

    /* more batches than the set holds whole: every whole batch, no error */
    cfg.bn_recal_batches = 1000;
    CHECK_OK(dc_bn_recalibrate(net, dd, &cfg));

    CHECK_OK(dc_bn_stats_restore(net, &saved));
    stats_copy(be, net, s2);
    CHECK(memcmp(s0, s2, ns * sizeof(float)) == 0);
    dc_bn_stats_free(&saved);
    free(wc), free(s0), free(s1), free(s2), free(w0), free(w1);
    dc_net_free(net);
}

static void test_no_bn(struct dc_backend *be, struct dc_device_data *dd)
{
    struct dc_net *net = build(be, plain_net);
    if (!net)
        return;
    CHECK(!dc_net_has_bn(net));
    float *w0 = malloc(16384 * sizeof(float)), *w1 = malloc(16384 * sizeof(float));
    size_t nw = weights_copy(be, net, w0);
    CHECK(nw < 16384);
    struct dc_config cfg = {.seed = 3, .bn_recal_batches = 4};
    CHECK_OK(dc_bn_recalibrate(net, dd, &cfg));
    weights_copy(be, net, w1);
    CHECK(memcmp(w0, w1, nw * sizeof(float)) == 0);
    struct dc_bn_stats saved;
    CHECK_OK(dc_bn_stats_save(net, &saved));
    CHECK_OK(dc_bn_stats_restore(net, &saved));
    dc_bn_stats_free(&saved);
    free(w0), free(w1);
    dc_net_free(net);
}

int main(void)
{
    struct dc_backend *be = NULL;
    CHECK_OK(dc_backend_create("cpu", NULL, &be));
    if (!be)
        return test_finish("test_bn_recal");
    struct dc_rng rng;
    dc_rng_seed(&rng, 5);
    struct dc_data data = {.classes = 10, .mean = {0.5f, 0.5f, 0.5f}, .std = {0.25f, 0.25f, 0.25f}};
    random_set(&rng, &data.train, TR_COUNT);
    random_set(&rng, &data.test, TE_COUNT);
    struct dc_device_data dd = {0};
    CHECK_OK(dc_device_data_init(be, &data, &dd));
    test_recalibrate(be, &dd);
    test_no_bn(be, &dd);
    dc_device_data_free(&dd);
    free(data.train.images), free(data.train.labels), free(data.test.images), free(data.test.labels);
    dc_backend_free(be);
    return test_finish("test_bn_recal");
}
