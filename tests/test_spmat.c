/* test_spmat.c: the compressed-inference ops of the CPU backend against a
 * plain double-precision reference, for every format (dense, csr, codebook)
 * on random sparse matrices: densities from 0.1% to 100%, empty rows, an
 * all-zero matrix, one column, sizes that are no multiple of any tile, gaps
 * long enough to need fillers, 32- and 256-entry codebooks, batch 1 (SpMV),
 * odd batches and 64, with and without the scale/shift epilogue; and the
 * convolution op (padded, strided, 1x1) the same way.  Then the byte count
 * of the codebook form and the checks on bad input.
 *
 * Tolerance: only the summation order differs from the reference, so
 * |got - ref| <= 1e-6 + 2e-6 * sum |terms| (float32 rounding of that sum). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dc/backend.h"
#include "dc/rng.h"
#include "dc/spmat.h"

static struct dc_rng rng;

/* A random [rows, cols] matrix as kept weights (every row in `empty` left empty). */
struct mat {
    struct dc_spmat_src src;
    uint32_t *pos;
    uint8_t *codes;
    float *values, codebook[256];
    float *dense; /* [rows*cols] */
};

static void mat_make(struct mat *m, int rows, int cols, double density, int ncode, int empty_row)
{
    size_t count = (size_t)rows * cols;
    m->pos = malloc(count * sizeof *m->pos);
    m->codes = malloc(count);
    m->values = malloc(count * sizeof(float));
    m->dense = calloc(count, sizeof(float));
    for (int i = 0; i < ncode; i++)
        m->codebook[i] = dc_rng_normal(&rng) * 0.5f + (i % 2 ? 0.1f : -0.1f);
    int64_t nnz = 0;
    for (size_t i = 0; i < count; i++) {
        if ((int)(i / cols) == empty_row || dc_rng_uniform(&rng) >= density)
            continue;
        m->pos[nnz] = (uint32_t)i;
        m->codes[nnz] = (uint8_t)dc_rng_below(&rng, (uint32_t)ncode);
        m->values[nnz] = m->codebook[m->codes[nnz]];
        m->dense[i] = m->values[nnz];
        nnz++;
    }
    m->src = (struct dc_spmat_src){rows, cols, nnz, m->pos, NULL, m->codes, m->codebook, ncode};
}

static void mat_free(struct mat *m)
{
    free(m->pos), free(m->codes), free(m->values), free(m->dense);
}

static void rand_fill(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = dc_rng_uniform(&rng) * 2.0f - 1.0f;
}

/* got[i] against ref[i] with the per-element bound from sumabs[i] */
static int close_sum(const char *what, const double *ref, const double *sumabs, const float *got, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double d = fabs(ref[i] - (double)got[i]);
        if (!(d <= 1e-6 + 2e-6 * sumabs[i])) {
            fprintf(stderr, "%s: mismatch at %zu: ref %.9g got %.9g (|d| %.3g, sum|terms| %.3g)\n", what, i, ref[i],
                    (double)got[i], d, sumabs[i]);
            dc_test_failures++;
            return 0;
        }
    }
    return 1;
}

static void epilogue_make(int rows, float *scale, float *shift)
{
    for (int r = 0; r < rows; r++) {
        scale[r] = 0.5f + dc_rng_uniform(&rng);
        shift[r] = dc_rng_uniform(&rng) - 0.5f;
    }
}

