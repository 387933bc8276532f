/* spmat_bench.h: what bench_spmat.c (each layer alone) and spmat_chain.c
 * (the layers of a network in turn) share: the layers of Table 8, the random
 * quantized matrices, the double-precision reference and the check. */
#ifndef DC_BENCH_SPMAT_H
#define DC_BENCH_SPMAT_H

#include <stdint.h>
#include <stdio.h>

#include "dc/backend.h"
#include "dc/spmat.h"

#define BS_MAX_BATCHES 8
#define BS_MIN_REPEAT 5
#define BS_MAX_REPEAT 100000
#define BS_METHODS 4 /* openblas, dense, csr, codebook */
#define BS_FLUSH_BYTES ((size_t)64 << 20) /* twice this machine's L3 */

/* One layer of Table 8. */
struct bs_layer {
    const char *name;
    int m, k;      /* outputs, inputs */
    float density; /* fraction of weights kept */
    int bits;      /* codebook bits of the kept weights */
};

struct bs_opts {
    int threads, nbatch, batches[BS_MAX_BATCHES];
    const char *device, *out, *dump, *layers;
    double seconds; /* target timed time per cell */
    int flush;      /* evict the caches before each timed call */
    int chain;      /* the layers of each network in turn (spmat_chain.c) */
    uint64_t seed;
};

/* One kept weight matrix on the host, quantized. */
struct bs_mat {
    int m, k;
    int64_t nnz;
    uint32_t *pos;      /* [E] flat r*K + c, increasing */
    uint8_t *codes;     /* [E] */
    float *values;      /* [E] codebook[codes] */
    float codebook[256];
    int ncode;
    float *dense;       /* [M,K], zeros where pruned */
};

/* One way of computing y = x A^T: a backend form, or direct OpenBLAS. */
struct bs_method {
    const char *name;
    struct dc_spmat *a; /* NULL: direct OpenBLAS on host memory */
    const float *dense; /* direct OpenBLAS: A on the host */
    size_t bytes;
};

extern const struct bs_layer bs_layers[];
extern const int bs_nlayers;

enum dc_status bs_mat_make(const struct bs_layer *l, uint64_t seed, struct bs_mat *w);
void bs_mat_free(struct bs_mat *w);
void bs_reference(const struct bs_mat *w, int n, const float *x, double *ref);
int bs_check(const char *layer, const char *method, int n, int m, const double *ref, const float *got);
enum dc_status bs_call(struct dc_backend *be, const struct bs_mat *w, const struct bs_method *me, int n,
                       const float *x, float *y);
/* me [BS_METHODS]: direct OpenBLAS (on the CPU), then the dense, csr and
 * codebook forms of w on be; *n counts those made, also on an error */
enum dc_status bs_methods_make(struct dc_backend *be, const struct bs_mat *w, int maxn, struct bs_method *me,
                               int *n);
/* y = x A^T through me at batch n against ref; hy [n*M] host room */
enum dc_status bs_verify(struct dc_backend *be, const struct bs_layer *l, const struct bs_mat *w,
                         const struct bs_method *me, int n, const float *x, float *y, const double *ref, float *hy);
int bs_cmp_double(const void *a, const void *b);
/* the median of t [n] (reorders t) */
double bs_median(double *t, int n);
/* --chain: the fc layers of each network in turn (spmat_chain.c) */
enum dc_status bs_chain_run(struct dc_backend *be, const struct bs_opts *o, FILE *tsv);

#endif
