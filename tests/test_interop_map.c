/* test_interop_map.c: the config's [init] map on import (dc_interop_apply
 * with a map), on the CPU backend and tensors held in memory.  A file whose
 * tensors come in reverse order under foreign names, with an extra tensor,
 * cannot pair by name or by order; the map names every tensor and drops the
 * extra one, and each parameter must then hold exactly its tensor's values.
 * A partial map plus order pairing works when the order is right.  Bad maps
 * (syntax, unknown tensor, unknown parameter, a tensor mapped twice, two
 * tensors given one name) fail with one line naming the file and entry, and
 * the [init] section parses from a config with --set. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dc/config.h"
#include "dc/interop.h"
#include "dc/net.h"

static const char net_text[] = "[fc]\noutputs = 5\nactivation = relu\n[fc]\noutputs = 3\n";
static const char *const ours[] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
static const int64_t shapes[4][2] = {{5, 12}, {5, 1}, {3, 5}, {3, 1}};

/* Tensor i of the file: value 100*i + j + 0.5 at index j, so every parameter's
 * content says which tensor filled it. */
static void add(struct dc_interop_set *set, const char *name, int i)
{
    int nd = shapes[i][1] == 1 ? 1 : 2;
    size_t n = (size_t)(shapes[i][0] * shapes[i][1]);
    float v[64];
    for (size_t j = 0; j < n; j++)
        v[j] = 100.0f * (float)i + (float)j + 0.5f;
    CHECK_OK(dc_interop_add(set, name, DC_DTYPE_F32, nd, shapes[i], v));
}

/* Every parameter k holds tensor k's values. */
static void check_filled(struct dc_backend *be, struct dc_net *net, const char *what)
{
    for (int k = 0; k < 4; k++) {
        struct dc_param *p = dc_net_find_param(net, ours[k]);
        float got[64], want[64];
        size_t n = p ? dc_param_count(p) : 0;
        CHECK(p && n == (size_t)(shapes[k][0] * shapes[k][1]));
        if (!p || n > 64)
            continue;
        CHECK_OK(dc_tensor_download(be, &p->w, got));
        for (size_t j = 0; j < n; j++)
            want[j] = 100.0f * (float)k + (float)j + 0.5f;
        if (!check_close(what, want, got, n, 0, 0))
            fprintf(stderr, "  in %s\n", ours[k]);
    }
}

static void expect_fail(struct dc_net *net, const struct dc_interop_set *set, const char *map, const char *needle)
{
    enum dc_status s = dc_interop_apply(set, net, "w.npz", map);
    const char *msg = dc_error_msg();
    if (s == DC_OK || !strstr(msg, needle) || !strstr(msg, "w.npz: ") || strchr(msg, '\n')) {
        fprintf(stderr, "map '%s': expected an error with '%s', got %s\n", map, needle, s == DC_OK ? "success" : msg);
        dc_test_failures++;
    }
}

