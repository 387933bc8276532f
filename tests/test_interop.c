/* test_interop.c: .npz and .safetensors export and import on the CPU
 * backend.  A small conv + batch-norm + fc net, pruned and quantized, is
 * written as a .dcm, exported to both containers (dc_interop_export, the
 * dcexport code path), and imported into a fresh net: values bit for bit
 * equal to the decoded file, masks, codebooks and codes as the file has
 * them, the network description in the metadata.  Then: pairing by order
 * when names differ, float64 converted, and damaged or mismatched files
 * (truncated, wrong dtype, wrong shape, missing tensor, a JSON header size
 * beyond the file, bad .npy headers) rejected with one message naming the
 * file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dc/config.h"
#include "dc/interop.h"
#include "dc/modelfile.h"
#include "dc/net.h"
#include "dc/prune.h"
#include "dc/quantize.h"
#include "interop/interop_internal.h"

enum { NB = 2 };

static const char net_text[] = "[conv]\nname = c1\nfilters = 6\nsize = 3\nbatch_normalize = 1\nactivation = relu\n"
                               "[maxpool]\nsize = 4\nstride = 4\n"
                               "[conv]\nname = c2\nfilters = 8\nsize = 3\nactivation = relu\n"
                               "[fc]\nname = f1\noutputs = 40\nactivation = relu\n"
                               "[fc]\nname = f2\noutputs = 10\n";

static struct dc_net *build(struct dc_backend *be, struct dc_config *cfg, uint64_t seed)
{
    struct dc_net *net = NULL;
    CHECK_OK(dc_config_parse_net(net_text, "test_interop", cfg));
    CHECK_OK(dc_net_create(be, cfg, 1, 28, 28, 10, NB, seed, &net));
    return net;
}

/* c1 pruned + quantized, c2 quantized, f1 pruned, f2 untouched. */
static void compress(struct dc_backend *be, struct dc_net *net)
{
    struct dc_param *p = dc_net_find_param(net, "c1.weight");
    float t;
    CHECK_OK(dc_prune_threshold(be, p, DC_PRUNE_SPARSITY, 0.5f, &t));
    CHECK_OK(dc_prune_apply(be, p, t, NULL));
    CHECK_OK(dc_quantize_param(be, p, 3, DC_INIT_LINEAR, 10, 1));
    CHECK_OK(dc_quantize_param(be, dc_net_find_param(net, "c2.weight"), 4, DC_INIT_LINEAR, 10, 1));
    p = dc_net_find_param(net, "f1.weight");
    CHECK_OK(dc_prune_threshold(be, p, DC_PRUNE_SPARSITY, 0.9f, &t));
    CHECK_OK(dc_prune_apply(be, p, t, NULL));
    float rv[6] = {0.5f, 1.25f, 2, 0.75f, 3, 1.5f};
    CHECK_OK(be->ops.upload(be, dc_net_find_param(net, "c1.bn.running_var")->w.data, rv, sizeof rv));
}

/* Every parameter of net equals the decoded file's values bit for bit. */
static void compare_with_file(struct dc_backend *be, struct dc_net *net, const struct dc_modelfile *mf,
                              const char *what)
{
    CHECK(net->nparams == mf->nparams);
    for (int i = 0; i < net->nparams && i < mf->nparams; i++) {
        struct dc_param *p = net->params[i];
        size_t n = dc_param_count(p);
        float *x = malloc(n * sizeof *x);
        CHECK_OK(dc_tensor_download(be, &p->w, x));
        if (memcmp(x, mf->params[i].values, n * sizeof *x) != 0) {
            fprintf(stderr, "%s: %s differs from the decoded file\n", what, p->name);
            dc_test_failures++;
        }
        free(x);
    }
}

static const struct dc_interop_tensor *find(const struct dc_interop_set *set, const char *name)
{
    for (int i = 0; i < set->n; i++)
        if (!strcmp(set->t[i].name, name))
            return &set->t[i];
    return NULL;
}

