/* test_config.c: the typed config.  Every bad case is written to a file and
 * loaded, and must fail with DC_ERR_CONFIG and exactly the message a user sees
 * ("FILE:LINE: [section] key: reason", or "--set OVERRIDE: reason"); good files
 * give the documented defaults; net_text parses back to the same layers; every
 * every configs/ file loads and its network has the advertised parameter count. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dc/config.h"

#define DATA "[data]\nset = mnist\ndir = data/mnist\n"

static const char *write_tmp(const char *text, char *path, size_t len)
{
    return write_tmp_file("test_config_case.ini", text, path, len);
}

/* Load text with overrides; expect DC_ERR_CONFIG and the message `want`, where
 * a leading ':' stands for "PATH:". A want ending in '*' checks a prefix. */
static void expect_fail(const char *text, const char *const *ov, int nov, const char *want)
{
    char path[512], msg[1024];
    write_tmp(text, path, sizeof path);
    snprintf(msg, sizeof msg, "%s%s", want[0] == ':' ? path : "", want);
    size_t n = strlen(msg);
    int prefix = n > 0 && msg[n - 1] == '*';
    if (prefix)
        msg[--n] = '\0';
    struct dc_config cfg;
    enum dc_status st = dc_config_load(path, ov, nov, &cfg);
    const char *got = dc_error_msg();
    if (st != DC_ERR_CONFIG || (prefix ? strncmp(got, msg, n) : strcmp(got, msg)) != 0) {
        fprintf(stderr, "text:\n%s\nwant CONFIG \"%s\"%s\ngot  %s \"%s\"\n", text, msg, prefix ? "..." : "",
                dc_status_str(st), got);
        dc_test_failures++;
    }
    CHECK(cfg.net_text == NULL);
    dc_config_free(&cfg);
}

static void test_defaults(void)
{
    char path[512];
    write_tmp(DATA "[conv]\nfilters = 8\nsize = 3\n[maxpool]\nsize = 2\n[conv]\nfilters = 4\nsize = 5\n"
                   "name = wide\n[avgpool]\n[relu]\n[batchnorm]\n[dropout]\n[fire]\nsqueeze = 2\n"
                   "expand1x1 = 3\nexpand3x3 = 4\n[fc]\noutputs = 10\n[fc]\noutputs = 7\nactivation = relu\n",
              path, sizeof path);
    struct dc_config c;
    CHECK_OK(dc_config_load(path, NULL, 0, &c));
    CHECK(c.dataset == DC_DATASET_MNIST && strcmp(c.data_dir, "data/mnist") == 0 && c.augment == 0);
    CHECK(c.crop_pad == 4 && c.flip == 1);
    CHECK(c.train_limit == 0 && c.test_limit == 0);
    CHECK(strcmp(c.device, "auto") == 0 && c.epochs == 10 && c.batch == 64);
    CHECK(c.lr == 0.01f && c.momentum == 0.9f && c.weight_decay == 0 && c.nesterov == 0);
    CHECK(c.schedule == DC_LR_CONST && c.step_epochs == 10 && c.gamma == 0.1f && c.warmup_epochs == 0);
    CHECK(c.seed == 1 && c.threads == 0 && c.tf32 == 0 && c.checkpoint_every == 1);
    CHECK(!c.has_prune && !c.has_quantize && !c.has_encode && !c.has_distill && c.label_smoothing == 0.0f);
    CHECK(c.distill_alpha == 0.5f && c.distill_temperature == 4.0f);
    CHECK(!c.has_compress && c.target_bytes == 0 && c.validation == 5000 && c.max_accuracy_drop == 0.0f);
    CHECK(c.prune_method == DC_PRUNE_STD && c.quality_conv == 1.0f && c.quality_fc == 1.0f);
    CHECK(c.sparsity_conv == 0 && c.sparsity_fc == 0 && c.prune_rounds == 3 && c.retrain_epochs == 2 &&
          c.final_epochs == -1);
    CHECK(c.retrain_lr == 0.001f && c.bits_conv == 8 && c.bits_fc == 5 && c.kmeans_init == DC_INIT_LINEAR);
    CHECK(c.kmeans_iters == 30 && c.finetune_epochs == 1 && c.finetune_lr == 0.001f);
    CHECK(c.index_bits_conv == 8 && c.index_bits_fc == 5 && c.huffman == 1 && c.dense_bits == 32);
    CHECK(strcmp(c.encode_file, "model.dcm") == 0);
    CHECK(c.nlayers == 10);
    const char *names[] = {"conv1", "pool1", "wide", "pool2", "relu1", "bn1", "dropout1", "fire1", "fc1", "fc2"};
    for (int i = 0; i < c.nlayers && i < 10; i++)
        CHECK(strcmp(c.layers[i].name, names[i]) == 0);
    const struct dc_layer_cfg *l = c.layers;
    CHECK(l[0].type == DC_LAYER_CONV && l[0].filters == 8 && l[0].size == 3 && l[0].stride == 1 && l[0].pad == 1);
    CHECK(l[0].batch_normalize == 0 && l[0].relu == 0 && l[0].prune == -1 && l[0].bits == 0 && l[0].line == 4);
    CHECK(l[1].type == DC_LAYER_MAXPOOL && l[1].size == 2 && l[1].stride == 2 && l[1].pad == 0);
    CHECK(l[2].pad == 2 && l[2].filters == 4);
    CHECK(l[3].type == DC_LAYER_AVGPOOL && l[3].size == 0 && l[3].stride == 0 && l[3].pad == 0);
    CHECK(l[4].type == DC_LAYER_RELU && l[5].type == DC_LAYER_BN);
    CHECK(l[6].type == DC_LAYER_DROPOUT && l[6].probability == 0.5f);
    CHECK(l[7].type == DC_LAYER_FIRE && l[7].squeeze == 2 && l[7].expand1 == 3 && l[7].expand3 == 4);
    CHECK(l[8].type == DC_LAYER_FC && l[8].outputs == 10 && l[8].relu == 0);
    CHECK(l[9].outputs == 7 && l[9].relu == 1);
    CHECK(c.net_text != NULL && strncmp(c.net_text, "[conv]\nfilters=8\n", 17) == 0);
    dc_config_free(&c);
    CHECK(c.net_text == NULL);
    CHECK(strcmp(dc_layer_type_name(DC_LAYER_BN), "batchnorm") == 0);
    CHECK(strcmp(dc_layer_type_name(DC_LAYER_AVGPOOL), "avgpool") == 0);
}

