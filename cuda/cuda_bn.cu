/* cuda_bn.cu: spatial batch normalisation with cuDNN.  cuDNN's semantics are
 * PyTorch's (which calls it): normalise with the biased batch variance, keep
 * running_var with the unbiased one, running = (1-f)*running + f*batch with
 * f = momentum, and save the mean and 1/sqrt(var + eps) for the backward pass.
 *
 * Legend: x, y, dx [N,C,HW] (described to cuDNN as [N,C,HW,1]);
 * gamma, beta, running_*, save_*, dgamma, dbeta [C]. */
#include "cuda_internal.h"

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
    const float one = 1.0f, zero = 0.0f;
    DC_CUDNN_CHECK(cudnnBatchNormalizationBackward(
        ctx->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, ctx->desc_a, x, ctx->desc_a, dy,
        ctx->desc_a, dx, ctx->desc_param, gamma, dgamma, dbeta, (double)d->eps, save_mean, save_invstd));
    return DC_OK;
}