/* The extra tensors: masks, codebooks and codes as the file has them; names and metadata. */
static void check_extras(const struct dc_interop_set *set, const struct dc_modelfile *mf)
{
    CHECK(set->network && !strcmp(set->network, mf->net_text));
    CHECK(set->dataset && !strcmp(set->dataset, "mnist"));
    CHECK(find(set, "c1.bn.weight") && find(set, "c1.bn.bias") && find(set, "c1.bn.running_var"));
    CHECK(!find(set, "c1.bn.gamma") && !find(set, "c2.weight.mask") && !find(set, "f1.weight.codes"));
    for (int i = 0; i < mf->nparams; i++) {
        const struct dc_modelfile_param *p = &mf->params[i];
        size_t n = (size_t)p->n * p->c * p->h * p->w;
        char name[200];
        dc_interop_torch_name(p->name, name, sizeof name);
        const struct dc_interop_tensor *t = find(set, name);
        CHECK(t && t->dtype == DC_DTYPE_F32 && dc_interop_count(t) == n);
        if (p->mask) {
            snprintf(name, sizeof name, "%s.mask", p->name);
            t = find(set, name);
            CHECK(t && dc_interop_count(t) == n && !memcmp(t->data, p->mask, n * 4));
        }
        if (p->assign) {
            snprintf(name, sizeof name, "%s.codes", p->name);
            t = find(set, name);
            CHECK(t && t->dtype == DC_DTYPE_U8 && !memcmp(t->data, p->assign, n));
            snprintf(name, sizeof name, "%s.codebook", p->name);
            t = find(set, name);
            CHECK(t && t->ndim == 1 && t->shape[0] == p->m && !memcmp(t->data, p->codebook, (size_t)p->m * 4));
        }
    }
    const struct dc_interop_tensor *w = find(set, "f1.weight"), *c = find(set, "c2.weight");
    CHECK(w && w->ndim == 2 && w->shape[0] == 40 && w->shape[1] == 8 * 7 * 7);
    CHECK(c && c->ndim == 4 && c->shape[0] == 8 && c->shape[1] == 6 && c->shape[2] == 3 && c->shape[3] == 3);
}

/* Loading path into a fresh net fails with a message containing `needle` (and the file name). */
static void expect_fail(struct dc_backend *be, const char *path, const char *needle)
{
    struct dc_config *cfg = calloc(1, sizeof *cfg);
    struct dc_net *net = build(be, cfg, 9);
    enum dc_status s = net ? dc_interop_load(path, net, NULL) : DC_OK;
    const char *msg = dc_error_msg();
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (s == DC_OK || !strstr(msg, needle) || !strstr(msg, base) || strchr(msg, '\n')) {
        fprintf(stderr, "%s: expected an error with '%s', got %s: %s\n", path, needle, s == DC_OK ? "success" : "",
                msg);
        dc_test_failures++;
    }
    dc_net_free(net);
    dc_config_free(cfg);
    free(cfg);
}

static void write_bytes(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n);
    if (f)
        fclose(f);
}

/* Cuts of a good file at many lengths, and one flipped data byte: all refused. */
static void test_truncations(struct dc_backend *be, const char *good, const char *ext)
{
    uint8_t *b;
    size_t n;
    CHECK_OK(dc_interop_slurp(good, &b, &n));
    if (!b)
        return;
    char bad[1024], name[64];
    snprintf(name, sizeof name, "test_interop_cut.%s", ext);
    test_tmp_path(name, bad, sizeof bad);
    size_t cuts[] = {0, 1, 7, 8, 9, 30, 64, 100, n / 3, n / 2, n - 100, n - 23, n - 22, n - 5, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_bytes(bad, b, cuts[i]);
        expect_fail(be, bad, "");
    }
    b[n / 2] ^= 0x5a; /* inside f1.weight's data: the ZIP CRC catches it; safetensors has no CRC */
    write_bytes(bad, b, n);
    if (!strcmp(ext, "npz"))
        expect_fail(be, bad, "f1.weight");
    free(b);
}