static void test_fc_case(struct dc_backend *be, int rows, int cols, double density, int ncode, int empty_row)
{
    struct mat m;
    mat_make(&m, rows, cols, density, ncode, empty_row);
    static const int batches[] = {1, 2, 3, 4, 5, 64, 33}; /* each CPU path: vectors one by one, padded tiles */
    const int max_n = 64;
    float *x = malloc(sizeof(float) * max_n * cols), *y = malloc(sizeof(float) * max_n * rows);
    double *ref = malloc(sizeof(double) * max_n * rows), *sum = malloc(sizeof(double) * max_n * rows);
    float *scale = malloc(sizeof(float) * rows), *shift = malloc(sizeof(float) * rows);
    rand_fill(x, (size_t)max_n * cols);
    for (int mode = 0; mode < 3; mode++) { /* no epilogue, shift only (a bias), scale and shift (folded bn) */
        epilogue_make(rows, scale, shift);
        for (int f = 0; f < DC_FORMAT_COUNT; f++) {
            struct dc_spmat *a = NULL;
            CHECK_OK(dc_spmat_create(be, (enum dc_spmat_format)f, &m.src, max_n, &a));
            if (!a)
                continue;
            CHECK(a->nnz == (f == DC_FORMAT_DENSE ? (int64_t)rows * cols : m.src.nnz));
            CHECK_OK(dc_spmat_set_epilogue(be, a, mode == 2 ? scale : NULL, mode ? shift : NULL));
            for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
                int n = batches[bi];
                for (int b = 0; b < n; b++)
                    for (int r = 0; r < rows; r++) {
                        double s = 0, sa = 0;
                        for (int c = 0; c < cols; c++) {
                            double t = (double)m.dense[(size_t)r * cols + c] * x[(size_t)b * cols + c];
                            s += t, sa += fabs(t);
                        }
                        if (mode == 2)
                            s *= scale[r], sa *= fabs(scale[r]);
                        if (mode)
                            s += shift[r], sa += fabs(shift[r]);
                        ref[(size_t)b * rows + r] = s, sum[(size_t)b * rows + r] = sa;
                    }
                memset(y, 0xff, sizeof(float) * (size_t)n * rows); /* NaN: every output must be written */
                CHECK_OK(be->ops.spmat_fc(be, a, n, x, y));
                char what[160];
                snprintf(what, sizeof what, "fc %dx%d density %g m %d, %s, batch %d, epilogue %d", rows, cols,
                         density, ncode, dc_spmat_format_name((enum dc_spmat_format)f), n, mode);
                close_sum(what, ref, sum, y, (size_t)n * rows);
            }
            dc_spmat_free(be, a);
        }
    }
    free(x), free(y), free(ref), free(sum), free(scale), free(shift);
    mat_free(&m);
}

/* y[n,k,p,q] reference of a cross-correlation with zero padding */
static void conv_ref(const struct dc_conv_desc *d, const float *x, const float *w, const float *scale,
                     const float *shift, double *ref, double *sum)
{
    for (int n = 0; n < d->n; n++)
        for (int k = 0; k < d->k; k++)
            for (int p = 0; p < d->p; p++)
                for (int q = 0; q < d->q; q++) {
                    double s = 0, sa = 0;
                    for (int c = 0; c < d->c; c++)
                        for (int r = 0; r < d->r; r++)
                            for (int t = 0; t < d->s; t++) {
                                int h = p * d->stride - d->pad + r, ww = q * d->stride - d->pad + t;
                                if (h < 0 || h >= d->h || ww < 0 || ww >= d->w)
                                    continue;
                                double v = (double)w[((size_t)(k * d->c + c) * d->r + r) * d->s + t] *
                                           x[((size_t)(n * d->c + c) * d->h + h) * d->w + ww];
                                s += v, sa += fabs(v);
                            }
                    if (scale)
                        s *= scale[k], sa *= fabs(scale[k]);
                    if (shift)
                        s += shift[k], sa += fabs(shift[k]);
                    size_t o = (((size_t)n * d->k + k) * d->p + p) * d->q + q;
                    ref[o] = s, sum[o] = sa;
                }
}

