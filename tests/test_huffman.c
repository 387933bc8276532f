/* test_huffman.c: canonical Huffman codes round trip on random, skewed,
 * one-symbol, uniform and empty streams; the length limit holds on
 * Fibonacci frequencies (whose optimal tree is as deep as the alphabet);
 * codes stay within one bit per symbol of the entropy; damaged streams are
 * rejected; fixed-width bit packing round trips at every width. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "dc/huffman.h"
#include "dc/rng.h"

static struct dc_rng rng;

static uint64_t kraft_units(const uint8_t *len, int nsym)
{
    uint64_t k = 0;
    for (int s = 0; s < nsym; s++)
        if (len[s])
            k += 1ull << (DC_HUFF_MAX_LEN - len[s]);
    return k;
}

/* Encode syms with codes built from their counts, decode, compare; returns stream bits. */
static uint64_t round_trip(const char *what, const uint32_t *syms, size_t n, int nsym, int max_len)
{
    uint64_t *freq = calloc((size_t)nsym, sizeof *freq);
    uint8_t *len = calloc((size_t)nsym, 1);
    uint32_t *back = malloc(sizeof *back * (n + 1)); /* room for the one-too-many check */
    for (size_t i = 0; i < n; i++)
        freq[syms[i]]++;
    CHECK_OK(dc_huffman_lengths(freq, nsym, max_len, len));
    int used = 0, longest = 0;
    for (int s = 0; s < nsym; s++) {
        used += freq[s] > 0;
        CHECK((len[s] > 0) == (freq[s] > 0));
        longest = len[s] > longest ? len[s] : longest;
    }
    CHECK(longest <= max_len);
    if (used >= 2)
        CHECK(kraft_units(len, nsym) == 1ull << DC_HUFF_MAX_LEN); /* a complete code */
    struct dc_bitwriter w;
    dc_bitwriter_init(&w);
    CHECK_OK(dc_huffman_encode(len, nsym, syms, n, &w));
    CHECK_OK(dc_bitwriter_flush(&w));
    CHECK(w.bits == dc_huffman_cost(freq, len, nsym));
    CHECK(w.len == (w.bits + 7) / 8);
    struct dc_huff_decoder d;
    CHECK_OK(dc_huffman_decoder_init(&d, len, nsym));
    struct dc_bitreader r;
    dc_bitreader_init(&r, w.buf, w.len);
    CHECK_OK(dc_huffman_decode(&d, &r, n, back));
    CHECK(r.pos == w.bits);
    size_t bad = n;
    for (size_t i = 0; i < n && bad == n; i++)
        if (back[i] != syms[i])
            bad = i;
    if (bad != n)
        fprintf(stderr, "%s: symbol %zu decodes to %u, was %u\n", what, bad, back[bad], syms[bad]);
    CHECK(bad == n);
    /* one symbol more than was written must not decode from the padding alone */
    if (n > 0 && w.len * 8 - w.bits < 1) {
        dc_bitreader_init(&r, w.buf, w.len);
        CHECK(dc_huffman_decode(&d, &r, n + 1, back) != DC_OK);
    }
    uint64_t bits = w.bits;
    dc_huffman_decoder_free(&d);
    dc_bitwriter_free(&w);
    free(freq), free(len), free(back);
    return bits;
}

static double entropy_bits(const uint32_t *syms, size_t n, int nsym)
{
    double *c = calloc((size_t)nsym, sizeof *c), h = 0;
    for (size_t i = 0; i < n; i++)
        c[syms[i]] += 1;
    for (int s = 0; s < nsym; s++)
        if (c[s] > 0)
            h -= c[s] * log2(c[s] / (double)n);
    free(c);
    return h;
}

static void test_random_and_skewed(void)
{
    const int sizes[] = {2, 3, 17, 32, 256, 65536};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int nsym = sizes[k];
        size_t n = 20000 + dc_rng_below(&rng, 5000);
        uint32_t *syms = malloc(sizeof *syms * n);
        for (size_t i = 0; i < n; i++)
            syms[i] = dc_rng_below(&rng, (uint32_t)nsym);
        uint64_t bits = round_trip("uniform", syms, n, nsym, DC_HUFF_MAX_LEN);
        CHECK((double)bits <= entropy_bits(syms, n, nsym) + (double)n);
        /* skewed: geometric, most symbols rare or absent */
        for (size_t i = 0; i < n; i++) {
            uint32_t s = 0;
            while (s + 1 < (uint32_t)nsym && dc_rng_uniform(&rng) < 0.7f)
                s++;
            syms[i] = s;
        }
        bits = round_trip("skewed", syms, n, nsym, DC_HUFF_MAX_LEN);
        double h = entropy_bits(syms, n, nsym);
        CHECK((double)bits >= h - 1e-6 && (double)bits <= h + (double)n);
        free(syms);
    }
}

