/* spmat.h: a weight matrix in an executable compressed layout, the form a
 * pruned or quantized layer runs from (Han et al. 2016, Appendix A: CSR as
 * MKL and cuSPARSE take it; and the shared-weight form the paper left as
 * future work).  A layer whose dc_param carries one runs its forward through
 * the backend's spmat_fc / spmat_conv ops instead of its dense weight.
 *
 * Legend: M rows (fc outputs, conv filters), K columns (fc inputs, conv
 * C*R*S), N right-hand columns (batch for fc), E stored entries.
 *
 * Layouts (all arrays are backend memory):
 *   dense     values [M,K] row-major.
 *   csr       rowptr [M+1] int32 into colidx [nnz] int32 and values [nnz] float,
 *             columns increasing within a row.
 *   codebook  rowptr [M+1] int32 into gaps [E] and codes [E] (uint8 each) and
 *             codebook [256] float.  Within a row, with prev = -1 before the
 *             first entry, an entry with gap g < 255 is the weight
 *             codebook[code] at column prev + 1 + g (prev becomes it); g = 255
 *             is a filler: prev += 255 and no weight (its code is 0).  No row
 *             ends with a filler.  2 bytes per entry, fillers are rare above
 *             about 1% density (mean gap < 100).
 *   codebook, sliced (slices > 0; the CPU backend's layout after prepare):
 *             rows sorted by entry count, longest first, and dealt out in
 *             slices of 8; lane l of slice s is row perm[8s+l] (-1: no row).
 *             rowptr [slices+1] counts groups of 8 entries: group k of slice
 *             s (rowptr[s] <= k < rowptr[s+1]) holds entry k - rowptr[s] of
 *             each lane at gaps[8k+l], codes[8k+l], same meaning as above;
 *             lanes shorter than the slice end in fillers, which may step
 *             past the last column (their weight is zero: read x[min(c, K-1)]).
 *             A batch-1 product then moves 8 rows through vector lanes at
 *             once, with no running sum across lanes.
 *   codebook, sliced and paired (pairs != NULL; the CPU, for 17..32 codes
 *             and many entries): as sliced, but the 8 codes of a group are
 *             stored as 4 uint16 p = code[2i] | code[2i+1] << 5 in the same
 *             8 bytes, and pairs[p] holds (codebook[p & 31], codebook[p >> 5]):
 *             one 64-bit load fetches two weights.
 *
 * Epilogue, every format: out[r] = acc[r] * scale[r] + shift[r], each of
 * scale and shift optional (NULL: 1 and 0).  shift carries the layer's bias
 * and a folded batch norm; scale a folded batch norm (in the codebook form
 * it keeps one codebook for the whole layer). */
#ifndef DC_SPMAT_H
#define DC_SPMAT_H

#include <stddef.h>
#include <stdint.h>

#include "dc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

enum dc_spmat_format { DC_FORMAT_DENSE = 0, DC_FORMAT_CSR = 1, DC_FORMAT_CODEBOOK = 2, DC_FORMAT_COUNT };

#define DC_SPMAT_FILLER 255 /* codebook form: the gap value of a filler entry */
#define DC_SPMAT_PAIRS 1024 /* entries of the paired form's table (two 5-bit codes) */

struct dc_spmat {
    enum dc_spmat_format format;
    int rows, cols;          /* M, K */
    int64_t nnz;             /* weights kept (dense: M*K) */
    int64_t entries;         /* codebook: E = nnz + fillers; csr: nnz; dense: M*K */
    int32_t *rowptr;         /* csr, codebook: [M+1] */
    int32_t *colidx;         /* csr: [nnz] */
    float *values;           /* csr: [nnz]; dense: [M*K] */
    uint8_t *gaps;           /* codebook: [E] */
    uint8_t *codes;          /* codebook: [E] */
    float *codebook;         /* codebook: [256], entries m..255 zero */
    int m;                   /* codebook entries in use (1..256) */
    int slices;              /* codebook, sliced: ceil(M/8); 0 for the row layout */
    int32_t *perm;           /* codebook, sliced: [8*slices] row of each lane, -1 for none */
    float *pairs;            /* codebook, sliced, paired (CPU, 17..32 codes): [1024][2], or NULL */
    float *scale;            /* [M] or NULL */
    float *shift;            /* [M] or NULL */
    int max_n;               /* most right-hand columns (batch) a product may use */
    void *impl;              /* backend-private state (cuSPARSE descriptors and buffers), NULL on the CPU */
};

/* A matrix as the model file gives it (host memory): the kept weights at
 * increasing row-major positions, with either float values or codebook
 * codes (then codebook [m] too). */
struct dc_spmat_src {
    int rows, cols;
    int64_t nnz;
    const uint32_t *pos;      /* [nnz] flat positions r*K + c, strictly increasing */
    const float *values;      /* [nnz], or NULL when codes are given */
    const uint8_t *codes;     /* [nnz], or NULL */
    const float *codebook;    /* [m] when codes are given */
    int m;
};

const char *dc_spmat_format_name(enum dc_spmat_format f);
/* "dense", "csr", "codebook" -> format; -1 when unknown */
int dc_spmat_format_parse(const char *s);

struct dc_backend;

/* Build A in format f on be from src (host memory) for products of up to
 * max_n right-hand columns, and prepare the backend's state for it.  The
 * codebook format needs codes and cols <= 2^31 - 1; csr and dense take values
 * or codes (then codebook[code]).  Errors name what is wrong with src. */
enum dc_status dc_spmat_create(struct dc_backend *be, enum dc_spmat_format f, const struct dc_spmat_src *src,
                               int max_n, struct dc_spmat **out);
/* Upload the epilogue: host arrays [M], either may be NULL (replaces what was there). */
enum dc_status dc_spmat_set_epilogue(struct dc_backend *be, struct dc_spmat *a, const float *scale,
                                     const float *shift);
void dc_spmat_free(struct dc_backend *be, struct dc_spmat *a);

/* Resident bytes of the weight arrays (rowptr, indices, values, codes,
 * codebook; scale and shift are not counted: they replace the bias). */
size_t dc_spmat_bytes(const struct dc_spmat *a);

#ifdef __cplusplus
}
#endif
#endif