static void test_conv_case(struct dc_backend *be, struct dc_conv_desc d, double density, int ncode)
{
    d.p = (d.h + 2 * d.pad - d.r) / d.stride + 1;
    d.q = (d.w + 2 * d.pad - d.s) / d.stride + 1;
    struct mat m;
    mat_make(&m, d.k, d.c * d.r * d.s, density, ncode, d.k > 2 ? 1 : -1);
    size_t nx = (size_t)d.n * d.c * d.h * d.w, ny = (size_t)d.n * d.k * d.p * d.q;
    float *x = malloc(sizeof(float) * nx), *y = malloc(sizeof(float) * ny);
    float *scale = malloc(sizeof(float) * d.k), *shift = malloc(sizeof(float) * d.k);
    double *ref = malloc(sizeof(double) * ny), *sum = malloc(sizeof(double) * ny);
    rand_fill(x, nx);
    epilogue_make(d.k, scale, shift);
    for (int mode = 0; mode < 2; mode++) {
        conv_ref(&d, x, m.dense, mode ? scale : NULL, mode ? shift : NULL, ref, sum);
        for (int f = 0; f < DC_FORMAT_COUNT; f++) {
            struct dc_spmat *a = NULL;
            CHECK_OK(dc_spmat_create(be, (enum dc_spmat_format)f, &m.src, d.n, &a));
            if (!a)
                continue;
            CHECK_OK(dc_spmat_set_epilogue(be, a, mode ? scale : NULL, mode ? shift : NULL));
            memset(y, 0xff, sizeof(float) * ny);
            CHECK_OK(be->ops.spmat_conv(be, &d, a, x, y));
            char what[200];
            snprintf(what, sizeof what, "conv n%d c%d %dx%d k%d %dx%d stride %d pad %d density %g, %s, epilogue %d",
                     d.n, d.c, d.h, d.w, d.k, d.r, d.s, d.stride, d.pad, density,
                     dc_spmat_format_name((enum dc_spmat_format)f), mode);
            close_sum(what, ref, sum, y, ny);
            dc_spmat_free(be, a);
        }
    }
    free(x), free(y), free(scale), free(shift), free(ref), free(sum);
    mat_free(&m);
}

/* The codebook form at the densities the paper's layers have: at most 2.5 bytes per weight. */
static void test_bytes(struct dc_backend *be)
{
    struct mat m;
    mat_make(&m, 512, 4096, 0.04, 32, -1);
    struct dc_spmat *cb = NULL, *csr = NULL;
    CHECK_OK(dc_spmat_create(be, DC_FORMAT_CODEBOOK, &m.src, 1, &cb));
    CHECK_OK(dc_spmat_create(be, DC_FORMAT_CSR, &m.src, 1, &csr));
    if (cb && csr) {
        double per = (double)dc_spmat_bytes(cb) / (double)m.src.nnz;
        printf("codebook form at 4%%: %.3f bytes per weight (csr %.3f)\n", per,
               (double)dc_spmat_bytes(csr) / (double)m.src.nnz);
        CHECK(per <= 2.5);
        CHECK(cb->entries >= m.src.nnz);
        CHECK(cb->pairs != NULL); /* 32 codes, 84k entries: the paired form, its table counted */
    }
    dc_spmat_free(be, cb);
    dc_spmat_free(be, csr);
    mat_free(&m);
}

static void test_bad_input(struct dc_backend *be)
{
    uint32_t pos[3] = {5, 3, 9};
    uint8_t codes[3] = {0, 1, 7};
    float cb[4] = {1, 2, 3, 4}, vals[3] = {1, 2, 3};
    struct dc_spmat *a = NULL;
    struct dc_spmat_src s = {4, 4, 3, pos, NULL, codes, cb, 4};
    CHECK(dc_spmat_create(be, DC_FORMAT_CSR, &s, 1, &a) == DC_ERR_ARG && !a); /* out of order */
    pos[1] = 7;
    CHECK(dc_spmat_create(be, DC_FORMAT_CSR, &s, 1, &a) == DC_ERR_ARG && !a); /* code 7 of 4 */
    codes[2] = 3;
    pos[2] = 16;
    CHECK(dc_spmat_create(be, DC_FORMAT_CSR, &s, 1, &a) == DC_ERR_ARG && !a); /* beyond 4x4 */
    pos[2] = 15;
    s.codes = NULL, s.values = vals;
    CHECK(dc_spmat_create(be, DC_FORMAT_CODEBOOK, &s, 1, &a) == DC_ERR_ARG && !a); /* nothing to share */
    CHECK_OK(dc_spmat_create(be, DC_FORMAT_CSR, &s, 2, &a));
    float x[3 * 4] = {0}, y[3 * 4];
    if (a)
        CHECK(be->ops.spmat_fc(be, a, 3, x, y) == DC_ERR_ARG); /* beyond max_n */
    dc_spmat_free(be, a);
    CHECK(dc_spmat_format_parse("codebook") == DC_FORMAT_CODEBOOK && dc_spmat_format_parse("coo") == -1);
}

