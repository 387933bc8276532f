/* modelfile_write.c: encodes a network into the .dcm format (layout in
 * docs/model-format.md): dense float32 (or half) sections, or for pruned/quantized
 * weights a gap-coded position stream and a cluster-index stream, each
 * Huffman-coded when that is smaller than fixed-width packing.  The file is
 * assembled in memory in a dc_bitwriter used a whole byte at a time. */
#include <stdlib.h>
#include <string.h>

#include "dc/crc32.h"
#include "dc/half.h"
#include "dc/huffman.h"
#include "dc/modelfile.h"
#include "dc/sparse.h"

static enum dc_status put_u8(struct dc_bitwriter *b, uint32_t v)
{
    uint8_t x = (uint8_t)v;
    return dc_bitwriter_append(b, &x, 1);
}

static void store_u32(uint8_t *d, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        d[i] = (uint8_t)(v >> (8 * i));
}

static enum dc_status put_u32(struct dc_bitwriter *b, uint32_t v)
{
    uint8_t x[4];
    store_u32(x, v);
    return dc_bitwriter_append(b, x, 4);
}

static enum dc_status put_f32s(struct dc_bitwriter *b, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        DC_TRY(put_u32(b, u));
    }
    return DC_OK;
}

/* Dense values as half ([encode] dense_bits = 16).  Rounding here would make
 * the file differ from the network that was evaluated, so a value that is
 * not already a half is an error: dc_round_dense_half belongs before evaluation. */
/* what: "value" (dense_bits) or "codebook entry" (codebook_bits) */
static enum dc_status put_f16s(struct dc_bitwriter *b, const struct dc_param *p, const float *v, size_t n,
                               const char *what)
{
    int entry = what[0] == 'c';
    for (size_t i = 0; i < n; i++) {
        if (!dc_half_exact(v[i]))
            return DC_ERROR(DC_ERR_ARG, "%s: %s %zu (%.9g) is not a half-precision number; with [encode] "
                            "%s = 16 round the network first (%s)", p->name, what, i, (double)v[i],
                            entry ? "codebook_bits" : "dense_bits",
                            entry ? "dc_round_codebooks_half" : "dc_round_dense_half");
        uint16_t h = dc_half_from_float(v[i]);
        uint8_t x[2] = {(uint8_t)h, (uint8_t)(h >> 8)};
        DC_TRY(dc_bitwriter_append(b, x, 2));
    }
    return DC_OK;
}

/* One symbol stream: Huffman when enabled and smaller (table included), else fixed width. */
static enum dc_status put_stream(struct dc_bitwriter *b, const uint32_t *sym, size_t n, int width, int huffman)
{
    int nsym = 1 << width;
    uint64_t *freq = calloc((size_t)nsym, sizeof *freq);
    uint8_t *len = calloc((size_t)nsym, 1);
    struct dc_bitwriter w;
    dc_bitwriter_init(&w);
    enum dc_status st = (freq && len) ? DC_OK : DC_ERROR(DC_ERR_NOMEM, "model file: no memory for a stream");
    int nlen = 0;
    for (size_t i = 0; st == DC_OK && i < n; i++) {
        freq[sym[i]]++;
        nlen = (int)sym[i] + 1 > nlen ? (int)sym[i] + 1 : nlen;
    }
    int use_huff = 0;
    if (st == DC_OK && huffman && n > 0) {
        st = dc_huffman_lengths(freq, nsym, DC_HUFF_MAX_LEN, len);
        uint64_t huff_bytes = 4 + ((uint64_t)nlen * 5 + 7) / 8 + (dc_huffman_cost(freq, len, nsym) + 7) / 8;
        use_huff = huff_bytes < ((uint64_t)n * (uint64_t)width + 7) / 8;
    }
    if (st == DC_OK)
        st = put_u8(b, use_huff ? DC_CODING_HUFFMAN : DC_CODING_FIXED);
    if (st == DC_OK && use_huff) {
        st = put_u32(b, (uint32_t)nlen);
        for (int s = 0; st == DC_OK && s < nlen; s++)
            st = dc_bitwriter_put(&w, len[s], 5);
        if (st == DC_OK)
            st = dc_bitwriter_flush(&w);
        if (st == DC_OK)
            st = dc_bitwriter_append(b, w.buf, w.len);
        dc_bitwriter_free(&w);
        if (st == DC_OK)
            st = dc_huffman_encode(len, nsym, sym, n, &w);
    } else {
        for (size_t i = 0; st == DC_OK && i < n; i++)
            st = dc_bitwriter_put(&w, sym[i], width);
    }
    if (st == DC_OK)
        st = dc_bitwriter_flush(&w);
    if (st == DC_OK && w.len > UINT32_MAX)
        st = DC_ERROR(DC_ERR_UNSUPPORTED, "model file: a stream of %zu bytes exceeds the format's 4 GiB", w.len);
    if (st == DC_OK)
        st = put_u32(b, (uint32_t)w.len);
    if (st == DC_OK)
        st = dc_bitwriter_append(b, w.buf, w.len);
    dc_bitwriter_free(&w);
    free(freq);
    free(len);
    return st;
}