static void test_file_errors(void)
{
    expect_fail(DATA "[foo]\nx = 1\n", NULL, 0,
                ":4: [foo]: unknown section; use base, data, train, prune, quantize, encode, distill, compress, init, or a layer: "
                "conv, fc, maxpool, avgpool, relu, batchnorm, dropout, fire");
    expect_fail(DATA "[train]\nepochs = 3\nlearning_rate = 0.1\n[fc]\noutputs = 10\n", NULL, 0,
                ":6: [train] learning_rate: unknown key; [train] takes device, epochs, batch, lr, *");
    expect_fail(DATA "[train]\nbatch\n", NULL, 0,
                ":5: line 'batch' has no '=': write key = value (comments start with # or ;)");
    expect_fail(DATA "[train]\nbatch = 6x4\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [train] batch: '6x4' is not an integer");
    expect_fail(DATA "[train]\nlr = abc\n[fc]\noutputs = 10\n", NULL, 0, ":5: [train] lr: 'abc' is not a number");
    expect_fail(DATA "[train]\nlr = 0.1x\n[fc]\noutputs = 10\n", NULL, 0, ":5: [train] lr: '0.1x' is not a number");
    expect_fail(DATA "[train]\nlr =\n[fc]\noutputs = 10\n", NULL, 0, ":5: [train] lr: no value after '='");
    expect_fail(DATA "crop_pad = 17\n[fc]\noutputs = 10\n", NULL, 0,
                ":4: [data] crop_pad: must be between 0 and 16 (got 17)");
    expect_fail(DATA "[train]\nbatch = 0\n[fc]\noutputs = 10\n", NULL, 0, ":5: [train] batch: must be >= 1 (got 0)");
    expect_fail(DATA "[train]\nlr = 0\n[fc]\noutputs = 10\n", NULL, 0, ":5: [train] lr: must be > 0 (got 0)");
    expect_fail(DATA "[train]\nmomentum = 1\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [train] momentum: must be in [0, 1) (got 1)");
    expect_fail(DATA "[train]\nnesterov = 2\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [train] nesterov: must be 0 or 1 (got 2)");
    expect_fail(DATA "[train]\nseed = -5\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [train] seed: '-5' is not an integer in 0..18446744073709551615");
    expect_fail(DATA "[fc]\noutputs = 10\n[dropout]\nprobability = 1.0\n", NULL, 0,
                ":7: [dropout] probability: must be in [0, 1) (got 1.0)");
    expect_fail(DATA "[quantize]\nbits_fc = 9\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [quantize] bits_fc: must be between 1 and 8 (got 9)");
    expect_fail(DATA "[encode]\nindex_bits_conv = 17\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [encode] index_bits_conv: must be between 1 and 16 (got 17)");
    expect_fail(DATA "[encode]\nindex_bits_fc = 0\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [encode] index_bits_fc: must be between 1 and 16 (got 0)");
    expect_fail(DATA "[encode]\ndense_bits = 24\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [encode] dense_bits: must be 16 or 32 (got 24)");
    expect_fail(DATA "[encode]\ndense_bits = 64\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [encode] dense_bits: must be 16 or 32 (got 64)");
    expect_fail(DATA "[prune]\nrounds = 61\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [prune] rounds: must be between 1 and 60 (got 61)"); /* was: cut short, silently */
    expect_fail(DATA "[train]\nlabel_smoothing = 1\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [train] label_smoothing: must be in [0, 1) (got 1)");
    expect_fail(DATA "[compress]\ntarget_bytes = -1\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [compress] target_bytes: must be >= 0 (got -1)");
    expect_fail(DATA "[compress]\nvalidation = 0\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [compress] validation: must be >= 1 (got 0)");
    expect_fail(DATA "[compress]\nmax_accuracy_drop = -1\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [compress] max_accuracy_drop: must be in [0, 100] (got -1)");
    expect_fail(DATA "[compress]\nbudget = 5\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [compress] budget: unknown key; [compress] takes target_bytes, max_accuracy_drop, validation");
    expect_fail(DATA "[distill]\nalpha = 0\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [distill] alpha: must be in (0, 1] (got 0)");
    expect_fail(DATA "[distill]\ntemperature = 0\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [distill] temperature: must be in (0, 100] (got 0)");
    expect_fail(DATA "[prune]\nsparsity_fc = 1\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [prune] sparsity_fc: must be in [0, 1) (got 1)");
    expect_fail(DATA "[prune]\nsparsity_conv = 0.9999999999\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [prune] sparsity_conv: must be in [0, 1) (got 0.9999999999)");
    expect_fail(DATA "[train]\nschedule = linear\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [train] schedule: unknown value 'linear'; use const, step, cosine or onecycle");
    expect_fail(DATA "[train]\ndevice = gpu\n[fc]\noutputs = 10\n", NULL, 0,
                ":5: [train] device: unknown value 'gpu'; use auto, cpu or cuda");
    expect_fail("[data]\nset = imagenet\ndir = x\n[fc]\noutputs = 10\n", NULL, 0,
                ":2: [data] set: unknown value 'imagenet'; use mnist or cifar10");
    expect_fail(DATA "[fc]\noutputs = 10\nactivation = tanh\n", NULL, 0,
                ":6: [fc] activation: unknown value 'tanh'; use linear or relu");
    expect_fail("\n[data]\nset = mnist\n[fc]\noutputs = 10\n", NULL, 0,
                ":2: [data] dir: required key missing; add `dir = ...`");
    expect_fail(DATA "[conv]\nsize = 3\n", NULL, 0, ":4: [conv] filters: required key missing; add `filters = ...`");
    expect_fail(DATA "[train]\nepochs = 1\n[fc]\noutputs = 10\n[train]\nbatch = 8\n", NULL, 0,
                ":8: [train]: section repeated (first at line 4); merge the two");
    expect_fail(DATA "[fc]\noutputs = 10\nname = head\n[fc]\nname = head\noutputs = 10\n", NULL, 0,
                ":8: [fc] name: 'head' is already the name of the [fc] at line 4; choose another");
    /* an explicit name may collide with a default one */
    expect_fail(DATA "[fc]\noutputs = 10\nname = fc2\n[fc]\noutputs = 10\n", NULL, 0,
                ":7: [fc] name: 'fc2' (this layer's default name) is already the name of the [fc] at line 4; "
                "choose another");
    expect_fail(DATA "[fc]\noutputs = 10\nname = fc.1\n", NULL, 0,
                ":6: [fc] name: 'fc.1' is not a layer name: start with a letter, then letters, digits, '_' or '-'");
    expect_fail(DATA "[fc]\noutputs = 10\nname = train\n", NULL, 0,
                ":6: [fc] name: 'train' is a section name; choose another layer name");
    expect_fail(DATA "[conv]\nfilters = 4\nsize = 3\npad = 3\n", NULL, 0,
                ":7: [conv] pad: must be smaller than size (3)");
    expect_fail(DATA "[avgpool]\nstride = 2\n", NULL, 0,
                ":5: [avgpool] stride: a global pool (size = 0) takes no stride; remove it");
    expect_fail(DATA "[fc]\noutputs = 10\nprune = -0.5\n", NULL, 0,
                ":6: [fc] prune: must be >= 0, or -1 for the [prune] default (got -0.5)");
    expect_fail(DATA "[prune]\nmethod = sparsity\n[fc]\noutputs = 10\nprune = 1.5\n", NULL, 0,
                ":8: [fc] prune: is a sparsity under [prune] method = sparsity and must be in [0, 1) (got 1.5)");
    expect_fail(DATA "[train]\nepochs = 1\n", NULL, 0,
                ": no layer sections; describe the network with [conv], [fc], [maxpool], [avgpool], "
                "[relu], [batchnorm], [dropout] or [fire] sections");
    expect_fail("[train]\nepochs = 1\n[fc]\noutputs = 10\n", NULL, 0,
                ": no [data] section; add one with set = mnist|cifar10 and dir = PATH");
}