int main(void)
{
    dc_rng_seed(&rng, 11);
    struct dc_backend *be;
    struct dc_backend_opts opts = {2, 0, 0};
    if (dc_backend_create("cpu", &opts, &be) != DC_OK) {
        fprintf(stderr, "no cpu backend: %s\n", dc_error_msg());
        return 1;
    }
    test_fc_case(be, 37, 1000, 0.001, 32, -1);  /* 0.1%: mostly empty rows, fillers */
    test_fc_case(be, 37, 1000, 0.05, 32, 4);    /* an empty row */
    test_fc_case(be, 300, 784, 0.3, 256, 0);    /* 256 codes, LeNet's fc1 shape */
    test_fc_case(be, 10, 50, 1.0, 16, -1);      /* full */
    test_fc_case(be, 64, 1, 0.5, 4, -1);        /* one column */
    test_fc_case(be, 5, 700, 0.0, 8, -1);       /* all zero */
    test_fc_case(be, 17, 2000, 0.003, 256, -1); /* gaps past 255: fillers in 256-code rows */
    test_fc_case(be, 130, 131, 0.6, 32, 129);   /* odd sizes, last row empty */
    test_fc_case(be, 200, 500, 0.4, 32, 7);     /* 17..32 codes, 40k entries: the paired form on the CPU */
    test_fc_case(be, 100, 17000, 0.02, 20, 3);  /* paired, with fillers and an empty row */
    struct dc_conv_desc d1 = {.n = 2, .c = 3, .h = 9, .w = 7, .k = 5, .r = 3, .s = 3, .stride = 1, .pad = 1};
    struct dc_conv_desc d2 = {.n = 3, .c = 4, .h = 8, .w = 8, .k = 6, .r = 5, .s = 5, .stride = 1, .pad = 0};
    struct dc_conv_desc d3 = {.n = 1, .c = 2, .h = 11, .w = 10, .k = 7, .r = 3, .s = 3, .stride = 2, .pad = 1};
    struct dc_conv_desc d4 = {.n = 2, .c = 9, .h = 6, .w = 5, .k = 4, .r = 1, .s = 1, .stride = 1, .pad = 0};
    struct dc_conv_desc d5 = {.n = 2, .c = 40, .h = 12, .w = 12, .k = 3, .r = 3, .s = 3, .stride = 1, .pad = 1};
    /* 2x2 maps (VGG's last stage on CIFAR): 4 columns an image, all of them a padded tail at batch 1 */
    struct dc_conv_desc d6 = {.n = 1, .c = 20, .h = 2, .w = 2, .k = 9, .r = 3, .s = 3, .stride = 1, .pad = 1};
    struct dc_conv_desc d7 = {.n = 3, .c = 20, .h = 2, .w = 2, .k = 9, .r = 3, .s = 3, .stride = 1, .pad = 1};
    struct dc_conv_desc d8 = {.n = 2, .c = 5, .h = 1, .w = 3, .k = 6, .r = 1, .s = 1, .stride = 1, .pad = 0};
    /* many columns: LeNet-5's conv1 at 3 images (1728 columns, K 25), and K 180 over 338 (a tail of 2) */
    struct dc_conv_desc d9 = {.n = 3, .c = 1, .h = 28, .w = 28, .k = 5, .r = 5, .s = 5, .stride = 1, .pad = 0};
    struct dc_conv_desc d10 = {.n = 2, .c = 20, .h = 13, .w = 13, .k = 6, .r = 3, .s = 3, .stride = 1, .pad = 1};
    double dens[] = {0.05, 0.4, 1.0};
    for (int i = 0; i < 3; i++) {
        test_conv_case(be, d1, dens[i], 256);
        test_conv_case(be, d2, dens[i], 32);
        test_conv_case(be, d3, dens[i], 8);
        test_conv_case(be, d4, dens[i], 16);
        test_conv_case(be, d6, dens[i], 32);
        test_conv_case(be, d7, dens[i], 256);
        test_conv_case(be, d8, dens[i], 16);
        test_conv_case(be, d9, dens[i], 32);
        test_conv_case(be, d10, dens[i], 256);
    }
    test_conv_case(be, d5, 0.005, 256); /* 360 columns: fillers inside a conv row */
    test_bytes(be);
    test_bad_input(be);
    dc_backend_free(be);
    return test_finish("test_spmat");
}