/* Host copies of one parameter's state, and the positions it keeps. */
struct host_param {
    size_t n, kept;
    float *w, *mask;
    uint8_t *assign;
    float codebook[256];
    uint32_t *pos;
};

static void host_param_free(struct host_param *h)
{
    free(h->w), free(h->mask), free(h->assign), free(h->pos);
}

static enum dc_status host_param_load(struct dc_backend *be, const struct dc_param *p, struct host_param *h)
{
    memset(h, 0, sizeof *h);
    h->n = dc_param_count(p);
    size_t n1 = h->n ? h->n : 1;
    h->w = malloc(sizeof(float) * n1);
    h->pos = malloc(sizeof(uint32_t) * n1);
    h->mask = p->mask ? malloc(sizeof(float) * n1) : NULL;
    h->assign = p->assign ? malloc(n1) : NULL;
    if (!h->w || !h->pos || (p->mask && !h->mask) || (p->assign && !h->assign))
        return DC_ERROR(DC_ERR_NOMEM, "%s: no memory for a host copy of %zu weights", p->name, h->n);
    DC_TRY(be->ops.download(be, h->w, p->w.data, sizeof(float) * h->n));
    if (p->mask)
        DC_TRY(be->ops.download(be, h->mask, p->mask, sizeof(float) * h->n));
    if (p->assign) {
        DC_TRY(be->ops.download(be, h->assign, p->assign, h->n));
        DC_TRY(be->ops.download(be, h->codebook, p->codebook, sizeof(float) * (size_t)p->m));
    }
    if (h->mask)
        h->kept = dc_gap_positions(h->mask, h->n, h->pos);
    if (h->mask && h->kept == h->n) { /* nothing pruned (a layer budget mode left dense): no positions */
        free(h->mask);
        h->mask = NULL;
    }
    if (!h->mask) {
        for (size_t i = 0; i < h->n; i++)
            h->pos[i] = (uint32_t)i;
        h->kept = h->n;
    }
    return DC_OK;
}

/* The file must reproduce the network: pruned weights zero, quantized ones on the codebook. */
static enum dc_status host_param_check(const struct dc_param *p, const struct host_param *h)
{
    for (size_t i = 0, k = 0; i < h->n; i++) {
        int kept = k < h->kept && h->pos[k] == i;
        k += kept;
        if (!kept && h->w[i] != 0.0f)
            return DC_ERROR(DC_ERR_ARG, "%s: weight %zu is pruned but holds %g; apply the mask before encoding",
                            p->name, i, (double)h->w[i]);
        if (kept && h->assign && (h->assign[i] >= p->m || memcmp(&h->w[i], &h->codebook[h->assign[i]], 4)))
            return DC_ERROR(DC_ERR_ARG, "%s: weight %zu (%g) is not its codebook entry; re-gather the "
                            "weights (codebook_gather) before encoding", p->name, i, (double)h->w[i]);
    }
    return DC_OK;
}

/* Positions of the kept weights as a gap stream (sparse.h), preceded by its entry count. */
static enum dc_status put_positions(struct dc_bitwriter *b, const struct dc_param *p, const struct host_param *h,
                                    int index_bits, int huffman)
{
    size_t entries = dc_gap_entries(h->pos, h->kept, index_bits);
    if (entries > UINT32_MAX)
        return DC_ERROR(DC_ERR_UNSUPPORTED, "%s: %zu gap entries exceed the format's limit", p->name, entries);
    uint32_t *gaps = malloc(sizeof *gaps * (entries ? entries : 1));
    if (!gaps)
        return DC_ERROR(DC_ERR_NOMEM, "%s: no memory for %zu gap entries", p->name, entries);
    enum dc_status st = dc_gap_encode(h->pos, h->kept, index_bits, gaps, &entries);
    if (st == DC_OK)
        st = put_u32(b, (uint32_t)entries);
    if (st == DC_OK)
        st = put_stream(b, gaps, entries, index_bits, huffman);
    free(gaps);
    return st;
}

