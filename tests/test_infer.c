/* test_infer.c: a .dcm run from its compressed form (dc/infer.h) against the
 * same file decoded to dense weights (dc_modelfile_load), on the CPU backend.
 * The network has every layer kind the loader treats: a conv with batch norm
 * (folded), a Fire module (its three convs), a strided padded conv, a 1x1
 * conv, dropout, and fc layers; its weights are pruned and quantized,
 * pruned only, quantized only, and left dense.  For every format (and the
 * automatic choice, timed, and the fixed rule) the logits agree within 1e-5
 * relative and the predictions are identical, at batch 1 and at an odd batch; no coded
 * weight keeps a dense buffer; training a compressed layer is refused; and
 * a damaged file is rejected with a message and nothing left allocated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dc/config.h"
#include "dc/infer.h"
#include "dc/modelfile.h"
#include "dc/net.h"
#include "dc/prune.h"
#include "dc/quantize.h"
#include "dc/rng.h"

enum { NB = 7 };

static const char net_text[] =
    "[conv]\nname = c1\nfilters = 6\nsize = 3\npad = 1\nbatch_normalize = 1\nactivation = relu\n"
    "[maxpool]\nsize = 2\nstride = 2\n"
    "[fire]\nname = fi\nsqueeze = 4\nexpand1x1 = 6\nexpand3x3 = 6\n"
    "[conv]\nname = c2\nfilters = 8\nsize = 3\nstride = 2\npad = 1\nactivation = relu\n"
    "[conv]\nname = c3\nfilters = 10\nsize = 1\nactivation = relu\n"
    "[fc]\nname = f1\noutputs = 300\nactivation = relu\n"
    "[dropout]\nprobability = 0.5\n"
    "[fc]\nname = f2\noutputs = 10\n";

static struct dc_rng rng;

/* sparsity < 0: not pruned; bits 0: not quantized */
static void compress(struct dc_backend *be, struct dc_net *net)
{
    struct {
        const char *name;
        float sparsity;
        int bits;
    } plan[] = {{"c1.weight", 0.5f, 8},           {"fi.squeeze.weight", 0.3f, 5}, {"fi.expand1.weight", -1, 4},
                {"fi.expand3.weight", 0.9f, 8},   {"c2.weight", 0.7f, 0},         {"f1.weight", 0.97f, 5},
                {"f2.weight", 0.6f, 3}};
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        struct dc_param *p = dc_net_find_param(net, plan[i].name);
        CHECK(p != NULL);
        if (!p)
            continue;
        float t;
        if (plan[i].sparsity >= 0) {
            CHECK_OK(dc_prune_threshold(be, p, DC_PRUNE_SPARSITY, plan[i].sparsity, &t));
            CHECK_OK(dc_prune_apply(be, p, t, NULL));
        }
        if (plan[i].bits)
            CHECK_OK(dc_quantize_param(be, p, plan[i].bits, DC_INIT_LINEAR, 10, 1));
    }
    /* c3 stays dense; batch norm gets statistics far from the identity */
    const char *bn[4] = {"c1.bn.gamma", "c1.bn.beta", "c1.bn.running_mean", "c1.bn.running_var"};
    for (int k = 0; k < 4; k++) {
        float v[6];
        for (int i = 0; i < 6; i++)
            v[i] = k == 3 ? 0.3f + dc_rng_uniform(&rng) : dc_rng_uniform(&rng) - 0.3f;
        CHECK_OK(be->ops.upload(be, dc_net_find_param(net, bn[k])->w.data, v, sizeof v));
    }
    /* a bias and a folded batch-norm scale on codebooks ([quantize] bits_bias) */
    CHECK_OK(dc_quantize_param(be, dc_net_find_param(net, "f1.bias"), 4, DC_INIT_LINEAR, 10, 1));
    CHECK_OK(dc_quantize_param(be, dc_net_find_param(net, "c1.bn.gamma"), 2, DC_INIT_LINEAR, 10, 1));
}

