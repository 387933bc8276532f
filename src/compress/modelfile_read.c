/* modelfile_read.c: checks and decodes a .dcm image (layout in
 * docs/model-format.md).  Every length is checked against the bytes left and
 * every CRC before the bytes it covers are interpreted, so a damaged file
 * gives a message naming the section, parameter and field, never a crash. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/crc32.h"
#include "dc/half.h"
#include "dc/huffman.h"
#include "dc/modelfile.h"
#include "dc/sparse.h"

/* A cursor over one region, with what messages need to say where it is. */
struct rd {
    const uint8_t *p;
    size_t left;
    const char *origin;
    int sec;          /* section number (1-based), 0 = header */
    char name[48];    /* parameter of the section, "?" until known */
    int sparse;       /* keep coded sections as kept-weight lists (dc_modelfile_read_sparse) */
    uint64_t values;  /* tensor values of the sections read so far (the dense size they decode to) */
};

/* A coded section decodes to its whole tensor, so a few bytes can ask for
 * gigabytes; the networks this format describes (MNIST and CIFAR-10 input)
 * have far fewer values than this in all (VGG-19 on CIFAR-10: 20 million). */
#define DC_MODELFILE_MAX_VALUES (1ull << 26)

/* "header" or "section 3 (fc1.weight)" */
static void rd_where(const struct rd *r, char *buf, size_t len)
{
    if (r->sec == 0)
        snprintf(buf, len, "header");
    else
        snprintf(buf, len, "section %d (%s)", r->sec, r->name);
}

