/* test_config_base.c: `[base] config = FILE` and dc_config_format.  A config
 * built on a base must load to exactly the config its merged text describes,
 * every mistake must name the file and line it is in (the base's or the
 * including config's), and the printed config must load back to itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dc/config.h"

#define DATA "[data]\nset = mnist\ndir = data/mnist\n"
#define NET "[fc]\nname = hidden\noutputs = 30\nactivation = relu\n[fc]\noutputs = 10\n"

/* Write the scratch config `name`; its path goes to buf. */
static const char *put(const char *name, const char *text, char *buf, size_t len)
{
    char file[128];
    snprintf(file, sizeof file, "test_cbase_%s.ini", name);
    const char *p = write_tmp_file(file, text, buf, len);
    CHECK(p != NULL);
    return buf;
}

/* Load path; expect status want_st and the message want, where "@name" stands
 * for the path of the scratch config `name`. */
static void expect_status(const char *path, enum dc_status want_st, const char *want)
{
    char msg[2048] = "";
    size_t n = 0;
    for (const char *p = want; *p && n < sizeof msg - 600;) {
        if (*p == '@') {
            char name[64], file[128], full[512];
            size_t k = strspn(p + 1, "abcdefghijklmnopqrstuvwxyz0123456789");
            snprintf(name, sizeof name, "%.*s", (int)k, p + 1);
            snprintf(file, sizeof file, "test_cbase_%s.ini", name);
            n += (size_t)snprintf(msg + n, sizeof msg - n, "%s", test_tmp_path(file, full, sizeof full));
            p += 1 + k;
        } else {
            msg[n++] = *p++;
            msg[n] = '\0';
        }
    }
    struct dc_config cfg;
    enum dc_status st = dc_config_load(path, NULL, 0, &cfg);
    if (st == DC_OK)
        dc_config_free(&cfg);
    if (st != want_st || strcmp(dc_error_msg(), msg) != 0) {
        fprintf(stderr, "%s:\nwant %s \"%s\"\ngot  %s \"%s\"\n", path, dc_status_str(want_st), msg,
                dc_status_str(st), dc_error_msg());
        dc_test_failures++;
    }
}

static void expect_fail(const char *path, const char *want) { expect_status(path, DC_ERR_CONFIG, want); }

static void test_merge(void)
{
    char base[512], child[512];
    put("base", DATA "[train]\nepochs = 3\nlr = 0.1\n" NET, base, sizeof base);
    put("child",
        "[base]\nconfig = test_cbase_base.ini\n[train]\nepochs = 1\n[prune]\nmethod = sparsity\n"
        "[fc]\nname = fc2\nprune = 0.5\n",
        child, sizeof child);
    const char *ov[] = {"hidden.bits=4", "train.seed=7"};
    struct dc_config c;
    CHECK_OK(dc_config_load(child, ov, 2, &c));
    if (c.nlayers != 2)
        return;
    CHECK(c.epochs == 1 && c.lr == 0.1f && c.seed == 7 && c.has_prune && c.prune_method == DC_PRUNE_SPARSITY);
    CHECK(!c.has_quantize && !c.has_encode);
    CHECK(strcmp(c.layers[0].name, "hidden") == 0 && c.layers[0].outputs == 30 && c.layers[0].relu == 1);
    CHECK(c.layers[0].bits == 4 && c.layers[0].prune < 0);
    CHECK(c.layers[1].outputs == 10 && c.layers[1].prune == 0.5f);
    CHECK(strcmp(c.path, child) == 0 && c.nbases == 1 && strcmp(c.bases[0], base) == 0);
    /* the layers' lines are the base's, so are their files */
    CHECK(c.layers[0].line == 7 && strcmp(dc_config_layer_file(&c, &c.layers[0]), base) == 0);
    dc_config_free(&c);

    /* without [base] the layers are the config's own */
    CHECK_OK(dc_config_load(base, NULL, 0, &c));
    CHECK(c.nbases == 0 && strcmp(dc_config_layer_file(&c, &c.layers[1]), base) == 0);
    dc_config_free(&c);
}

