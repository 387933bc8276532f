/* bitstream.c: MSB-first bit writer and reader shared by the Huffman coder
 * and the fixed-width packed fields of the model file; the writer also
 * collects whole bytes, which is how the model file itself is assembled. */
#include <stdlib.h>
#include <string.h>

#include "dc/huffman.h"

void dc_bitwriter_init(struct dc_bitwriter *w)
{
    w->buf = NULL;
    w->len = w->cap = 0;
    w->acc = 0;
    w->nacc = 0;
    w->bits = 0;
}

static enum dc_status bitwriter_reserve(struct dc_bitwriter *w, size_t extra)
{
    if (w->len + extra <= w->cap)
        return DC_OK;
    size_t cap = w->cap ? w->cap * 2 : 256;
    while (cap < w->len + extra)
        cap *= 2;
    uint8_t *nb = realloc(w->buf, cap);
    if (!nb)
        return DC_ERROR(DC_ERR_NOMEM, "bit stream: cannot grow to %zu bytes", cap);
    w->buf = nb;
    w->cap = cap;
    return DC_OK;
}

enum dc_status dc_bitwriter_put(struct dc_bitwriter *w, uint32_t value, int nbits)
{
    if (nbits < 0 || nbits > 32)
        return DC_ERROR(DC_ERR_ARG, "bit stream: field width %d outside 0..32", nbits);
    if (nbits == 0)
        return DC_OK;
    DC_TRY(bitwriter_reserve(w, 5));
    uint64_t mask = nbits == 32 ? 0xFFFFFFFFull : ((1ull << nbits) - 1);
    w->acc = (w->acc << nbits) | ((uint64_t)value & mask);
    w->nacc += nbits;
    w->bits += (uint64_t)nbits;
    while (w->nacc >= 8) {
        w->nacc -= 8;
        w->buf[w->len++] = (uint8_t)(w->acc >> w->nacc);
    }
    w->acc &= (1ull << w->nacc) - 1;
    return DC_OK;
}

enum dc_status dc_bitwriter_append(struct dc_bitwriter *w, const void *bytes, size_t n)
{
    if (w->nacc != 0)
        return DC_ERROR(DC_ERR_ARG, "bit stream: appending bytes %d bits into a byte", w->nacc);
    DC_TRY(bitwriter_reserve(w, n));
    if (n)
        memcpy(w->buf + w->len, bytes, n);
    w->len += n;
    w->bits += 8 * (uint64_t)n;
    return DC_OK;
}

enum dc_status dc_bitwriter_flush(struct dc_bitwriter *w)
{
    if (w->nacc > 0) {
        DC_TRY(bitwriter_reserve(w, 1));
        w->buf[w->len++] = (uint8_t)(w->acc << (8 - w->nacc));
        w->acc = 0;
        w->nacc = 0;
    }
    return DC_OK;
}

void dc_bitwriter_free(struct dc_bitwriter *w)
{
    free(w->buf);
    dc_bitwriter_init(w);
}

void dc_bitreader_init(struct dc_bitreader *r, const uint8_t *buf, size_t bytes)
{
    r->buf = buf;
    r->nbits = (uint64_t)bytes * 8;
    r->pos = 0;
}

int dc_bitreader_get(struct dc_bitreader *r, int nbits, uint32_t *out)
{
    if (nbits < 0 || nbits > 32 || r->nbits - r->pos < (uint64_t)nbits)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < nbits; i++) {
        uint64_t p = r->pos + (uint64_t)i;
        v = (v << 1) | ((r->buf[p >> 3] >> (7 - (p & 7))) & 1u);
    }
    r->pos += (uint64_t)nbits;
    *out = (uint32_t)v;
    return 1;
}
