/* kmeans_init.c: starting centroids for the per-layer 1-D k-means (Han et al.
 * 2016, section 3.2 compares these three; linear is the default because it
 * keeps centroids on the few large weights that matter most). Runs on the host
 * once per layer; the Lloyd iterations run on the backend. */
#include <stdlib.h>

#include "dc/quantize.h"
#include "dc/rng.h"

static int float_cmp(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void init_linear(const float *v, size_t k, int m, float *c)
{
    float lo = v[0], hi = v[0];
    for (size_t i = 1; i < k; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    for (int i = 0; i < m; i++)
        c[i] = m == 1 ? 0.5f * (lo + hi) : lo + (hi - lo) * (float)i / (float)(m - 1);
}

/* Quantiles of the sorted values, linearly interpolated between order statistics. */
static void init_density(float *v, size_t k, int m, float *c)
{
    qsort(v, k, sizeof *v, float_cmp);
    for (int i = 0; i < m; i++) {
        double q = ((double)i + 0.5) / (double)m * (double)(k - 1);
        size_t lo = (size_t)q;
        size_t hi = lo + 1 < k ? lo + 1 : lo;
        double t = q - (double)lo;
        c[i] = (float)((1.0 - t) * v[lo] + t * v[hi]);
    }
}

static void init_random(const float *v, size_t k, int m, uint64_t seed, float *c)
{
    struct dc_rng rng;
    dc_rng_seed(&rng, seed);
    for (int i = 0; i < m; i++) {
        /* 53 bits of a 64-bit draw: layers beyond 2^32 weights are covered too */
        uint64_t r = ((uint64_t)dc_rng_next(&rng) >> 11) % (uint64_t)k;
        c[i] = v[r];
    }
    qsort(c, (size_t)m, sizeof *c, float_cmp);
}

enum dc_status dc_kmeans_init_centroids(const float *x, const float *mask, size_t n, int m,
                                        enum dc_kmeans_init init, uint64_t seed, float *centroids)
{
    if (m < 1 || m > 256)
        return DC_ERROR(DC_ERR_ARG, "k-means: %d clusters (1..256 allowed)", m);
    float *v = malloc(sizeof *v * (n ? n : 1));
    if (!v)
        return DC_ERROR(DC_ERR_NOMEM, "k-means: no memory for %zu values", n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!mask || mask[i] != 0.0f)
            v[k++] = x[i];
    enum dc_status st = DC_OK;
    if (k == 0) {
        for (int i = 0; i < m; i++)
            centroids[i] = 0.0f;
    } else if (init == DC_INIT_LINEAR) {
        init_linear(v, k, m, centroids);
    } else if (init == DC_INIT_DENSITY) {
        init_density(v, k, m, centroids);
    } else if (init == DC_INIT_RANDOM) {
        init_random(v, k, m, seed, centroids);
    } else {
        st = DC_ERROR(DC_ERR_ARG, "k-means: unknown init %d", (int)init);
    }
    free(v);
    return st;
}
