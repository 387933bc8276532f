/* test_modelfile.c: the .dcm model file on the CPU backend.  A small conv +
 * batch-norm + fc net with pruned-and-quantized, pruned-only, quantized-only
 * and dense parameters round trips bit for bit (values, masks, codebooks,
 * outputs), with Huffman on and off and with index widths small enough to
 * need fillers.  Then the damage sweep: every truncation and every single-bit
 * flip of a real file is rejected with a message (never a crash), and wrong
 * magic, wrong version and a CRC mismatch give the messages users see.
 * Last, dense_bits = 16: refused before dc_round_dense_half, bit-exact after
 * it, 2 bytes per dense value in the byte counts, and damage-checked too. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dc/config.h"
#include "dc/crc32.h"
#include "dc/modelfile.h"
#include "dc/net.h"
#include "dc/prune.h"
#include "dc/quantize.h"
#include "dc/report.h"
#include "dc/rng.h"

enum { NB = 3 };

static const char net_text[] = "[conv]\nname = c1\nfilters = 6\nsize = 3\nbatch_normalize = 1\nactivation = relu\n"
                               "[maxpool]\nsize = 4\nstride = 4\n"
                               "[conv]\nname = c2\nfilters = 8\nsize = 3\nactivation = relu\n"
                               "[fc]\nname = f1\noutputs = 40\nactivation = relu\n"
                               "[fc]\nname = f2\noutputs = 10\n";

static struct dc_rng rng;

static struct dc_net *build(struct dc_backend *be, struct dc_config *cfg)
{
    struct dc_net *net = NULL;
    CHECK_OK(dc_config_parse_net(net_text, "test_modelfile", cfg));
    CHECK_OK(dc_net_create(be, cfg, 1, 28, 28, 10, NB, 3, &net)); /* MNIST's shape, as files require */
    return net;
}

/* c1 pruned + quantized (3 bits), c2 quantized only, f1 pruned only, f2 pruned hard + quantized. */
static void compress(struct dc_backend *be, struct dc_net *net)
{
    struct {
        const char *name;
        float sparsity;
        int bits;
    } plan[] = {{"c1.weight", 0.5f, 3}, {"c2.weight", -1, 4}, {"f1.weight", 0.9f, 0}, {"f2.weight", 0.995f, 2}};
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
    /* batch-norm running statistics with non-trivial values */
    struct dc_param *rv = dc_net_find_param(net, "c1.bn.running_var");
    float v[6];
    for (int i = 0; i < 6; i++)
        v[i] = 0.5f + dc_rng_uniform(&rng);
    CHECK_OK(be->ops.upload(be, rv->w.data, v, sizeof v));
    /* a bias and a batch-norm shift on codebooks ([quantize] bits_bias): coded sections without positions */
    CHECK_OK(dc_quantize_param(be, dc_net_find_param(net, "f1.bias"), 3, DC_INIT_LINEAR, 10, 1));
    CHECK_OK(dc_quantize_param(be, dc_net_find_param(net, "c1.bn.beta"), 2, DC_INIT_LINEAR, 10, 1));
}

/* [quantize] bits_bias: a dense parameter shares a codebook only when that
 * takes fewer bytes than its values, and never a running statistic. */