/* Values of the kept weights: cluster indices (bits > 0) or float32. */
static enum dc_status put_values(struct dc_bitwriter *b, const struct dc_param *p, const struct host_param *h,
                                 int bits, int huffman)
{
    if (!bits) {
        for (size_t k = 0; k < h->kept; k++)
            DC_TRY(put_f32s(b, &h->w[h->pos[k]], 1));
        return DC_OK;
    }
    uint32_t *sym = malloc(sizeof *sym * (h->kept ? h->kept : 1));
    if (!sym)
        return DC_ERROR(DC_ERR_NOMEM, "%s: no memory for %zu cluster indices", p->name, h->kept);
    for (size_t k = 0; k < h->kept; k++)
        sym[k] = h->assign[h->pos[k]];
    enum dc_status st = put_stream(b, sym, h->kept, bits, huffman);
    free(sym);
    return st;
}

size_t dc_modelfile_coded_bytes(size_t n, int bits, int codebook_bits)
{
    size_t fields = 4 + 1 + 1 + 1 + 4; /* kept, bits, index bits; the stream's coding and length */
    return fields + (size_t)(codebook_bits == 16 ? 2 : 4) * ((size_t)1 << bits) + (n * (size_t)bits + 7) / 8;
}

size_t dc_modelfile_dense_bytes(size_t n, int dense_bits)
{
    return n * (size_t)(dense_bits == 16 ? 2 : 4);
}

static enum dc_status put_coded(struct dc_bitwriter *b, const struct dc_param *p, const struct host_param *h,
                                int index_bits, int huffman, int half_codebook)
{
    int bits = 0;
    while (h->assign && (1 << bits) < p->m)
        bits++;
    DC_TRY(put_u32(b, (uint32_t)h->kept));
    DC_TRY(put_u8(b, (uint32_t)bits));
    DC_TRY(put_u8(b, (uint32_t)(h->mask ? index_bits : 0)));
    if (bits)
        DC_TRY(half_codebook ? put_f16s(b, p, h->codebook, (size_t)1 << bits, "codebook entry")
                             : put_f32s(b, h->codebook, (size_t)1 << bits));
    if (h->mask)
        DC_TRY(put_positions(b, p, h, index_bits, huffman));
    return put_values(b, p, h, bits, huffman);
}

static enum dc_status put_section(struct dc_bitwriter *b, struct dc_backend *be, const struct dc_param *p,
                                  const struct dc_config *cfg)
{
    size_t start = b->len, nlen = strlen(p->name);
    if (nlen < 1 || nlen > 47)
        return DC_ERROR(DC_ERR_ARG, "parameter name '%s' must have 1..47 characters", p->name);
    if (dc_param_count(p) > 0x7FFFFFFF)
        return DC_ERROR(DC_ERR_UNSUPPORTED, "%s: %zu weights exceed the format's 2^31 - 1", p->name,
                        dc_param_count(p));
    int coded = !dc_modelfile_stores_dense(p);
    int kind = coded ? (cfg->codebook_bits == 16 && p->assign ? DC_SECTION_CODED16 : DC_SECTION_CODED)
                     : cfg->dense_bits == 16 ? DC_SECTION_DENSE16 : DC_SECTION_DENSE;
    int index_bits = p->is_conv ? cfg->index_bits_conv : cfg->index_bits_fc;
    if (coded && p->mask && (index_bits < 1 || index_bits > DC_INDEX_BITS_MAX))
        return DC_ERROR(DC_ERR_CONFIG, "%s: index bits %d outside 1..%d ([encode] index_bits_%s)", p->name,
                        index_bits, DC_INDEX_BITS_MAX, p->is_conv ? "conv" : "fc");
    DC_TRY(put_u32(b, 0)); /* body length, patched below */
    DC_TRY(put_u8(b, (uint32_t)nlen));
    DC_TRY(dc_bitwriter_append(b, p->name, nlen));
    DC_TRY(put_u8(b, (uint32_t)kind));
    DC_TRY(put_u8(b, (uint32_t)((p->trainable ? 1 : 0) | (p->prunable ? 2 : 0) | (p->is_conv ? 4 : 0))));
    int dims[4] = {p->w.n, p->w.c, p->w.h, p->w.w};
    for (int i = 0; i < 4; i++)
        DC_TRY(put_u32(b, (uint32_t)dims[i]));
    struct host_param h;
    enum dc_status st = host_param_load(be, p, &h);
    if (st == DC_OK && coded)
        st = host_param_check(p, &h);
    if (st == DC_OK && coded)
        st = put_coded(b, p, &h, index_bits, cfg->huffman, kind == DC_SECTION_CODED16);
    else if (st == DC_OK)
        st = kind == DC_SECTION_DENSE16 ? put_f16s(b, p, h.w, h.n, "value") : put_f32s(b, h.w, h.n);
    host_param_free(&h);
    DC_TRY(st);
    if (b->len - start - 4 > UINT32_MAX)
        return DC_ERROR(DC_ERR_UNSUPPORTED, "%s: section exceeds the format's 4 GiB", p->name);
    store_u32(b->buf + start, (uint32_t)(b->len - start - 4));
    return put_u32(b, dc_crc32(0, b->buf + start, b->len - start));
}

