/* test_resume.c: a checkpoint carries everything training depends on, so a
 * run stopped after an epoch and resumed in a fresh process ends bit for bit
 * where the uninterrupted run ends (CPU, same seed).  Checked for a plain
 * phase, a retrain phase of a pruned net (masks) and a fine-tune phase of a
 * quantized net (cluster indices, codebooks, codebook momentum).  The
 * resumed net is built with another seed, so only the checkpoint can make it
 * agree.  Also: a checkpoint of another config and damaged checkpoints are
 * refused with a message, never a crash.  Real MNIST subset; 77 without it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "dc/backend.h"
#include "dc/config.h"
#include "dc/data.h"
#include "dc/net.h"
#include "dc/prune.h"
#include "dc/quantize.h"
#include "dc/train.h"

static const char resume_ini[] =
    "[data]\nset = mnist\ndir = overridden\ntrain_limit = 3000\ntest_limit = 500\n"
    "[train]\ndevice = cpu\nepochs = 2\nbatch = 64\nlr = 0.05\nmomentum = 0.9\n"
    "weight_decay = 1e-4\nschedule = cosine\nseed = 3\nthreads = 1\n"
    "[prune]\nmethod = sparsity\nsparsity_fc = 0.8\nrounds = 1\n"
    "[quantize]\nbits_fc = 4\niterations = 10\n"
    "[fc]\nname = fc1\noutputs = 300\nactivation = relu\n"
    "[fc]\nname = fc2\noutputs = 100\nactivation = relu\n"
    "[fc]\nname = fc3\noutputs = 10\n";

/* The same names, but fc1 is narrower: a checkpoint of resume_ini must not fit. */
static const char other_ini[] =
    "[data]\nset = mnist\ndir = overridden\n"
    "[fc]\nname = fc1\noutputs = 200\nactivation = relu\n"
    "[fc]\nname = fc2\noutputs = 100\nactivation = relu\n"
    "[fc]\nname = fc3\noutputs = 10\n";

/* Two layers where resume_ini has three. */
static const char short_ini[] =
    "[data]\nset = mnist\ndir = overridden\n"
    "[fc]\nname = fc1\noutputs = 300\nactivation = relu\n"
    "[fc]\nname = fc3\noutputs = 10\n";

struct fixture {
    struct dc_config cfg;
    struct dc_backend *be;
    struct dc_data data;
    struct dc_device_data dd;
    char ckpt[1024];
};

static struct dc_net *make_net(struct fixture *fx, const struct dc_config *cfg, uint64_t seed)
{
    struct dc_net *net = NULL;
    const struct dc_dataset *tr = &fx->data.train;
    CHECK_OK(dc_net_create(fx->be, cfg, tr->c, tr->h, tr->w, fx->data.classes, fx->cfg.batch, seed, &net));
    return net;
}

/* Download n bytes of backend memory (NULL stays NULL). */
static void *fetch(struct dc_backend *be, const void *src, size_t n)
{
    if (!src)
        return NULL;
    void *host = malloc(n ? n : 1);
    CHECK_OK(be->ops.download(be, host, src, n));
    return host;
}

/* One buffer of a parameter, bit for bit; prints which one differs. */
static void same_bytes(struct dc_backend *be, const char *param, const char *field, const void *a, const void *b,
                       size_t n)
{
    if ((a == NULL) != (b == NULL)) {
        fprintf(stderr, "%s %s: present in only one of the nets\n", param, field);
        dc_test_failures++;
        return;
    }
    void *ha = fetch(be, a, n), *hb = fetch(be, b, n);
    if (ha && memcmp(ha, hb, n) != 0) {
        fprintf(stderr, "%s %s: the resumed run differs from the straight run\n", param, field);
        dc_test_failures++;
    }
    free(ha);
    free(hb);
}

static void same_params(struct dc_backend *be, struct dc_net *a, struct dc_net *b)
{
    CHECK(a->nparams == b->nparams);
    for (int i = 0; i < a->nparams && i < b->nparams; i++) {
        const struct dc_param *p = a->params[i], *q = b->params[i];
        size_t n = dc_param_count(p);
        CHECK(strcmp(p->name, q->name) == 0 && n == dc_param_count(q) && p->m == q->m);
        same_bytes(be, p->name, "values", p->w.data, q->w.data, n * 4);
        if (p->trainable)
            same_bytes(be, p->name, "momentum", p->v.data, q->v.data, n * 4);
        same_bytes(be, p->name, "mask", p->mask, q->mask, n * 4);
        same_bytes(be, p->name, "cluster indices", p->assign, q->assign, n);
        same_bytes(be, p->name, "codebook", p->codebook, q->codebook, (size_t)p->m * 4);
        same_bytes(be, p->name, "codebook momentum", p->vcode, q->vcode, (size_t)p->m * 4);
    }
}