static void test_bias_selection(struct dc_backend *be)
{
    struct dc_config cfg;
    struct dc_net *net = build(be, &cfg);
    if (!net)
        return;
    struct dc_param *f1b = dc_net_find_param(net, "f1.bias"), *c2b = dc_net_find_param(net, "c2.bias"),
                    *mean = dc_net_find_param(net, "c1.bn.running_mean"), *f1w = dc_net_find_param(net, "f1.weight");
    cfg.dense_bits = 32;
    cfg.bits_bias = 0;
    CHECK(!dc_quantize_pays(f1b, &cfg));
    cfg.bits_bias = 4;
    CHECK(dc_quantize_pays(f1b, &cfg));   /* 40 values: 64 + 20 + 11 bytes against 160 */
    CHECK(!dc_quantize_pays(c2b, &cfg));  /* 8 values: 64 + 4 + 11 bytes against 32 */
    CHECK(!dc_quantize_pays(mean, &cfg)); /* not trainable */
    CHECK(dc_quantize_bits(&cfg, f1b) == 4 && dc_quantize_bits(&cfg, f1w) == cfg.bits_fc);
    cfg.dense_bits = 16;
    cfg.bits_bias = 6;
    CHECK(!dc_quantize_pays(f1b, &cfg)); /* 256 + 30 + 11 bytes against 80 */
    cfg.dense_bits = 32;
    cfg.bits_bias = 3;
    CHECK(!dc_quantize_pays(c2b, &cfg)); /* 32 + 3 + 11 bytes against 32 */
    cfg.codebook_bits = 16;
    CHECK(dc_quantize_pays(c2b, &cfg)); /* a half codebook: 16 + 3 + 11 against 32 */
    cfg.codebook_bits = 32;
    cfg.dense_bits = 16;
    cfg.bits_bias = 2;
    CHECK(dc_quantize_pays(f1b, &cfg));  /* 16 + 10 + 11 against 80 */
    CHECK(!dc_quantize_pays(c2b, &cfg)); /* 16 + 2 + 11 against 16 */
    CHECK_OK(dc_quantize_net(net, &cfg));
    CHECK(f1b->codebook && f1b->m == 4 && !c2b->codebook && !mean->codebook && f1w->codebook);
    float v[40];
    CHECK_OK(be->ops.download(be, v, f1b->w.data, sizeof v));
    int distinct = 0;
    for (int i = 0; i < 40; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= v[j] == v[i];
        distinct += !seen;
    }
    CHECK(distinct >= 2 && distinct <= 4);
    dc_net_free(net);
    dc_config_free(&cfg);
}

static int same_bits(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], 4) != 0 && !(a[i] == 0.0f && b[i] == 0.0f))
            return 0;
    return 1;
}

/* Every parameter of b equals a's bit for bit, masks and codebooks included; so do the outputs. */
static void compare_nets(struct dc_backend *be, struct dc_net *a, struct dc_net *b)
{
    CHECK(a->nparams == b->nparams);
    for (int i = 0; i < a->nparams && i < b->nparams; i++) {
        struct dc_param *p = a->params[i], *q = b->params[i];
        size_t n = dc_param_count(p);
        float *x = malloc(n * 4), *y = malloc(n * 4);
        CHECK(strcmp(p->name, q->name) == 0 && n == dc_param_count(q));
        CHECK_OK(be->ops.download(be, x, p->w.data, n * 4));
        CHECK_OK(be->ops.download(be, y, q->w.data, n * 4));
        CHECK(same_bits(x, y, n));
        CHECK(!p->mask == !q->mask);
        if (p->mask && q->mask) {
            CHECK_OK(be->ops.download(be, x, p->mask, n * 4));
            CHECK_OK(be->ops.download(be, y, q->mask, n * 4));
            CHECK(memcmp(x, y, n * 4) == 0);
        }
        CHECK(p->m == q->m && !p->codebook == !q->codebook);
        if (p->codebook && q->codebook && p->m == q->m) {
            CHECK_OK(be->ops.download(be, x, p->codebook, (size_t)p->m * 4));
            CHECK_OK(be->ops.download(be, y, q->codebook, (size_t)p->m * 4));
            CHECK(memcmp(x, y, (size_t)p->m * 4) == 0);
        }
        free(x), free(y);
    }
    float in[NB * 144], out_a[NB * 10], out_b[NB * 10];
    for (int i = 0; i < NB * 144; i++)
        in[i] = dc_rng_normal(&rng);
    struct dc_pass pass = {.train = 0};
    CHECK_OK(be->ops.upload(be, a->act[0].data, in, sizeof in));
    CHECK_OK(be->ops.upload(be, b->act[0].data, in, sizeof in));
    CHECK_OK(dc_net_forward(a, NB, &pass));
    CHECK_OK(dc_net_forward(b, NB, &pass));
    CHECK_OK(be->ops.download(be, out_a, dc_net_output(a)->data, sizeof out_a));
    CHECK_OK(be->ops.download(be, out_b, dc_net_output(b)->data, sizeof out_b));
    CHECK(memcmp(out_a, out_b, sizeof out_a) == 0);
}

/* Every byte of the file lies in the header or in exactly one class of one section. */
static void check_accounting(const struct dc_modelfile_stats *st)
{
    uint64_t sum = st->header_bytes;
    for (int i = 0; i < st->nsections; i++) {
        const struct dc_section_stats *s = &st->s[i];
        sum += s->total_bytes;
        CHECK(s->total_bytes == s->value_bytes + s->index_bytes + s->codebook_bytes + s->table_bytes +
                                    s->overhead_bytes);
    }
    CHECK(sum == st->file_bytes);
}

