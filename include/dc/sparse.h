/* sparse.h: relative sparse index (Han et al. 2016, Fig. 2).  The positions
 * of the surviving weights of a flattened tensor are stored as gaps of a fixed
 * width b (index_bits), with filler entries when a gap does not fit.
 *
 * The exact rule, with F = 2^b - 1 and prev = -1 before the first weight:
 *   - an entry g in 0..F-1 is a weight at position prev + 1 + g (g zeros were
 *     skipped); prev becomes that position;
 *   - the entry g = F is a filler: F zeros are skipped and no weight is
 *     stored (prev += F), so the value stream only has real weights;
 *   - a run of z zeros before a weight is coded as z / F fillers then z % F;
 *     zeros after the last weight are not coded (the tensor size is known).
 * Unlike the paper's filler, which stores a zero weight that costs a value
 * slot, ours costs one gap symbol and nothing in the value stream. */
#ifndef DC_SPARSE_H
#define DC_SPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "dc/status.h"

#define DC_INDEX_BITS_MAX 16

/* Entries (real + filler) that positions pos[0..kept) (strictly increasing) need. */
size_t dc_gap_entries(const uint32_t *pos, size_t kept, int index_bits);
/* Write the gap symbols of pos[0..kept) into gaps[dc_gap_entries(...)]. */
enum dc_status dc_gap_encode(const uint32_t *pos, size_t kept, int index_bits, uint32_t *gaps,
                             size_t *entries);
/* Positions from gaps[0..entries): fails on a symbol >= 2^index_bits, a
 * position >= n, more than `kept` weights, fewer than `kept`, or a filler
 * after the last weight. */
enum dc_status dc_gap_decode(const uint32_t *gaps, size_t entries, int index_bits, size_t n,
                             uint32_t *pos, size_t kept);
/* Positions where mask[i] != 0 (host mask [n]) into pos; returns the count. */
size_t dc_gap_positions(const float *mask, size_t n, uint32_t *pos);

#endif
