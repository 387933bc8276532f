/* test_kmeans.c: the backend's 1-D k-means started from our initialisations
 * against a brute-force Lloyd written here (linear scan for the nearest
 * centroid, ties to the lower index, means in double, empty clusters keep
 * their centroid, stop when nothing moves); the converged result is a Lloyd
 * fixed point; masked values take no part; the three initialisations place
 * their centroids where their definitions say.  Runs on the CPU backend, and
 * on the CUDA backend too when one answers. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kmeans_ref.h"
#include "dc/backend.h"
#include "dc/quantize.h"
#include "dc/rng.h"

static struct dc_rng rng;

/* Run the backend's kmeans_1d on host data (copies in and out). */
static void backend_kmeans(struct dc_backend *be, size_t n, const float *x, const float *mask, float *c, int m,
                           int iters, uint8_t *assign)
{
    float *dx = NULL, *dm = NULL, *dc = NULL;
    uint8_t *da = NULL;
    CHECK_OK(be->ops.alloc(be, (void **)&dx, n * 4));
    CHECK_OK(be->ops.alloc(be, (void **)&dc, (size_t)m * 4));
    CHECK_OK(be->ops.alloc(be, (void **)&da, n));
    CHECK_OK(be->ops.upload(be, dx, x, n * 4));
    CHECK_OK(be->ops.upload(be, dc, c, (size_t)m * 4));
    if (mask) {
        CHECK_OK(be->ops.alloc(be, (void **)&dm, n * 4));
        CHECK_OK(be->ops.upload(be, dm, mask, n * 4));
    }
    CHECK_OK(be->ops.kmeans_1d(be, n, dx, dm, dc, m, iters, da));
    CHECK_OK(be->ops.download(be, c, dc, (size_t)m * 4));
    CHECK_OK(be->ops.download(be, assign, da, n));
    be->ops.release(be, dx), be->ops.release(be, dc), be->ops.release(be, da);
    if (dm)
        be->ops.release(be, dm);
}

/* Weights shaped like a trained layer: a narrow bulk and a few large ones. */
static void make_weights(float *x, float *mask, size_t n, float keep)
{
    for (size_t i = 0; i < n; i++) {
        x[i] = 0.05f * dc_rng_normal(&rng) + (dc_rng_uniform(&rng) < 0.02f ? 0.3f * dc_rng_normal(&rng) : 0.0f);
        mask[i] = dc_rng_uniform(&rng) < keep ? 1.0f : 0.0f;
        if (mask[i] == 0.0f)
            x[i] = 50.0f + (float)i; /* would drag any centroid it touched */
    }
}

static void test_against_reference(struct dc_backend *be)
{
    const enum dc_kmeans_init inits[3] = {DC_INIT_LINEAR, DC_INIT_DENSITY, DC_INIT_RANDOM};
    const int ms[4] = {2, 8, 32, 256};
    size_t n = 6000;
    float *x = malloc(n * 4), *mask = malloc(n * 4);
    uint8_t *a_ref = malloc(n), *a_be = malloc(n);
    for (int ii = 0; ii < 3; ii++)
        for (int mi = 0; mi < 4; mi++) {
            int m = ms[mi];
            make_weights(x, mask, n, 0.3f);
            float c_ref[256], c_be[256];
            CHECK_OK(dc_kmeans_init_centroids(x, mask, n, m, inits[ii], 99 + (uint64_t)mi, c_ref));
            memcpy(c_be, c_ref, sizeof c_ref);
            reference_kmeans(n, x, mask, c_ref, m, 20, a_ref);
            backend_kmeans(be, n, x, mask, c_be, m, 20, a_be);
            check_close("centroids", c_ref, c_be, (size_t)m, 1e-6f, 1e-5f);
            size_t diff = 0;
            for (size_t i = 0; i < n; i++)
                diff += a_ref[i] != a_be[i];
            if (diff)
                fprintf(stderr, "%s: init %d, m %d: %zu assignments differ\n", be->name, ii, m, diff);
            CHECK(diff == 0);
            for (size_t i = 0; i < n; i++)
                if (mask[i] == 0.0f)
                    CHECK(a_be[i] == 0);
            for (int j = 0; j < m; j++)
                CHECK(c_be[j] < 5.0f); /* masked values (>= 50) pulled no centroid */
        }
    free(x), free(mask), free(a_ref), free(a_be);
}

