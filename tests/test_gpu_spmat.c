/* test_gpu_spmat.c: the compressed-inference ops (spmat_fc, spmat_conv) of
 * the CUDA backend against the CPU reference, in all three layouts of
 * dc/spmat.h.  Both backends build their matrix from the same host
 * dc_spmat_src through dc_spmat_create, get the same random non-zero input,
 * and start from NaN outputs, so an element the GPU forgets to write fails;
 * results must satisfy |ref - got| <= atol + rtol*|ref|, and the first
 * mismatch is printed.  The matrices aim at the kernels' edges: densities
 * from 0.1% to 100%, an empty row, no kept weight at all, one column, one
 * row, sizes that are no multiple of a tile, rows longer than a warp's
 * 32-entry chunk, gaps of 255 and more (fillers in the codebook form),
 * codebooks of 32 and 256 entries.  Exits 77 when no GPU answers.
 *
 * Legend: M rows of A, K columns of A (fc inputs, conv C*R*S), N batch,
 * C H W input, K' filters, R S kernel, P Q output. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dc/backend.h"
#include "dc/rng.h"
#include "dc/spmat.h"
#include "gpu_pair.h"

/* Weights of U(-0.1, 0.1) keep the sums of 1000 products near 1, where
 * float summation order (CPU sequential, GPU tree) stays well inside atol. */
#define ATOL 1e-5f
#define RTOL 1e-4f
#define WMAX 0.1f


static const int fc_batches[] = {1, 2, 3, 5, 64};
#define FC_MAX_N 64

/* Epilogue variants: none, both scale and shift, shift only (a plain bias). */
enum epi { EPI_NONE, EPI_BOTH, EPI_SHIFT, EPI_COUNT };
static const char *const epi_name[EPI_COUNT] = {"none", "scale+shift", "shift"};

static float urand(float lo, float hi) { return lo + (hi - lo) * dc_rng_uniform(&rng); }

/* A weight matrix as a model file gives it: kept positions with both float
 * values and codes into a codebook, so one pattern feeds every src kind. */
struct host_mat {
    const char *name;
    int rows, cols, m;
    int64_t nnz;
    uint32_t *pos;
    float *values;
    uint8_t *codes;
    float codebook[256];
    float *scale, *shift; /* [rows] */
};

static void mat_fill_weights(struct host_mat *h)
{
    for (int j = 0; j < h->m; j++)
        h->codebook[j] = urand(-WMAX, WMAX);
    h->values = xmalloc((size_t)(h->nnz ? h->nnz : 1) * sizeof(float));
    h->codes = xmalloc((size_t)(h->nnz ? h->nnz : 1));
    for (int64_t i = 0; i < h->nnz; i++) {
        h->values[i] = urand(-WMAX, WMAX);
        h->codes[i] = (uint8_t)dc_rng_below(&rng, (uint32_t)h->m);
    }
    h->scale = xmalloc((size_t)h->rows * sizeof(float));
    h->shift = xmalloc((size_t)h->rows * sizeof(float));
    for (int r = 0; r < h->rows; r++) {
        h->scale[r] = urand(0.5f, 1.5f);
        h->shift[r] = urand(-0.5f, 0.5f);
    }
}

/* Each position kept with probability `density` (1: all, 0: none); row
 * `empty_row` (or -1) keeps nothing. */
static struct host_mat mat_random(const char *name, int rows, int cols, double density, int m, int empty_row)
{
    struct host_mat h = {name, rows, cols, m, 0, NULL, NULL, NULL, {0}, NULL, NULL};
    h.pos = xmalloc((size_t)rows * cols * sizeof(uint32_t));
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            if (r != empty_row && (density >= 1.0 || dc_rng_uniform(&rng) < density))
                h.pos[h.nnz++] = (uint32_t)((size_t)r * cols + c);
    mat_fill_weights(&h);
    return h;
}

/* Columns chosen for the codebook form's gap coding: 254 is the largest gap
 * in one entry, 255 the first that needs a filler, 510 / 511 / 765 /
 * 766 need one or two fillers then a gap of 0 or 254; a row starting at
 * column 0 or 255; the last column; one row left empty. */
static struct host_mat mat_fillers(void)
{
    static const int row_cols[][8] = {
        {254, 255, 511, 767, 999, -1},     {255, -1},         {0, 510, 766, -1},
        {-1},                              {256, 512, 998, -1}, {0, 1, 2, 258, 259, 515, 999, -1},
        {765, -1},                         {999, -1},
    };
    const int rows = (int)(sizeof row_cols / sizeof row_cols[0]), cols = 1000;
    struct host_mat h = {"fillers", rows, cols, 256, 0, NULL, NULL, NULL, {0}, NULL, NULL};
    h.pos = xmalloc((size_t)rows * 8 * sizeof(uint32_t));
    for (int r = 0; r < rows; r++)
        for (int i = 0; row_cols[r][i] >= 0; i++)
            h.pos[h.nnz++] = (uint32_t)(r * cols + row_cols[r][i]);
    mat_fill_weights(&h);
    return h;
}