static void fill_input(struct dc_backend *be, struct dc_net *net, const float *x, int n)
{
    CHECK_OK(be->ops.upload(be, net->act[0].data, x, sizeof(float) * 784 * (size_t)n));
}

static int argmax(const float *v, int k)
{
    int best = 0;
    for (int i = 1; i < k; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* The compressed run of inf against the dense decoded net on the same n images. */
static void compare(struct dc_backend *be, struct dc_net *dense, struct dc_infer *inf, const float *x, int n,
                    const char *what)
{
    float ref[NB * 10], got[NB * 10];
    struct dc_pass pass = {.train = 0};
    fill_input(be, dense, x, n);
    CHECK_OK(dc_net_forward(dense, n, &pass));
    CHECK_OK(be->ops.download(be, ref, dc_net_output(dense)->data, sizeof(float) * 10 * (size_t)n));
    fill_input(be, inf->net, x, n);
    double layer_s[64];
    CHECK_OK(dc_infer_forward(inf, n, n == 1 ? layer_s : NULL));
    CHECK_OK(be->ops.download(be, got, dc_net_output(inf->net)->data, sizeof(float) * 10 * (size_t)n));
    float maxabs = 0.0f;
    for (int i = 0; i < 10 * n; i++)
        maxabs = fabsf(ref[i]) > maxabs ? fabsf(ref[i]) : maxabs;
    char label[128];
    snprintf(label, sizeof label, "%s, batch %d: logits", what, n);
    check_close(label, ref, got, (size_t)10 * n, 1e-5f * maxabs, 1e-5f);
    for (int b = 0; b < n; b++)
        if (argmax(ref + 10 * b, 10) != argmax(got + 10 * b, 10)) {
            fprintf(stderr, "%s, batch %d: image %d predicted %d, dense %d\n", what, n, b, argmax(got + 10 * b, 10),
                    argmax(ref + 10 * b, 10));
            dc_test_failures++;
        }
}

static void check_plan(const struct dc_infer *inf, int format)
{
    CHECK(inf->nweights == 8);
    CHECK(inf->folded == 1);
    for (int i = 0; i < inf->nweights; i++) {
        const struct dc_infer_weight *w = &inf->w[i];
        CHECK(w->param->sp != NULL && w->param->w.data == NULL); /* no dense copy stays */
        int plain = !strcmp(w->name, "c2.weight") || !strcmp(w->name, "c3.weight");
        if (format == DC_FORMAT_CODEBOOK && plain)
            CHECK(w->format == DC_FORMAT_CSR); /* not quantized: nothing to share */
        else if (format >= 0)
            CHECK((int)w->format == format);
        if (format == DC_INFER_AUTO) /* every form timed alone, and the one kept among them */
            for (int f = 0; f < DC_FORMAT_COUNT; f++)
                CHECK(w->cand_us[f] >= 0 || (f == DC_FORMAT_CODEBOOK && plain));
        else
            for (int f = 0; f < DC_FORMAT_COUNT; f++)
                CHECK(w->cand_us[f] < 0); /* nothing timed */
        if (format == DC_INFER_RULE && plain)
            CHECK(w->format != DC_FORMAT_CODEBOOK);
    }
    /* auto timed whole forwards of the plan and of every one-form plan; nothing else did */
    CHECK((inf->plan_us >= 0) == (format == DC_INFER_AUTO));
    for (int f = 0; f < DC_FORMAT_COUNT; f++)
        CHECK((inf->uniform_us[f] >= 0) == (format == DC_INFER_AUTO));
    for (int i = 0; i < inf->net->nlayers; i++)
        CHECK(inf->net->layers[i]->type != DC_LAYER_BN);
}

static void test_formats(struct dc_backend *be, const char *path)
{
    struct dc_net *dense = NULL;
    struct dc_config cfg;
    CHECK_OK(dc_modelfile_load(path, be, NB, &dense, &cfg, NULL));
    if (!dense)
        return;
    float *x = malloc(sizeof(float) * 784 * NB);
    for (int i = 0; i < 784 * NB; i++)
        x[i] = dc_rng_uniform(&rng) * 2.0f - 0.5f;
    static const int formats[] = {DC_INFER_AUTO, DC_INFER_RULE, DC_FORMAT_DENSE, DC_FORMAT_CSR, DC_FORMAT_CODEBOOK};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        for (int tb = 1; tb <= NB; tb += NB - 1) {
            struct dc_infer *inf = NULL;
            struct dc_infer_opts o = {formats[i], tb, NB};
            CHECK_OK(dc_infer_load(path, be, &o, &inf));
            if (!inf)
                continue;
            const char *name = formats[i] == DC_INFER_AUTO   ? "auto"
                               : formats[i] == DC_INFER_RULE ? "rule"
                                                             : dc_spmat_format_name(formats[i]);
            check_plan(inf, formats[i]);
            CHECK(inf->weight_bytes > 0 && inf->file_bytes > 0);
            compare(be, dense, inf, x, 1, name);
            compare(be, dense, inf, x, NB, name);
            compare(be, dense, inf, x, 3, name);
            int32_t labels[3] = {1, 2, 3};
            CHECK_OK(be->ops.upload(be, inf->net->labels, labels, sizeof labels));
            CHECK_OK(dc_net_loss(inf->net, 3)); /* the evaluation path still has its loss buffer */
            CHECK(dc_net_backward(inf->net, 3) == DC_ERR_UNSUPPORTED);
            dc_infer_free(inf);
        }
    }
    free(x);
    dc_net_free(dense);
    dc_config_free(&cfg);
}

static void test_damage(struct dc_backend *be, const char *path)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f)
        return;
    static uint8_t buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char bad[512];
    test_tmp_path("test_infer_bad.dcm", bad, sizeof bad);
    /* a flipped bit in the middle (inside a section) and a truncation */
    for (int k = 0; k < 2; k++) {
        FILE *g = fopen(bad, "wb");
        if (k == 0)
            buf[len / 2] ^= 0x10;
        fwrite(buf, 1, k == 0 ? len : len - 9, g);
        fclose(g);
        if (k == 0)
            buf[len / 2] ^= 0x10;
        struct dc_infer *inf = (struct dc_infer *)1;
        struct dc_infer_opts o = {DC_INFER_AUTO, 1, 4};
        CHECK(dc_infer_load(bad, be, &o, &inf) == DC_ERR_FORMAT && inf == NULL);
        CHECK(strstr(dc_error_msg(), "test_infer_bad.dcm") != NULL);
        printf("damaged file %d: %s\n", k, dc_error_msg());
    }
    struct dc_infer *inf = NULL;
    struct dc_infer_opts o = {DC_FORMAT_COUNT, 1, 4};
    CHECK(dc_infer_load(path, be, &o, &inf) == DC_ERR_ARG && inf == NULL);
}

int main(void)
{
    dc_rng_seed(&rng, 5);
    struct dc_backend *be;
    struct dc_backend_opts opts = {2, 0, 0};
    if (dc_backend_create("cpu", &opts, &be) != DC_OK) {
        fprintf(stderr, "no cpu backend: %s\n", dc_error_msg());
        return 1;
    }
    struct dc_config *cfg = calloc(1, sizeof *cfg);
    struct dc_net *net = NULL;
    CHECK_OK(dc_config_parse_net(net_text, "test_infer", cfg));
    CHECK_OK(dc_net_create(be, cfg, 1, 28, 28, 10, NB, 3, &net));
    char path[512];
    test_tmp_path("test_infer.dcm", path, sizeof path);
    if (net) {
        compress(be, net);
        cfg->huffman = 1, cfg->index_bits_conv = 4, cfg->index_bits_fc = 5; /* fillers in both */
        CHECK_OK(dc_modelfile_write(path, net, cfg, NULL));
        dc_net_free(net);
        test_formats(be, path);
        test_damage(be, path);
    }
    dc_config_free(cfg);
    free(cfg);
    dc_backend_free(be);
    return test_finish("test_infer");
}