static enum dc_status rd_fail(const struct rd *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum dc_status rd_fail(const struct rd *r, const char *field, const char *fmt, ...)
{
    char where[96], what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    rd_where(r, where, sizeof where);
    return DC_ERROR(DC_ERR_FORMAT, "%s: %s field %s: %s", r->origin, where, field, what);
}

/* Re-raise the last error (from the Huffman or gap decoder) with the location. */
static enum dc_status rd_wrap(const struct rd *r, enum dc_status st, const char *field)
{
    char inner[512];
    snprintf(inner, sizeof inner, "%s", dc_error_msg());
    return st == DC_ERR_NOMEM ? st : rd_fail(r, field, "%s", inner);
}

static enum dc_status rd_need(struct rd *r, uint64_t n, const char *field)
{
    if (n > r->left) {
        char where[96];
        rd_where(r, where, sizeof where);
        return DC_ERROR(DC_ERR_FORMAT, "%s: truncated in %s field %s: need %llu bytes, %zu left", r->origin,
                        where, field, (unsigned long long)n, r->left);
    }
    return DC_OK;
}

static enum dc_status rd_bytes(struct rd *r, size_t n, const char *field, const uint8_t **out)
{
    DC_TRY(rd_need(r, n, field));
    *out = r->p;
    r->p += n;
    r->left -= n;
    return DC_OK;
}

static uint32_t load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static enum dc_status rd_u32(struct rd *r, const char *field, uint32_t *v)
{
    const uint8_t *p;
    DC_TRY(rd_bytes(r, 4, field, &p));
    *v = load_u32(p);
    return DC_OK;
}

static enum dc_status rd_u8(struct rd *r, const char *field, uint32_t *v)
{
    const uint8_t *p;
    DC_TRY(rd_bytes(r, 1, field, &p));
    *v = p[0];
    return DC_OK;
}

static enum dc_status rd_f32s(struct rd *r, size_t n, const char *field, float *out)
{
    const uint8_t *p;
    DC_TRY(rd_bytes(r, n * 4, field, &p));
    for (size_t i = 0; i < n; i++) {
        uint32_t u = load_u32(p + 4 * i);
        memcpy(&out[i], &u, 4);
    }
    return DC_OK;
}

/* Half values (a dense section of kind 2), widened exactly. */
static enum dc_status rd_f16s(struct rd *r, size_t n, const char *field, float *out)
{
    const uint8_t *p;
    DC_TRY(rd_bytes(r, n * 2, field, &p));
    for (size_t i = 0; i < n; i++)
        out[i] = dc_half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
    return DC_OK;
}

/* One symbol stream of `n` symbols of `width` bits into sym; counts its bytes. */
static enum dc_status rd_stream(struct rd *r, const char *field, size_t n, int width, uint32_t *sym,
                                int *coding, uint64_t *stream_bits, uint64_t *data_bytes, uint64_t *table_bytes)
{
    uint32_t c, nbytes, nlen = 0;
    const uint8_t *data, *table = NULL;
    DC_TRY(rd_u8(r, field, &c));
    if (c != DC_CODING_FIXED && c != DC_CODING_HUFFMAN)
        return rd_fail(r, field, "unknown coding %u (0 fixed, 1 Huffman)", c);
    if (c == DC_CODING_HUFFMAN) {
        DC_TRY(rd_u32(r, field, &nlen));
        if (nlen < 1 || nlen > (1u << width))
            return rd_fail(r, field, "Huffman table of %u lengths for a %d-bit alphabet", nlen, width);
        DC_TRY(rd_bytes(r, ((size_t)nlen * 5 + 7) / 8, field, &table));
        *table_bytes += 4 + ((uint64_t)nlen * 5 + 7) / 8; /* both streams add to one count */
    }
    DC_TRY(rd_u32(r, field, &nbytes));
    DC_TRY(rd_bytes(r, nbytes, field, &data));
    *coding = (int)c;
    *data_bytes = nbytes;
    struct dc_bitreader br;
    dc_bitreader_init(&br, data, nbytes);
    if (c == DC_CODING_FIXED) {
        uint64_t want = ((uint64_t)n * (uint64_t)width + 7) / 8;
        if (nbytes != want)
            return rd_fail(r, field, "%u bytes for %zu fixed %d-bit symbols (%llu expected)", nbytes, n, width,
                           (unsigned long long)want);
        for (size_t i = 0; i < n; i++)
            dc_bitreader_get(&br, width, &sym[i]);
    } else {
        uint8_t len[DC_HUFF_MAX_SYMBOLS];
        struct dc_bitreader tr;
        dc_bitreader_init(&tr, table, ((size_t)nlen * 5 + 7) / 8);
        for (uint32_t s = 0; s < nlen; s++) {
            uint32_t v;
            dc_bitreader_get(&tr, 5, &v);
            len[s] = (uint8_t)v;
        }
        struct dc_huff_decoder d;
        enum dc_status st = dc_huffman_decoder_init(&d, len, (int)nlen);
        if (st != DC_OK)
            return rd_wrap(r, st, field);
        st = dc_huffman_decode(&d, &br, n, sym);
        dc_huffman_decoder_free(&d);
        if (st != DC_OK)
            return rd_wrap(r, st, field);
        if ((br.pos + 7) / 8 != nbytes)
            return rd_fail(r, field, "%u bytes hold only %llu bits of code", nbytes, (unsigned long long)br.pos);
    }
    *stream_bits = br.pos;
    return DC_OK;
}

/* Shape, kind and flags common to both section kinds. */
static enum dc_status parse_section_head(struct rd *r, struct dc_modelfile_param *mp, struct dc_section_stats *ss)
{
    uint32_t nlen, kind, flags, dims[4];
    const uint8_t *name;
    DC_TRY(rd_u8(r, "name length", &nlen));
    if (nlen < 1 || nlen > 47)
        return rd_fail(r, "name length", "%u (1..47 allowed)", nlen);
    DC_TRY(rd_bytes(r, nlen, "name", &name));
    for (uint32_t i = 0; i < nlen; i++)
        if (name[i] <= ' ' || name[i] > '~')
            return rd_fail(r, "name", "byte %u is 0x%02x, not a printable character", i, name[i]);
    memcpy(mp->name, name, nlen);
    mp->name[nlen] = '\0';
    memcpy(r->name, mp->name, nlen + 1);
    memcpy(ss->name, mp->name, nlen + 1);
    DC_TRY(rd_u8(r, "kind", &kind));
    if (kind > DC_SECTION_CODED16)
        return rd_fail(r, "kind", "%u (0 dense, 1 coded, 2 dense half, 3 coded with a half codebook)", kind);
    DC_TRY(rd_u8(r, "flags", &flags));
    if (flags & ~7u)
        return rd_fail(r, "flags", "0x%02x has unknown bits", flags);
    static const char *dim_names[4] = {"shape n", "shape c", "shape h", "shape w"};
    uint64_t count = 1;
    for (int i = 0; i < 4; i++) {
        DC_TRY(rd_u32(r, dim_names[i], &dims[i]));
        if (dims[i] < 1 || dims[i] > 0x7FFFFFFF)
            return rd_fail(r, dim_names[i], "%u", dims[i]);
        count *= dims[i];
        if (count > 0x7FFFFFFF)
            return rd_fail(r, dim_names[i], "shape holds more than 2^31 - 1 values");
    }
    if (count > DC_MODELFILE_MAX_VALUES - r->values)
        return rd_fail(r, "shape", "%llu values bring the file's tensors to more than %llu values in all, beyond "
                       "any network for MNIST or CIFAR-10 input; a damaged file", (unsigned long long)count,
                       (unsigned long long)DC_MODELFILE_MAX_VALUES);
    r->values += count;
    mp->n = (int)dims[0], mp->c = (int)dims[1], mp->h = (int)dims[2], mp->w = (int)dims[3];
    mp->kind = ss->kind = (int)kind;
    mp->trainable = ss->trainable = flags & 1;
    mp->prunable = ss->prunable = (flags >> 1) & 1;
    mp->is_conv = ss->is_conv = (flags >> 2) & 1;
    ss->count = ss->kept = count;
    /* biases and batch norm on a codebook ([quantize] bits_bias) are small and
     * read as dense values even by the sparse reader: the inference loader
     * folds them into the layers' epilogues */
    if (!mp->prunable)
        r->sparse = 0;
    /* a dense section must hold its values before we allocate for them */
    if (kind != DC_SECTION_CODED && kind != DC_SECTION_CODED16)
        DC_TRY(rd_need(r, count * (kind == DC_SECTION_DENSE16 ? 2 : 4), "values"));
    else if (r->sparse)
        return DC_OK; /* kept weights only: see parse_coded */
    mp->values = calloc((size_t)count, sizeof(float));
    if (!mp->values)
        return DC_ERROR(DC_ERR_NOMEM, "%s: no memory for %llu values", mp->name, (unsigned long long)count);
    return DC_OK;
}

/* Positions of the kept weights: the gap stream, or all of them. */
static enum dc_status parse_positions(struct rd *r, struct dc_modelfile_param *mp, struct dc_section_stats *ss,
                                      uint32_t *pos)
{
    size_t count = (size_t)ss->count, kept = (size_t)ss->kept;
    if (!ss->index_bits) {
        for (size_t i = 0; i < count; i++)
            pos[i] = (uint32_t)i;
        return DC_OK;
    }
    uint32_t entries;
    DC_TRY(rd_u32(r, "position entries", &entries));
    if (entries < kept || entries > (uint64_t)r->left * 8)
        return rd_fail(r, "position entries", "%u entries for %zu weights in %zu bytes", entries, kept, r->left);
    uint32_t *gaps = malloc(sizeof *gaps * (entries ? entries : 1));
    if (!r->sparse)
        mp->mask = calloc(count, sizeof(float));
    if (!gaps || (!r->sparse && !mp->mask)) {
        free(gaps);
        return DC_ERROR(DC_ERR_NOMEM, "%s: no memory for %u position entries", mp->name, entries);
    }
    enum dc_status st = rd_stream(r, "positions", entries, ss->index_bits, gaps, &ss->index_coding,
                                  &ss->index_stream_bits, &ss->index_bytes, &ss->table_bytes);
    if (st == DC_OK) {
        st = dc_gap_decode(gaps, entries, ss->index_bits, count, pos, kept);
        if (st != DC_OK)
            st = rd_wrap(r, st, "positions");
    }
    free(gaps);
    DC_TRY(st);
    ss->entries = entries;
    for (size_t k = 0; !r->sparse && k < kept; k++)
        mp->mask[pos[k]] = 1.0f;
    return DC_OK;
}

/* Values of the kept weights: cluster indices into the codebook, or float32. */
static enum dc_status parse_values(struct rd *r, struct dc_modelfile_param *mp, struct dc_section_stats *ss,
                                   const uint32_t *pos)
{
    size_t kept = (size_t)ss->kept;
    if (!ss->bits) {
        DC_TRY(rd_need(r, (uint64_t)kept * 4, "values"));
        if (r->sparse && !(mp->kvalues = malloc(sizeof(float) * (kept ? kept : 1))))
            return DC_ERROR(DC_ERR_NOMEM, "%s: no memory for %zu values", mp->name, kept);
        for (size_t k = 0; k < kept; k++)
            rd_f32s(r, 1, "values", r->sparse ? &mp->kvalues[k] : &mp->values[pos[k]]);
        ss->value_bytes = (uint64_t)kept * 4;
        ss->value_stream_bits = ss->value_bytes * 8;
        return DC_OK;
    }
    if (kept > (uint64_t)r->left * 8)
        return rd_fail(r, "cluster indices", "%zu weights cannot fit in %zu bytes", kept, r->left);
    uint32_t *sym = malloc(sizeof *sym * (kept ? kept : 1));
    if (r->sparse)
        mp->codes = malloc(kept ? kept : 1);
    else
        mp->assign = calloc((size_t)ss->count, 1);
    if (!sym || !(r->sparse ? (void *)mp->codes : (void *)mp->assign)) {
        free(sym);
        return DC_ERROR(DC_ERR_NOMEM, "%s: no memory for %zu cluster indices", mp->name, kept);
    }
    enum dc_status st = rd_stream(r, "cluster indices", kept, ss->bits, sym, &ss->value_coding,
                                  &ss->value_stream_bits, &ss->value_bytes, &ss->table_bytes);
    for (size_t k = 0; st == DC_OK && r->sparse && k < kept; k++)
        mp->codes[k] = (uint8_t)sym[k];
    for (size_t k = 0; st == DC_OK && !r->sparse && k < kept; k++) {
        mp->assign[pos[k]] = (uint8_t)sym[k];
        mp->values[pos[k]] = mp->codebook[sym[k]];
    }
    free(sym);
    return st;
}

static enum dc_status parse_coded(struct rd *r, struct dc_modelfile_param *mp, struct dc_section_stats *ss)
{
    uint32_t kept, bits, ibits;
    DC_TRY(rd_u32(r, "kept", &kept));
    if (kept > ss->count)
        return rd_fail(r, "kept", "%u of %llu weights", kept, (unsigned long long)ss->count);
    DC_TRY(rd_u8(r, "bits", &bits));
    if (bits > 8)
        return rd_fail(r, "bits", "%u (0 = float32, 1..8 allowed)", bits);
    DC_TRY(rd_u8(r, "index bits", &ibits));
    if (ibits > DC_INDEX_BITS_MAX)
        return rd_fail(r, "index bits", "%u (0..%d allowed)", ibits, DC_INDEX_BITS_MAX);
    if (ibits == 0 && kept != ss->count)
        return rd_fail(r, "kept", "%u of %llu weights but no position stream", kept, (unsigned long long)ss->count);
    ss->kept = kept, ss->bits = (int)bits, ss->index_bits = (int)ibits;
    if (bits) {
        mp->m = 1 << bits;
        int half = mp->kind == DC_SECTION_CODED16;
        DC_TRY(half ? rd_f16s(r, (size_t)mp->m, "codebook", mp->codebook)
                    : rd_f32s(r, (size_t)mp->m, "codebook", mp->codebook));
        ss->codebook_bytes = (half ? 2ull : 4ull) * (uint64_t)mp->m;
    }
    uint64_t npos = ss->kept; /* kept = count when there is no position stream */
    uint32_t *pos = malloc(sizeof *pos * (npos ? npos : 1));
    if (!pos)
        return DC_ERROR(DC_ERR_NOMEM, "%s: no memory for %llu positions", mp->name, (unsigned long long)npos);
    enum dc_status st = parse_positions(r, mp, ss, pos);
    if (st == DC_OK)
        st = parse_values(r, mp, ss, pos);
    if (r->sparse && st == DC_OK)
        mp->pos = pos, mp->kept = ss->kept;
    else
        free(pos);
    return st;
}

/* The name inside a section whose CRC has not been checked yet, for messages only. */
static void peek_name(const uint8_t *body, size_t len, char *out)
{
    snprintf(out, 48, "?");
    if (len < 1 || body[0] < 1 || body[0] > 47 || (size_t)body[0] + 1 > len)
        return;
    for (size_t i = 0; i < body[0]; i++)
        if (body[1 + i] <= ' ' || body[1 + i] > '~')
            return;
    memcpy(out, body + 1, body[0]);
    out[body[0]] = '\0';
}

static enum dc_status parse_section(struct rd *r, struct dc_modelfile_param *mp, struct dc_section_stats *ss)
{
    uint32_t blen;
    const uint8_t *start = r->p, *body, *crc;
    snprintf(r->name, sizeof r->name, "?");
    DC_TRY(rd_u32(r, "length", &blen));
    peek_name(r->p, blen < r->left ? blen : r->left, r->name); /* for messages, even when truncated */
    DC_TRY(rd_need(r, (uint64_t)blen + 4, "body"));
    DC_TRY(rd_bytes(r, blen, "body", &body));
    DC_TRY(rd_bytes(r, 4, "crc", &crc));
    uint32_t stored = load_u32(crc), computed = dc_crc32(0, start, (size_t)blen + 4);
    if (stored != computed)
        return DC_ERROR(DC_ERR_FORMAT, "%s: section %d (%s): CRC mismatch (stored 0x%08x, computed 0x%08x)",
                        r->origin, r->sec, r->name, stored, computed);
    struct rd b = {body, blen, r->origin, r->sec, "?", r->sparse, r->values};
    DC_TRY(parse_section_head(&b, mp, ss));
    r->values = b.values;
    if (mp->kind != DC_SECTION_CODED && mp->kind != DC_SECTION_CODED16) {
        int half = mp->kind == DC_SECTION_DENSE16;
        DC_TRY(half ? rd_f16s(&b, (size_t)ss->count, "values", mp->values)
                    : rd_f32s(&b, (size_t)ss->count, "values", mp->values));
        ss->value_bytes = ss->count * (half ? 2 : 4);
        ss->value_stream_bits = ss->value_bytes * 8;
    } else {
        DC_TRY(parse_coded(&b, mp, ss));
    }
    if (b.left)
        return rd_fail(&b, "end", "%zu bytes left over after the last field", b.left);
    ss->total_bytes = (uint64_t)blen + 8;
    ss->overhead_bytes = ss->total_bytes - ss->value_bytes - ss->index_bytes - ss->codebook_bytes - ss->table_bytes;
    return DC_OK;
}

enum {
    H_VERSION, H_FLAGS, H_DATASET, H_IN_C, H_IN_H, H_IN_W, H_CLASSES, H_SECTIONS, H_TEXT_LEN, H_FIELDS
};

static enum dc_status parse_header(struct rd *r, struct dc_modelfile *mf)
{
    static const char *names[H_FIELDS] = {"version", "flags", "dataset", "input channels", "input height",
                                          "input width", "classes", "sections", "description length"};
    const uint8_t *magic, *text, *crc;
    uint32_t f[H_FIELDS];
    DC_TRY(rd_bytes(r, 8, "magic", &magic));
    if (memcmp(magic, DC_MODELFILE_MAGIC, 8) != 0)
        return DC_ERROR(DC_ERR_FORMAT, "%s: not a deepcompress model file (magic bytes %02x %02x %02x %02x..., "
                        "expected \"DCMODEL\")", r->origin, magic[0], magic[1], magic[2], magic[3]);
    for (int i = 0; i < H_FIELDS; i++) {
        DC_TRY(rd_u32(r, names[i], &f[i]));
        if (i == H_VERSION && f[i] != DC_MODELFILE_VERSION)
            return DC_ERROR(DC_ERR_FORMAT, "%s: wrong version %u (this build reads version %d; re-encode with "
                            "this dctrain)", r->origin, f[i], DC_MODELFILE_VERSION);
    }
    if (f[H_TEXT_LEN] < 1 || f[H_TEXT_LEN] > DC_MODELFILE_MAX_TEXT)
        return rd_fail(r, names[H_TEXT_LEN], "%u bytes (1..%u allowed)", f[H_TEXT_LEN], DC_MODELFILE_MAX_TEXT);
    DC_TRY(rd_bytes(r, f[H_TEXT_LEN], "network description", &text));
    size_t hlen = (size_t)(r->p - magic);
    DC_TRY(rd_bytes(r, 4, "crc", &crc));
    uint32_t stored = load_u32(crc), computed = dc_crc32(0, magic, hlen);
    if (stored != computed)
        return DC_ERROR(DC_ERR_FORMAT, "%s: header: CRC mismatch (stored 0x%08x, computed 0x%08x)", r->origin,
                        stored, computed);
    if (f[H_FLAGS] & ~1u)
        return rd_fail(r, names[H_FLAGS], "0x%x has unknown bits", f[H_FLAGS]);
    if (f[H_DATASET] > DC_DATASET_CIFAR10)
        return rd_fail(r, names[H_DATASET], "%u (0 mnist, 1 cifar10)", f[H_DATASET]);
    for (int i = H_IN_C; i <= H_CLASSES; i++)
        if (f[i] < 1 || f[i] > 65536)
            return rd_fail(r, names[i], "%u (1..65536 allowed)", f[i]);
    /* the readers of src/data/ give exactly these shapes; anything else is damage */
    static const int shape[2][4] = {{1, 28, 28, 10}, {3, 32, 32, 10}};
    for (int i = H_IN_C; i <= H_CLASSES; i++)
        if ((int)f[i] != shape[f[H_DATASET]][i - H_IN_C])
            return rd_fail(r, names[i], "%u does not fit the %s data set (%dx%dx%d images, %d classes)", f[i],
                           f[H_DATASET] ? "cifar10" : "mnist", shape[f[H_DATASET]][0], shape[f[H_DATASET]][1],
                           shape[f[H_DATASET]][2], shape[f[H_DATASET]][3]);
    if (f[H_SECTIONS] > DC_NET_MAX_PARAMS)
        return rd_fail(r, names[H_SECTIONS], "%u (at most %d)", f[H_SECTIONS], DC_NET_MAX_PARAMS);
    if (memchr(text, '\0', f[H_TEXT_LEN]))
        return rd_fail(r, "network description", "contains a NUL byte");
    mf->version = f[H_VERSION], mf->flags = f[H_FLAGS];
    mf->dataset = (enum dc_dataset_kind)f[H_DATASET];
    mf->in_c = (int)f[H_IN_C], mf->in_h = (int)f[H_IN_H], mf->in_w = (int)f[H_IN_W];
    mf->classes = (int)f[H_CLASSES];
    mf->net_text = malloc(f[H_TEXT_LEN] + 1u);
    mf->params = calloc(f[H_SECTIONS] ? f[H_SECTIONS] : 1, sizeof *mf->params);
    mf->stats.s = calloc(f[H_SECTIONS] ? f[H_SECTIONS] : 1, sizeof *mf->stats.s);
    if (!mf->net_text || !mf->params || !mf->stats.s)
        return DC_ERROR(DC_ERR_NOMEM, "%s: no memory for %u sections", r->origin, f[H_SECTIONS]);
    memcpy(mf->net_text, text, f[H_TEXT_LEN]);
    mf->net_text[f[H_TEXT_LEN]] = '\0';
    mf->stats.header_bytes = hlen + 4;
    mf->nparams = mf->stats.nsections = (int)f[H_SECTIONS];
    return DC_OK;
}

static enum dc_status dc_modelfile_parse_as(const uint8_t *buf, size_t size, const char *origin, int sparse,
                                            struct dc_modelfile *out)
{
    memset(out, 0, sizeof *out);
    struct rd r = {buf, size, origin, 0, "?", sparse, 0};
    enum dc_status st = parse_header(&r, out);
    for (int i = 0; st == DC_OK && i < out->nparams; i++) {
        r.sec = i + 1;
        st = parse_section(&r, &out->params[i], &out->stats.s[i]);
        if (st == DC_OK && out->params[i].trainable)
            out->stats.dense_bytes += out->stats.s[i].count * 4;
    }
    if (st == DC_OK && r.left)
        st = DC_ERROR(DC_ERR_FORMAT, "%s: %zu bytes after the last section (a damaged or concatenated file)",
                      origin, r.left);
    if (st != DC_OK) {
        dc_modelfile_free(out);
        return st;
    }
    out->stats.file_bytes = size;
    return DC_OK;
}

enum dc_status dc_modelfile_parse(const uint8_t *buf, size_t size, const char *origin, struct dc_modelfile *out)
{
    return dc_modelfile_parse_as(buf, size, origin, 0, out);
}

enum dc_status dc_modelfile_parse_sparse(const uint8_t *buf, size_t size, const char *origin,
                                         struct dc_modelfile *out)
{
    return dc_modelfile_parse_as(buf, size, origin, 1, out);
}