static void test_round_trip(struct dc_backend *be, struct dc_net *net, struct dc_config *cfg)
{
    const int widths[3][2] = {{8, 5}, {2, 1}, {16, 16}}; /* conv, fc index bits */
    char path[1024];
    test_tmp_path("test_modelfile.dcm", path, sizeof path);
    for (int huff = 0; huff <= 1; huff++)
        for (int wi = 0; wi < 3; wi++) {
            cfg->huffman = huff;
            cfg->index_bits_conv = widths[wi][0];
            cfg->index_bits_fc = widths[wi][1];
            struct dc_modelfile_stats st;
            CHECK_OK(dc_modelfile_write(path, net, cfg, &st));
            struct dc_net *back = NULL;
            struct dc_config *cfg2 = calloc(1, sizeof *cfg2);
            struct dc_modelfile_stats st2;
            CHECK_OK(dc_modelfile_load(path, be, NB, &back, cfg2, &st2));
            if (back) {
                compare_nets(be, net, back);
                CHECK(cfg2->nlayers == cfg->nlayers && strcmp(cfg2->net_text, cfg->net_text) == 0);
                CHECK(st2.file_bytes == st.file_bytes && st2.nsections == net->nparams);
                CHECK(st.dense_bytes == 4 * dc_net_param_count(net));
                check_accounting(&st);
                for (int i = 0; i < st.nsections; i++) {
                    const struct dc_section_stats *s = &st.s[i];
                    if (wi == 1 && strcmp(s->name, "f1.weight") == 0)
                        CHECK(s->entries > s->kept); /* 1-bit gaps at 10% density need fillers */
                    /* the sizes dc_quantize_pays weighs are the writer's: body = section less
                     * length, name length, name, kind, flags, shape and CRC */
                    uint64_t body = s->total_bytes - (4 + 1 + strlen(s->name) + 1 + 1 + 16 + 4);
                    if (!huff && !s->prunable && s->bits)
                        CHECK(body == dc_modelfile_coded_bytes(s->count, s->bits, 32));
                    if (s->kind == DC_SECTION_DENSE)
                        CHECK(body == dc_modelfile_dense_bytes(s->count, 32));
                }
                if (huff && wi == 0) {
                    printf("round trip (Huffman, index bits 8/5):\n");
                    dc_report_print(stdout, &st);
                }
                dc_net_free(back);
            }
            dc_config_free(cfg2);
            free(cfg2);
            dc_modelfile_stats_free(&st);
            dc_modelfile_stats_free(&st2);
        }
}

