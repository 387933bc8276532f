/* kmeans_ref.h: the brute-force 1-D Lloyd the k-means tests compare the
 * backends with, written for clarity: a linear scan for the nearest centroid
 * (ties to the lower index), empty clusters keep their centroid, stop when no
 * assignment changes (the semantics of backend.h's kmeans_1d). */
#ifndef DC_TEST_KMEANS_REF_H
#define DC_TEST_KMEANS_REF_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

static inline int nearest(const float *c, int m, float x)
{
    int best = 0;
    for (int j = 1; j < m; j++)
        if (fabsf(x - c[j]) < fabsf(x - c[best]))
            best = j;
    return best;
}

static inline void reference_kmeans(size_t n, const float *x, const float *mask, float *c, int m, int iters,
                             uint8_t *assign)
{
    for (size_t i = 0; i < n; i++)
        assign[i] = (mask && mask[i] == 0.0f) ? 0 : (uint8_t)nearest(c, m, x[i]);
    for (int it = 0; it < iters; it++) {
        double sum[256] = {0};
        size_t cnt[256] = {0};
        for (size_t i = 0; i < n; i++)
            if (!mask || mask[i] != 0.0f)
                sum[assign[i]] += x[i], cnt[assign[i]]++;
        for (int j = 0; j < m; j++)
            if (cnt[j])
                c[j] = (float)(sum[j] / (double)cnt[j]);
        int changed = 0;
        for (size_t i = 0; i < n; i++) {
            uint8_t a = (mask && mask[i] == 0.0f) ? 0 : (uint8_t)nearest(c, m, x[i]);
            changed |= a != assign[i];
            assign[i] = a;
        }
        if (!changed)
            break;
    }
}

#endif
