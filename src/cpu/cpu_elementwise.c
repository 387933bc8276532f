/* cpu_elementwise.c: the CPU backend's per-element ops (fill, axpby, mul,
 * bias, ReLU, dropout, channel concat/split, the SGD update and the pruning
 * mask).  Each element is computed independently, so splitting a loop over
 * threads never changes a result; loops go parallel only when large.
 *
 * Legend: N batch, C channels, HW spatial size. */
#include <math.h>
#include <string.h>

#include "dc/rng.h"

#include "cpu/cpu_internal.h"

/* Element loops go parallel only when long. */
#define DC_PAR_FOR DC_OMP_FOR(dc_cpu_ctx(be)->threads, n > DC_CPU_PAR_MIN)

enum dc_status dc_cpu_fill(struct dc_backend *be, float *x, float value, size_t n)
{
    DC_PAR_FOR
    for (size_t i = 0; i < n; i++)
        x[i] = value;
    return DC_OK;
}

enum dc_status dc_cpu_axpby(struct dc_backend *be, size_t n, float a, const float *x, float b, float *y)
{
    if (b == 0.0f) { /* y is write-only then, as in BLAS */
        DC_PAR_FOR
        for (size_t i = 0; i < n; i++)
            y[i] = a * x[i];
        return DC_OK;
    }
    DC_PAR_FOR
    for (size_t i = 0; i < n; i++)
        y[i] = a * x[i] + b * y[i];
    return DC_OK;
}

enum dc_status dc_cpu_mul(struct dc_backend *be, size_t n, const float *x, const float *y, float *out)
{
    DC_PAR_FOR
    for (size_t i = 0; i < n; i++)
        out[i] = x[i] * y[i];
    return DC_OK;
}

/* y [N,C,HW] += bias [C], one (n, c) row per iteration */
enum dc_status dc_cpu_bias_add(struct dc_backend *be, float *y, const float *bias, int n, int c, int hw)
{
    const int rows = n * c;
    DC_OMP_FOR(dc_cpu_ctx(be)->threads, (size_t)rows * hw > DC_CPU_PAR_MIN)
    for (int i = 0; i < rows; i++) {
        float *row = y + (size_t)i * hw;
        const float bj = bias[i % c];
        for (int k = 0; k < hw; k++)
            row[k] += bj;
    }
    return DC_OK;
}

/* db [C] = sum over N, HW of dy [N,C,HW]: each channel sums its rows in
 * image order in double, so the result does not depend on the thread count;
 * channels in blocks, streamed image by image (cpu_internal.h). */
enum dc_status dc_cpu_bias_grad(struct dc_backend *be, const float *dy, float *db, int n, int c, int hw)
{
    const int threads = dc_cpu_ctx(be)->threads, bs = dc_cpu_channel_block(c, threads);
    const int blocks = (c + bs - 1) / bs;
    DC_OMP_FOR(threads, (size_t)n * c * hw > DC_CPU_PAR_MIN)
    for (int b = 0; b < blocks; b++) {
        const int c0 = b * bs, nc = c - c0 < bs ? c - c0 : bs;
        double sum[DC_CPU_CHANNEL_BLOCK] = {0};
        for (int i = 0; i < n; i++) {
            const float *img = dy + ((size_t)i * c + c0) * hw;
            for (int j = 0; j < nc; j++) /* rows of one element (fc layers) are added directly */
                sum[j] += hw == 1 ? img[j] : dc_cpu_sum_f64(img + (size_t)j * hw, (size_t)hw);
        }
        for (int j = 0; j < nc; j++)
            db[c0 + j] = (float)sum[j];
    }
    return DC_OK;
}

/* v where keep holds, else +0, as a bit mask: no branch on any path (the
 * signs of a ReLU are a coin toss for the predictor, and a loop run in place
 * takes the compiler's scalar fallback), and it vectorises. */
static inline float dc_relu_select(int keep, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits &= 0u - (uint32_t)keep;
    memcpy(&v, &bits, sizeof v);
    return v;
}