/* Saves the checkpoint after epoch 1, as dctrain does after every epoch. */
struct saver {
    struct fixture *fx;
    struct dc_net *net;
    int stage_index;
};

static enum dc_status save_after_first(void *user, const struct dc_epoch_report *r)
{
    struct saver *sv = user;
    if (r->epoch != 1)
        return DC_OK;
    struct dc_run_state st = {.stage_index = sv->stage_index, .epoch = r->epoch, .seed = sv->fx->cfg.seed,
                              .stage_figure = 0.625};
    return dc_checkpoint_save(sv->fx->ckpt, sv->net, &st);
}

/* Net a runs phase ph (2 epochs) straight, checkpointing after epoch 1; a
 * fresh net of another seed loads that checkpoint and runs epoch 2; both must
 * agree bit for bit.  The fresh net is what a resumed dctrain builds before
 * loading: the config's layers and nothing else. */
static void check_phase(struct fixture *fx, struct dc_net *a, const char *stage, float lr, int stage_index)
{
    struct dc_phase ph = {.stage = stage, .epochs = 2, .lr = lr, .schedule = DC_LR_COSINE};
    struct saver sv = {fx, a, stage_index};
    struct dc_eval ea = {0}, eb = {0};
    CHECK_OK(dc_train_phase(a, &fx->dd, &fx->cfg, &ph, 0, save_after_first, &sv, &ea));
    struct dc_net *b = make_net(fx, &fx->cfg, fx->cfg.seed + 1000);
    if (!b)
        return;
    struct dc_run_state st = {0};
    CHECK_OK(dc_checkpoint_load(fx->ckpt, b, &st));
    CHECK(st.stage_index == stage_index && st.epoch == 1 && st.seed == fx->cfg.seed && st.stage_figure == 0.625);
    CHECK_OK(dc_train_phase(b, &fx->dd, &fx->cfg, &ph, st.epoch, NULL, NULL, &eb));
    printf("%s: straight run accuracy %.4f, resumed %.4f\n", stage, ea.accuracy, eb.accuracy);
    CHECK(ea.accuracy == eb.accuracy && ea.loss == eb.loss);
    same_params(fx->be, a, b);
    dc_net_free(b);
}

/* Loading into a net of another shape fails with DC_ERR_FORMAT and a
 * message naming the file and the mismatch (expect), not a partial load. */
static void check_other_config(struct fixture *fx, const char *ini_text, const char *name, const char *expect)
{
    char path[1024];
    struct dc_config other;
    if (!write_tmp_file(name, ini_text, path, sizeof path)) {
        CHECK(!"cannot write a scratch config");
        return;
    }
    CHECK_OK(dc_config_load(path, NULL, 0, &other));
    struct dc_net *net = make_net(fx, &other, 1);
    if (net) {
        struct dc_run_state st;
        enum dc_status s = dc_checkpoint_load(fx->ckpt, net, &st);
        printf("%s: %s\n", name, dc_error_msg());
        CHECK(s == DC_ERR_FORMAT);
        CHECK(strstr(dc_error_msg(), fx->ckpt) != NULL);
        CHECK(strstr(dc_error_msg(), expect) != NULL);
        dc_net_free(net);
    }
    dc_config_free(&other);
    remove(path);
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(*n ? *n : 1);
    if (fread(buf, 1, *n, f) != *n)
        *n = 0;
    fclose(f);
    return buf;
}

/* Truncations at every field boundary we can think of, and a wrong magic:
 * each load is refused with DC_ERR_FORMAT and a message naming the file. */