/* Rewrite the exported set with one change and check the message. */
static void test_mismatches(struct dc_backend *be, const char *good, const char *ext)
{
    char bad[1024], name[64];
    snprintf(name, sizeof name, "test_interop_bad.%s", ext);
    test_tmp_path(name, bad, sizeof bad);
    struct dc_interop_set set;
    for (int kase = 0; kase < 4; kase++) {
        CHECK_OK(dc_interop_read(good, &set));
        struct dc_interop_tensor *w = (struct dc_interop_tensor *)find(&set, "f1.weight");
        struct dc_interop_tensor *b = (struct dc_interop_tensor *)find(&set, "f2.bias");
        const char *needle = "";
        if (!w || !b)
            break;
        if (kase == 0) { /* transposed */
            int64_t t = w->shape[0];
            w->shape[0] = w->shape[1], w->shape[1] = t;
            needle = "tensor f1.weight has shape [392, 40], parameter f1.weight expects [40, 392]";
        } else if (kase == 1) { /* uint8 where a float belongs: 10 floats as 40 bytes */
            b->dtype = DC_DTYPE_U8;
            b->shape[0] = 40;
            needle = "tensor f2.bias has shape [40]";
        } else if (kase == 2) {
            b->dtype = DC_DTYPE_U8;
            b->shape[0] = 40;
            w->shape[0] = 20, w->shape[1] = 784; /* same count, other shape */
            needle = "parameter f1.weight expects [40, 392]";
        } else { /* a missing tensor (f2.bias is the last one) */
            CHECK(b == &set.t[set.n - 1]);
            free(b->data);
            set.n--;
            needle = "missing tensor f2.bias";
        }
        CHECK_OK(dc_interop_write(bad, &set));
        expect_fail(be, bad, needle);
        dc_interop_free(&set);
    }
    /* one tensor renamed, the rest by name: pairs by order, consistent with every name */
    CHECK_OK(dc_interop_read(good, &set));
    struct dc_interop_tensor *r = (struct dc_interop_tensor *)find(&set, "f2.bias");
    if (r) {
        snprintf(r->name, sizeof r->name, "head.bias");
        CHECK_OK(dc_interop_write(bad, &set));
        struct dc_config *cfg = calloc(1, sizeof *cfg);
        struct dc_net *net = build(be, cfg, 5);
        CHECK_OK(dc_interop_load(bad, net, NULL));
        dc_net_free(net);
        dc_config_free(cfg);
        free(cfg);
        /* and c2.bias, f1.bias swapped: order and names disagree */
        struct dc_interop_tensor *a = (struct dc_interop_tensor *)find(&set, "c2.bias");
        struct dc_interop_tensor *f = (struct dc_interop_tensor *)find(&set, "f1.bias");
        snprintf(a->name, sizeof a->name, "f1.bias");
        snprintf(f->name, sizeof f->name, "c2.bias");
        CHECK_OK(dc_interop_write(bad, &set));
        expect_fail(be, bad, "names and order disagree");
    }
    dc_interop_free(&set);
    /* uint8 with the right shape */
    CHECK_OK(dc_interop_read(good, &set));
    struct dc_interop_tensor *c = (struct dc_interop_tensor *)find(&set, "c2.bias");
    if (c) {
        c->dtype = DC_DTYPE_U8;
        CHECK_OK(dc_interop_write(bad, &set));
        expect_fail(be, bad, "tensor c2.bias has dtype uint8, parameter c2.bias expects float32");
    }
    dc_interop_free(&set);
}

