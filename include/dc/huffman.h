/* huffman.h: canonical Huffman codes with a length limit, and the MSB-first
 * bit streams they (and fixed-width packed fields) are written to.  The model
 * file stores only the code lengths; both sides rebuild the same canonical
 * codes from them (shorter codes first, then by symbol value). */
#ifndef DC_HUFFMAN_H
#define DC_HUFFMAN_H

#include <stddef.h>
#include <stdint.h>

#include "dc/status.h"

#define DC_HUFF_MAX_LEN 24         /* longest code we emit or accept */
#define DC_HUFF_MAX_SYMBOLS 65536  /* gap streams with 16-bit index width */
#define DC_HUFF_LUT_BITS 10        /* decoder lookup table resolves codes up to this length at once */

/* ---- bit streams: the first bit written is the most significant bit of byte 0 ---- */
struct dc_bitwriter {
    uint8_t *buf;       /* host, malloc'd; owned */
    size_t len, cap;    /* bytes written, allocated */
    uint64_t acc;       /* bits not yet flushed, right-aligned */
    int nacc;
    uint64_t bits;      /* bits written so far */
};
void dc_bitwriter_init(struct dc_bitwriter *w);
/* Append the low nbits (0..32) of value, most significant first. */
enum dc_status dc_bitwriter_put(struct dc_bitwriter *w, uint32_t value, int nbits);
/* Append whole bytes; the stream must be at a byte boundary (after a flush). */
enum dc_status dc_bitwriter_append(struct dc_bitwriter *w, const void *bytes, size_t n);
/* Pad the last byte with zero bits; w->len is then the stream length in bytes. */
enum dc_status dc_bitwriter_flush(struct dc_bitwriter *w);
void dc_bitwriter_free(struct dc_bitwriter *w);

struct dc_bitreader {
    const uint8_t *buf; /* host, not owned */
    uint64_t nbits;     /* bits available */
    uint64_t pos;       /* next bit to read */
};
void dc_bitreader_init(struct dc_bitreader *r, const uint8_t *buf, size_t bytes);
/* Read nbits (0..32) into *out; returns 0 (and reads nothing) when fewer remain. */
int dc_bitreader_get(struct dc_bitreader *r, int nbits, uint32_t *out);

/* ---- codes ---- */
/* Code lengths for symbols 0..nsym-1 from their counts: 0 for unused symbols,
 * a 1-bit code when only one symbol is used, all 0 when none is.  Lengths
 * are limited to max_len (<= DC_HUFF_MAX_LEN) by moving leaves up the tree
 * (the zlib/miniz rebalancing); the result is a complete prefix code. */
enum dc_status dc_huffman_lengths(const uint64_t *freq, int nsym, int max_len, uint8_t *lengths);
/* Canonical codes from lengths; fails unless 0 <= len <= DC_HUFF_MAX_LEN and
 * the Kraft sum is <= 1.  codes[s] is meaningful where lengths[s] > 0. */
enum dc_status dc_huffman_codes(const uint8_t *lengths, int nsym, uint32_t *codes);
/* Size in bits of a stream with these counts under these lengths. */
uint64_t dc_huffman_cost(const uint64_t *freq, const uint8_t *lengths, int nsym);
/* Append syms[0..n) (each < nsym, with a code) to w. */
enum dc_status dc_huffman_encode(const uint8_t *lengths, int nsym, const uint32_t *syms, size_t n,
                                 struct dc_bitwriter *w);

/* Table-driven decoder: one lookup for codes up to DC_HUFF_LUT_BITS long,
 * the canonical walk for longer ones. */
struct dc_huff_decoder {
    int nsym;
    int max_len;                              /* longest length present */
    uint32_t lut[1 << DC_HUFF_LUT_BITS];      /* (symbol << 5) | length, 0 = longer or invalid */
    uint32_t count[DC_HUFF_MAX_LEN + 1];      /* codes per length */
    uint32_t *sorted;                         /* [used] symbols ordered by (length, symbol) */
};
enum dc_status dc_huffman_decoder_init(struct dc_huff_decoder *d, const uint8_t *lengths, int nsym);
void dc_huffman_decoder_free(struct dc_huff_decoder *d);
/* Decode n symbols; fails on a bit pattern that is no code or a stream that ends early. */
enum dc_status dc_huffman_decode(const struct dc_huff_decoder *d, struct dc_bitreader *r, size_t n,
                                 uint32_t *syms);

#endif