static void test_overrides(void)
{
    const char *text = DATA "[train]\nlr = 0.1\n[fc]\noutputs = 300\n[fc]\noutputs = 10\nname = head\n";
    const char *bad1[] = {"train.batch=0"};
    expect_fail(text, bad1, 1, "--set train.batch=0: must be >= 1 (got 0)");
    const char *bad2[] = {"fc7.prune=1"};
    expect_fail(text, bad2, 1,
                "--set fc7.prune=1: no section or layer named 'fc7'; use data, train, prune, quantize, encode, init "
                "or a layer name (fc1, head)");
    const char *bad3[] = {"train.foo=1"};
    expect_fail(text, bad3, 1, "--set train.foo=1: unknown key; [train] takes device, *");
    const char *bad4[] = {"trainlr=1"};
    expect_fail(text, bad4, 1, "--set trainlr=1: expected section.key=value (e.g. train.lr=0.05) or *");
    const char *bad5[] = {"train.lr"};
    expect_fail(text, bad5, 1, "--set train.lr: expected section.key=value *");
    const char *bad6[] = {"head.outputs=6x4"};
    expect_fail(text, bad6, 1, "--set head.outputs=6x4: '6x4' is not an integer");
    const char *bad7[] = {"quantize.init=kmeans++"};
    expect_fail(text, bad7, 1, "--set quantize.init=kmeans++: unknown value 'kmeans++'; use linear, density or random");

    char path[512];
    write_tmp(text, path, sizeof path);
    const char *good[] = {"train.lr=0.2", "fc1.prune=1.5", "head.bits = 4", "quantize.bits_fc=4",
                          "data.dir=/elsewhere", "train.lr=0.3", "encode.dense_bits=16"};
    struct dc_config c;
    CHECK_OK(dc_config_load(path, good, 7, &c));
    CHECK(c.dense_bits == 16 && c.has_encode == 1);
    CHECK(c.lr == 0.3f); /* the last override of a key wins */
    CHECK(c.layers[0].prune == 1.5f && c.layers[1].bits == 4 && c.layers[0].bits == 0);
    CHECK(c.has_quantize == 1 && c.bits_fc == 4 && c.bits_conv == 8 && c.has_prune == 0);
    CHECK(strcmp(c.data_dir, "/elsewhere") == 0);
    CHECK(c.net_text && strstr(c.net_text, "prune=1.5\n") && strstr(c.net_text, "bits=4\n"));
    dc_config_free(&c);
}

