/* cpu_spmat_kernels.c: the inner loops of compressed inference on the CPU,
 * over a range of rows (or slices) so the caller decides the threading.
 * Built for the host's own vector width (-march=native, see CMakeLists.txt):
 * portable loops written for the compiler to vectorise, and AVX2 paths for
 * batch 1 where the compiler cannot (gathers, the codebook decode).
 *
 * Batch 1 (SpMV) reads each weight once: 8 bytes in csr, 2 in the codebook
 * form, whose codebook stays in L1 (or in registers up to 32 entries).
 * Several accumulators hide the add latency (C11 does not let the compiler
 * reassociate a single sum).  The codebook form runs in the CPU's sliced
 * layout, 8 rows in the 8 lanes (cpu_spmat_slice.c); a filler is a zero
 * weight at a clamped, in-bounds column, so it needs no branch.
 *
 * Batch N (SpMM): each weight is decoded once per tile of 64 right-hand
 * columns, whose accumulators stay in eight vector registers.
 *
 * Legend: M rows, K columns of A; B [K, ldb] and out [M, ldo] row-major. */

#include <string.h>

#include "cpu/cpu_internal.h"

static inline float dc_spmat_epilogue(const struct dc_spmat *a, int r, float acc)
{
    if (a->scale)
        acc *= a->scale[r];
    if (a->shift)
        acc += a->shift[r];
    return acc;
}

/* The weight of codebook-form entry j; in the paired form entries 2i and
 * 2i+1 share a uint16 code pair, and the pair table holds both weights. */
static inline float dc_cb_weight(const struct dc_spmat *a, int64_t j)
{
    if (!a->pairs)
        return a->codebook[a->codes[j]];
    uint16_t p;
    memcpy(&p, a->codes + (j & ~(int64_t)1), sizeof p);
    return a->pairs[2 * (size_t)p + (size_t)(j & 1)];
}

/* Increment of the column and weight of one codebook-form entry. */
static inline int dc_cb_step(const struct dc_spmat *a, int64_t j, float *w)
{
    unsigned g = a->gaps[j];
    int filler = g == DC_SPMAT_FILLER;
    *w = filler ? 0.0f : dc_cb_weight(a, j);
    return filler ? DC_SPMAT_FILLER : (int)g + 1;
}

#if defined(__AVX2__) && defined(__FMA__)
/* With AVX2 the gathers of x (and of the codebook) run eight at a time; the
 * codebook form's column positions, a running sum of the gaps, come from an
 * in-register prefix sum of eight increments.  Same arithmetic as the
 * portable loops below, in another order. */
#include <immintrin.h>

static inline float dc_hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Two indices c[0], c[1] from one 64-bit load, into a general register. */
static inline uint64_t dc_load_pair(const int32_t *c)
{
    uint64_t p;
    memcpy(&p, c, sizeof p);
    return p;
}

/* x[c[0..8)] as a vector from eight scalar loads: on the AMD cores we
 * measured, vgatherdps costs about 1.5 cycles per element (Zen 4: 0.37 ns
 * per weight against 0.23 here), scalar loads and inserts half that.  The
 * indices (never negative) come in pairs from 64-bit loads, split in general
 * registers (a shift, a move): half the loads, and otherwise idle ALUs (Zen
 * 3: 7-12% less time per weight in the codebook kernel; Zen 4, csr: 0.23 ns
 * per weight against 0.27-0.33 with one load per index).  Four loads of a
 * pair each, not one memcpy of all eight: GCC 12 turned that into two
 * 16-byte vector loads stored to the stack and read back in halves, a
 * store-to-load forward that Zen 3 stalls on (csr on AlexNet FC7 at batch 1
 * took 1.7x as long). */
static inline __m256 dc_load8_pairs(const float *x, const int32_t *c)
{
    uint64_t p0 = dc_load_pair(c), p1 = dc_load_pair(c + 2), p2 = dc_load_pair(c + 4), p3 = dc_load_pair(c + 6);
    __m128 lo = _mm_set_ps(x[p1 >> 32], x[(uint32_t)p1], x[p0 >> 32], x[(uint32_t)p0]);
    __m128 hi = _mm_set_ps(x[p3 >> 32], x[(uint32_t)p3], x[p2 >> 32], x[(uint32_t)p2]);
    return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
}

