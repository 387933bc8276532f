/* huffman.c: length-limited canonical Huffman codes for the cluster-index and
 * gap streams of the model file (Han et al. 2016, section 4).  The encoder
 * builds lengths with the two-queue method, limits them with the zlib/miniz
 * rebalancing, and emits canonical codes; the decoder resolves short codes in
 * one table lookup and walks the canonical code for the rest. */
#include <stdlib.h>
#include <string.h>

#include "dc/huffman.h"

struct leaf {
    uint64_t freq;
    uint32_t sym;
};

static int leaf_cmp(const void *a, const void *b)
{
    const struct leaf *x = a, *y = b;
    if (x->freq != y->freq)
        return x->freq < y->freq ? -1 : 1;
    return x->sym < y->sym ? -1 : (x->sym > y->sym);
}

/* Depth of every leaf (sorted by rising frequency) in the Huffman tree: the
 * two-queue merge, since merged nodes are created in non-decreasing order. */
static enum dc_status tree_depths(const struct leaf *lv, int n, uint32_t *depth_out)
{
    int nodes = 2 * n - 1;
    uint64_t *w = malloc(sizeof *w * (size_t)nodes);
    int *parent = malloc(sizeof *parent * (size_t)nodes);
    uint32_t *depth = malloc(sizeof *depth * (size_t)nodes);
    if (!w || !parent || !depth) {
        free(w), free(parent), free(depth);
        return DC_ERROR(DC_ERR_NOMEM, "huffman: no memory for a tree of %d leaves", n);
    }
    for (int i = 0; i < n; i++)
        w[i] = lv[i].freq;
    int li = 0, ii = n;
    for (int next = n; next < nodes; next++) {
        int pick[2];
        for (int k = 0; k < 2; k++) {
            if (li < n && (ii >= next || w[li] <= w[ii]))
                pick[k] = li++;
            else
                pick[k] = ii++;
        }
        w[next] = w[pick[0]] + w[pick[1]];
        parent[pick[0]] = parent[pick[1]] = next;
    }
    depth[nodes - 1] = 0;
    for (int k = nodes - 2; k >= 0; k--)
        depth[k] = depth[parent[k]] + 1;
    memcpy(depth_out, depth, sizeof *depth * (size_t)n);
    free(w), free(parent), free(depth);
    return DC_OK;
}

/* Clamp lengths to max_len and restore the Kraft equality by splitting a
 * shorter leaf for every leaf removed from the deepest level (miniz's
 * tdefl_huffman_enforce_max_code_size). */
static void limit_lengths(uint32_t *bl_count, int max_len, const uint32_t *depth, int n)
{
    for (int i = 0; i <= max_len; i++)
        bl_count[i] = 0;
    for (int i = 0; i < n; i++)
        bl_count[depth[i] > (uint32_t)max_len ? max_len : (int)depth[i]]++;
    uint64_t total = 0;
    for (int i = 1; i <= max_len; i++)
        total += (uint64_t)bl_count[i] << (max_len - i);
    while (total != (1ull << max_len)) {
        bl_count[max_len]--;
        for (int i = max_len - 1; i > 0; i--) {
            if (bl_count[i]) {
                bl_count[i]--;
                bl_count[i + 1] += 2;
                break;
            }
        }
        total--;
    }
}