static enum dc_status put_header(struct dc_bitwriter *b, const struct dc_net *net, const struct dc_config *cfg)
{
    size_t tlen = cfg->net_text ? strlen(cfg->net_text) : 0;
    if (tlen == 0 || tlen > DC_MODELFILE_MAX_TEXT)
        return DC_ERROR(DC_ERR_ARG, "model file: network description of %zu bytes (1..%u allowed)", tlen,
                        DC_MODELFILE_MAX_TEXT);
    DC_TRY(dc_bitwriter_append(b, DC_MODELFILE_MAGIC, 8));
    uint32_t fields[] = {DC_MODELFILE_VERSION, cfg->huffman ? 1u : 0u, (uint32_t)cfg->dataset,
                         (uint32_t)net->in_c, (uint32_t)net->in_h, (uint32_t)net->in_w,
                         (uint32_t)net->classes, (uint32_t)net->nparams, (uint32_t)tlen};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        DC_TRY(put_u32(b, fields[i]));
    DC_TRY(dc_bitwriter_append(b, cfg->net_text, tlen));
    return put_u32(b, dc_crc32(0, b->buf, b->len));
}

static enum dc_status dc_modelfile_check_bits(const struct dc_config *cfg)
{
    if (cfg->dense_bits != 16 && cfg->dense_bits != 32)
        return DC_ERROR(DC_ERR_CONFIG, "model file: dense bits %d; [encode] dense_bits must be 16 or 32",
                        cfg->dense_bits);
    if (cfg->codebook_bits != 16 && cfg->codebook_bits != 32)
        return DC_ERROR(DC_ERR_CONFIG, "model file: codebook bits %d; [encode] codebook_bits must be 16 or 32",
                        cfg->codebook_bits);
    return DC_OK;
}

enum dc_status dc_modelfile_section_bytes(struct dc_net *net, const struct dc_config *cfg, int i, size_t *bytes)
{
    DC_TRY(dc_modelfile_check_bits(cfg));
    struct dc_bitwriter b;
    dc_bitwriter_init(&b);
    enum dc_status st = put_section(&b, net->be, net->params[i], cfg);
    *bytes = b.len;
    dc_bitwriter_free(&b);
    return st;
}

enum dc_status dc_modelfile_encode(struct dc_net *net, const struct dc_config *cfg, uint8_t **buf, size_t *size)
{
    DC_TRY(dc_modelfile_check_bits(cfg));
    struct dc_bitwriter b;
    dc_bitwriter_init(&b);
    enum dc_status st = put_header(&b, net, cfg);
    for (int i = 0; st == DC_OK && i < net->nparams; i++)
        st = put_section(&b, net->be, net->params[i], cfg);
    if (st != DC_OK) {
        dc_bitwriter_free(&b);
        return st;
    }
    *buf = b.buf;
    *size = b.len;
    return DC_OK;
}
