/* test_net.c: networks built from config text on the CPU backend: layer
 * expansion and parameter counts (LeNet-300-100 266,610; LeNet-5 431,080;
 * a VGG-like net with batch norm; a Fire net), shape errors that name the
 * layer and its line, a few SGD steps lowering the loss on a fixed batch, and
 * pruned weights staying exactly zero through updates.  When the source tree
 * is at hand, the shipped configs under configs/ are built too. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dc/config.h"
#include "dc/net.h"
#include "dc/rng.h"

static struct dc_rng tn_rng;

static const char lenet300[] =
    "[fc]\nname = fc1\noutputs = 300\nactivation = relu\n"
    "[fc]\nname = fc2\noutputs = 100\nactivation = relu\n"
    "[fc]\nname = fc3\noutputs = 10\n";

static const char lenet5[] =
    "[conv]\nname = conv1\nfilters = 20\nsize = 5\npad = 0\n"
    "[maxpool]\nname = pool1\nsize = 2\nstride = 2\n"
    "[conv]\nname = conv2\nfilters = 50\nsize = 5\npad = 0\n"
    "[maxpool]\nname = pool2\nsize = 2\nstride = 2\n"
    "[fc]\nname = fc1\noutputs = 500\nactivation = relu\n"
    "[fc]\nname = fc2\noutputs = 10\n";

static const char vgg_like[] =
    "[conv]\nname = c1\nfilters = 8\nsize = 3\nbatch_normalize = 1\nactivation = relu\n"
    "[conv]\nname = c2\nfilters = 8\nsize = 3\nbatch_normalize = 1\nactivation = relu\n"
    "[maxpool]\nsize = 2\nstride = 2\n"
    "[conv]\nname = c3\nfilters = 16\nsize = 3\nbatch_normalize = 1\nactivation = relu\n"
    "[avgpool]\n"
    "[dropout]\nprobability = 0.2\n"
    "[fc]\nname = out\noutputs = 10\n";

/* The batch norm between the Fire modules keeps the signal alive: with
 * PyTorch's default init two narrow Fire modules shrink the differences
 * between samples about 200-fold, and the fixed-batch test would crawl. */
static const char fire_net[] =
    "[conv]\nname = c1\nfilters = 8\nsize = 3\nactivation = relu\n"
    "[maxpool]\nsize = 2\nstride = 2\n"
    "[fire]\nname = f2\nsqueeze = 6\nexpand1x1 = 8\nexpand3x3 = 8\n"
    "[batchnorm]\n"
    "[fire]\nname = f3\nsqueeze = 8\nexpand1x1 = 6\nexpand3x3 = 10\n"
    "[maxpool]\nsize = 2\nstride = 2\n"
    "[fc]\nname = out\noutputs = 10\n";

/* Parse `text` and build it for inputs c x h x w with 10 classes. */
static struct dc_net *tn_build(struct dc_backend *be, const char *text, const char *origin, int c, int h, int w,
                               int max_batch)
{
    struct dc_config *cfg = calloc(1, sizeof *cfg);
    struct dc_net *net = NULL;
    CHECK_OK(dc_config_parse_net(text, origin, cfg));
    CHECK_OK(dc_net_create(be, cfg, c, h, w, 10, max_batch, 7, &net));
    dc_config_free(cfg);
    free(cfg);
    return net;
}

static void tn_expect_param(struct dc_net *net, const char *name, int n, int c, int h, int w, int prunable)
{
    struct dc_param *p = dc_net_find_param(net, name);
    CHECK(p != NULL);
    if (!p) {
        fprintf(stderr, "  missing parameter %s\n", name);
        return;
    }
    CHECK(p->w.n == n && p->w.c == c && p->w.h == h && p->w.w == w);
    CHECK(p->prunable == prunable);
}