/* Run to convergence: every centroid with members is their mean, every value sits at its nearest centroid. */
static void test_fixed_point(struct dc_backend *be)
{
    size_t n = 4000;
    float *x = malloc(n * 4), *mask = malloc(n * 4), c[16];
    uint8_t *a = malloc(n);
    make_weights(x, mask, n, 1.0f);
    CHECK_OK(dc_kmeans_init_centroids(x, NULL, n, 16, DC_INIT_LINEAR, 0, c));
    backend_kmeans(be, n, x, NULL, c, 16, 1000, a);
    double sum[16] = {0};
    size_t cnt[16] = {0}, far = 0;
    for (size_t i = 0; i < n; i++) {
        sum[a[i]] += x[i], cnt[a[i]]++;
        far += fabsf(x[i] - c[a[i]]) > fabsf(x[i] - c[nearest(c, 16, x[i])]);
    }
    CHECK(far == 0);
    for (int j = 0; j < 16; j++)
        if (cnt[j])
            CHECK(fabs(sum[j] / (double)cnt[j] - c[j]) <= 1e-6 * (1.0 + fabs(c[j])));
    free(x), free(mask), free(a);
}

static void test_inits(void)
{
    float x[1000], mask[1000], c[32], c2[32];
    for (int i = 0; i < 1000; i++) {
        x[i] = dc_rng_normal(&rng);
        mask[i] = (i % 3) ? 1.0f : 0.0f;
    }
    x[0] = -100.0f, x[3] = 100.0f; /* masked out: must not set the range */
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < 1000; i++)
        if (mask[i] != 0.0f)
            lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    CHECK_OK(dc_kmeans_init_centroids(x, mask, 1000, 32, DC_INIT_LINEAR, 0, c));
    CHECK(c[0] == lo && fabsf(c[31] - hi) <= 1e-6f * fabsf(hi));
    for (int j = 1; j < 32; j++)
        CHECK(fabsf((c[j] - c[j - 1]) - (hi - lo) / 31.0f) < 1e-5f);
    /* density: quantiles, so about the same number of values between neighbours */
    CHECK_OK(dc_kmeans_init_centroids(x, mask, 1000, 32, DC_INIT_DENSITY, 0, c));
    for (int j = 1; j < 32; j++)
        CHECK(c[j] >= c[j - 1]);
    int below = 0;
    for (int i = 0; i < 1000; i++)
        below += mask[i] != 0.0f && x[i] < c[16];
    CHECK(abs(below - 666 * 33 / 64) <= 3); /* quantile (16 + 0.5) / 32 of 666 values */
    /* random: values of the layer, sorted, reproducible from the seed */
    CHECK_OK(dc_kmeans_init_centroids(x, mask, 1000, 32, DC_INIT_RANDOM, 5, c));
    CHECK_OK(dc_kmeans_init_centroids(x, mask, 1000, 32, DC_INIT_RANDOM, 5, c2));
    CHECK(memcmp(c, c2, sizeof c) == 0);
    CHECK_OK(dc_kmeans_init_centroids(x, mask, 1000, 32, DC_INIT_RANDOM, 6, c2));
    CHECK(memcmp(c, c2, sizeof c) != 0);
    for (int j = 0; j < 32; j++) {
        int found = 0;
        for (int i = 0; i < 1000; i++)
            found |= mask[i] != 0.0f && x[i] == c[j];
        CHECK(found);
        CHECK(j == 0 || c[j] >= c[j - 1]);
    }
    /* nothing survives: zeros, not garbage */
    for (int i = 0; i < 1000; i++)
        mask[i] = 0.0f;
    CHECK_OK(dc_kmeans_init_centroids(x, mask, 1000, 4, DC_INIT_DENSITY, 0, c));
    CHECK(c[0] == 0.0f && c[3] == 0.0f);
    CHECK(dc_kmeans_init_centroids(x, mask, 1000, 300, DC_INIT_LINEAR, 0, c) == DC_ERR_ARG);
}

int main(void)
{
    dc_rng_seed(&rng, 4242);
    test_inits();
    const char *names[2] = {"cpu", "cuda"};
    for (int b = 0; b < 2; b++) {
        struct dc_backend *be = NULL;
        struct dc_backend_opts opts = {0};
        if (dc_backend_create(names[b], &opts, &be) != DC_OK) {
            CHECK(b == 1); /* the CPU backend always exists */
            printf("test_kmeans: %s backend not available, skipped there\n", names[b]);
            continue;
        }
        test_against_reference(be);
        test_fixed_point(be);
        dc_backend_free(be);
    }
    return test_finish("test_kmeans");
}
