/* cpu_kmeans.c: 1-D k-means (weight sharing) and the codebook ops that
 * trained quantisation uses: gather shared weights, and sum weight gradients
 * per centroid.
 *
 * kmeans_1d is plain Lloyd over the values whose mask is non-zero:
 *   assign every value; then repeat `iters` times: move each centroid to the
 *   mean of its members (an empty cluster keeps its centroid), re-assign, and
 *   stop early when no assignment changed.
 * So `assign` always holds the nearest centroid of the final centroids.
 * Nearest means the smallest fabsf(x - c) in float, ties to the lower centroid
 * index: exactly what a brute-force scan over c = 0..M-1 with `<` gives.  It
 * is found by binary search over the centroids sorted by (value, index), then
 * a walk outwards over any centroids at the same rounded distance.  Means are
 * summed in double, in index order, on one thread, so results do not depend
 * on the thread count.
 *
 * Legend: x, mask, assign, g, w [n]; centroids, codebook, dcode [M]. */
#include <math.h>
#include <string.h>

#include "cpu/cpu_internal.h"

enum { DC_KMEANS_MAX_M = 256 }; /* assignments are uint8 */

struct dc_kmeans_sorted {
    int m;
    float value[DC_KMEANS_MAX_M]; /* ascending */
    int index[DC_KMEANS_MAX_M];   /* centroid index of value[j]; ascending among equal values */
};

static void dc_kmeans_sort(const float *centroids, int m, struct dc_kmeans_sorted *s)
{
    s->m = m;
    for (int j = 0; j < m; j++) { /* insertion sort: M <= 256, once per iteration */
        float v = centroids[j];
        int at = j;
        while (at > 0 && s->value[at - 1] > v) {
            s->value[at] = s->value[at - 1];
            s->index[at] = s->index[at - 1];
            at--;
        }
        s->value[at] = v;
        s->index[at] = j;
    }
}

/* Centroid index nearest to x (ties to the lower index). */
static int dc_kmeans_nearest(const struct dc_kmeans_sorted *s, float x)
{
    int lo = 0, hi = s->m; /* first position with value > x */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (s->value[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    float best = INFINITY;
    if (lo > 0)
        best = fabsf(x - s->value[lo - 1]);
    if (lo < s->m && fabsf(x - s->value[lo]) < best)
        best = fabsf(x - s->value[lo]);
    /* Distance only grows away from x, so every centroid at distance `best`
     * sits next to the split point. */
    int idx = DC_KMEANS_MAX_M;
    for (int j = lo - 1; j >= 0 && fabsf(x - s->value[j]) == best; j--)
        idx = s->index[j] < idx ? s->index[j] : idx;
    for (int j = lo; j < s->m && fabsf(x - s->value[j]) == best; j++)
        idx = s->index[j] < idx ? s->index[j] : idx;
    return idx;
}

/* Assign every x (0 where masked out); returns whether any assignment changed. */
static int dc_kmeans_assign(int threads, size_t n, const float *x, const float *mask,
                            const struct dc_kmeans_sorted *s, uint8_t *assign)
{
    int changed = 0;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) reduction(| : changed) \
    if (n > DC_CPU_PAR_MIN / 8)
#else
    (void)threads;
#endif
    for (size_t i = 0; i < n; i++) {
        uint8_t a = (mask && mask[i] == 0.0f) ? 0 : (uint8_t)dc_kmeans_nearest(s, x[i]);
        changed |= a != assign[i];
        assign[i] = a;
    }
    return changed;
}

/* Each centroid to the mean of its members; empty clusters keep theirs. */
static void dc_kmeans_update(size_t n, const float *x, const float *mask, const uint8_t *assign,
                             float *centroids, int m)
{
    double sum[DC_KMEANS_MAX_M] = {0};
    size_t count[DC_KMEANS_MAX_M] = {0};
    for (size_t i = 0; i < n; i++) {
        if (mask && mask[i] == 0.0f)
            continue;
        sum[assign[i]] += x[i];
        count[assign[i]]++;
    }
    for (int j = 0; j < m; j++)
        if (count[j])
            centroids[j] = (float)(sum[j] / (double)count[j]);
}

enum dc_status dc_cpu_kmeans_1d(struct dc_backend *be, size_t n, const float *x, const float *mask,
                                float *centroids, int m, int iters, uint8_t *assign)
{
    if (m < 1 || m > DC_KMEANS_MAX_M || iters < 0)
        return DC_ERROR(DC_ERR_ARG, "kmeans_1d: %d clusters, %d iterations; need 1..%d clusters "
                        "and iterations >= 0", m, iters, DC_KMEANS_MAX_M);
    for (int j = 0; j < m; j++)
        if (!isfinite(centroids[j]))
            return DC_ERROR(DC_ERR_ARG, "kmeans_1d: initial centroid %d is %g", j,
                            (double)centroids[j]);
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i]) && !(mask && mask[i] == 0.0f))
            return DC_ERROR(DC_ERR_ARG, "kmeans_1d: value %zu is NaN", i);
    struct dc_kmeans_sorted s;
    dc_kmeans_sort(centroids, m, &s);
    dc_kmeans_assign(dc_cpu_ctx(be)->threads, n, x, mask, &s, assign);
    for (int it = 0; it < iters; it++) {
        dc_kmeans_update(n, x, mask, assign, centroids, m);
        dc_kmeans_sort(centroids, m, &s);
        if (!dc_kmeans_assign(dc_cpu_ctx(be)->threads, n, x, mask, &s, assign))
            break;
    }
    return DC_OK;
}

enum dc_status dc_cpu_codebook_gather(struct dc_backend *be, size_t n, const uint8_t *assign,
                                      const float *codebook, const float *mask, float *w)
{
    DC_OMP_FOR(dc_cpu_ctx(be)->threads, n > DC_CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        w[i] = mask ? codebook[assign[i]] * mask[i] : codebook[assign[i]];
    return DC_OK;
}

enum dc_status dc_cpu_codebook_grad(struct dc_backend *be, size_t n, const uint8_t *assign,
                                    const float *g, const float *mask, int m, float *dcode)
{
    (void)be;
    if (m < 1 || m > DC_KMEANS_MAX_M)
        return DC_ERROR(DC_ERR_ARG, "codebook_grad: %d clusters; need 1..%d", m, DC_KMEANS_MAX_M);
    double sum[DC_KMEANS_MAX_M] = {0};
    for (size_t i = 0; i < n; i++) {
        if (mask && mask[i] == 0.0f)
            continue;
        if (assign[i] >= m)
            return DC_ERROR(DC_ERR_ARG, "codebook_grad: assignment %d of weight %zu is not below %d",
                            assign[i], i, m);
        sum[assign[i]] += g[i];
    }
    for (int j = 0; j < m; j++)
        dcode[j] = (float)sum[j];
    return DC_OK;
}
