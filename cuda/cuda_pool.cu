/* cuda_pool.cu: max and average pooling with cuDNN.  Max pooling uses the
 * deterministic mode; average pooling divides by the cells inside the input
 * (PyTorch's count_include_pad=False), as the CPU reference does.
 *
 * Legend: x [N,C,H,W], y [N,C,P,Q]. */
#include "cuda_internal.h"

/* Set the shared descriptors for this pooling shape (desc_a = x, desc_b = y). */
static enum dc_status pool_describe(struct dc_cuda_ctx *ctx, const struct dc_pool_desc *d, const char *op)
{
    if (d->n <= 0 || d->c <= 0 || d->h <= 0 || d->w <= 0 || d->size <= 0 || d->stride <= 0 || d->pad < 0 ||
        d->pad >= d->size || d->p <= 0 || d->q <= 0)
        return DC_ERROR(DC_ERR_ARG, "%s: bad shape x[%d,%d,%d,%d] size %d stride %d pad %d -> %dx%d", op,
                        d->n, d->c, d->h, d->w, d->size, d->stride, d->pad, d->p, d->q);
    cudnnPoolingMode_t mode = d->is_max ? CUDNN_POOLING_MAX_DETERMINISTIC
                                        : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    DC_CUDNN_CHECK(cudnnSetPooling2dDescriptor(ctx->pool, mode, CUDNN_NOT_PROPAGATE_NAN, d->size, d->size,
                                               d->pad, d->pad, d->stride, d->stride));
    DC_CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->desc_a, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->c,
                                              d->h, d->w));
    int n, c, p, q;
    DC_CUDNN_CHECK(cudnnGetPooling2dForwardOutputDim(ctx->pool, ctx->desc_a, &n, &c, &p, &q));
    if (p != d->p || q != d->q)
        return DC_ERROR(DC_ERR_ARG, "%s: output %dx%d given, but input %dx%d with size %d stride %d pad %d "
                        "gives %dx%d", op, d->p, d->q, d->h, d->w, d->size, d->stride, d->pad, p, q);
    DC_CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->desc_b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->c,
                                              d->p, d->q));
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_pool_fwd(struct dc_backend *be, const struct dc_pool_desc *d,
                                           const float *x, float *y)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    DC_TRY(pool_describe(ctx, d, "pool_fwd"));
    const float one = 1.0f, zero = 0.0f;
    DC_CUDNN_CHECK(cudnnPoolingForward(ctx->dnn, ctx->pool, &one, ctx->desc_a, x, &zero, ctx->desc_b, y));
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_pool_bwd(struct dc_backend *be, const struct dc_pool_desc *d,
                                           const float *x, const float *y, const float *dy, float *dx)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    DC_TRY(pool_describe(ctx, d, "pool_bwd"));
    const float one = 1.0f, zero = 0.0f;
    DC_CUDNN_CHECK(cudnnPoolingBackward(ctx->dnn, ctx->pool, &one, ctx->desc_b, y, ctx->desc_b, dy,
                                        ctx->desc_a, x, &zero, ctx->desc_a, dx));
    return DC_OK;
}