/* Every prefix of the file, and the file with any one bit flipped, is rejected. */
static void test_damage(const uint8_t *buf, size_t size)
{
    struct dc_modelfile mf;
    size_t accepted = 0;
    for (size_t len = 0; len < size; len++) {
        dc_error_clear();
        if (dc_modelfile_parse(buf, len, "cut.dcm", &mf) == DC_OK) {
            accepted++;
            dc_modelfile_free(&mf);
        } else {
            CHECK(dc_error_msg()[0] != '\0');
        }
    }
    if (accepted)
        fprintf(stderr, "%zu truncations accepted\n", accepted);
    CHECK(accepted == 0);
    uint8_t *copy = malloc(size);
    memcpy(copy, buf, size);
    accepted = 0;
    for (size_t i = 0; i < size; i++) {
        int bit = (int)(i % 8);
        copy[i] ^= (uint8_t)(1u << bit);
        if (dc_modelfile_parse(copy, size, "flip.dcm", &mf) == DC_OK) {
            if (!accepted)
                fprintf(stderr, "flip of bit %d at byte %zu accepted\n", bit, i);
            accepted++;
            dc_modelfile_free(&mf);
        }
        copy[i] = buf[i];
    }
    CHECK(accepted == 0);
    free(copy);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Damage behind a valid CRC (as a crafted file would have): random byte
 * changes inside each section body with the CRC recomputed, so the parser's
 * own checks are all that stands between the bytes and memory.  Each parse
 * either fails with a message or decodes; run under ASan to see it stays in bounds. */
static void test_fuzz_bodies(const uint8_t *buf, size_t size)
{
    uint8_t *c = malloc(size);
    size_t off = 44 + le32(buf + 40) + 4, rejected = 0, tries = 0;
    while (off + 8 <= size) {
        size_t blen = le32(buf + off);
        for (int t = 0; t < 300; t++, tries++) {
            memcpy(c, buf, size);
            int nchange = 1 + (int)dc_rng_below(&rng, 3);
            for (int k = 0; k < nchange; k++)
                c[off + 4 + dc_rng_below(&rng, (uint32_t)blen)] = (uint8_t)dc_rng_next(&rng);
            uint32_t crc = dc_crc32(0, c + off, blen + 4);
            for (int k = 0; k < 4; k++)
                c[off + 4 + blen + (size_t)k] = (uint8_t)(crc >> (8 * k));
            struct dc_modelfile mf;
            if (dc_modelfile_parse(c, size, "fuzz.dcm", &mf) == DC_OK)
                dc_modelfile_free(&mf);
            else
                rejected++;
        }
        off += blen + 8;
    }
    CHECK(off == size);
    CHECK(rejected > tries / 4); /* most structural damage is caught (value bytes may change freely) */
    free(c);
}

static void expect_error(const uint8_t *buf, size_t size, const char *needle1, const char *needle2)
{
    struct dc_modelfile mf;
    CHECK(dc_modelfile_parse(buf, size, "model.dcm", &mf) == DC_ERR_FORMAT);
    const char *msg = dc_error_msg();
    if (!strstr(msg, needle1) || (needle2 && !strstr(msg, needle2)))
        fprintf(stderr, "message \"%s\" lacks \"%s\" / \"%s\"\n", msg, needle1, needle2 ? needle2 : "");
    CHECK(strstr(msg, needle1) != NULL);
    CHECK(!needle2 || strstr(msg, needle2) != NULL);
}

/* *bits (dense_bits or codebook_bits) = 8 is a config error, and = 16 is
 * refused while the values are not halves, with a message naming both needles. */
static void expect_refused16(struct dc_net *net, struct dc_config *cfg, int *bits, const char *needle1,
                             const char *needle2)
{
    uint8_t *buf = NULL;
    size_t size = 0;
    *bits = 8;
    CHECK(dc_modelfile_encode(net, cfg, &buf, &size) == DC_ERR_CONFIG);
    *bits = 16;
    CHECK(dc_modelfile_encode(net, cfg, &buf, &size) == DC_ERR_ARG);
    if (!strstr(dc_error_msg(), needle1) || !strstr(dc_error_msg(), needle2))
        fprintf(stderr, "message \"%s\" lacks \"%s\" / \"%s\"\n", dc_error_msg(), needle1, needle2);
    CHECK(strstr(dc_error_msg(), needle1) && strstr(dc_error_msg(), needle2));
}

/* Write net to `file`, read it back (bit for bit the same network, every
 * byte accounted for); *st keeps the writer's figures (free them), *ok says
 * the file read back. */
static void write_reload(struct dc_backend *be, struct dc_net *net, struct dc_config *cfg, const char *file,
                         struct dc_modelfile_stats *st, int *ok)
{
    char path[1024];
    test_tmp_path(file, path, sizeof path);
    struct dc_modelfile_stats st2;
    struct dc_net *back = NULL;
    struct dc_config *cfg2 = calloc(1, sizeof *cfg2);
    memset(st, 0, sizeof *st);
    CHECK_OK(dc_modelfile_write(path, net, cfg, st));
    CHECK_OK(dc_modelfile_load(path, be, NB, &back, cfg2, &st2));
    *ok = back != NULL;
    if (back) {
        compare_nets(be, net, back);
        check_accounting(st);
        dc_net_free(back);
        dc_modelfile_stats_free(&st2);
    }
    dc_config_free(cfg2);
    free(cfg2);
}

/* The network encoded with cfg: every damaged copy is rejected. */
static void damage_encoded(struct dc_net *net, struct dc_config *cfg)
{
    uint8_t *buf = NULL;
    size_t size = 0;
    CHECK_OK(dc_modelfile_encode(net, cfg, &buf, &size));
    if (buf)
        test_damage(buf, size);
    free(buf);
}

/* [encode] codebook_bits = 16: refused until the codebooks are halves; after
 * dc_round_codebooks_half every codebook takes 2 bytes an entry (kind 3) and
 * the file round trips bit for bit. */
static void test_codebook16(struct dc_backend *be, struct dc_net *net, struct dc_config *cfg)
{
    /* k-means centroids are not halves */
    expect_refused16(net, cfg, &cfg->codebook_bits, "c1.weight: codebook entry 0 (", "codebook_bits = 16");
    CHECK_OK(dc_round_codebooks_half(net));
    struct dc_modelfile_stats st;
    int ok, coded16 = 0;
    write_reload(be, net, cfg, "test_modelfile_cb16.dcm", &st, &ok);
    for (int i = 0; ok && i < st.nsections; i++) {
        struct dc_param *p = dc_net_find_param(net, st.s[i].name);
        CHECK(p && (p->codebook ? st.s[i].kind == DC_SECTION_CODED16 && st.s[i].codebook_bytes == 2u * (unsigned)p->m
                                : st.s[i].kind != DC_SECTION_CODED16 && st.s[i].codebook_bytes == 0));
        coded16 += st.s[i].kind == DC_SECTION_CODED16;
    }
    CHECK(!ok || coded16 >= 5); /* c1, c2, f2 weights; f1.bias, c1.bn.beta */
    dc_modelfile_stats_free(&st);
    damage_encoded(net, cfg);
    cfg->codebook_bits = 32;
}

static void test_messages(const uint8_t *buf, size_t size)
{
    uint8_t *c = malloc(size);
    memcpy(c, buf, size);
    c[0] = 'X';
    expect_error(c, size, "not a deepcompress model file", NULL);
    memcpy(c, buf, size);
    c[8] = 7;
    expect_error(c, size, "wrong version 7", "re-encode");
    /* a flip in the third section's body names it */
    memcpy(c, buf, size);
    size_t off = 44 + (size_t)(buf[40] | buf[41] << 8 | buf[42] << 16) + 4;
    for (int s = 0; s < 2; s++)
        off += 8 + (size_t)(buf[off] | buf[off + 1] << 8 | buf[off + 2] << 16 | (size_t)buf[off + 3] << 24);
    c[off + 20] ^= 0x40;
    expect_error(c, size, "section 3 (c1.bn.beta): CRC mismatch (stored 0x", "computed 0x");
    expect_error(buf, size - 3, "truncated in section", "need ");
    memcpy(c, buf, size);
    c[20] ^= 1;
    expect_error(c, size, "header: CRC mismatch", NULL);
    free(c);
}

static void test_encoder_checks(struct dc_backend *be, struct dc_net *net, struct dc_config *cfg)
{
    uint8_t *buf;
    size_t size;
    struct dc_param *p = dc_net_find_param(net, "f1.weight");
    float mask0, w0, one = 0.5f;
    CHECK_OK(be->ops.download(be, &mask0, p->mask, 4));
    CHECK_OK(be->ops.download(be, &w0, p->w.data, 4));
    size_t i = 0;
    for (float m = mask0; m != 0.0f; i++) /* first pruned weight */
        CHECK_OK(be->ops.download(be, &m, p->mask + i + 1, 4));
    CHECK_OK(be->ops.upload(be, p->w.data + i, &one, 4));
    CHECK(dc_modelfile_encode(net, cfg, &buf, &size) == DC_ERR_ARG);
    CHECK(strstr(dc_error_msg(), "f1.weight") != NULL);
    float zero = 0.0f;
    CHECK_OK(be->ops.upload(be, p->w.data + i, &zero, 4));
    CHECK_OK(dc_modelfile_encode(net, cfg, &buf, &size));
    free(buf);
}

/* Bytes of the file and of its dense sections, encoded with cfg as it stands. */
static size_t encoded_size(struct dc_net *net, const struct dc_config *cfg, uint64_t *dense_count)
{
    uint8_t *buf = NULL;
    size_t size = 0;
    struct dc_modelfile mf;
    CHECK_OK(dc_modelfile_encode(net, cfg, &buf, &size));
    *dense_count = 0;
    if (buf && dc_modelfile_parse(buf, size, "count.dcm", &mf) == DC_OK) {
        for (int i = 0; i < mf.nparams; i++)
            *dense_count += mf.params[i].kind != DC_SECTION_CODED ? mf.stats.s[i].count : 0;
        dc_modelfile_free(&mf);
    }
    free(buf);
    return size;
}

/* dense_bits = 16: the writer refuses values that are not halves, and after
 * dc_round_dense_half the file round trips bit for bit at 2 bytes a value. */
static void test_dense16(struct dc_backend *be, struct dc_net *net, struct dc_config *cfg)
{
    /* running_var is random */
    expect_refused16(net, cfg, &cfg->dense_bits, "c1.bn.running_var: value 0 (", "dense_bits = 16");
    cfg->dense_bits = 32;
    CHECK_OK(dc_round_dense_half(net));
    uint64_t dense32 = 0, dense16 = 0;
    size_t size32 = encoded_size(net, cfg, &dense32);
    cfg->dense_bits = 16;
    size_t size16 = encoded_size(net, cfg, &dense16);
    CHECK(dense32 > 0 && dense16 == dense32 && size32 - size16 == 2 * dense32);
    struct dc_modelfile_stats st;
    int ok;
    write_reload(be, net, cfg, "test_modelfile16.dcm", &st, &ok);
    for (int i = 0; ok && i < st.nsections; i++)
        CHECK(st.s[i].kind == DC_SECTION_CODED ||
              (st.s[i].kind == DC_SECTION_DENSE16 && st.s[i].value_bytes == 2 * st.s[i].count));
    CHECK(!ok || st.file_bytes == size16);
    if (ok) {
        printf("round trip with dense_bits = 16:\n");
        dc_report_print(stdout, &st);
    }
    dc_modelfile_stats_free(&st);
    damage_encoded(net, cfg);
    cfg->dense_bits = 32;
}

/* The kind-2 section example of docs/model-format.md, byte for byte, behind a valid header. */
static void test_doc_example(void)
{
    static const uint8_t sec[40] = {0x20, 0, 0, 0, 7, 'f', '2', '.', 'b', 'i', 'a', 's', 2, 1, 3, 0, 0, 0, 1, 0,
                                    0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0x00, 0x3c, 0x00, 0xc1, 0x66, 0x2e,
                                    0x05, 0x7b, 0xda, 0x38};
    const char text[] = "[fc]\nname=f2\noutputs=3\n";
    uint32_t fields[9] = {1, 0, 0, 1, 28, 28, 10, 1, (uint32_t)strlen(text)};
    uint8_t buf[200];
    size_t n = 0;
    memcpy(buf, DC_MODELFILE_MAGIC, 8), n = 8;
    memcpy(buf + n, fields, sizeof fields), n += sizeof fields; /* little-endian host, as the CPU tests assume */
    memcpy(buf + n, text, strlen(text)), n += strlen(text);
    uint32_t crc = dc_crc32(0, buf, n);
    memcpy(buf + n, &crc, 4), n += 4;
    memcpy(buf + n, sec, sizeof sec), n += sizeof sec;
    struct dc_modelfile mf;
    CHECK_OK(dc_modelfile_parse(buf, n, "example.dcm", &mf));
    CHECK(mf.nparams == 1);
    if (mf.nparams == 1) {
        const float want[3] = {1.0f, -2.5f, 0.0999755859375f};
        CHECK(mf.params[0].kind == DC_SECTION_DENSE16 && memcmp(mf.params[0].values, want, sizeof want) == 0);
        CHECK(mf.stats.s[0].value_bytes == 6 && mf.stats.s[0].overhead_bytes == 34);
        dc_modelfile_free(&mf);
    }
}

/* Fuzz finding: a coded section of 43 bytes (no weight kept) could claim a
 * tensor of 2^31 - 1 values, and the reader allocated its dense arrays
 * (8 GB of values, the same again for the mask and for positions).  Now the
 * tensors of one file may hold 2^26 values in all; an empty pruned tensor
 * below that still reads. */
static void test_huge_coded(void)
{
    for (int big = 0; big < 2; big++) {
        uint32_t rows = big ? 16384 : 1000, cols = big ? 8192 : 3;
        uint8_t sec[51] = {43, 0, 0, 0, 9, 'f', '1', '.', 'w', 'e', 'i', 'g', 'h', 't', 1, 2};
        size_t k = 16;
        uint32_t dims[4] = {rows, cols, 1, 1};
        memcpy(sec + k, dims, 16), k += 16;
        k += 4;                  /* kept 0 */
        sec[k++] = 0;            /* bits: float32 values */
        sec[k++] = 1;            /* index bits */
        k += 4;                  /* position entries 0 */
        sec[k++] = 0;            /* fixed-width coding */
        k += 4;                  /* 0 data bytes */
        CHECK(k == 47);
        uint32_t crc = dc_crc32(0, sec, k);
        memcpy(sec + k, &crc, 4);
        const char text[] = "[fc]\nname=f1\noutputs=16384\n";
        uint32_t fields[9] = {1, 0, 0, 1, 28, 28, 10, 1, (uint32_t)strlen(text)};
        uint8_t buf[200];
        size_t n = 0;
        memcpy(buf, DC_MODELFILE_MAGIC, 8), n = 8;
        memcpy(buf + n, fields, sizeof fields), n += sizeof fields;
        memcpy(buf + n, text, strlen(text)), n += strlen(text);
        crc = dc_crc32(0, buf, n);
        memcpy(buf + n, &crc, 4), n += 4;
        memcpy(buf + n, sec, sizeof sec), n += sizeof sec;
        if (big) {
            expect_error(buf, n, "section 1 (f1.weight) field shape:", "more than 67108864 values in all");
        } else {
            struct dc_modelfile mf;
            CHECK_OK(dc_modelfile_parse(buf, n, "empty.dcm", &mf));
            CHECK(mf.nparams == 1 && mf.params[0].mask && mf.params[0].mask[2999] == 0.0f);
            dc_modelfile_free(&mf);
        }
    }
}

/* Header field at byte `off` set to v, or the description's first `from`
 * replaced by `to` (same length); the header CRC recomputed, so only the
 * reader's own checks stand between such an edit and a huge allocation. */
static uint8_t *edit_header(const uint8_t *buf, size_t size, size_t off, uint32_t v, const char *from,
                            const char *to)
{
    uint8_t *e = malloc(size);
    memcpy(e, buf, size);
    uint32_t len;
    memcpy(&len, e + 40, 4);
    if (from) {
        char *at = memmem(e + 44, len, from, strlen(from));
        CHECK(at != NULL && strlen(from) == strlen(to));
        if (at)
            memcpy(at, to, strlen(to));
    } else {
        memcpy(e + off, &v, 4);
    }
    uint32_t crc = dc_crc32(0, e, 44 + (size_t)len);
    memcpy(e + 44 + len, &crc, 4);
    return e;
}

static void test_crafted(struct dc_backend *be, const uint8_t *buf, size_t size)
{
    char path[512];
    test_tmp_path("test_modelfile_crafted.dcm", path, sizeof path);
    struct {
        size_t off;
        uint32_t v;
        const char *from, *to, *needle;
    } cases[] = {{20, 15500, NULL, NULL, "does not fit the mnist data set"},
                 {0, 0, "outputs=40", "outputs=99", "section f1.weight holds another number"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *e = edit_header(buf, size, cases[i].off, cases[i].v, cases[i].from, cases[i].to);
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(e, 1, size, f) == size);
        if (f)
            fclose(f);
        struct dc_net *net = NULL;
        struct dc_config cfg;
        enum dc_status st = dc_modelfile_load(path, be, NB, &net, &cfg, NULL);
        CHECK(st == DC_ERR_FORMAT && net == NULL);
        if (!strstr(dc_error_msg(), cases[i].needle)) {
            fprintf(stderr, "crafted case %zu: expected '%s' in: %s\n", i, cases[i].needle, dc_error_msg());
            dc_test_failures++;
        }
        free(e);
    }
}

int main(void)
{
    dc_rng_seed(&rng, 2024);
    struct dc_backend *be = NULL;
    struct dc_backend_opts opts = {0};
    CHECK_OK(dc_backend_create("cpu", &opts, &be));
    struct dc_config *cfg = calloc(1, sizeof *cfg);
    struct dc_net *net = be ? build(be, cfg) : NULL;
    if (net) {
        compress(be, net);
        test_round_trip(be, net, cfg);
        cfg->huffman = 1, cfg->index_bits_conv = 4, cfg->index_bits_fc = 3;
        uint8_t *buf = NULL;
        size_t size = 0;
        CHECK_OK(dc_modelfile_encode(net, cfg, &buf, &size));
        if (buf) {
            test_damage(buf, size);
            test_messages(buf, size);
            test_fuzz_bodies(buf, size);
            test_crafted(be, buf, size);
            free(buf);
        }
        test_encoder_checks(be, net, cfg);
        test_dense16(be, net, cfg);    /* these two last: they round the network */
        test_codebook16(be, net, cfg);
        test_doc_example();
        test_huge_coded();
        test_bias_selection(be);
        dc_net_free(net);
    }
    dc_config_free(cfg);
    free(cfg);
    dc_backend_free(be);
    return test_finish("test_modelfile");
}
