/* cpu_bn.c: spatial batch normalisation on the CPU, with PyTorch semantics:
 * the batch is normalised with the biased variance, running_var is updated
 * with the unbiased one, running = (1-momentum)*running + momentum*batch.
 * Channel sums are accumulated in double, one channel per thread, so results
 * are deterministic and independent of the thread count; four partial sums
 * per row break the chain of dependent double adds (one add every 4 cycles),
 * which made these loops as slow as the convolutions around them.
 *
 * Legend: x, y, dx [N,C,HW]; gamma, beta, running_*, save_* [C]. */
#include <math.h>

#include "cpu/cpu_internal.h"

static enum dc_status dc_bn_check(const struct dc_bn_desc *d, const char *op)
{
    if (d->n <= 0 || d->c <= 0 || d->hw <= 0 || !(d->eps > 0.0f))
        return DC_ERROR(DC_ERR_ARG, "%s: bad shape [%d,%d,%d] or eps %g", op, d->n, d->c, d->hw,
                        (double)d->eps);
    return DC_OK;
}

/* sum p[i] and sum (p[i] - mean)^2 over one row, in double */
static double dc_bn_sum(const float *p, size_t n)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += p[i], s1 += p[i + 1];
        s2 += p[i + 2], s3 += p[i + 3];
    }
    for (; i < n; i++)
        s0 += p[i];
    return (s0 + s1) + (s2 + s3);
}

static double dc_bn_sqdev(const float *p, size_t n, double mean)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        double t0 = p[i] - mean, t1 = p[i + 1] - mean, t2 = p[i + 2] - mean, t3 = p[i + 3] - mean;
        s0 += t0 * t0, s1 += t1 * t1;
        s2 += t2 * t2, s3 += t3 * t3;
    }
    for (; i < n; i++) {
        double t = p[i] - mean;
        s0 += t * t;
    }
    return (s0 + s1) + (s2 + s3);
}

/* sum dy[i] and sum dy[i] * xhat[i] over one row, xhat = (x - mean) * invstd in float */
static void dc_bn_dsums(const float *x, const float *dy, size_t n, float mean, float invstd, double *sum_dy,
                        double *sum_dy_xhat)
{
    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, b0 = 0.0, b1 = 0.0, b2 = 0.0, b3 = 0.0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 += dy[i], a1 += dy[i + 1], a2 += dy[i + 2], a3 += dy[i + 3];
        b0 += (double)dy[i] * ((x[i] - mean) * invstd);
        b1 += (double)dy[i + 1] * ((x[i + 1] - mean) * invstd);
        b2 += (double)dy[i + 2] * ((x[i + 2] - mean) * invstd);
        b3 += (double)dy[i + 3] * ((x[i + 3] - mean) * invstd);
    }
    for (; i < n; i++) {
        a0 += dy[i];
        b0 += (double)dy[i] * ((x[i] - mean) * invstd);
    }
    *sum_dy += (a0 + a1) + (a2 + a3);
    *sum_dy_xhat += (b0 + b1) + (b2 + b3);
}

/* Run the loop over channels on several threads only when the tensor is big. */
#define DC_BN_PAR(d) ((size_t)(d)->n * (d)->c * (d)->hw > DC_CPU_PAR_MIN)

enum dc_status dc_cpu_bn_fwd_train(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                                   const float *gamma, const float *beta, float *running_mean,
                                   float *running_var, float *y, float *save_mean, float *save_invstd)
{
    DC_TRY(dc_bn_check(d, "bn_fwd_train"));
    const size_t hw = (size_t)d->hw, chw = (size_t)d->c * hw;
    const double count = (double)d->n * (double)d->hw;
    DC_OMP_FOR(dc_cpu_ctx(be)->threads, DC_BN_PAR(d))
    for (int c = 0; c < d->c; c++) {
        double sum = 0.0;
        for (int n = 0; n < d->n; n++)
            sum += dc_bn_sum(x + n * chw + c * hw, hw);
        double mean = sum / count, sq = 0.0;
        for (int n = 0; n < d->n; n++)
            sq += dc_bn_sqdev(x + n * chw + c * hw, hw, mean);
        double var = sq / count;
        float invstd = (float)(1.0 / sqrt(var + d->eps));
        float scale = gamma[c] * invstd, shift = beta[c] - (float)mean * scale;
        for (int n = 0; n < d->n; n++) {
            const float *xp = x + n * chw + c * hw;
            float *yp = y + n * chw + c * hw;
            for (size_t i = 0; i < hw; i++)
                yp[i] = xp[i] * scale + shift;
        }
        double unbiased = count > 1.0 ? sq / (count - 1.0) : var;
        running_mean[c] = (1.0f - d->momentum) * running_mean[c] + d->momentum * (float)mean;
        running_var[c] = (1.0f - d->momentum) * running_var[c] + d->momentum * (float)unbiased;
        save_mean[c] = (float)mean;
        save_invstd[c] = invstd;
    }
    return DC_OK;
}

enum dc_status dc_cpu_bn_fwd_infer(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                                   const float *gamma, const float *beta, const float *running_mean,
                                   const float *running_var, float *y)
{
    DC_TRY(dc_bn_check(d, "bn_fwd_infer"));
    const size_t hw = (size_t)d->hw, chw = (size_t)d->c * hw;
    DC_OMP_FOR(dc_cpu_ctx(be)->threads, DC_BN_PAR(d))
    for (int c = 0; c < d->c; c++) {
        float scale = gamma[c] / sqrtf(running_var[c] + d->eps);
        float shift = beta[c] - running_mean[c] * scale;
        for (int n = 0; n < d->n; n++) {
            const float *xp = x + n * chw + c * hw;
            float *yp = y + n * chw + c * hw;
            for (size_t i = 0; i < hw; i++)
                yp[i] = xp[i] * scale + shift;
        }
    }
    return DC_OK;
}

/* With xhat = (x - mean) * invstd and m = N*HW:
 *   dbeta = sum dy, dgamma = sum dy * xhat,
 *   dx = gamma * invstd / m * (m * dy - dbeta - xhat * dgamma). */
enum dc_status dc_cpu_bn_bwd(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                             const float *dy, const float *gamma, const float *save_mean,
                             const float *save_invstd, float *dx, float *dgamma, float *dbeta)
{
    DC_TRY(dc_bn_check(d, "bn_bwd"));
    const size_t hw = (size_t)d->hw, chw = (size_t)d->c * hw;
    const double count = (double)d->n * (double)d->hw;
    DC_OMP_FOR(dc_cpu_ctx(be)->threads, DC_BN_PAR(d))
    for (int c = 0; c < d->c; c++) {
        const float mean = save_mean[c], invstd = save_invstd[c];
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int n = 0; n < d->n; n++)
            dc_bn_dsums(x + n * chw + c * hw, dy + n * chw + c * hw, hw, mean, invstd, &sum_dy, &sum_dy_xhat);
        dbeta[c] = (float)sum_dy;
        dgamma[c] = (float)sum_dy_xhat;
        const float k = gamma[c] * invstd;
        const float mean_dy = (float)(sum_dy / count), mean_dy_xhat = (float)(sum_dy_xhat / count);
        for (int n = 0; n < d->n; n++) {
            const float *xp = x + n * chw + c * hw, *dyp = dy + n * chw + c * hw;
            float *dxp = dx + n * chw + c * hw;
            for (size_t i = 0; i < hw; i++) {
                float xhat = (xp[i] - mean) * invstd;
                dxp[i] = k * (dyp[i] - mean_dy - xhat * mean_dy_xhat);
            }
        }
    }
    return DC_OK;
}