static void test_lenets(struct dc_backend *be)
{
    struct dc_net *net = tn_build(be, lenet300, "lenet300", 1, 28, 28, 8);
    if (net) {
        CHECK(dc_net_param_count(net) == 266610);
        CHECK(net->nlayers == 5 && net->nparams == 6);
        CHECK(strcmp(net->layers[1]->name, "fc1.relu") == 0);
        tn_expect_param(net, "fc1.weight", 300, 784, 1, 1, 1);
        tn_expect_param(net, "fc3.bias", 10, 1, 1, 1, 0);
        CHECK(dc_net_find_param(net, "fc3.weight")->cfg_index == 2);
        CHECK(dc_net_find_param(net, "fc4.weight") == NULL);
        dc_net_free(net);
    }
    net = tn_build(be, lenet5, "lenet5", 1, 28, 28, 8);
    if (net) {
        CHECK(dc_net_param_count(net) == 431080);
        CHECK(net->nlayers == 7);
        tn_expect_param(net, "conv2.weight", 50, 20, 5, 5, 1);
        CHECK(dc_net_find_param(net, "conv2.weight")->is_conv == 1);
        CHECK(dc_net_find_param(net, "fc1.weight")->is_conv == 0);
        tn_expect_param(net, "fc1.weight", 500, 800, 1, 1, 1);
        CHECK(net->act[2].c == 20 && net->act[2].h == 12 && net->act[2].w == 12);
        dc_net_free(net);
    }
}

static void test_vgg_fire(struct dc_backend *be)
{
    struct dc_net *net = tn_build(be, vgg_like, "vgg", 3, 8, 8, 4);
    if (net) {
        /* conv weights without bias (batch norm follows), gamma + beta per channel */
        size_t expect = (8 * 3 * 9 + 16) + (8 * 8 * 9 + 16) + (16 * 8 * 9 + 32) + (16 * 10 + 10);
        CHECK(dc_net_param_count(net) == expect);
        CHECK(dc_net_find_param(net, "c1.bias") == NULL);
        CHECK(dc_net_find_param(net, "c2.bn.gamma") != NULL);
        struct dc_param *rv = dc_net_find_param(net, "c3.bn.running_var");
        CHECK(rv && !rv->trainable && !rv->prunable);
        CHECK(net->nlayers == 3 * 3 + 4);
        CHECK(strcmp(net->layers[2]->name, "c1.relu") == 0 && net->layers[2]->cfg_index == 0);
        for (int i = 0; i < net->nlayers; i++)
            CHECK(net->layers[i]->index == (uint64_t)i);
        dc_net_free(net);
    }
    net = tn_build(be, fire_net, "fire", 1, 12, 12, 4);
    if (net) {
        size_t f2 = (6 * 8 + 6) + (8 * 6 + 8) + (8 * 6 * 9 + 8);
        size_t f3 = (8 * 16 + 8) + (6 * 8 + 6) + (10 * 8 * 9 + 10);
        CHECK(dc_net_param_count(net) == (8 * 9 + 8) + f2 + f3 + 2 * 16 + (16 * 9 * 10 + 10));
        tn_expect_param(net, "f2.expand3.weight", 8, 6, 3, 3, 1);
        tn_expect_param(net, "f3.squeeze.weight", 8, 16, 1, 1, 1);
        CHECK(dc_net_find_param(net, "f3.expand1.bias") != NULL);
        CHECK(net->act[4].c == 16 && net->act[4].h == 6);
        dc_net_free(net);
    }
}

/* The message names the layer and the line of its section. */
static void tn_expect_error(struct dc_backend *be, const char *text, int c, int h, int w, const char *needle1,
                            const char *needle2)
{
    struct dc_config *cfg = calloc(1, sizeof *cfg);
    CHECK_OK(dc_config_parse_net(text, "bad.ini", cfg));
    struct dc_net *net = NULL;
    enum dc_status s = dc_net_create(be, cfg, c, h, w, 10, 4, 1, &net);
    CHECK(s == DC_ERR_CONFIG);
    CHECK(net == NULL);
    const char *msg = dc_error_msg();
    if (!strstr(msg, needle1) || !strstr(msg, needle2)) {
        fprintf(stderr, "message '%s' lacks '%s' or '%s'\n", msg, needle1, needle2);
        dc_test_failures++;
    }
    dc_net_free(net);
    dc_config_free(cfg);
    free(cfg);
}

/* A description that would need more memory than the limit is refused before
 * any of it is allocated, with the estimate in the message (a crafted model
 * file found by the fuzzer asked for 33,554,432 filters). */