static void test_degenerate(void)
{
    uint32_t syms[1000];
    for (int i = 0; i < 1000; i++)
        syms[i] = 7;
    CHECK(round_trip("one symbol", syms, 1000, 32, DC_HUFF_MAX_LEN) == 1000);
    CHECK(round_trip("one occurrence", syms, 1, 8, DC_HUFF_MAX_LEN) == 1);
    CHECK(round_trip("empty", syms, 0, 8, DC_HUFF_MAX_LEN) == 0);
    /* a lone code "0": a "1" bit is no code */
    uint8_t len[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    struct dc_huff_decoder d;
    CHECK_OK(dc_huffman_decoder_init(&d, len, 8));
    uint8_t ones = 0xFF;
    struct dc_bitreader r;
    dc_bitreader_init(&r, &ones, 1);
    CHECK(dc_huffman_decode(&d, &r, 1, syms) == DC_ERR_FORMAT);
    dc_huffman_decoder_free(&d);
    /* all frequencies equal: a balanced 8-bit code */
    uint32_t *all = malloc(sizeof *all * 256 * 40);
    for (int i = 0; i < 256 * 40; i++)
        all[i] = (uint32_t)(i % 256);
    CHECK(round_trip("all equal", all, 256 * 40, 256, DC_HUFF_MAX_LEN) == 8ull * 256 * 40);
    free(all);
}

/* Fibonacci counts make the optimal tree a chain as deep as the alphabet. */
static void test_length_limit(void)
{
    enum { NS = 40 };
    uint64_t fib[NS];
    fib[0] = fib[1] = 1;
    for (int i = 2; i < NS; i++)
        fib[i] = fib[i - 1] + fib[i - 2];
    uint8_t len[NS];
    CHECK_OK(dc_huffman_lengths(fib, 30, DC_HUFF_MAX_LEN, len)); /* unlimited depth would be 29 */
    int longest = 0;
    for (int s = 0; s < 30; s++)
        longest = len[s] > longest ? len[s] : longest;
    CHECK(longest == DC_HUFF_MAX_LEN);
    CHECK(kraft_units(len, 30) == 1ull << DC_HUFF_MAX_LEN);
    /* a stream with those proportions (scaled down) under limits 24, 12 and 6 */
    size_t n = 0;
    uint32_t *syms = malloc(sizeof *syms * 300000);
    for (int s = 0; s < 26; s++)
        for (uint64_t k = 0; k < (fib[s] + 1) / 2 && n < 300000; k++)
            syms[n++] = (uint32_t)s;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = dc_rng_below(&rng, (uint32_t)(i + 1));
        uint32_t t = syms[i];
        syms[i] = syms[j], syms[j] = t;
    }
    uint64_t b24 = round_trip("fibonacci 24", syms, n, 26, 24);
    uint64_t b12 = round_trip("fibonacci 12", syms, n, 26, 12);
    uint64_t b6 = round_trip("fibonacci 6", syms, n, 26, 6);
    CHECK(b24 <= b12 && b12 <= b6);
    CHECK(b6 <= 5ull * n); /* never worse than a fixed 5-bit code for 26 symbols */
    /* 40 symbols cannot have codes of at most 5 bits */
    CHECK(dc_huffman_lengths(fib, NS, 5, len) == DC_ERR_ARG);
    free(syms);
}

static void test_bad_tables(void)
{
    uint8_t over[3] = {1, 1, 1}; /* Kraft sum 1.5 */
    uint8_t toolong[2] = {1, DC_HUFF_MAX_LEN + 1};
    struct dc_huff_decoder d;
    CHECK(dc_huffman_decoder_init(&d, over, 3) == DC_ERR_FORMAT);
    CHECK(dc_huffman_decoder_init(&d, toolong, 2) == DC_ERR_FORMAT);
    /* a truncated stream: drop the last byte of a long code stream */
    uint8_t len[4] = {1, 2, 3, 3};
    uint32_t syms[64], back[64];
    for (int i = 0; i < 64; i++)
        syms[i] = 3;
    struct dc_bitwriter w;
    dc_bitwriter_init(&w);
    CHECK_OK(dc_huffman_encode(len, 4, syms, 64, &w));
    CHECK_OK(dc_bitwriter_flush(&w));
    CHECK_OK(dc_huffman_decoder_init(&d, len, 4));
    struct dc_bitreader r;
    dc_bitreader_init(&r, w.buf, w.len - 1);
    CHECK(dc_huffman_decode(&d, &r, 64, back) == DC_ERR_FORMAT);
    CHECK(strstr(dc_error_msg(), "ends after") != NULL);
    dc_huffman_decoder_free(&d);
    dc_bitwriter_free(&w);
    uint32_t bad = 4;
    dc_bitwriter_init(&w);
    CHECK(dc_huffman_encode(len, 4, &bad, 1, &w) == DC_ERR_ARG);
    dc_bitwriter_free(&w);
}

static void test_fixed_width(void)
{
    for (int width = 1; width <= 32; width++) {
        uint32_t v[333], back[333];
        struct dc_bitwriter w;
        dc_bitwriter_init(&w);
        for (int i = 0; i < 333; i++) {
            v[i] = (uint32_t)dc_rng_next(&rng) & (width == 32 ? 0xFFFFFFFFu : (1u << width) - 1);
            CHECK_OK(dc_bitwriter_put(&w, v[i], width));
        }
        CHECK_OK(dc_bitwriter_flush(&w));
        CHECK(w.len == (333u * (unsigned)width + 7) / 8);
        struct dc_bitreader r;
        dc_bitreader_init(&r, w.buf, w.len);
        int ok = 1;
        for (int i = 0; i < 333; i++)
            ok &= dc_bitreader_get(&r, width, &back[i]) && back[i] == v[i];
        CHECK(ok);
        CHECK(r.nbits - r.pos < 8);
        CHECK(!dc_bitreader_get(&r, 8, &back[0])); /* past the end */
        dc_bitwriter_free(&w);
    }
}

int main(void)
{
    dc_rng_seed(&rng, 12345);
    test_random_and_skewed();
    test_degenerate();
    test_length_limit();
    test_bad_tables();
    test_fixed_width();
    return test_finish("test_huffman");
}