enum dc_status dc_cpu_relu_fwd(struct dc_backend *be, size_t n, const float *x, float *y)
{
    DC_PAR_FOR
    for (size_t i = 0; i < n; i++)
        y[i] = dc_relu_select(x[i] > 0.0f, x[i]);
    return DC_OK;
}

enum dc_status dc_cpu_relu_bwd(struct dc_backend *be, size_t n, const float *y, const float *dy, float *dx)
{
    DC_PAR_FOR
    for (size_t i = 0; i < n; i++)
        dx[i] = dc_relu_select(y[i] > 0.0f, dy[i]);
    return DC_OK;
}

enum dc_status dc_cpu_dropout_fwd(struct dc_backend *be, size_t n, float p, uint64_t seed,
                                  const float *x, float *mask, float *y)
{
    if (!(p >= 0.0f && p < 1.0f))
        return DC_ERROR(DC_ERR_ARG, "dropout: probability %g is outside [0, 1)", (double)p);
    const float keep = 1.0f / (1.0f - p);
    DC_PAR_FOR
    for (size_t i = 0; i < n; i++) {
        float m = dc_hash_uniform(seed, i) >= p ? keep : 0.0f;
        mask[i] = m;
        y[i] = x[i] * m;
    }
    return DC_OK;
}

/* out [N,CA+CB,HW] from a [N,CA,HW] and b [N,CB,HW] */
enum dc_status dc_cpu_concat(struct dc_backend *be, int n, int ca, int cb, int hw, const float *a,
                             const float *b, float *out)
{
    const size_t sa = (size_t)ca * hw, sb = (size_t)cb * hw;
    DC_OMP_FOR(dc_cpu_ctx(be)->threads, (size_t)n * (sa + sb) > DC_CPU_PAR_MIN)
    for (int i = 0; i < n; i++) {
        memcpy(out + i * (sa + sb), a + i * sa, sa * sizeof(float));
        memcpy(out + i * (sa + sb) + sa, b + i * sb, sb * sizeof(float));
    }
    return DC_OK;
}

/* a [N,CA,HW] and b [N,CB,HW] from in [N,CA+CB,HW] */
enum dc_status dc_cpu_split(struct dc_backend *be, int n, int ca, int cb, int hw, const float *in,
                            float *a, float *b)
{
    const size_t sa = (size_t)ca * hw, sb = (size_t)cb * hw;
    DC_OMP_FOR(dc_cpu_ctx(be)->threads, (size_t)n * (sa + sb) > DC_CPU_PAR_MIN)
    for (int i = 0; i < n; i++) {
        memcpy(a + i * sa, in + i * (sa + sb), sa * sizeof(float));
        memcpy(b + i * sb, in + i * (sa + sb) + sa, sb * sizeof(float));
    }
    return DC_OK;
}

/* PyTorch's SGD: g' = g + wd*w (masked), v = momentum*v + g',
 * step = nesterov ? g' + momentum*v : v, w -= lr*step (then masked).
 * v may be NULL when momentum is 0 (no velocity is kept then). */
enum dc_status dc_cpu_sgd_update(struct dc_backend *be, size_t n, float *w, const float *g, float *v,
                                 const float *mask, float lr, float momentum, float wd, int nesterov)
{
    if (!v && momentum != 0.0f)
        return DC_ERROR(DC_ERR_ARG, "sgd_update: momentum %g needs a velocity buffer",
                        (double)momentum);
    DC_PAR_FOR
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        if (mask)
            gi *= mask[i];
        float step = gi;
        if (v) {
            float vi = momentum * v[i] + gi;
            v[i] = vi;
            step = nesterov ? gi + momentum * vi : vi;
        }
        float wi = w[i] - lr * step;
        w[i] = mask ? wi * mask[i] : wi;
    }
    return DC_OK;
}

enum dc_status dc_cpu_threshold_mask(struct dc_backend *be, size_t n, const float *w, float threshold,
                                     float *mask)
{
    DC_PAR_FOR
    for (size_t i = 0; i < n; i++)
        mask[i] = fabsf(w[i]) > threshold ? 1.0f : 0.0f;
    return DC_OK;
}