static void test_memory_budget(struct dc_backend *be)
{
    tn_expect_error(be, "[conv]\nfilters = 33554432\nsize = 1\n[fc]\noutputs = 10\n", 1, 28, 28, "conv1",
                    "MiB limit");
    tn_expect_error(be, "[fc]\noutputs = 2000000000\n[fc]\noutputs = 10\n", 1, 28, 28, "fc1", "MiB limit");
    /* LeNet-300-100 at batch 4 needs about 3.3 MiB: refused under 2 MiB, built under 64 */
    setenv("DC_MEMORY_LIMIT_MB", "2", 1);
    tn_expect_error(be, lenet300, 1, 28, 28, "fc1", "the 2 MiB limit");
    setenv("DC_MEMORY_LIMIT_MB", "64", 1);
    struct dc_config *cfg = calloc(1, sizeof *cfg);
    struct dc_net *net = NULL;
    CHECK_OK(dc_config_parse_net(lenet300, "lenet300", cfg));
    CHECK_OK(dc_net_create(be, cfg, 1, 28, 28, 10, 4, 1, &net));
    dc_net_free(net);
    dc_config_free(cfg);
    free(cfg);
    unsetenv("DC_MEMORY_LIMIT_MB");
}

static void test_shape_errors(struct dc_backend *be)
{
    /* LeNet-5 on 12x12: conv2 would see 4x4 for a 5x5 kernel; its section starts at line 10 */
    tn_expect_error(be, lenet5, 1, 12, 12, "conv2", "bad.ini:10:");
    /* 9 outputs for 10 classes: the last layer (line 7) is named */
    tn_expect_error(be, "[fc]\noutputs = 20\nactivation = relu\n\n[dropout]\n\n[fc]\nname = last\n\noutputs = 9\n",
                    1, 4, 4, "last", "bad.ini:7:");
    tn_expect_error(be, "[maxpool]\nname = p\nsize = 3\nstride = 2\n[fc]\noutputs = 10\n", 2, 2, 2, "p", "bad.ini:1:");
}

static float *tn_random(size_t n)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = 2.0f * dc_rng_uniform(&tn_rng) - 1.0f;
    return v;
}

/* One step on the batch already in act[0] and labels; returns the mean loss. */
static double tn_step(struct dc_net *net, int n, uint64_t step, float lr)
{
    struct dc_pass pass = {.train = 1, .seed = 1000 + step};
    double loss = 0, correct = 0;
    CHECK_OK(dc_net_stats_reset(net));
    CHECK_OK(dc_net_forward(net, n, &pass));
    CHECK_OK(dc_net_loss(net, n));
    CHECK_OK(dc_net_backward(net, n));
    CHECK_OK(dc_net_update(net, lr, 0.9f, 1e-4f, 0));
    CHECK_OK(dc_net_stats_read(net, &loss, &correct));
    CHECK(correct >= 0 && correct <= n);
    return loss / n;
}

static void tn_fixed_batch(struct dc_backend *be, struct dc_net *net, int n)
{
    float *x = tn_random(dc_tensor_count(&net->act[0]));
    int32_t labels[64];
    for (int i = 0; i < n; i++)
        labels[i] = (int32_t)dc_rng_below(&tn_rng, 10);
    CHECK_OK(dc_tensor_upload(be, &net->act[0], x));
    CHECK_OK(be->ops.upload(be, net->labels, labels, (size_t)n * sizeof(int32_t)));
    free(x);
}

static void tn_expect_learning(struct dc_backend *be, const char *text, const char *what, int c, int h, int w,
                               float lr)
{
    const int n = 16;
    struct dc_net *net = tn_build(be, text, what, c, h, w, n);
    if (!net)
        return;
    tn_fixed_batch(be, net, n);
    double first = tn_step(net, n, 0, lr), last = first;
    for (int s = 1; s < 30; s++)
        last = tn_step(net, n, (uint64_t)s, lr);
    printf("%s: loss %.4f -> %.4f after 30 steps\n", what, first, last);
    CHECK(first > 1.5 && first < 4.0); /* about ln 10 at the start */
    CHECK(last < 0.5 * first);
    dc_net_free(net);
}

