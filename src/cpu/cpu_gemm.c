/* cpu_gemm.c: row-major single-precision GEMM for the CPU backend.  OpenBLAS
 * does the work when the build found it; otherwise a portable blocked loop
 * does.  Both stay compiled so a test can compare them on one machine.
 *
 * OpenBLAS runs single-threaded and we split a large product into column (or
 * row) slices over our OpenMP threads (dc_cpu_pieces slices, so one thread
 * computes the same slices as two).  Letting OpenBLAS's own pthreads run
 * beside OpenMP's made the two pools spin against each other for the cores
 * (LeNet-5 conv layers took 60% longer on 2 cores).  The split depends only on
 * the shapes and dc_cpu_pieces, so a run repeats bit for bit.
 *
 * The portable loop computes every element of C on one thread, summing over
 * k in ascending order, so its result does not depend on the thread count. */
#include <stdlib.h>
#include <string.h>

#ifdef DC_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "cpu/cpu_internal.h"

enum { DC_GEMM_KC = 256, DC_GEMM_NC = 512 };

/* Products below this many multiply-adds run on one thread (forking costs
 * more); slices are rounded to whole vector widths. */
#define DC_GEMM_PAR_MIN ((size_t)1 << 18)
enum { DC_GEMM_SLICE_ALIGN = 16 };

void dc_cpu_blas_threads(int threads)
{
#if defined(DC_HAVE_OPENBLAS) && defined(_OPENMP)
    (void)threads; /* we thread around BLAS (see the top of this file) */
    openblas_set_num_threads(1);
#elif defined(DC_HAVE_OPENBLAS)
    openblas_set_num_threads(threads);
#else
    (void)threads;
#endif
}

/* C[m,n] *= beta, with beta = 0 clearing C even where it held NaN (BLAS rule). */
static void dc_gemm_scale_c(int m, int n, float beta, float *c, int ldc)
{
    if (beta == 1.0f)
        return;
    for (int i = 0; i < m; i++) {
        float *row = c + (size_t)i * ldc;
        if (beta == 0.0f)
            memset(row, 0, (size_t)n * sizeof(float));
        else
            for (int j = 0; j < n; j++)
                row[j] *= beta;
    }
}

/* bp[kc,nc] = op(B)[p0.., j0..] packed contiguously (row stride nc). */
/* bp[kc,nc] = B^T[p0.., j0..] for a transposed B [n,k] (row stride ldb). */
static void dc_gemm_pack_b(int kc, int nc, const float *b, int ldb, int p0, int j0, float *bp)
{
    for (int j = 0; j < nc; j++) {
        const float *src = b + (size_t)(j0 + j) * ldb + p0;
        for (int p = 0; p < kc; p++)
            bp[(size_t)p * nc + j] = src[p];
    }
}

static inline float dc_gemm_a(int trans_a, const float *a, int lda, int i, int p)
{
    return trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
}

/* Rows i0..i0+rows (rows <= 4) of C[:, 0..nc) += alpha op(A)[:, p0..p0+kc) B,
 * B a [kc,nc] panel with row stride ldb: each B row is loaded once for up to
 * four rows of C. */
static void dc_gemm_rows(int rows, int i0, int p0, int kc, int nc, float alpha, int trans_a,
                         const float *a, int lda, const float *b, int ldb, float *c, int ldc)
{
    float *c0 = c + (size_t)i0 * ldc;
    if (rows == 4) {
        float *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
        for (int p = 0; p < kc; p++) {
            const float *br = b + (size_t)p * ldb;
            float a0 = alpha * dc_gemm_a(trans_a, a, lda, i0, p0 + p);
            float a1 = alpha * dc_gemm_a(trans_a, a, lda, i0 + 1, p0 + p);
            float a2 = alpha * dc_gemm_a(trans_a, a, lda, i0 + 2, p0 + p);
            float a3 = alpha * dc_gemm_a(trans_a, a, lda, i0 + 3, p0 + p);
            for (int j = 0; j < nc; j++) {
                float bj = br[j];
                c0[j] += a0 * bj;
                c1[j] += a1 * bj;
                c2[j] += a2 * bj;
                c3[j] += a3 * bj;
            }
        }
        return;
    }
    for (int r = 0; r < rows; r++) {
        float *cr = c0 + (size_t)r * ldc;
        for (int p = 0; p < kc; p++) {
            const float *br = b + (size_t)p * ldb;
            float ar = alpha * dc_gemm_a(trans_a, a, lda, i0 + r, p0 + p);
            for (int j = 0; j < nc; j++)
                cr[j] += ar * br[j];
        }
    }
}