static int same_layers(const struct dc_config *a, const struct dc_config *b)
{
    if (a->nlayers != b->nlayers)
        return 0;
    for (int i = 0; i < a->nlayers; i++) {
        struct dc_layer_cfg x = a->layers[i], y = b->layers[i];
        x.line = y.line = 0; /* lines (and files) differ between the file and net_text */
        x.base = y.base = 0;
        if (memcmp(&x, &y, sizeof x) != 0) {
            fprintf(stderr, "layer %d (%s) differs after the round trip\n", i, x.name);
            return 0;
        }
    }
    return 1;
}

static void test_net_round_trip(void)
{
    char path[512];
    write_tmp(DATA "[prune]\nmethod = sparsity\n"
                   "[conv]\nfilters = 8\nsize = 3\nstride = 2\nbatch_normalize = 1\nactivation = relu\n"
                   "prune = 0.35\nbits = 6\n[maxpool]\nsize = 3\nstride = 2\npad = 1\n[fire]\nsqueeze = 2\n"
                   "expand1x1 = 3\nexpand3x3 = 4\nname = f_a\nprune = 0.1\n[dropout]\nprobability = 0.3\n"
                   "[avgpool]\n[avgpool]\nsize = 2\n[batchnorm]\n[relu]\n[fc]\noutputs = 10\nbits = 3\n",
              path, sizeof path);
    struct dc_config a, b, c;
    CHECK_OK(dc_config_load(path, NULL, 0, &a));
    if (!a.net_text)
        return;
    CHECK_OK(dc_config_parse_net(a.net_text, "net_text", &b));
    CHECK(same_layers(&a, &b));
    CHECK(b.net_text && strcmp(a.net_text, b.net_text) == 0);
    CHECK(b.layers[0].prune == 0.35f && b.layers[3].probability == 0.3f && b.layers[5].stride == 2);
    /* a network description holds only layers */
    CHECK(dc_config_parse_net(DATA "[fc]\noutputs = 10\n", "model.dcm", &c) == DC_ERR_CONFIG);
    CHECK(strcmp(dc_error_msg(), "model.dcm:1: [data]: not a layer section; a network description holds only layers") == 0);
    CHECK(dc_config_parse_net("[fc]\noutputs = 0\n", "model.dcm", &c) == DC_ERR_CONFIG);
    CHECK(strcmp(dc_error_msg(), "model.dcm:2: [fc] outputs: must be >= 1 (got 0)") == 0);
    dc_config_free(&a);
    dc_config_free(&b);
}