/* Names differ (PyTorch's nn.Sequential numbering), one tensor float64: pairs by order. */
static void test_by_order(struct dc_backend *be, const char *good, const char *ext, const struct dc_modelfile *mf)
{
    struct dc_interop_set in, out = {0};
    CHECK_OK(dc_interop_read(good, &in));
    int k = 0;
    for (int i = 0; i < in.n; i++) {
        const struct dc_interop_tensor *t = &in.t[i];
        size_t n = strlen(t->name);
        if ((n > 5 && !strcmp(t->name + n - 5, ".mask")) || strstr(t->name, ".code"))
            continue;
        char name[64];
        snprintf(name, sizeof name, "features.%d.%s", k++, strrchr(t->name, '.') + 1);
        if (!strcmp(t->name, "f2.weight")) { /* as float64 */
            size_t c = dc_interop_count(t);
            double *d = malloc(c * sizeof *d);
            for (size_t j = 0; j < c; j++)
                d[j] = ((const float *)t->data)[j];
            CHECK_OK(dc_interop_add(&out, name, DC_DTYPE_F64, t->ndim, t->shape, d));
            free(d);
        } else {
            CHECK_OK(dc_interop_add(&out, name, t->dtype, t->ndim, t->shape, t->data));
        }
        if (!strcmp(t->name, "c1.bn.running_var")) { /* PyTorch's counter, ignored */
            int64_t one = 1;
            double v = 100;
            snprintf(name, sizeof name, "features.%d.num_batches_tracked", k - 1);
            CHECK_OK(dc_interop_add(&out, name, DC_DTYPE_F64, 0, &one, &v));
        }
    }
    char path[1024], name[64];
    snprintf(name, sizeof name, "test_interop_order.%s", ext);
    CHECK_OK(dc_interop_write(test_tmp_path(name, path, sizeof path), &out));
    struct dc_config *cfg = calloc(1, sizeof *cfg);
    struct dc_net *net = build(be, cfg, 11);
    CHECK_OK(dc_interop_load(path, net, NULL));
    compare_with_file(be, net, mf, "by order");
    dc_net_free(net);
    dc_config_free(cfg);
    free(cfg);
    dc_interop_free(&in);
    dc_interop_free(&out);
}

/* Hand-made safetensors files: header size beyond the file, dtype, offsets, JSON. */
static void test_safetensors_crafted(struct dc_backend *be)
{
    static const struct {
        const char *json, *needle;
        uint64_t size_field; /* 0: the JSON's length */
    } cases[] = {
        {"{\"f2.bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[0,40]}}", "beyond the file", 1000000},
        {"{\"f2.bias\":{\"dtype\":\"BF16\",\"shape\":[10],\"data_offsets\":[0,20]}}", "dtype BF16", 0},
        {"{\"f2.bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[0,80]}}", "truncated", 0},
        {"{\"f2.bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[4,40]}}", "span 36 bytes", 0},
        {"{\"f2.bias\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,40]}}", "shape entry 0", 0},
        {"{\"f2.bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[0,40]", "bad JSON", 0},
        {"{\"f2.bias\":{\"dtype\":\"F32\",\"shape\":[10]}}", "data_offsets", 0},
    };
    char path[1024];
    test_tmp_path("test_interop_crafted.safetensors", path, sizeof path);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t jl = strlen(cases[i].json);
        uint8_t buf[512] = {0};
        uint64_t n = cases[i].size_field ? cases[i].size_field : jl;
        for (int k = 0; k < 8; k++)
            buf[k] = (uint8_t)(n >> (8 * k));
        memcpy(buf + 8, cases[i].json, jl);
        write_bytes(path, buf, 8 + jl + 40); /* 40 data bytes */
        expect_fail(be, path, cases[i].needle);
    }
}

