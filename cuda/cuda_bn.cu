/* cuda_bn.cu: spatial batch normalisation with cuDNN.  cuDNN's semantics are
 * PyTorch's (which calls it): normalise with the biased batch variance, keep
 * running_var with the unbiased one, running = (1-f)*running + f*batch with
 * f = momentum, and save the mean and 1/sqrt(var + eps) for the backward pass.
 *
 * With one value per channel (N*HW = 1) the unbiased variance divides by
 * zero, so cuDNN is not called: like the CPU (src/cpu/cpu_bn.c), running_var
 * then takes the biased variance (0), and a kernel with one thread per
 * channel does the CPU's arithmetic for the forward and backward passes.
 *
 * Legend: x, y, dx [N,C,HW] (described to cuDNN as [N,C,HW,1]);
 * gamma, beta, running_*, save_*, dgamma, dbeta [C]. */
#include "cuda_internal.h"

/* N*HW = 1: x, y [C]; the CPU's expressions, unfused like its float code. */
static __global__ void k_bn_single_fwd(int c, float eps, float momentum, const float *x, const float *gamma,
                                       const float *beta, float *running_mean, float *running_var, float *y,
                                       float *save_mean, float *save_invstd)
{
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c)
        return;
    const double mean = x[ch], t = x[ch] - mean, var = t * t; /* count 1: biased = "unbiased" */
    const float invstd = (float)(1.0 / sqrt(var + eps));
    const float scale = __fmul_rn(gamma[ch], invstd), shift = __fsub_rn(beta[ch], __fmul_rn((float)mean, scale));
    y[ch] = __fadd_rn(__fmul_rn(x[ch], scale), shift);
    running_mean[ch] = __fadd_rn(__fmul_rn(1.0f - momentum, running_mean[ch]), __fmul_rn(momentum, (float)mean));
    running_var[ch] = __fadd_rn(__fmul_rn(1.0f - momentum, running_var[ch]), __fmul_rn(momentum, (float)var));
    save_mean[ch] = (float)mean;
    save_invstd[ch] = invstd;
}

static __global__ void k_bn_single_bwd(int c, const float *x, const float *dy, const float *gamma,
                                       const float *save_mean, const float *save_invstd, float *dx,
                                       float *dgamma, float *dbeta)
{
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c)
        return;
    const float mean = save_mean[ch], invstd = save_invstd[ch];
    const float xhat = __fmul_rn(__fsub_rn(x[ch], mean), invstd);
    const double sum_dy = dy[ch], sum_dy_xhat = (double)dy[ch] * xhat;
    dbeta[ch] = (float)sum_dy;
    dgamma[ch] = (float)sum_dy_xhat;
    const float k = __fmul_rn(gamma[ch], invstd);
    const float mean_dy = (float)sum_dy, mean_dy_xhat = (float)sum_dy_xhat; /* count 1 */
    dx[ch] = __fmul_rn(k, __fsub_rn(__fsub_rn(dy[ch], mean_dy), __fmul_rn(xhat, mean_dy_xhat)));
}

static unsigned channel_blocks(int c) { return (unsigned)((c + DC_CUDA_THREADS - 1) / DC_CUDA_THREADS); }

static enum dc_status bn_describe(struct dc_cuda_ctx *ctx, const struct dc_bn_desc *d, const char *op)
{
    if (d->n <= 0 || d->c <= 0 || d->hw <= 0 || !(d->eps > 0.0f) || (double)d->eps < CUDNN_BN_MIN_EPSILON)
        return DC_ERROR(DC_ERR_ARG, "%s: bad shape [%d,%d,%d] or eps %g", op, d->n, d->c, d->hw, (double)d->eps);
    DC_CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->desc_a, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->c,
                                              d->hw, 1));
    DC_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(ctx->desc_param, ctx->desc_a, CUDNN_BATCHNORM_SPATIAL));
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_bn_fwd_train(struct dc_backend *be, const struct dc_bn_desc *d,
                                               const float *x, const float *gamma, const float *beta,
                                               float *running_mean, float *running_var, float *y,
                                               float *save_mean, float *save_invstd)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    DC_TRY(bn_describe(ctx, d, "bn_fwd_train"));
    if ((long long)d->n * d->hw == 1) {
        k_bn_single_fwd<<<channel_blocks(d->c), DC_CUDA_THREADS, 0, ctx->stream>>>(
            d->c, d->eps, d->momentum, x, gamma, beta, running_mean, running_var, y, save_mean, save_invstd);
        DC_CUDA_LAUNCH_CHECK("k_bn_single_fwd");
        return DC_OK;
    }
    const float one = 1.0f, zero = 0.0f;
    DC_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
        ctx->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, ctx->desc_a, x, ctx->desc_a, y, ctx->desc_param,
        gamma, beta, (double)d->momentum, running_mean, running_var, (double)d->eps, save_mean, save_invstd));
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_bn_fwd_infer(struct dc_backend *be, const struct dc_bn_desc *d,
                                               const float *x, const float *gamma, const float *beta,
                                               const float *running_mean, const float *running_var, float *y)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    DC_TRY(bn_describe(ctx, d, "bn_fwd_infer"));
    const float one = 1.0f, zero = 0.0f;
    DC_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
        ctx->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, ctx->desc_a, x, ctx->desc_a, y, ctx->desc_param,
        gamma, beta, running_mean, running_var, (double)d->eps));
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_bn_bwd(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                                         const float *dy, const float *gamma, const float *save_mean,
                                         const float *save_invstd, float *dx, float *dgamma, float *dbeta)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    DC_TRY(bn_describe(ctx, d, "bn_bwd"));
    if ((long long)d->n * d->hw == 1) {
        k_bn_single_bwd<<<channel_blocks(d->c), DC_CUDA_THREADS, 0, ctx->stream>>>(
            d->c, x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
        DC_CUDA_LAUNCH_CHECK("k_bn_single_bwd");
        return DC_OK;
    }
    const float one = 1.0f, zero = 0.0f;
    DC_CUDNN_CHECK(cudnnBatchNormalizationBackward(
        ctx->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, ctx->desc_a, x, ctx->desc_a, dy,
        ctx->desc_a, dx, ctx->desc_param, gamma, dgamma, dbeta, (double)d->eps, save_mean, save_invstd));
    return DC_OK;
}
