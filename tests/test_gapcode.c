/* test_gapcode.c: the relative sparse index (rule in sparse.h) round trips
 * at index widths 1..16 on random masks of several densities and on gaps that
 * land exactly on, just below and just above multiples of the filler span; a
 * hand-worked example pins the exact symbols; damaged streams are rejected. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dc/rng.h"
#include "dc/sparse.h"

static struct dc_rng rng;

static void round_trip(const uint32_t *pos, size_t kept, size_t n, int bits)
{
    size_t want = dc_gap_entries(pos, kept, bits), entries = 0;
    uint32_t *gaps = malloc(sizeof *gaps * (want ? want : 1));
    uint32_t *back = malloc(sizeof *back * (kept ? kept : 1));
    CHECK_OK(dc_gap_encode(pos, kept, bits, gaps, &entries));
    CHECK(entries == want);
    size_t fillers = 0;
    for (size_t e = 0; e < entries; e++) {
        CHECK(gaps[e] < (1u << bits));
        fillers += gaps[e] == (1u << bits) - 1;
    }
    CHECK(entries == kept + fillers);
    CHECK_OK(dc_gap_decode(gaps, entries, bits, n, back, kept));
    CHECK(kept == 0 || memcmp(pos, back, sizeof *pos * kept) == 0);
    free(gaps);
    free(back);
}

static void test_random_masks(void)
{
    const double density[] = {0.0005, 0.01, 0.08, 0.5, 1.0};
    size_t n = 50000;
    float *mask = malloc(sizeof *mask * n);
    uint32_t *pos = malloc(sizeof *pos * n);
    for (int bits = 1; bits <= 16; bits++) {
        for (size_t d = 0; d < sizeof density / sizeof density[0]; d++) {
            for (size_t i = 0; i < n; i++)
                mask[i] = dc_rng_uniform(&rng) < density[d] ? 1.0f : 0.0f;
            size_t kept = dc_gap_positions(mask, n, pos);
            round_trip(pos, kept, n, bits);
        }
    }
    free(mask);
    free(pos);
}

/* Zero runs of k*F - 1, k*F and k*F + 1 before each weight, with the first and last position used. */
static void test_boundary_gaps(void)
{
    for (int bits = 1; bits <= 12; bits++) {
        uint32_t fill = (1u << bits) - 1, pos[64];
        size_t kept = 0;
        uint64_t p = 0;
        pos[kept++] = 0;
        for (uint32_t k = 1; k <= 4; k++)
            for (int d = -1; d <= 1; d++) {
                p += (uint64_t)k * fill + (uint64_t)(int64_t)d + 1;
                pos[kept++] = (uint32_t)p;
            }
        size_t n = p + 1;
        round_trip(pos, kept, n, bits);
        round_trip(pos, kept, n + 1000, bits); /* trailing zeros are not coded */
    }
    round_trip(NULL, 0, 10, 4); /* nothing kept */
}

static void test_worked_example(void)
{
    /* 2-bit gaps, F = 3: 0 -> [0]; 3 zeros then 4 -> [3, 0]; 6 zeros then 11 -> [3, 3, 0]; 12 -> [0] */
    const uint32_t pos[4] = {0, 4, 11, 12};
    const uint32_t want[7] = {0, 3, 0, 3, 3, 0, 0};
    uint32_t gaps[7], back[4];
    size_t entries;
    CHECK(dc_gap_entries(pos, 4, 2) == 7);
    CHECK_OK(dc_gap_encode(pos, 4, 2, gaps, &entries));
    CHECK(entries == 7 && memcmp(gaps, want, sizeof want) == 0);
    CHECK_OK(dc_gap_decode(gaps, 7, 2, 13, back, 4));
    CHECK(memcmp(back, pos, sizeof pos) == 0);
    /* damaged streams */
    CHECK(dc_gap_decode(gaps, 7, 2, 12, back, 4) == DC_ERR_FORMAT);  /* 12 is past 12 weights */
    CHECK(dc_gap_decode(gaps, 7, 2, 13, back, 3) == DC_ERR_FORMAT);  /* more weights than announced */
    CHECK(dc_gap_decode(gaps, 6, 2, 13, back, 4) == DC_ERR_FORMAT);  /* fewer */
    CHECK(dc_gap_decode(gaps, 5, 2, 13, back, 2) == DC_ERR_FORMAT);  /* ends with a filler */
    uint32_t big[1] = {4};
    CHECK(dc_gap_decode(big, 1, 2, 13, back, 1) == DC_ERR_FORMAT);   /* symbol beyond 2 bits */
    const uint32_t unsorted[2] = {5, 5};
    CHECK(dc_gap_encode(unsorted, 2, 2, gaps, &entries) == DC_ERR_ARG);
    CHECK(dc_gap_encode(pos, 4, 0, gaps, &entries) == DC_ERR_ARG);
}

int main(void)
{
    dc_rng_seed(&rng, 777);
    test_random_masks();
    test_boundary_gaps();
    test_worked_example();
    return test_finish("test_gapcode");
}
