/* gapcode.c: the relative sparse index of the model file (rule in sparse.h):
 * positions of surviving weights as fixed-width gaps with filler entries. */
#include "dc/sparse.h"

size_t dc_gap_entries(const uint32_t *pos, size_t kept, int index_bits)
{
    uint64_t fill = (1ull << index_bits) - 1, prev = (uint64_t)-1, entries = 0;
    for (size_t i = 0; i < kept; i++) {
        uint64_t zeros = (uint64_t)pos[i] - (prev + 1);
        entries += zeros / fill + 1;
        prev = pos[i];
    }
    return (size_t)entries;
}

enum dc_status dc_gap_encode(const uint32_t *pos, size_t kept, int index_bits, uint32_t *gaps,
                             size_t *entries)
{
    if (index_bits < 1 || index_bits > DC_INDEX_BITS_MAX)
        return DC_ERROR(DC_ERR_ARG, "gap coding: index width %d outside 1..%d", index_bits, DC_INDEX_BITS_MAX);
    uint64_t fill = (1ull << index_bits) - 1, prev = (uint64_t)-1;
    size_t e = 0;
    for (size_t i = 0; i < kept; i++) {
        if (i > 0 && pos[i] <= pos[i - 1])
            return DC_ERROR(DC_ERR_ARG, "gap coding: positions not increasing at %zu (%u after %u)", i,
                            pos[i], pos[i - 1]);
        uint64_t zeros = (uint64_t)pos[i] - (prev + 1);
        for (; zeros >= fill; zeros -= fill)
            gaps[e++] = (uint32_t)fill;
        gaps[e++] = (uint32_t)zeros;
        prev = pos[i];
    }
    *entries = e;
    return DC_OK;
}

enum dc_status dc_gap_decode(const uint32_t *gaps, size_t entries, int index_bits, size_t n,
                             uint32_t *pos, size_t kept)
{
    if (index_bits < 1 || index_bits > DC_INDEX_BITS_MAX)
        return DC_ERROR(DC_ERR_FORMAT, "gap coding: index width %d outside 1..%d", index_bits, DC_INDEX_BITS_MAX);
    uint64_t fill = (1ull << index_bits) - 1, next = 0; /* next = prev + 1 */
    size_t k = 0;
    for (size_t e = 0; e < entries; e++) {
        uint64_t g = gaps[e];
        if (g > fill)
            return DC_ERROR(DC_ERR_FORMAT, "gap coding: entry %zu is %llu, beyond the %d-bit range", e,
                            (unsigned long long)g, index_bits);
        if (g == fill) {
            next += fill;
            if (e + 1 == entries)
                return DC_ERROR(DC_ERR_FORMAT, "gap coding: stream ends with a filler entry");
            continue;
        }
        uint64_t p = next + g;
        if (p >= n)
            return DC_ERROR(DC_ERR_FORMAT, "gap coding: entry %zu points at %llu, past the %zu weights", e,
                            (unsigned long long)p, n);
        if (k == kept)
            return DC_ERROR(DC_ERR_FORMAT, "gap coding: more than the %zu weights announced", kept);
        pos[k++] = (uint32_t)p;
        next = p + 1;
    }
    if (k != kept)
        return DC_ERROR(DC_ERR_FORMAT, "gap coding: %zu weights decoded, %zu announced", k, kept);
    return DC_OK;
}

size_t dc_gap_positions(const float *mask, size_t n, uint32_t *pos)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (mask[i] != 0.0f)
            pos[k++] = (uint32_t)i;
    return k;
}