/* Half of fc1's weights pruned: they must stay exactly zero, the rest move. */
static void test_masked_update(struct dc_backend *be)
{
    const int n = 8;
    struct dc_net *net = tn_build(be, lenet300, "lenet300", 1, 28, 28, n);
    if (!net)
        return;
    struct dc_param *p = dc_net_find_param(net, "fc1.weight");
    size_t count = dc_param_count(p);
    float *mask = malloc(count * sizeof *mask), *w0 = malloc(count * sizeof *w0), *w1 = malloc(count * sizeof *w1);
    for (size_t i = 0; i < count; i++)
        mask[i] = dc_rng_uniform(&tn_rng) < 0.5f ? 0.0f : 1.0f;
    CHECK_OK(be->ops.alloc(be, (void **)&p->mask, count * sizeof(float)));
    CHECK_OK(be->ops.upload(be, p->mask, mask, count * sizeof(float)));
    CHECK_OK(dc_tensor_download(be, &p->w, w0));
    tn_fixed_batch(be, net, n);
    for (int s = 0; s < 5; s++)
        tn_step(net, n, (uint64_t)s, 0.05f);
    CHECK_OK(dc_tensor_download(be, &p->w, w1));
    size_t nonzero_pruned = 0, moved = 0, kept = 0;
    for (size_t i = 0; i < count; i++) {
        if (mask[i] == 0.0f)
            nonzero_pruned += w1[i] != 0.0f;
        else
            kept++, moved += w1[i] != w0[i];
    }
    CHECK(nonzero_pruned == 0);
    CHECK(moved > kept / 2);
    /* the mask belongs to the parameter now: dc_net_free releases it */
    dc_net_free(net);
    free(mask), free(w0), free(w1);
}

/* Inference is deterministic and leaves the running statistics alone. */
static void test_inference(struct dc_backend *be)
{
    struct dc_net *net = tn_build(be, vgg_like, "vgg", 3, 8, 8, 4);
    if (!net)
        return;
    tn_fixed_batch(be, net, 4);
    struct dc_pass infer = {.train = 0}, train = {.train = 1, .seed = 5};
    float a[40], b[40], rv0[16], rv1[16];
    struct dc_param *rv = dc_net_find_param(net, "c3.bn.running_var");
    CHECK_OK(dc_tensor_download(be, &rv->w, rv0));
    CHECK_OK(dc_net_forward(net, 4, &infer));
    CHECK_OK(dc_tensor_download(be, dc_net_output(net), a));
    CHECK_OK(dc_net_forward(net, 4, &infer));
    CHECK_OK(dc_tensor_download(be, dc_net_output(net), b));
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK_OK(dc_tensor_download(be, &rv->w, rv1));
    CHECK(memcmp(rv0, rv1, sizeof rv0) == 0);
    CHECK_OK(dc_net_forward(net, 4, &train));
    CHECK_OK(dc_tensor_download(be, &rv->w, rv1));
    CHECK(memcmp(rv0, rv1, sizeof rv0) != 0);
    CHECK(dc_net_output(net)->n == 4 && dc_net_output(net)->c == 10);
    CHECK(dc_net_forward(net, 5, &infer) == DC_ERR_ARG);
    dc_net_free(net);
}

/* Dropout: a mask of 0 and 1/(1-p) at about p zeros, the same for the same
 * step and layer, another for another layer index, the identity at inference. */