static void check_damaged(struct fixture *fx, struct dc_net *net)
{
    size_t n = 0;
    uint8_t *buf = read_all(fx->ckpt, &n);
    CHECK(buf && n > 100);
    if (!buf || n <= 100) {
        free(buf);
        return;
    }
    char path[1024];
    test_tmp_path("resume_damaged.bin", path, sizeof path);
    const size_t cuts[] = {0, 1, 7, 8, 11, 12, 20, 32, 36, 40, 47, 60, n / 3, n / 2, n - 4, n - 1};
    for (size_t i = 0; i <= sizeof cuts / sizeof cuts[0]; i++) {
        size_t len = i < sizeof cuts / sizeof cuts[0] ? cuts[i] : n;
        int wrong_magic = i == sizeof cuts / sizeof cuts[0];
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        if (!f)
            break;
        if (wrong_magic)
            buf[0] ^= 0x20;
        CHECK(fwrite(buf, 1, len, f) == len);
        fclose(f);
        if (wrong_magic)
            buf[0] ^= 0x20;
        struct dc_run_state st;
        enum dc_status s = dc_checkpoint_load(path, net, &st);
        if (s != DC_ERR_FORMAT || !strstr(dc_error_msg(), path)) {
            fprintf(stderr, "checkpoint cut to %zu of %zu bytes%s: %s: %s\n", len, n,
                    wrong_magic ? " (wrong magic)" : "", dc_status_str(s), dc_error_msg());
            dc_test_failures++;
        }
    }
    struct dc_run_state st;
    CHECK(dc_checkpoint_load("/nonexistent/ckpt.bin", net, &st) == DC_ERR_IO);
    remove(path);
    free(buf);
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Fuzz finding: the cluster indices and the codebook size of a quantized
 * parameter were not checked, so a damaged checkpoint made the first
 * fine-tuning step read past the codebook.  Both are refused now, naming the
 * parameter.  fx->ckpt holds a quantized net's checkpoint here. */
static void check_bad_quant(struct fixture *fx, struct dc_net *net)
{
    size_t n = 0, off = 40 + DC_RUN_PLAN_LEN; /* magic, version, stage, epoch, seed, stage figure, plan, count */
    uint8_t *buf = read_all(fx->ckpt, &n);
    size_t assign_at = 0, m_at = 0;
    while (buf && off + 4 <= n && !assign_at) {
        uint32_t len = get_u32(buf + off), flags, m;
        char name[64] = "";
        if (len >= sizeof name || off + 4 + len + 16 > n)
            break;
        memcpy(name, buf + off + 4, len);
        off += 4 + len;
        uint64_t count;
        memcpy(&count, buf + off, 8);
        flags = get_u32(buf + off + 8), m = get_u32(buf + off + 12);
        size_t here = off + 12;
        off += 16 + count * 4 * (1 + !!(flags & 1) + !!(flags & 2));
        if ((flags & 4) && strcmp(name, "fc1.weight") == 0)
            assign_at = off, m_at = here;
        if (flags & 4)
            off += count + 8 * (size_t)m;
    }
    CHECK(assign_at > 0 && assign_at < n);
    if (!assign_at || assign_at >= n) {
        free(buf);
        return;
    }
    char path[1024];
    test_tmp_path("resume_badquant.bin", path, sizeof path);
    for (int k = 0; k < 2; k++) {
        uint8_t saved_a = buf[assign_at], saved_m = buf[m_at];
        if (k == 0)
            buf[assign_at] = 200; /* the codebook has 16 entries */
        else
            buf[m_at] = 0;        /* quantized with an empty codebook */
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(buf, 1, n, f) == n);
        if (f)
            fclose(f);
        buf[assign_at] = saved_a, buf[m_at] = saved_m;
        struct dc_run_state st;
        enum dc_status s = dc_checkpoint_load(path, net, &st);
        const char *want = k == 0 ? "cluster index 200 at 0" : "codebook size 0";
        if (s != DC_ERR_FORMAT || !strstr(dc_error_msg(), "fc1.weight") || !strstr(dc_error_msg(), want)) {
            fprintf(stderr, "damaged quantized checkpoint (%s): %s: %s\n", want, dc_status_str(s), dc_error_msg());
            dc_test_failures++;
        } else {
            printf("  refused: %s\n", dc_error_msg());
        }
    }
    remove(path);
    free(buf);
}

/* Versions 1 (no stage figure) and 2 (no stage plan) still load, with the
 * figure unknown (-1) and the plan empty, to the values the version-3 file
 * holds; a version from the future is refused; the plan round-trips. */