enum dc_status dc_cpu_gemm_portable(int threads, int trans_a, int trans_b, int m, int n, int k,
                                    float alpha, const float *a, int lda, const float *b, int ldb,
                                    float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return DC_OK;
    dc_gemm_scale_c(m, n, beta, c, ldc);
    if (k <= 0 || alpha == 0.0f)
        return DC_OK;
    /* A transposed B is packed so the inner loop runs along contiguous rows. */
    float *bp = NULL;
    if (trans_b) {
        bp = malloc((size_t)DC_GEMM_KC * DC_GEMM_NC * sizeof(float));
        if (!bp)
            return DC_ERROR(DC_ERR_NOMEM, "gemm: out of memory for a %dx%d packing buffer",
                            DC_GEMM_KC, DC_GEMM_NC);
    }
    int groups = (m + 3) / 4;
    for (int j0 = 0; j0 < n; j0 += DC_GEMM_NC) {
        int nc = n - j0 < DC_GEMM_NC ? n - j0 : DC_GEMM_NC;
        for (int p0 = 0; p0 < k; p0 += DC_GEMM_KC) {
            int kc = k - p0 < DC_GEMM_KC ? k - p0 : DC_GEMM_KC;
            const float *panel = b + (size_t)p0 * ldb + j0;
            int panel_ld = ldb;
            if (trans_b) {
                dc_gemm_pack_b(kc, nc, b, ldb, p0, j0, bp);
                panel = bp;
                panel_ld = nc;
            }
            DC_OMP_FOR(threads, (size_t)m * nc * kc > 32768)
            for (int g = 0; g < groups; g++) {
                int rows = m - 4 * g < 4 ? m - 4 * g : 4;
                dc_gemm_rows(rows, 4 * g, p0, kc, nc, alpha, trans_a, a, lda, panel, panel_ld,
                             c + j0, ldc);
            }
        }
    }
    free(bp);
    return DC_OK;
}

/* Dimensions and leading dimensions as BLAS would check them, so a bad call
 * fails here with a message instead of inside the library. */
static enum dc_status dc_gemm_check(int trans_a, int trans_b, int m, int n, int k, int lda, int ldb,
                                    int ldc)
{
    if (m < 0 || n < 0 || k < 0)
        return DC_ERROR(DC_ERR_ARG, "gemm: negative size m=%d n=%d k=%d", m, n, k);
    int min_lda = trans_a ? m : k, min_ldb = trans_b ? k : n;
    if (lda < (min_lda > 1 ? min_lda : 1) || ldb < (min_ldb > 1 ? min_ldb : 1) ||
        ldc < (n > 1 ? n : 1))
        return DC_ERROR(DC_ERR_ARG,
                        "gemm: leading dimensions lda=%d ldb=%d ldc=%d too small for m=%d n=%d "
                        "k=%d trans_a=%d trans_b=%d",
                        lda, ldb, ldc, m, n, k, trans_a, trans_b);
    return DC_OK;
}

#ifdef DC_HAVE_OPENBLAS
static void dc_gemm_blas(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                         int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* One BLAS call per slice of C: columns when C is wider than
 * tall, else rows.  Each element of C is computed by one call over all of k. */
static void dc_gemm_blas_sliced(int threads, int trans_a, int trans_b, int m, int n, int k,
                                float alpha, const float *a, int lda, const float *b, int ldb,
                                float beta, float *c, int ldc)
{
    const int by_cols = n >= m, extent = by_cols ? n : m, pieces = dc_cpu_pieces(threads);
    int width = (extent + pieces - 1) / pieces;
    width = (width + DC_GEMM_SLICE_ALIGN - 1) / DC_GEMM_SLICE_ALIGN * DC_GEMM_SLICE_ALIGN;
    const int parts = (extent + width - 1) / width;
    DC_OMP_FOR(threads < parts ? threads : parts, parts > 1 && threads > 1)
    for (int part = 0; part < parts; part++) {
        const int lo = part * width, len = extent - lo < width ? extent - lo : width;
        if (by_cols)
            dc_gemm_blas(trans_a, trans_b, m, len, k, alpha, a, lda,
                         trans_b ? b + (size_t)lo * ldb : b + lo, ldb, beta, c + lo, ldc);
        else
            dc_gemm_blas(trans_a, trans_b, len, n, k, alpha, trans_a ? a + lo : a + (size_t)lo * lda,
                         lda, b, ldb, beta, c + (size_t)lo * ldc, ldc);
    }
}
#endif

enum dc_status dc_cpu_gemm_serial(int trans_a, int trans_b, int m, int n, int k, float alpha,
                                  const float *a, int lda, const float *b, int ldb, float beta,
                                  float *c, int ldc)
{
#ifdef DC_HAVE_OPENBLAS
    if (k == 0)
        dc_gemm_scale_c(m, n, beta, c, ldc);
    else if (m > 0 && n > 0)
        dc_gemm_blas(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return DC_OK;
#else
    return dc_cpu_gemm_portable(1, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

enum dc_status dc_cpu_gemm(struct dc_backend *be, int trans_a, int trans_b, int m, int n, int k,
                           float alpha, const float *a, int lda, const float *b, int ldb,
                           float beta, float *c, int ldc)
{
    DC_TRY(dc_gemm_check(trans_a, trans_b, m, n, k, lda, ldb, ldc));
    if (m == 0 || n == 0)
        return DC_OK;
    const int threads = dc_cpu_ctx(be)->threads;
#ifdef DC_HAVE_OPENBLAS
    if (k == 0) { /* BLAS would return without touching C; the contract scales it */
        dc_gemm_scale_c(m, n, beta, c, ldc);
        return DC_OK;
    }
#ifdef _OPENMP
    if ((size_t)m * n * k >= DC_GEMM_PAR_MIN) {
        dc_gemm_blas_sliced(threads, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return DC_OK;
    }
#endif
    dc_gemm_blas(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return DC_OK;
#else
    return dc_cpu_gemm_portable(threads, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
                                ldc);
#endif
}