/* .npy headers the parser must refuse, each with its reason. */
static void test_npy_headers(void)
{
    static const struct {
        const char *dict, *needle;
    } cases[] = {
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", "big-endian"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", "dtype '<i4' is not supported"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", "fortran_order is True"},
        {"{'descr': '<f4', 'fortran_order': False, }", "missing 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", "truncated"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "trailing bytes"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", "shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", "unexpected or repeated key 'x'"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }", "expected ','"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[256];
        size_t hl = strlen(cases[i].dict) + 1;
        memcpy(buf, "\x93NUMPY\x01\x00", 8);
        buf[8] = (uint8_t)hl, buf[9] = 0;
        memcpy(buf + 10, cases[i].dict, hl - 1);
        buf[10 + hl - 1] = '\n';
        memset(buf + 10 + hl, 0, 8); /* two floats */
        struct dc_interop_tensor t;
        memset(&t, 0, sizeof t);
        enum dc_status s = dc_npy_parse(buf, 10 + hl + 8, "x.npz: entry a.npy", &t);
        if (s == DC_OK || !strstr(dc_error_msg(), cases[i].needle) || !strstr(dc_error_msg(), "x.npz")) {
            fprintf(stderr, "npy header %zu: expected '%s', got: %s\n", i, cases[i].needle,
                    s == DC_OK ? "success" : dc_error_msg());
            dc_test_failures++;
        }
        free(t.data);
    }
}

int main(void)
{
    struct dc_backend *be = NULL;
    struct dc_backend_opts opts = {0};
    CHECK_OK(dc_backend_create("cpu", &opts, &be));
    struct dc_config *cfg = calloc(1, sizeof *cfg);
    struct dc_net *net = be ? build(be, cfg, 3) : NULL;
    char dcm[1024];
    test_tmp_path("test_interop.dcm", dcm, sizeof dcm);
    struct dc_modelfile mf;
    memset(&mf, 0, sizeof mf);
    if (net) {
        compress(be, net);
        CHECK_OK(dc_modelfile_write(dcm, net, cfg, NULL));
        CHECK_OK(dc_modelfile_read(dcm, &mf));
    }
    const char *exts[] = {"npz", "safetensors"};
    int have[2] = {1, 1};
    for (int e = 0; net && mf.nparams && e < 2; e++) {
        char path[1024], name[64];
        snprintf(name, sizeof name, "test_interop.%s", exts[e]);
        test_tmp_path(name, path, sizeof path);
        enum dc_status es = dc_interop_export(dcm, path);
        if (es == DC_ERR_UNSUPPORTED) { /* built without libzip or libcjson */
            printf("test_interop: %s skipped: %s\n", exts[e], dc_error_msg());
            have[e] = 0;
            continue;
        }
        CHECK_OK(es);
        struct dc_interop_set set;
        CHECK_OK(dc_interop_read(path, &set));
        check_extras(&set, &mf);
        dc_interop_free(&set);
        struct dc_config *cfg2 = calloc(1, sizeof *cfg2);
        struct dc_net *fresh = build(be, cfg2, 7);
        CHECK_OK(dc_interop_load(path, fresh, NULL));
        compare_with_file(be, fresh, &mf, path);
        dc_net_free(fresh);
        dc_config_free(cfg2);
        free(cfg2);
        test_by_order(be, path, exts[e], &mf);
        test_mismatches(be, path, exts[e]);
        test_truncations(be, path, exts[e]);
    }
    if (be && have[1])
        test_safetensors_crafted(be);
    if (be && have[0]) {
        char path[1024];
        expect_fail(be, test_tmp_path("test_interop_missing.npz", path, sizeof path), "No such file");
        expect_fail(be, test_tmp_path("test_interop.bin", path, sizeof path), "unknown weights format");
    }
    test_npy_headers();
    CHECK(dc_interop_export(dcm, "out.onnx") == DC_ERR_ARG);
    dc_modelfile_free(&mf);
    dc_net_free(net);
    dc_config_free(cfg);
    free(cfg);
    dc_backend_free(be);
    if (!have[0] && !have[1] && !dc_test_failures)
        return DC_TEST_SKIP;
    return test_finish("test_interop");
}
