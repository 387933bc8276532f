/* cpu_bn.c: spatial batch normalisation on the CPU, with PyTorch semantics:
 * the batch is normalised with the biased variance, running_var is updated
 * with the unbiased one, running = (1-momentum)*running + momentum*batch.
 * Channel sums are accumulated in double, one channel per thread, so results
 * are deterministic and independent of the thread count.
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
        for (int n = 0; n < d->n; n++) {
            const float *xp = x + n * chw + c * hw;
            for (size_t i = 0; i < hw; i++)
                sum += xp[i];
        }
        double mean = sum / count, sq = 0.0;
        for (int n = 0; n < d->n; n++) {
            const float *xp = x + n * chw + c * hw;
            for (size_t i = 0; i < hw; i++) {
                double t = xp[i] - mean;
                sq += t * t;
            }
        }
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
        for (int n = 0; n < d->n; n++) {
            const float *xp = x + n * chw + c * hw, *dyp = dy + n * chw + c * hw;
            for (size_t i = 0; i < hw; i++) {
                sum_dy += dyp[i];
                sum_dy_xhat += (double)dyp[i] * ((xp[i] - mean) * invstd);
            }
        }
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