/* The [init] section: key map, reachable by --set, unknown keys refused. */
static void test_config_section(void)
{
    char path[1024];
    FILE *f = fopen(test_tmp_path("test_interop_map.ini", path, sizeof path), "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fprintf(f, "[data]\nset = mnist\ndir = .\n[init]\nmap = a.w:fc1.weight, b:-\n%s", net_text);
    fclose(f);
    struct dc_config *cfg = calloc(1, sizeof *cfg);
    CHECK_OK(dc_config_load(path, NULL, 0, cfg));
    CHECK(!strcmp(cfg->init_map, "a.w:fc1.weight, b:-"));
    dc_config_free(cfg);
    const char *set[] = {"init.map=x:fc2.bias"};
    CHECK_OK(dc_config_load(path, set, 1, cfg));
    CHECK(!strcmp(cfg->init_map, "x:fc2.bias"));
    dc_config_free(cfg);
    const char *bad[] = {"init.file=w.npz"};
    CHECK(dc_config_load(path, bad, 1, cfg) == DC_ERR_CONFIG && strstr(dc_error_msg(), "[init] takes map"));
    dc_config_free(cfg);
    free(cfg);
}

int main(void)
{
    struct dc_backend *be = NULL;
    struct dc_backend_opts opts = {0};
    CHECK_OK(dc_backend_create("cpu", &opts, &be));
    struct dc_config *cfg = calloc(1, sizeof *cfg);
    struct dc_net *net = NULL;
    CHECK_OK(dc_config_parse_net(net_text, "test_interop_map", cfg));
    if (be)
        CHECK_OK(dc_net_create(be, cfg, 1, 3, 4, 3, 2, 1, &net));
    if (!net)
        return test_finish("test_interop_map");

    /* reversed, foreign names, an extra tensor of fc2.bias's shape first */
    struct dc_interop_set rev = {0};
    add(&rev, "head.extra", 3);
    for (int k = 3; k >= 0; k--) {
        char name[32];
        snprintf(name, sizeof name, "model.layer%d.%s", k / 2, k % 2 ? "b" : "w");
        add(&rev, name, k);
    }
    expect_fail(net, &rev, NULL, "missing tensor fc1.weight");
    const char *full = " model.layer0.w:fc1.weight, model.layer0.b:fc1.bias,model.layer1.w : fc2.weight,"
                       "model.layer1.b:fc2.bias, head.extra:- ,";
    CHECK_OK(dc_interop_apply(&rev, net, "w.npz", full));
    check_filled(be, net, "full map");
    /* the file's own names are untouched by the map (it renames a view) */
    CHECK(!strcmp(rev.t[1].name, "model.layer1.b") && !strcmp(rev.t[0].name, "head.extra"));

    /* drop the extra, the rest (in network order) pairs by order */
    struct dc_interop_set ord = {0};
    add(&ord, "head.extra", 3);
    for (int k = 0; k < 4; k++) {
        char name[32];
        snprintf(name, sizeof name, "seq.%d", k);
        add(&ord, name, k);
    }
    expect_fail(net, &ord, "", "5 tensors cannot pair by order with the network's 4 parameters");
    CHECK_OK(dc_interop_apply(&ord, net, "w.npz", "head.extra:-"));
    check_filled(be, net, "drop + order");
    /* ours or PyTorch's name both address a parameter; a partial map must agree with the order */
    CHECK_OK(dc_interop_apply(&ord, net, "w.npz", "head.extra:-, seq.0:fc1.weight"));
    check_filled(be, net, "partial map");
    expect_fail(net, &ord, "head.extra:-, seq.1:fc1.weight", "names and order disagree");

    expect_fail(net, &rev, "model.layer0.w", "entry 'model.layer0.w' is not FILE_NAME:OUR_NAME");
    expect_fail(net, &rev, "model.layer0.w:", "is not FILE_NAME:OUR_NAME");
    expect_fail(net, &rev, "nope:fc1.weight", "[init] map: no tensor named 'nope' in the file");
    expect_fail(net, &rev, "model.layer0.w:fc9.weight", "the network has no parameter 'fc9.weight'");
    expect_fail(net, &rev, "model.layer0.w:fc1.weight, model.layer0.w:fc1.bias", "is mapped twice");
    expect_fail(net, &rev, "model.layer0.w:fc1.weight, model.layer0.b:fc1.weight",
                "tensor 'model.layer0.w' already has the name fc1.weight");
    /* a map that puts a tensor of the wrong shape on a parameter: the shape error names both */
    expect_fail(net, &rev, "model.layer0.w:fc1.weight, model.layer0.b:-, model.layer1.w:fc2.weight, "
                "model.layer1.b:fc2.bias, head.extra:fc1.bias",
                "tensor head.extra has shape [3], parameter fc1.bias expects [5]");
    test_config_section();

    dc_interop_free(&rev);
    dc_interop_free(&ord);
    dc_net_free(net);
    dc_config_free(cfg);
    free(cfg);
    dc_backend_free(be);
    return test_finish("test_interop_map");
}