/* Three deep: the nearest config wins, and errors point through the chain. */
static void test_chain(void)
{
    char top[512], mid[512], root[512];
    put("root", DATA "[train]\nepochs = 3\nbatch = 32\nlr = 0.1\n" NET, root, sizeof root);
    put("mid", "[base]\nconfig = test_cbase_root.ini\n[train]\nepochs = 5\nbatch = 16\n", mid, sizeof mid);
    put("top", "[base]\nconfig = test_cbase_mid.ini\n[train]\nepochs = 7\n[fc]\nname = hidden\nbits = 6\n", top,
        sizeof top);
    struct dc_config c;
    CHECK_OK(dc_config_load(top, NULL, 0, &c));
    CHECK(c.epochs == 7 && c.batch == 16 && c.lr == 0.1f && c.layers[0].bits == 6);
    CHECK(c.nbases == 2 && strcmp(c.bases[0], mid) == 0 && strcmp(c.bases[1], root) == 0);
    CHECK(strcmp(dc_config_layer_file(&c, &c.layers[0]), root) == 0);
    dc_config_free(&c);

    /* a bad value is reported where it is written, however deep */
    put("root", DATA "[train]\nepochs = 3\nbatch = 0\n" NET, root, sizeof root);
    put("mid", "[base]\nconfig = test_cbase_root.ini\n[train]\nepochs = 5\n", mid, sizeof mid);
    expect_fail(top, "@root:6: [train] batch: must be >= 1 (got 0)");
    put("root", DATA NET, root, sizeof root);
    put("top", "[base]\nconfig = test_cbase_mid.ini\n[fc]\nname = hidden\nbits = 9\n", top, sizeof top);
    expect_fail(top, "@top:5: [fc] bits: must be between 0 and 8 (got 9)");
    put("root", DATA "[fc]\nname = hidden\noutputs = 0\n[fc]\noutputs = 10\n", root, sizeof root);
    expect_fail(top, "@root:6: [fc] outputs: must be >= 1 (got 0)");
}

static void test_errors(void)
{
    char base[512], child[512];
    put("base", DATA NET, base, sizeof base);
    put("child", "[base]\nconfig = test_cbase_absent.ini\n", child, sizeof child);
    char path[512];
    remove(test_tmp_path("test_cbase_absent.ini", path, sizeof path));
    /* an unreadable base is an I/O error, as an unreadable config is */
    expect_status(child, DC_ERR_IO, "@child:2: [base] config: cannot open config @absent: No such file or directory");
    put("child", "[base]\nconfig = test_cbase_base.ini\nfile = x\n", child, sizeof child);
    expect_fail(child, "@child:3: [base] file: unknown key; [base] takes one key, config = the path of the "
                       "config this one builds on");
    put("child", "[base]\n[train]\nepochs = 1\n", child, sizeof child);
    expect_fail(child, "@child:1: [base] config: missing; give the path of the config this one builds on");
    put("child", "[base]\nconfig =\n", child, sizeof child);
    expect_fail(child, "@child:2: [base] config: empty; give the path of the config this one builds on");
    put("child", "[base]\nconfig = test_cbase_base.ini\n[base]\nconfig = test_cbase_base.ini\n", child,
        sizeof child);
    expect_fail(child, "@child:3: [base]: section repeated (first at line 1); merge the two");
    put("child", "[base]\nconfig = test_cbase_child.ini\n", child, sizeof child);
    expect_fail(child, "@child:2: [base] config: @child is already in the chain of bases (a config cannot "
                       "build on itself)");

    /* a cycle two long, seen from either end */
    char other[512];
    put("other", "[base]\nconfig = test_cbase_child.ini\n", other, sizeof other);
    put("child", "[base]\nconfig = test_cbase_other.ini\n", child, sizeof child);
    expect_fail(child, "@other:2: [base] config: @child is already in the chain of bases (a config cannot "
                       "build on itself)");

    /* layers are changed by name and never added */
    put("child", "[base]\nconfig = test_cbase_base.ini\n[fc]\noutputs = 20\n", child, sizeof child);
    expect_fail(child, "@child:3: [fc]: a config with [base] changes the base's layers by name and cannot add "
                       "layers; give name = the layer to change (@base's layers: hidden, fc2)");
    put("child", "[base]\nconfig = test_cbase_base.ini\n[fc]\nname = fc3\n", child, sizeof child);
    expect_fail(child, "@child:4: [fc] name: @base has no layer 'fc3'; a config with [base] changes the base's "
                       "layers and cannot add layers (@base's layers: hidden, fc2)");
    put("child", "[base]\nconfig = test_cbase_base.ini\n[conv]\nname = hidden\nfilters = 4\n", child,
        sizeof child);
    expect_fail(child, "@child:4: [conv] name: @base's layer 'hidden' is a [fc] (@base:4), not a [conv]");

    /* the base is checked as a file of its own */
    put("base", DATA "[train]\nepochs = 1\n[train]\nlr = 0.1\n" NET, base, sizeof base);
    put("child", "[base]\nconfig = test_cbase_base.ini\n", child, sizeof child);
    expect_fail(child, "@base:6: [train]: section repeated (first at line 4); merge the two");
    put("base", DATA "[tran]\nepochs = 1\n" NET, base, sizeof base);
    expect_fail(child, "@base:4: [tran]: unknown section; use base, data, train, prune, quantize, encode, "
                       "distill, compress, init, or a layer: conv, fc, maxpool, avgpool, relu, batchnorm, "
                       "dropout, fire");

    /* a network description (a model file's) has no [base] */
    struct dc_config c;
    CHECK(dc_config_parse_net("[base]\nconfig = x.ini\n[fc]\noutputs = 10\n", "model.dcm", &c) == DC_ERR_CONFIG);
    CHECK(strcmp(dc_error_msg(), "model.dcm:1: [base]: not a layer section; a network description holds only "
                                 "layers") == 0);
}