enum dc_status dc_huffman_lengths(const uint64_t *freq, int nsym, int max_len, uint8_t *lengths)
{
    if (nsym < 0 || nsym > DC_HUFF_MAX_SYMBOLS || max_len < 1 || max_len > DC_HUFF_MAX_LEN)
        return DC_ERROR(DC_ERR_ARG, "huffman: %d symbols or length limit %d out of range", nsym, max_len);
    memset(lengths, 0, (size_t)nsym);
    int n = 0;
    for (int s = 0; s < nsym; s++)
        n += freq[s] > 0;
    if (n == 0)
        return DC_OK;
    if ((uint64_t)n > (1ull << max_len))
        return DC_ERROR(DC_ERR_ARG, "huffman: %d symbols cannot have codes of at most %d bits", n, max_len);
    struct leaf *lv = malloc(sizeof *lv * (size_t)n);
    uint32_t *depth = malloc(sizeof *depth * (size_t)n);
    if (!lv || !depth) {
        free(lv), free(depth);
        return DC_ERROR(DC_ERR_NOMEM, "huffman: no memory for %d symbols", n);
    }
    n = 0;
    for (int s = 0; s < nsym; s++)
        if (freq[s] > 0)
            lv[n++] = (struct leaf){freq[s], (uint32_t)s};
    if (n == 1) {
        lengths[lv[0].sym] = 1; /* a lone symbol still needs one bit per occurrence */
        free(lv), free(depth);
        return DC_OK;
    }
    qsort(lv, (size_t)n, sizeof *lv, leaf_cmp);
    enum dc_status st = tree_depths(lv, n, depth);
    if (st == DC_OK) {
        uint32_t bl_count[DC_HUFF_MAX_LEN + 1];
        limit_lengths(bl_count, max_len, depth, n);
        /* the rarest symbols take the longest codes */
        int k = 0;
        for (int len = max_len; len >= 1; len--)
            for (uint32_t c = 0; c < bl_count[len]; c++)
                lengths[lv[k++].sym] = (uint8_t)len;
    }
    free(lv), free(depth);
    return st;
}

/* Count codes per length and check the Kraft sum; shared by encoder and decoder. */
static enum dc_status count_lengths(const uint8_t *lengths, int nsym, uint32_t *count, int *max_len)
{
    if (nsym < 0 || nsym > DC_HUFF_MAX_SYMBOLS)
        return DC_ERROR(DC_ERR_FORMAT, "huffman: alphabet of %d symbols (limit %d)", nsym, DC_HUFF_MAX_SYMBOLS);
    memset(count, 0, sizeof *count * (DC_HUFF_MAX_LEN + 1));
    *max_len = 0;
    uint64_t kraft = 0;
    for (int s = 0; s < nsym; s++) {
        if (lengths[s] > DC_HUFF_MAX_LEN)
            return DC_ERROR(DC_ERR_FORMAT, "huffman: symbol %d has a %d-bit code (limit %d)", s,
                            lengths[s], DC_HUFF_MAX_LEN);
        if (!lengths[s])
            continue;
        count[lengths[s]]++;
        kraft += 1ull << (DC_HUFF_MAX_LEN - lengths[s]);
        if (lengths[s] > *max_len)
            *max_len = lengths[s];
    }
    if (kraft > (1ull << DC_HUFF_MAX_LEN))
        return DC_ERROR(DC_ERR_FORMAT, "huffman: code lengths are over-subscribed (no prefix code has them)");
    return DC_OK;
}

enum dc_status dc_huffman_codes(const uint8_t *lengths, int nsym, uint32_t *codes)
{
    uint32_t count[DC_HUFF_MAX_LEN + 1], next[DC_HUFF_MAX_LEN + 2];
    int max_len;
    DC_TRY(count_lengths(lengths, nsym, count, &max_len));
    uint32_t code = 0;
    count[0] = 0;
    for (int len = 1; len <= DC_HUFF_MAX_LEN; len++) {
        code = (code + count[len - 1]) << 1;
        next[len] = code;
    }
    for (int s = 0; s < nsym; s++)
        codes[s] = lengths[s] ? next[lengths[s]]++ : 0;
    return DC_OK;
}

uint64_t dc_huffman_cost(const uint64_t *freq, const uint8_t *lengths, int nsym)
{
    uint64_t bits = 0;
    for (int s = 0; s < nsym; s++)
        bits += freq[s] * lengths[s];
    return bits;
}

enum dc_status dc_huffman_encode(const uint8_t *lengths, int nsym, const uint32_t *syms, size_t n,
                                 struct dc_bitwriter *w)
{
    uint32_t *codes = malloc(sizeof *codes * (size_t)(nsym > 0 ? nsym : 1));
    if (!codes)
        return DC_ERROR(DC_ERR_NOMEM, "huffman: no memory for %d codes", nsym);
    enum dc_status st = dc_huffman_codes(lengths, nsym, codes);
    for (size_t i = 0; st == DC_OK && i < n; i++) {
        uint32_t s = syms[i];
        if (s >= (uint32_t)nsym || !lengths[s])
            st = DC_ERROR(DC_ERR_ARG, "huffman: symbol %u at %zu has no code", s, i);
        else
            st = dc_bitwriter_put(w, codes[s], lengths[s]);
    }
    free(codes);
    return st;
}

