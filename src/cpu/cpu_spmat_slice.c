/* cpu_spmat_slice.c: the CPU's layout of the codebook form, slices of 8 rows
 * (spmat.h).  A row's column positions are a running sum of its gaps; with 8
 * rows in the 8 lanes of a vector that sum is one vector add per group,
 * where a single row needs a prefix sum across lanes and a carry between
 * groups, which cost more than the bytes they save (measured on Zen 3:
 * 0.7-0.9 ns per weight sliced, 0.9-1.1 row by row).  Sorting the rows by
 * length first keeps the fillers that pad a slice to its longest row few.
 *
 * With 17..32 codes the AVX2 lookup takes four permutes and three blends per
 * 8 weights; the paired form (spmat.h) fetches two weights with one 64-bit
 * load from an 8 KiB table instead (Zen 3, AlexNet FC7 at batch 1: 16% less
 * time).  Only for matrices large enough that the table is small beside them. */
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_internal.h"

#define DC_SPMAT_PAIR_MIN_ENTRIES (1 << 15)

struct dc_row_len {
    int32_t row, len;
};

/* longest first; equal lengths in row order, so the layout is reproducible */
static int dc_row_len_cmp(const void *pa, const void *pb)
{
    const struct dc_row_len *a = pa, *b = pb;
    if (a->len != b->len)
        return a->len > b->len ? -1 : 1;
    return (a->row > b->row) - (a->row < b->row);
}

enum dc_status dc_cpu_spmat_slice(struct dc_backend *be, struct dc_spmat *a)
{
    const int m = a->rows, slices = (m + 7) / 8;
    struct dc_row_len *order = malloc((size_t)m * sizeof *order);
    if (!order)
        return DC_ERROR(DC_ERR_NOMEM, "no memory to slice a %d-row codebook matrix", m);
    for (int r = 0; r < m; r++)
        order[r] = (struct dc_row_len){r, a->rowptr[r + 1] - a->rowptr[r]};
    qsort(order, (size_t)m, sizeof *order, dc_row_len_cmp);
    int64_t groups = 0;
    for (int s = 0; s < slices; s++)
        groups += order[8 * s].len; /* the slice's longest row */
    if (groups > INT32_MAX / 8) {
        free(order);
        return DC_ERROR(DC_ERR_ARG, "codebook matrix: %lld sliced entries do not fit int32 offsets",
                        (long long)groups * 8);
    }
    int32_t *sptr = NULL, *perm = NULL;
    uint8_t *gaps = NULL, *codes = NULL;
    size_t e = (size_t)groups * 8;
    enum dc_status st = be->ops.alloc(be, (void **)&sptr, ((size_t)slices + 1) * sizeof *sptr);
    if (st == DC_OK)
        st = be->ops.alloc(be, (void **)&perm, (size_t)slices * 8 * sizeof *perm);
    if (st == DC_OK)
        st = be->ops.alloc(be, (void **)&gaps, e ? e : 1);
    if (st == DC_OK)
        st = be->ops.alloc(be, (void **)&codes, e ? e : 1);
    if (st != DC_OK) {
        void *p[] = {sptr, perm, gaps, codes};
        for (int i = 0; i < 4; i++)
            if (p[i])
                be->ops.release(be, p[i]);
        free(order);
        return st;
    }
    memset(gaps, DC_SPMAT_FILLER, e); /* padding: fillers with code 0 */
    memset(codes, 0, e);
    sptr[0] = 0;
    for (int s = 0; s < slices; s++) {
        int32_t k0 = sptr[s];
        sptr[s + 1] = k0 + order[8 * s].len;
        for (int l = 0; l < 8; l++) {
            int i = 8 * s + l;
            perm[i] = i < m ? order[i].row : -1;
            if (i >= m)
                continue;
            int32_t j0 = a->rowptr[order[i].row];
            for (int32_t k = 0; k < order[i].len; k++) {
                gaps[(size_t)(k0 + k) * 8 + l] = a->gaps[j0 + k];
                codes[(size_t)(k0 + k) * 8 + l] = a->codes[j0 + k];
            }
        }
    }
    free(order);
    if (a->m > 16 && a->m <= 32 && e >= DC_SPMAT_PAIR_MIN_ENTRIES) {
        float *pairs = NULL;
        if (be->ops.alloc(be, (void **)&pairs, 2 * DC_SPMAT_PAIRS * sizeof *pairs) == DC_OK) {
            for (int p = 0; p < DC_SPMAT_PAIRS; p++)
                pairs[2 * p] = a->codebook[p & 31], pairs[2 * p + 1] = a->codebook[p >> 5];
            for (size_t i = 0; i < e; i += 2) { /* a uint16 in place of the two code bytes */
                uint16_t v = (uint16_t)(codes[i] | codes[i + 1] << 5);
                memcpy(codes + i, &v, sizeof v);
            }
            a->pairs = pairs;
        } /* without the table the plain sliced form serves */
    }
    be->ops.release(be, a->rowptr);
    be->ops.release(be, a->gaps);
    be->ops.release(be, a->codes);
    a->rowptr = sptr, a->perm = perm, a->gaps = gaps, a->codes = codes;
    a->slices = slices;
    a->entries = (int64_t)e;
    return DC_OK;
}

/* Slices [s0, s1) for part t of nt, split by groups of entries: the slices
 * are sorted longest first, so equal slice counts would load the first
 * thread most. */
void dc_cpu_spmat_slice_range(const struct dc_spmat *a, int t, int nt, int *s0, int *s1)
{
    int bounds[2];
    for (int b = 0; b < 2; b++) {
        int64_t target = (int64_t)a->rowptr[a->slices] * (t + b) / nt;
        int lo = 0, hi = a->slices; /* first slice starting at or after target */
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            if (a->rowptr[mid] < target)
                lo = mid + 1;
            else
                hi = mid;
        }
        bounds[b] = t + b == nt ? a->slices : lo;
    }
    *s0 = bounds[0], *s1 = bounds[1];
}