static void test_missing_file(void)
{
    char path[512], msg[1024];
    test_tmp_path("test_config_absent.ini", path, sizeof path);
    remove(path);
    struct dc_config c;
    CHECK(dc_config_load(path, NULL, 0, &c) == DC_ERR_IO);
    snprintf(msg, sizeof msg, "cannot open config %s: %s", path, strerror(ENOENT));
    CHECK(strcmp(dc_error_msg(), msg) == 0);
}

/* Parameters of the network a config describes, with shapes inferred the way
 * the network does (a batch-normalised conv has no bias but a scale and shift). */
static long count_params(const struct dc_config *cfg, int c, int h, int w)
{
    long n = 0;
    for (int i = 0; i < cfg->nlayers; i++) {
        const struct dc_layer_cfg *l = &cfg->layers[i];
        switch (l->type) {
        case DC_LAYER_CONV:
            n += (long)c * l->filters * l->size * l->size + (l->batch_normalize ? 2 : 1) * l->filters;
            c = l->filters;
            h = (h + 2 * l->pad - l->size) / l->stride + 1;
            w = (w + 2 * l->pad - l->size) / l->stride + 1;
            break;
        case DC_LAYER_FC:
            n += (long)c * h * w * l->outputs + l->outputs;
            c = l->outputs;
            h = w = 1;
            break;
        case DC_LAYER_MAXPOOL:
        case DC_LAYER_AVGPOOL:
            h = l->size ? (h + 2 * l->pad - l->size) / l->stride + 1 : 1;
            w = l->size ? (w + 2 * l->pad - l->size) / l->stride + 1 : 1;
            break;
        case DC_LAYER_BN:
            n += 2L * c;
            break;
        case DC_LAYER_FIRE:
            n += (long)c * l->squeeze + l->squeeze + (long)l->squeeze * l->expand1 + l->expand1 +
                 9L * l->squeeze * l->expand3 + l->expand3;
            c = l->expand1 + l->expand3;
            break;
        default:
            break;
        }
    }
    return n;
}

/* configs/ next to tests/: from this file's path (CMake compiles with absolute
 * paths), else beside $DC_TEST_DATA. */
static const char *configs_dir(char *buf, size_t len)
{
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    if (slash)
        snprintf(buf, len, "%.*s/../configs", (int)(slash - file), file);
    else
        snprintf(buf, len, "../configs");
    DIR *d = opendir(buf);
    if (d) {
        closedir(d);
        return buf;
    }
    const char *data = getenv("DC_TEST_DATA");
    snprintf(buf, len, "%s/../configs", data ? data : "data");
    d = opendir(buf);
    if (d) {
        closedir(d);
        return buf;
    }
    return NULL;
}