static float dc_csr_row_dot(const struct dc_spmat *a, int r, const float *x)
{
    const int32_t *ci = a->colidx;
    const float *v = a->values;
    int64_t j = a->rowptr[r], end = a->rowptr[r + 1];
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (; j + 16 <= end; j += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(v + j), dc_load8_pairs(x, ci + j), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(v + j + 8), dc_load8_pairs(x, ci + j + 8), acc1);
    }
    float s = dc_hsum8(_mm256_add_ps(acc0, acc1));
    for (; j < end; j++)
        s += v[j] * x[ci[j]];
    return s;
}

/* codebook[code] for eight codes: up to 32 entries live in nreg (1, 2 or 4)
 * registers (a permute each, then blends on code bits 3 and 4); with nreg 0
 * they are gathered.  nreg is a constant at every call, so each variant of
 * the slice loop below compiles without these branches. */
static inline __attribute__((always_inline)) __m256 dc_cb_lookup(int nreg, const __m256 *q, const float *cb,
                                                                 __m256i code)
{
    if (nreg == 0)
        return _mm256_i32gather_ps(cb, code, 4);
#ifdef __AVX512VL__
    /* two-table permutes: 16 entries in one, 32 in two and a masked blend
     * on code bit 4 (measured on Zen 4: 6% less time per weight at 32) */
    if (nreg == 1)
        return _mm256_permutevar8x32_ps(q[0], code);
    __m256 lo = _mm256_permutex2var_ps(q[0], code, q[1]);
    if (nreg == 2)
        return lo;
    return _mm256_mask_blend_ps(_mm256_test_epi32_mask(code, _mm256_set1_epi32(16)), lo,
                                _mm256_permutex2var_ps(q[2], code, q[3]));
#else
    __m256 lo = _mm256_permutevar8x32_ps(q[0], code);
    if (nreg == 1)
        return lo;
    __m256 b3 = _mm256_castsi256_ps(_mm256_slli_epi32(code, 28)); /* bit 3 to the sign */
    lo = _mm256_blendv_ps(lo, _mm256_permutevar8x32_ps(q[1], code), b3);
    if (nreg == 2)
        return lo;
    __m256 hi = _mm256_blendv_ps(_mm256_permutevar8x32_ps(q[2], code), _mm256_permutevar8x32_ps(q[3], code), b3);
    return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(code, 27)));
#endif
}

/* The 8 weights of a group of the paired form: four 64-bit loads of two
 * from the table, indexed by the group's four uint16 code pairs. */
static inline __m256 dc_cb_pairs8(const float *pairs, const uint8_t *cp)
{
    uint64_t v;
    memcpy(&v, cp, sizeof v);
    const double *t = (const double *)(const void *)pairs;
    __m128d lo = _mm_loadh_pd(_mm_load_sd(t + (v & 0xFFFF)), t + ((v >> 16) & 0xFFFF));
    __m128d hi = _mm_loadh_pd(_mm_load_sd(t + ((v >> 32) & 0xFFFF)), t + (v >> 48));
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_castpd_ps(lo)), _mm_castpd_ps(hi), 1);
}

/* acc[l] = row perm[8s+l] of A times x, the 8 rows of slice s in the 8
 * lanes.  Chunks of up to DC_CB_CHUNK groups: first the clamped columns and
 * the weights go to buffers, then x is read with scalar loads as in csr
 * (vgatherdps costs more on the AMD cores we measured).  A chunk is long
 * enough that the loads do not follow right on the stores they read, short
 * enough that one chunk's loads overlap the next one's decoding in the
 * out-of-order window: on Zen 4, 16 groups took 0.33-0.36 ns per weight, 32
 * 0.35-0.37, 64 (our earlier choice, from Zen 3) 0.37-0.40. */