static void mat_free(struct host_mat *h)
{
    free(h->pos);
    free(h->values);
    free(h->codes);
    free(h->scale);
    free(h->shift);
}

/* The src of dc_spmat_create: quantized (codes) or plain float values. */
static struct dc_spmat_src mat_src(const struct host_mat *h, int quantized)
{
    struct dc_spmat_src s = {h->rows, h->cols, h->nnz, h->pos, quantized ? NULL : h->values,
                             quantized ? h->codes : NULL, quantized ? h->codebook : NULL, quantized ? h->m : 0};
    return s;
}

/* ---- backend buffers (gpu_pair.h) ---- */

static void buf_compare(const char *what, const struct buf *b)
{
    float *h[2];
    for (int s = 0; s < 2; s++) {
        h[s] = xmalloc(b->bytes);
        memset(h[s], 0xff, b->bytes);
        CHECK_OK(BE(s)->ops.download(BE(s), h[s], b->p[s], b->bytes));
    }
    check_close(what, h[0], h[1], b->bytes / sizeof(float), ATOL, RTOL);
    free(h[0]);
    free(h[1]);
}

/* The same matrix on both sides with the chosen epilogue; 0 when either
 * side could not build it (already counted as a failure). */
static int spmat_pair(const struct host_mat *h, int quantized, enum dc_spmat_format f, int max_n, enum epi e,
                      struct dc_spmat *a[2])
{
    struct dc_spmat_src src = mat_src(h, quantized);
    a[0] = a[1] = NULL;
    for (int s = 0; s < 2; s++) {
        CHECK_OK(dc_spmat_create(BE(s), f, &src, max_n, &a[s]));
        if (!a[s])
            continue;
        if (e != EPI_NONE)
            CHECK_OK(dc_spmat_set_epilogue(BE(s), a[s], e == EPI_BOTH ? h->scale : NULL, h->shift));
    }
    if (a[0] && a[1])
        return 1;
    for (int s = 0; s < 2; s++)
        dc_spmat_free(BE(s), a[s]);
    return 0;
}

/* The formats a src can build: codebook needs codes. */
static int formats_for(int quantized) { return quantized ? DC_FORMAT_COUNT : DC_FORMAT_CODEBOOK; }

/* ---- fc: y [N,M] = x [N,K] A^T, epilogue ---- */

static void fc_case(const struct host_mat *h)
{
    for (int quantized = 1; quantized >= 0; quantized--)
        for (int f = 0; f < formats_for(quantized); f++)
            for (int e = 0; e < EPI_COUNT; e++) {
                struct dc_spmat *a[2];
                if (!spmat_pair(h, quantized, (enum dc_spmat_format)f, FC_MAX_N, (enum epi)e, a))
                    continue;
                for (size_t t = 0; t < sizeof fc_batches / sizeof fc_batches[0]; t++) {
                    const int n = fc_batches[t];
                    struct buf x = buf_rand((size_t)n * h->cols, -1.0f, 1.0f), y = buf_nan((size_t)n * h->rows);
                    for (int s = 0; s < 2; s++)
                        CHECK_OK(BE(s)->ops.spmat_fc(BE(s), a[s], n, F(x, s), F(y, s)));
                    char what[160];
                    snprintf(what, sizeof what, "spmat_fc %s %dx%d nnz %lld %s%s epilogue %s n %d", h->name,
                             h->rows, h->cols, (long long)h->nnz, dc_spmat_format_name((enum dc_spmat_format)f),
                             quantized ? " (codes)" : "", epi_name[e], n);
                    buf_compare(what, &y);
                    buf_free(&x);
                    buf_free(&y);
                }
                for (int s = 0; s < 2; s++)
                    dc_spmat_free(BE(s), a[s]);
            }
}

static void test_fc(void)
{
    struct host_mat mats[] = {
        mat_random("0.1%", 37, 1000, 0.001, 32, -1),
        mat_random("5%, empty row", 37, 1000, 0.05, 256, 5),
        mat_random("30%", 300, 784, 0.3, 32, -1),
        mat_random("100%", 300, 784, 1.0, 256, -1),
        mat_random("all zero", 37, 1000, 0.0, 32, -1),
        mat_random("one column", 50, 1, 0.6, 32, 3),
        mat_random("one row", 1, 4000, 0.02, 256, -1),
        mat_random("long gaps", 3, 20000, 0.004, 32, -1), /* ~80 entries a row, a third fillers */
        mat_fillers(),
    };
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
        int before = dc_test_failures;
        fc_case(&mats[i]);
        printf("  spmat_fc   %-14s %4dx%-4d nnz %-7lld %s\n", mats[i].name, mats[i].rows, mats[i].cols,
               (long long)mats[i].nnz, dc_test_failures == before ? "ok" : "FAILED");
        mat_free(&mats[i]);
    }
}