/* dctrain --print-config's text loads back to the same config. */
static void check_printed(const struct dc_config *c)
{
    char *ta = NULL, *tb = NULL, path[512];
    CHECK_OK(dc_config_format(c, &ta));
    if (!ta || !write_tmp_file("test_config_printed.ini", ta, path, sizeof path)) {
        fprintf(stderr, "%s: cannot print or write the printed config\n", c->path);
        dc_test_failures++;
        free(ta);
        return;
    }
    struct dc_config b;
    enum dc_status st = dc_config_load(path, NULL, 0, &b);
    CHECK_OK(st);
    if (st == DC_OK)
        CHECK_OK(dc_config_format(&b, &tb));
    const char *ra = strchr(ta, '\n'), *rb = tb ? strchr(tb, '\n') : NULL; /* line 1 names the file */
    if (!rb || strcmp(ra, rb) != 0 || !same_layers(c, &b)) {
        fprintf(stderr, "%s: the printed config does not load back to the same config\n", c->path);
        dc_test_failures++;
    }
    if (st == DC_OK)
        dc_config_free(&b);
    free(ta);
    free(tb);
}

static void test_shipped_configs(void)
{
    char dir[600];
    if (!configs_dir(dir, sizeof dir)) {
        fprintf(stderr, "cannot find configs/ (from %s or $DC_TEST_DATA/../configs)\n", __FILE__);
        dc_test_failures++;
        return;
    }
    struct { const char *name; long params; int compress, seen; } known[] = {
        {"lenet300_mnist.ini", 266610, 0, 0},    {"lenet300_mnist_dc.ini", 266610, 1, 0},
        {"lenet5_mnist.ini", 431080, 0, 0},      {"lenet5_mnist_dc.ini", 431080, 1, 0},
        {"lenet5_fire_mnist.ini", 17882, 0, 0},  {"lenet5_fire_mnist_dc.ini", 17882, 1, 0},
        {"squeezevgg_cifar.ini", 402786, 0, 0},  {"squeezevgg_cifar_dc.ini", 402786, 1, 0},
        {"vgg19_cifar.ini", 20035018, 1, 0},
        {"squeezevgg_wide_cifar.ini", 544074, 0, 0},    {"squeezevgg_wide_cifar_dc.ini", 544074, 1, 0},
        {"squeezenet11_cifar.ini", 732810, 0, 0},       {"squeezenet11_cifar_dc.ini", 732810, 1, 0},
        {"vgg19_cifar_train.ini", 20035018, 0, 0},
    };
    int nknown = (int)(sizeof known / sizeof known[0]);
    DIR *d = opendir(dir);
    struct dirent *ent;
    while (d && (ent = readdir(d)) != NULL) {
        size_t n = strlen(ent->d_name);
        if (n < 5 || strcmp(ent->d_name + n - 4, ".ini") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        struct dc_config c;
        enum dc_status st = dc_config_load(path, NULL, 0, &c);
        if (st != DC_OK) {
            fprintf(stderr, "%s: %s\n", path, dc_error_msg());
            dc_test_failures++;
            continue;
        }
        int cifar = c.dataset == DC_DATASET_CIFAR10;
        long params = count_params(&c, cifar ? 3 : 1, cifar ? 32 : 28, cifar ? 32 : 28);
        for (int i = 0; i < nknown; i++) {
            if (strcmp(known[i].name, ent->d_name) != 0)
                continue;
            known[i].seen = 1;
            if (params != known[i].params) {
                fprintf(stderr, "%s: %ld parameters, want %ld\n", path, params, known[i].params);
                dc_test_failures++;
            }
            int dc = known[i].compress;
            CHECK(c.has_prune == dc && c.has_quantize == dc && c.has_encode == dc);
        }
        check_printed(&c);
        dc_config_free(&c);
    }
    if (d)
        closedir(d);
    for (int i = 0; i < nknown; i++)
        if (!known[i].seen) {
            fprintf(stderr, "%s/%s is missing\n", dir, known[i].name);
            dc_test_failures++;
        }
}

int main(void)
{
    test_defaults();
    test_file_errors();
    test_overrides();
    test_net_round_trip();
    test_missing_file();
    test_shipped_configs();
    return test_finish("test_config");
}