#define DC_CB_CHUNK 16
#define DC_CB_PAIRED 5 /* nreg for the paired form: weights from the pair table */
static inline __attribute__((always_inline)) __m256 dc_cb_slice_dot_n(const struct dc_spmat *a, int s,
                                                                     const float *x, int nreg)
{
    const float *cb = a->codebook;
    __m256 q[4];
    const int nq = nreg == DC_CB_PAIRED ? 0 : nreg; /* the paired form reads its table instead */
    for (int i = 0; i < nq; i++)
        q[i] = _mm256_loadu_ps(cb + 8 * i); /* the codebook array holds 256 entries */
    const __m256i one = _mm256_set1_epi32(1), filler = _mm256_set1_epi32(DC_SPMAT_FILLER);
    const __m256i kmax = _mm256_set1_epi32(a->cols - 1);
    __m256i col = _mm256_set1_epi32(-1);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int32_t cols[8 * DC_CB_CHUNK] __attribute__((aligned(32)));
    __m256 ws[DC_CB_CHUNK];
    for (int64_t k = a->rowptr[s], end = a->rowptr[s + 1]; k < end;) {
        int n = (int)(end - k < DC_CB_CHUNK ? end - k : DC_CB_CHUNK);
        for (int i = 0; i < n; i++) {
            const uint8_t *gp = a->gaps + 8 * (k + i), *cp = a->codes + 8 * (k + i);
            __m256i g = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)gp));
            __m256i isf = _mm256_cmpeq_epi32(g, filler); /* -1 on fillers: step 255, weight 0 */
            col = _mm256_add_epi32(col, _mm256_add_epi32(_mm256_add_epi32(g, one), isf));
            _mm256_storeu_si256((__m256i *)(cols + 8 * i), _mm256_min_epi32(col, kmax));
            __m256 w = nreg == DC_CB_PAIRED
                           ? dc_cb_pairs8(a->pairs, cp)
                           : dc_cb_lookup(nreg, q, cb, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)cp)));
            ws[i] = _mm256_andnot_ps(_mm256_castsi256_ps(isf), w);
        }
        int i = 0;
        for (; i + 2 <= n; i += 2) {
            acc0 = _mm256_fmadd_ps(ws[i], dc_load8_pairs(x, cols + 8 * i), acc0);
            acc1 = _mm256_fmadd_ps(ws[i + 1], dc_load8_pairs(x, cols + 8 * i + 8), acc1);
        }
        if (i < n)
            acc0 = _mm256_fmadd_ps(ws[i], dc_load8_pairs(x, cols + 8 * i), acc0);
        k += n;
    }
    return _mm256_add_ps(acc0, acc1);
}

static void dc_cb_slice_dot(const struct dc_spmat *a, int s, const float *x, float *acc)
{
    __m256 v = a->pairs     ? dc_cb_slice_dot_n(a, s, x, DC_CB_PAIRED)
               : a->m <= 8  ? dc_cb_slice_dot_n(a, s, x, 1)
               : a->m <= 16 ? dc_cb_slice_dot_n(a, s, x, 2)
               : a->m <= 32 ? dc_cb_slice_dot_n(a, s, x, 4)
                            : dc_cb_slice_dot_n(a, s, x, 0);
    _mm256_storeu_ps(acc, v);
}
#else
static float dc_csr_row_dot(const struct dc_spmat *a, int r, const float *x)
{
    const int32_t *ci = a->colidx;
    const float *v = a->values;
    int64_t j = a->rowptr[r], end = a->rowptr[r + 1];
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    for (; j + 4 <= end; j += 4) {
        s0 += v[j] * x[ci[j]];
        s1 += v[j + 1] * x[ci[j + 1]];
        s2 += v[j + 2] * x[ci[j + 2]];
        s3 += v[j + 3] * x[ci[j + 3]];
    }
    for (; j < end; j++)
        s0 += v[j] * x[ci[j]];
    return (s0 + s1) + (s2 + s3);
}

static void dc_cb_slice_dot(const struct dc_spmat *a, int s, const float *x, float *acc)
{
    int col[8];
    float w;
    for (int l = 0; l < 8; l++)
        acc[l] = 0.0f, col[l] = -1;
    for (int64_t k = a->rowptr[s]; k < a->rowptr[s + 1]; k++) {
        for (int l = 0; l < 8; l++) {
            col[l] += dc_cb_step(a, 8 * k + l, &w);
            acc[l] += w * x[col[l] < a->cols ? col[l] : a->cols - 1];
        }
    }
}
#endif

static float dc_dense_row_dot(const struct dc_spmat *a, int r, const float *x)
{
    const float *v = a->values + (size_t)r * a->cols;
    float s = 0.0f;
    for (int c = 0; c < a->cols; c++)
        s += v[c] * x[c];
    return s;
}

void dc_cpu_spmv_rows(const struct dc_spmat *a, int r0, int r1, const float *x, float *y)
{
    for (int r = r0; r < r1; r++) {
        float acc = a->format == DC_FORMAT_CSR ? dc_csr_row_dot(a, r, x) : dc_dense_row_dot(a, r, x);
        y[r] = dc_spmat_epilogue(a, r, acc);
    }
}

void dc_cpu_spmv_slices(const struct dc_spmat *a, int s0, int s1, const float *x, float *y)
{
    float acc[8];
    for (int s = s0; s < s1; s++) {
        dc_cb_slice_dot(a, s, x, acc);
        for (int l = 0; l < 8; l++) {
            int r = a->perm[8 * s + l];
            if (r >= 0)
                y[r] = dc_spmat_epilogue(a, r, acc[l]);
        }
    }
}