/* ---- conv: y [N,K',P,Q] = A (x) per image, epilogue per filter ---- */

static struct dc_conv_desc conv_make(int n, int c, int h, int w, int k, int r, int stride, int pad)
{
    struct dc_conv_desc d = {n, c, h, w, k, r, r, stride, pad, 0, 0};
    d.p = (h + 2 * pad - r) / stride + 1;
    d.q = (w + 2 * pad - r) / stride + 1;
    return d;
}

static void conv_case(const struct dc_conv_desc *d, const struct host_mat *h)
{
    const size_t nx = (size_t)d->n * d->c * d->h * d->w, ny = (size_t)d->n * d->k * d->p * d->q;
    for (int quantized = 1; quantized >= 0; quantized--)
        for (int f = 0; f < formats_for(quantized); f++)
            for (int e = 0; e < EPI_COUNT; e++) {
                struct dc_spmat *a[2];
                if (!spmat_pair(h, quantized, (enum dc_spmat_format)f, d->n, (enum epi)e, a))
                    continue;
                struct buf x = buf_rand(nx, -1.0f, 1.0f), y = buf_nan(ny);
                for (int s = 0; s < 2; s++)
                    CHECK_OK(BE(s)->ops.spmat_conv(BE(s), d, a[s], F(x, s), F(y, s)));
                char what[200];
                snprintf(what, sizeof what, "spmat_conv x[%d,%d,%d,%d] %dx%d stride %d pad %d -> %d filters, "
                         "%s nnz %lld %s%s epilogue %s", d->n, d->c, d->h, d->w, d->r, d->s, d->stride, d->pad,
                         d->k, h->name, (long long)h->nnz, dc_spmat_format_name((enum dc_spmat_format)f),
                         quantized ? " (codes)" : "", epi_name[e]);
                buf_compare(what, &y);
                buf_free(&x);
                buf_free(&y);
                for (int s = 0; s < 2; s++)
                    dc_spmat_free(BE(s), a[s]);
            }
}

static void test_conv(void)
{
    const struct dc_conv_desc descs[] = {
        conv_make(2, 3, 11, 9, 5, 3, 1, 1),   /* 3x3 pad 1 stride 1 */
        conv_make(3, 4, 12, 10, 7, 5, 1, 0),  /* 5x5 pad 0 */
        conv_make(2, 5, 13, 13, 6, 3, 2, 1),  /* 3x3 stride 2 pad 1 */
        conv_make(2, 8, 7, 7, 9, 1, 1, 0),    /* 1x1: x is the right-hand matrix */
        conv_make(1, 16, 10, 10, 33, 3, 1, 1), /* one image, rows past a warp's chunk */
    };
    const double densities[] = {0.05, 0.3, 1.0, 0.0};
    for (size_t i = 0; i < sizeof descs / sizeof descs[0]; i++) {
        const struct dc_conv_desc *d = &descs[i];
        const int crs = d->c * d->r * d->s;
        int before = dc_test_failures;
        for (size_t j = 0; j < sizeof densities / sizeof densities[0]; j++) {
            if (densities[j] == 0.0 && i != 0) /* all zero once is enough */
                continue;
            char name[32];
            snprintf(name, sizeof name, "%g%%", 100.0 * densities[j]);
            struct host_mat h = mat_random(name, d->k, crs, densities[j], j % 2 ? 256 : 32, j == 0 ? 1 : -1);
            conv_case(d, &h);
            mat_free(&h);
        }
        printf("  spmat_conv x[%d,%d,%d,%d] %dx%d stride %d pad %d -> %d: %s\n", d->n, d->c, d->h, d->w, d->r,
               d->s, d->stride, d->pad, d->k, dc_test_failures == before ? "ok" : "FAILED");
    }
}

int main(void)
{
    struct dc_backend_opts opts = {0, 0, 0}; /* FP32: TF32 would miss the tolerances on purpose */
    int verdict = pair_open("test_gpu_spmat", &opts);
    if (verdict >= 0)
        return verdict;
    uint64_t seed = pair_seed((uint64_t)time(NULL));
    printf("test_gpu_spmat: %s vs %s, seed %llu (DC_TEST_SEED repeats a run)\n", BE(1)->description,
           BE(0)->description, (unsigned long long)seed);
    test_fc();
    test_conv();
    for (int s = 0; s < 2; s++)
        CHECK_OK(BE(s)->ops.sync(BE(s)));
    pair_close();
    return test_finish("test_gpu_spmat");
}