static void test_depth(void)
{
    char path[512];
    put("d5", DATA NET, path, sizeof path);
    for (int i = 4; i >= 0; i--) {
        char name[16], text[128];
        snprintf(name, sizeof name, "d%d", i);
        snprintf(text, sizeof text, "[base]\nconfig = test_cbase_d%d.ini\n", i + 1);
        put(name, text, path, sizeof path);
    }
    /* d1 -> d5 is four bases: allowed; d0 adds a fifth */
    struct dc_config c;
    char d1[512];
    put("d1", "[base]\nconfig = test_cbase_d2.ini\n", d1, sizeof d1);
    CHECK_OK(dc_config_load(d1, NULL, 0, &c));
    CHECK(c.nbases == DC_MAX_BASES);
    dc_config_free(&c);
    expect_fail(path, "@d4:2: [base] config: configs build on configs more than 4 deep; merge some of them");
}

/* The printed config loads back to the same config (and prints the same). */
static void test_format_round_trip(void)
{
    char base[512], child[512], printed[512];
    put("base", DATA "[train]\nepochs = 3\nlr = 0.05\nlabel_smoothing = 0.1\n[init]\nmap = a:b, c:-\n" NET
                     "[dropout]\nprobability = 0.3\n",
        base, sizeof base);
    put("child",
        "[base]\nconfig = test_cbase_base.ini\n[prune]\nmethod = sparsity\nsparsity_fc = 0.9\n[quantize]\n"
        "bits_fc = 3\n[encode]\nhuffman = 0\n[fc]\nname = hidden\nprune = 0.95\n",
        child, sizeof child);
    const char *ov[] = {"train.weight_decay=0.0005"};
    struct dc_config a, b;
    CHECK_OK(dc_config_load(child, ov, 1, &a));
    char *ta = NULL, *tb = NULL;
    CHECK_OK(dc_config_format(&a, &ta));
    if (!ta)
        return;
    CHECK(strstr(ta, "\n[init]\nmap = a:b, c:-\n") && strstr(ta, "weight_decay = 0.0005\n"));
    CHECK(strstr(ta, "sparsity_fc = 0.9\n") && strstr(ta, "\n[encode]\n") && !strstr(ta, "[distill]"));
    CHECK(!strstr(ta, "[base]") && strstr(ta, ", built on "));
    put("printed", ta, printed, sizeof printed);
    CHECK_OK(dc_config_load(printed, NULL, 0, &b));
    CHECK_OK(dc_config_format(&b, &tb));
    /* the same after the first line, which names the file */
    const char *ra = ta ? strchr(ta, '\n') : NULL, *rb = tb ? strchr(tb, '\n') : NULL;
    CHECK(ra && rb && strcmp(ra, rb) == 0);
    CHECK(a.has_prune == b.has_prune && a.has_quantize == b.has_quantize && a.has_encode == b.has_encode &&
          a.has_distill == b.has_distill && a.has_compress == b.has_compress);
    free(ta);
    free(tb);
    dc_config_free(&a);
    dc_config_free(&b);
}

int main(void)
{
    test_merge();
    test_chain();
    test_errors();
    test_depth();
    test_format_round_trip();
    return test_finish("test_config_base");
}