/* Every (column, weight) of row slot q of A, in column order: BODY sees int
 * col and float w.  A slot is the row itself in csr and dense, lane q % 8 of
 * slice q / 8 in the sliced codebook form.  Fillers are skipped. */
#define DC_FOR_ROW(a, q, ...)                                                       \
    do {                                                                            \
        if ((a)->format == DC_FORMAT_CSR) {                                         \
            for (int64_t j_ = (a)->rowptr[q]; j_ < (a)->rowptr[(q) + 1]; j_++) {    \
                int col = (a)->colidx[j_];                                          \
                float w = (a)->values[j_];                                          \
                __VA_ARGS__;                                                        \
            }                                                                       \
        } else if ((a)->format == DC_FORMAT_CODEBOOK) {                             \
            int col = -1, s_ = (q) / 8, l_ = (q) % 8;                               \
            for (int64_t k_ = (a)->rowptr[s_]; k_ < (a)->rowptr[s_ + 1]; k_++) {    \
                float w;                                                            \
                col += dc_cb_step((a), 8 * k_ + l_, &w);                            \
                if ((a)->gaps[8 * k_ + l_] == DC_SPMAT_FILLER)                      \
                    continue;                                                       \
                __VA_ARGS__;                                                        \
            }                                                                       \
        } else {                                                                    \
            const float *v_ = (a)->values + (size_t)(q) * (a)->cols;                \
            for (int col = 0; col < (a)->cols; col++) {                             \
                float w = v_[col];                                                  \
                __VA_ARGS__;                                                        \
            }                                                                       \
        }                                                                           \
    } while (0)

/* Eight floats as one value the compiler keeps in a register (GCC/Clang
 * vector extension: plain C arithmetic, the widest vectors the target has).
 * Loaded through a 4-byte-aligned, aliasing view rather than returned from a
 * function, so targets without 32-byte vectors (no AVX) build too. */
typedef float dc_v8 __attribute__((vector_size(32)));
typedef float dc_v8u __attribute__((vector_size(32), aligned(4), may_alias));
#define dc_v8_load(p) (*(const dc_v8u *)(const void *)(p))

/* o[0..64) = epilogue(row r, in slot q, of A times columns b[.., 0..64) of B [K, ldb]) */
static void dc_row_tile64(const struct dc_spmat *a, int q, int r, int ldb, const float *b, float *o)
{
    dc_v8 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, s4 = {0}, s5 = {0}, s6 = {0}, s7 = {0};
    DC_FOR_ROW(a, q, {
        const float *p = b + (size_t)col * ldb;
        dc_v8 wv = (dc_v8){0} + w;
        s0 += wv * dc_v8_load(p), s1 += wv * dc_v8_load(p + 8);
        s2 += wv * dc_v8_load(p + 16), s3 += wv * dc_v8_load(p + 24);
        s4 += wv * dc_v8_load(p + 32), s5 += wv * dc_v8_load(p + 40);
        s6 += wv * dc_v8_load(p + 48), s7 += wv * dc_v8_load(p + 56);
    });
    dc_v8 acc[8] = {s0, s1, s2, s3, s4, s5, s6, s7};
    for (int v = 0; v < 8; v++)
        for (int t = 0; t < 8; t++)
            o[8 * v + t] = dc_spmat_epilogue(a, r, acc[v][t]);
}

/* The same for 8 columns */
static void dc_row_tile8(const struct dc_spmat *a, int q, int r, int ldb, const float *b, float *o)
{
    dc_v8 s0 = {0};
    DC_FOR_ROW(a, q, { s0 += ((dc_v8){0} + w) * dc_v8_load(b + (size_t)col * ldb); });
    for (int t = 0; t < 8; t++)
        o[t] = dc_spmat_epilogue(a, r, s0[t]);
}

/* Row slots [q0, q1): rows in csr and dense, 8 per slice in the sliced
 * codebook form; ncols a multiple of 8 (dc_cpu_spmm pads the rest). */
void dc_cpu_spmm_rows(const struct dc_spmat *a, int q0, int q1, int ncols, const float *b, int ldb, float *out,
                      int ldo)
{
    for (int q = q0; q < q1; q++) {
        int r = a->format == DC_FORMAT_CODEBOOK ? a->perm[q] : q;
        if (r < 0)
            continue;
        float *o = out + (size_t)r * ldo;
        int j = 0;
        for (; j + 64 <= ncols; j += 64)
            dc_row_tile64(a, q, r, ldb, b + j, o + j);
        for (; j + 8 <= ncols; j += 8)
            dc_row_tile8(a, q, r, ldb, b + j, o + j);
    }
}