static void test_dropout(struct dc_backend *be)
{
    const int n = 4, c = 8, hw = 16;
    const size_t count = (size_t)n * c * hw * hw;
    struct dc_layer *l = NULL;
    CHECK_OK(dc_layer_dropout_create(be, "drop", c, hw, hw, 0.25f, n, &l));
    if (!l)
        return;
    struct dc_tensor x, y;
    CHECK_OK(dc_tensor_alloc(be, &x, n, c, hw, hw));
    CHECK_OK(dc_tensor_alloc(be, &y, n, c, hw, hw));
    float *xh = tn_random(count), *a = malloc(count * sizeof(float)), *b = malloc(count * sizeof(float));
    CHECK_OK(dc_tensor_upload(be, &x, xh));
    struct dc_pass train = {.train = 1, .seed = 77}, infer = {.train = 0, .seed = 77};
    CHECK_OK(l->ops->forward(l, be, &x, &y, &train));
    CHECK_OK(dc_tensor_download(be, &y, a));
    size_t zeros = 0, bad = 0;
    for (size_t i = 0; i < count; i++) {
        zeros += a[i] == 0.0f;
        bad += a[i] != 0.0f && fabsf(a[i] - xh[i] / 0.75f) > 1e-6f * fabsf(xh[i]) + 1e-7f;
    }
    CHECK(bad == 0);
    CHECK(fabs((double)zeros / count - 0.25) < 0.02);
    CHECK_OK(l->ops->forward(l, be, &x, &y, &train));
    CHECK_OK(dc_tensor_download(be, &y, b));
    CHECK(memcmp(a, b, count * sizeof(float)) == 0);
    l->index = 1;
    CHECK_OK(l->ops->forward(l, be, &x, &y, &train));
    CHECK_OK(dc_tensor_download(be, &y, b));
    CHECK(memcmp(a, b, count * sizeof(float)) != 0);
    CHECK_OK(l->ops->forward(l, be, &x, &y, &infer));
    CHECK_OK(dc_tensor_download(be, &y, b));
    CHECK(memcmp(xh, b, count * sizeof(float)) == 0);
    free(xh), free(a), free(b);
    dc_tensor_free(be, &x);
    dc_tensor_free(be, &y);
    dc_layer_free(be, l);
}

/* The shipped configs, found from this file's path when the source tree is there. */
static void test_shipped_configs(struct dc_backend *be)
{
    static const struct {
        const char *file;
        int c, hw;
        size_t lo, hi;
    } cases[] = {
        {"lenet300_mnist.ini", 1, 28, 266610, 266610},
        {"lenet5_mnist.ini", 1, 28, 431080, 431080},
        {"lenet5_fire_mnist.ini", 1, 28, 17882, 17882},
        {"squeezevgg_cifar.ini", 3, 32, 402786, 402786},
        {"squeezevgg_wide_cifar.ini", 3, 32, 544074, 544074},
        {"squeezenet11_cifar.ini", 3, 32, 732810, 732810},
        {"vgg19_cifar.ini", 3, 32, 19950000, 20100000},
    };
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    if (!slash) {
        printf("test_net: source path unknown, shipped configs not checked\n");
        return;
    }
    strcpy(slash, "/../configs");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, cases[i].file);
        FILE *f = fopen(path, "r");
        if (!f) {
            printf("test_net: %s not found, not checked\n", path);
            continue;
        }
        fclose(f);
        struct dc_config *cfg = calloc(1, sizeof *cfg);
        struct dc_net *net = NULL;
        CHECK_OK(dc_config_load(path, NULL, 0, cfg));
        CHECK_OK(dc_net_create(be, cfg, cases[i].c, cases[i].hw, cases[i].hw, 10, 1, 1, &net));
        if (net) {
            size_t count = dc_net_param_count(net);
            printf("%s: %zu parameters\n", cases[i].file, count);
            CHECK(count >= cases[i].lo && count <= cases[i].hi);
        }
        dc_net_free(net);
        dc_config_free(cfg);
        free(cfg);
    }
}

int main(void)
{
    struct dc_backend *be = NULL;
    CHECK_OK(dc_backend_create("cpu", NULL, &be));
    if (!be)
        return test_finish("test_net");
    dc_rng_seed(&tn_rng, 99);
    test_lenets(be);
    test_vgg_fire(be);
    test_shape_errors(be);
    test_memory_budget(be);
    tn_expect_learning(be, lenet300, "lenet300", 1, 28, 28, 0.05f);
    tn_expect_learning(be, lenet5, "lenet5", 1, 28, 28, 0.05f);
    tn_expect_learning(be, vgg_like, "vgg", 3, 8, 8, 0.05f);
    tn_expect_learning(be, fire_net, "fire", 1, 12, 12, 0.05f);
    test_masked_update(be);
    test_inference(be);
    test_dropout(be);
    test_shipped_configs(be);
    dc_backend_free(be);
    return test_finish("test_net");
}
