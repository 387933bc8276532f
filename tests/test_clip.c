/* test_clip.c: [train] clip_norm and the stop on non-finite weights.
 * - A clip far above the gradient norm changes nothing, bit for bit.
 * - A clip below it makes one plain SGD step (no momentum history, no weight
 *   decay) move the weights by exactly lr * clip in L2 norm, where the
 *   unclipped step moves them further (so the clip is what made the change).
 * - A NaN or infinity in a parameter the loss does not see (a batch-norm
 *   running variance, unused in training mode) stops the phase with
 *   DC_ERR_DIVERGED and a message naming stage, epoch, step and parameter.
 * Real MNIST subset (one batch); 77 without it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dc/backend.h"
#include "dc/config.h"
#include "dc/data.h"
#include "dc/net.h"
#include "dc/train.h"

static const char clip_ini[] =
    "[data]\nset = mnist\ndir = overridden\ntrain_limit = 64\ntest_limit = 64\n"
    "[train]\ndevice = cpu\nepochs = 1\nbatch = 64\nlr = 0.1\nmomentum = 0\nweight_decay = 0\n"
    "schedule = const\nseed = 5\nthreads = 1\n"
    "[fc]\nname = fc1\noutputs = 32\n[batchnorm]\nname = bn1\n[relu]\n"
    "[fc]\nname = fc2\noutputs = 10\n";

struct fixture {
    struct dc_config cfg;
    struct dc_backend *be;
    struct dc_data data;
    struct dc_device_data dd;
};

static struct dc_net *make_net(struct fixture *fx)
{
    struct dc_net *net = NULL;
    const struct dc_dataset *tr = &fx->data.train;
    CHECK_OK(dc_net_create(fx->be, &fx->cfg, tr->c, tr->h, tr->w, fx->data.classes, fx->cfg.batch, fx->cfg.seed,
                           &net));
    return net;
}

/* All trainable values of a net, concatenated (host). */
static float *weights(struct fixture *fx, struct dc_net *net, size_t *n)
{
    *n = 0;
    for (int i = 0; i < net->nparams; i++)
        *n += net->params[i]->trainable ? dc_param_count(net->params[i]) : 0;
    float *h = malloc(*n * sizeof *h);
    size_t o = 0;
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        if (!p->trainable)
            continue;
        CHECK_OK(fx->be->ops.download(fx->be, h + o, p->w.data, dc_param_count(p) * sizeof *h));
        o += dc_param_count(p);
    }
    return h;
}

/* One phase of one step with clip_norm = clip (0: off); returns ||w_after - w_before||. */
static double step_norm(struct fixture *fx, float clip, float **after, size_t *n)
{
    struct dc_net *net = make_net(fx);
    if (!net)
        return -1;
    float *before = weights(fx, net, n);
    fx->cfg.clip_norm = clip;
    struct dc_phase ph = {.stage = "train", .epochs = 1, .lr = fx->cfg.lr, .schedule = DC_LR_CONST};
    CHECK_OK(dc_train_phase(net, &fx->dd, &fx->cfg, &ph, 0, NULL, NULL, NULL));
    fx->cfg.clip_norm = 0;
    *after = weights(fx, net, n);
    double sq = 0;
    for (size_t i = 0; i < *n; i++)
        sq += ((double)(*after)[i] - before[i]) * ((double)(*after)[i] - before[i]);
    free(before);
    dc_net_free(net);
    return sqrt(sq);
}

static void check_clip(struct fixture *fx)
{
    float *plain, *loose, *tight;
    size_t n;
    double d_plain = step_norm(fx, 0, &plain, &n);
    double d_loose = step_norm(fx, 1e30f, &loose, &n);
    CHECK(memcmp(plain, loose, n * sizeof *plain) == 0);
    const float clip = 0.01f;
    double d_tight = step_norm(fx, clip, &tight, &n);
    double want = fx->cfg.lr * clip;
    printf("step norm: unclipped %.6g, clip 1e30 %.6g, clip %.3g: %.6g (lr * clip = %.6g)\n", d_plain, d_loose,
           clip, d_tight, want);
    CHECK(d_plain > 2 * want);
    CHECK(fabs(d_tight - want) <= 1e-3 * want);
    free(plain);
    free(loose);
    free(tight);
}

static void check_nonfinite(struct fixture *fx)
{
    struct dc_net *net = make_net(fx);
    if (!net)
        return;
    struct dc_param *rv = dc_net_find_param(net, "bn1.running_var");
    CHECK(rv && !rv->trainable);
    if (rv) {
        float inf = INFINITY;
        CHECK_OK(fx->be->ops.upload(fx->be, rv->w.data, &inf, sizeof inf));
        struct dc_phase ph = {.stage = "train", .epochs = 1, .lr = fx->cfg.lr, .schedule = DC_LR_CONST};
        enum dc_status s = dc_train_phase(net, &fx->dd, &fx->cfg, &ph, 0, NULL, NULL, NULL);
        printf("poisoned running variance: %s\n", dc_error_msg());
        CHECK(s == DC_ERR_DIVERGED);
        CHECK(strstr(dc_error_msg(), "stage train, epoch 1, by step 1 of 1: parameter bn1.running_var holds NaN "
                                     "or infinite values") != NULL);
    }
    dc_net_free(net);
}

int main(void)
{
    static struct fixture fx;
    char dir[512], ini[1024], set_dir[600];
    if (!test_data_dir("mnist", dir, sizeof dir)) {
        printf("test_clip: no MNIST under $DC_TEST_DATA: skipped\n");
        return DC_TEST_SKIP;
    }
    if (!write_tmp_file("clip.ini", clip_ini, ini, sizeof ini))
        return 1;
    snprintf(set_dir, sizeof set_dir, "data.dir=%s", dir);
    const char *sets[] = {set_dir};
    enum dc_status s = dc_config_load(ini, sets, 1, &fx.cfg);
    remove(ini);
    struct dc_backend_opts bo = {.threads = 1};
    if (s != DC_OK || dc_backend_create("cpu", &bo, &fx.be) != DC_OK || dc_data_load(&fx.cfg, &fx.data) != DC_OK ||
        dc_device_data_init(fx.be, &fx.data, &fx.dd) != DC_OK) {
        fprintf(stderr, "test_clip: %s\n", dc_error_msg());
        return 1;
    }
    CHECK(fx.cfg.clip_norm == 0); /* off unless asked */
    check_clip(&fx);
    check_nonfinite(&fx);
    dc_device_data_free(&fx.dd);
    dc_data_free(&fx.data);
    dc_backend_free(fx.be);
    dc_config_free(&fx.cfg);
    return test_finish("test_clip");
}