enum dc_status dc_huffman_decoder_init(struct dc_huff_decoder *d, const uint8_t *lengths, int nsym)
{
    memset(d, 0, sizeof *d);
    DC_TRY(count_lengths(lengths, nsym, d->count, &d->max_len));
    d->nsym = nsym;
    uint32_t used = 0, offs[DC_HUFF_MAX_LEN + 2];
    for (int len = 1; len <= DC_HUFF_MAX_LEN; len++)
        used += d->count[len];
    d->sorted = malloc(sizeof *d->sorted * (used ? used : 1));
    uint32_t *codes = malloc(sizeof *codes * (size_t)(nsym > 0 ? nsym : 1));
    if (!d->sorted || !codes) {
        free(codes);
        dc_huffman_decoder_free(d);
        return DC_ERROR(DC_ERR_NOMEM, "huffman: no memory for a decoder of %d symbols", nsym);
    }
    offs[1] = 0;
    for (int len = 1; len <= DC_HUFF_MAX_LEN; len++)
        offs[len + 1] = offs[len] + d->count[len];
    for (int s = 0; s < nsym; s++)
        if (lengths[s])
            d->sorted[offs[lengths[s]]++] = (uint32_t)s;
    dc_huffman_codes(lengths, nsym, codes); /* lengths were validated above */
    for (int s = 0; s < nsym; s++) {
        int len = lengths[s];
        if (!len || len > DC_HUFF_LUT_BITS)
            continue;
        uint32_t first = codes[s] << (DC_HUFF_LUT_BITS - len);
        for (uint32_t k = 0; k < (1u << (DC_HUFF_LUT_BITS - len)); k++)
            d->lut[first + k] = ((uint32_t)s << 5) | (uint32_t)len;
    }
    free(codes);
    return DC_OK;
}

void dc_huffman_decoder_free(struct dc_huff_decoder *d)
{
    free(d->sorted);
    d->sorted = NULL;
}

/* The next 32 bits from bit position pos, zero past the end (checked by the caller). */
static uint32_t peek32(const struct dc_bitreader *r, uint64_t pos)
{
    uint64_t byte = pos >> 3, nbytes = r->nbits >> 3, v = 0;
    for (int i = 0; i < 5; i++)
        v = (v << 8) | (byte + (uint64_t)i < nbytes ? r->buf[byte + (uint64_t)i] : 0u);
    return (uint32_t)(v >> (8 - (pos & 7)));
}

/* The canonical walk (as zlib's puff.c) for codes the table does not resolve. */
static int decode_slow(const struct dc_huff_decoder *d, uint32_t window, uint32_t *sym, int *len)
{
    uint32_t code = 0, first = 0, index = 0;
    for (int l = 1; l <= d->max_len; l++) {
        code |= (window >> (32 - l)) & 1u;
        uint32_t count = d->count[l];
        if (code - first < count) {
            *sym = d->sorted[index + (code - first)];
            *len = l;
            return 1;
        }
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    return 0;
}

enum dc_status dc_huffman_decode(const struct dc_huff_decoder *d, struct dc_bitreader *r, size_t n,
                                 uint32_t *syms)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t window = peek32(r, r->pos);
        uint32_t e = d->lut[window >> (32 - DC_HUFF_LUT_BITS)];
        uint32_t sym;
        int len;
        if (e) {
            sym = e >> 5;
            len = (int)(e & 31u);
        } else if (!decode_slow(d, window, &sym, &len)) {
            return DC_ERROR(DC_ERR_FORMAT, "huffman: bits at %llu form no code (symbol %zu of %zu)",
                            (unsigned long long)r->pos, i, n);
        }
        if (r->nbits - r->pos < (uint64_t)len)
            return DC_ERROR(DC_ERR_FORMAT, "huffman: stream ends after %zu of %zu symbols", i, n);
        r->pos += (uint64_t)len;
        syms[i] = sym;
    }
    return DC_OK;
}