static void check_versions(struct fixture *fx)
{
    size_t n = 0;
    uint8_t *buf = read_all(fx->ckpt, &n);
    struct dc_net *a = make_net(fx, &fx->cfg, fx->cfg.seed + 5);
    struct dc_run_state st2;
    const size_t plan_at = 36, hdr = 40 + DC_RUN_PLAN_LEN;
    CHECK(buf && n > hdr && get_u32(buf + 8) == 3);
    if (!buf || n <= hdr || !a || dc_checkpoint_load(fx->ckpt, a, &st2) != DC_OK) {
        CHECK(!"no version-3 checkpoint to start from");
        free(buf);
        if (a)
            dc_net_free(a);
        return;
    }
    char path[1024];
    test_tmp_path("resume_v1.bin", path, sizeof path);
    for (uint32_t version = 1; version <= 4; version += version == 2 ? 2 : 1) {
        uint8_t *v = malloc(n);
        memcpy(v, buf, n);
        memcpy(v + 8, &version, 4);
        size_t len = n;
        if (version <= 2) { /* drop the plan, after the stage figure */
            memmove(v + plan_at, v + plan_at + DC_RUN_PLAN_LEN, len - plan_at - DC_RUN_PLAN_LEN);
            len -= DC_RUN_PLAN_LEN;
        }
        if (version == 1) { /* drop the stage figure at bytes 28..35, after the seed */
            memmove(v + 28, v + 36, len - 36);
            len -= 8;
        }
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(v, 1, len, f) == len);
        if (f)
            fclose(f);
        free(v);
        struct dc_net *b = make_net(fx, &fx->cfg, fx->cfg.seed + 7);
        if (!b)
            break;
        struct dc_run_state st = {.stage_figure = 5, .plan = "x"};
        enum dc_status s = dc_checkpoint_load(path, b, &st);
        if (version <= 2) {
            CHECK_OK(s);
            CHECK(st.stage_figure == (version == 1 ? -1 : st2.stage_figure) && st.epoch == 1 && st.plan[0] == 0);
            same_params(fx->be, a, b);
        } else {
            printf("  version 4: %s\n", dc_error_msg());
            CHECK(s == DC_ERR_FORMAT && strstr(dc_error_msg(), "version 4") != NULL);
        }
        dc_net_free(b);
    }
    struct dc_run_state w = {.stage_index = 1, .epoch = -1, .seed = 3, .stage_figure = -1,
                             .plan = "prune-1,quantize,encode"}, r;
    CHECK_OK(dc_checkpoint_save(path, a, &w));
    CHECK_OK(dc_checkpoint_load(path, a, &r));
    CHECK(strcmp(r.plan, w.plan) == 0 && r.stage_index == 1);
    remove(path);
    free(buf);
    dc_net_free(a);
}

static int fixture_init(struct fixture *fx)
{
    char dir[512], ini[1024], set_dir[600];
    if (!test_data_dir("mnist", dir, sizeof dir))
        return DC_TEST_SKIP;
    if (!write_tmp_file("resume.ini", resume_ini, ini, sizeof ini))
        return 1;
    snprintf(set_dir, sizeof set_dir, "data.dir=%s", dir);
    const char *sets[] = {set_dir};
    test_tmp_path("resume_ckpt.bin", fx->ckpt, sizeof fx->ckpt);
    enum dc_status s = dc_config_load(ini, sets, 1, &fx->cfg);
    remove(ini);
    if (s != DC_OK) {
        fprintf(stderr, "test_resume: %s\n", dc_error_msg());
        return 1;
    }
    struct dc_backend_opts bo = {.threads = fx->cfg.threads};
    if (dc_backend_create("cpu", &bo, &fx->be) != DC_OK)
        return 1;
    s = dc_data_load(&fx->cfg, &fx->data);
    if (s == DC_ERR_IO) {
        printf("test_resume: %s: skipped\n", dc_error_msg());
        return DC_TEST_SKIP;
    }
    if (s != DC_OK || dc_device_data_init(fx->be, &fx->data, &fx->dd) != DC_OK) {
        fprintf(stderr, "test_resume: %s\n", dc_error_msg());
        return 1;
    }
    return 0;
}

static void fixture_free(struct fixture *fx)
{
    dc_device_data_free(&fx->dd);
    dc_data_free(&fx->data);
    if (fx->be)
        dc_backend_free(fx->be);
    dc_config_free(&fx->cfg);
}

int main(void)
{
    static struct fixture fx;
    int rc = fixture_init(&fx);
    if (rc) {
        if (rc == DC_TEST_SKIP)
            printf("test_resume: no MNIST under $DC_TEST_DATA: skipped\n");
        fixture_free(&fx);
        return rc;
    }
    struct dc_net *a = make_net(&fx, &fx.cfg, fx.cfg.seed);
    if (a) {
        /* plain training */
        check_phase(&fx, a, "train", fx.cfg.lr, 0);
        /* a pruned net's retraining: masks must come back */
        CHECK_OK(dc_prune_round(a, &fx.cfg, 1, 1, NULL));
        struct dc_param *w1 = dc_net_find_param(a, "fc1.weight");
        CHECK(w1 && w1->mask);
        check_phase(&fx, a, "prune-1", 0.01f, 1);
        /* a quantized net's centroid fine-tuning: indices and codebooks too */
        CHECK_OK(dc_quantize_net(a, &fx.cfg));
        CHECK(w1 && w1->codebook && w1->m == 16);
        check_phase(&fx, a, "finetune", 0.001f, 2);
        check_other_config(&fx, other_ini, "resume_other.ini", "fc1.weight");
        check_other_config(&fx, short_ini, "resume_short.ini", "another config");
        check_damaged(&fx, a);
        check_bad_quant(&fx, a);
        check_versions(&fx);
        dc_net_free(a);
    }
    remove(fx.ckpt);
    fixture_free(&fx);
    return test_finish("test_resume");
}
