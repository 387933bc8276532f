/* cuda_pool.cu: max and average pooling.  Average pooling uses cuDNN and
 * divides by the cells inside the input (PyTorch's count_include_pad=False),
 * as the CPU reference does.
 *
 * Max pooling has its own kernels so that ties follow the CPU reference
 * exactly.  Decision (issue 12, item 7): the contract stays "the gradient of a
 * window goes to its FIRST maximum in row-major scan order" (include/dc/
 * backend.h, src/cpu/cpu_pool.c), on both backends, rather than "one of the
 * maxima": cuDNN does not say which tied cell it picks, and tied windows are
 * common (ReLU zeros, saturated MNIST pixels in LeNet-5's first pooling), so
 * a loose contract would make GPU and CPU training differ.  The forward pass
 * returns the value at that same first maximum (comparison with `>`, so a
 * -0 before a +0 stays -0 and a NaN is never picked over an earlier value,
 * as on the CPU); the backward pass has one thread per input cell that adds,
 * in (p, q) order, the dy of every window whose first maximum it is, which
 * is the CPU's order too, with no atomics.
 *
 * Legend: x [N,C,H,W], y [N,C,P,Q]. */
#include "cuda_internal.h"

/* Set the shared descriptors for this average-pooling shape (desc_a = x, desc_b = y). */
static enum dc_status pool_describe(struct dc_cuda_ctx *ctx, const struct dc_pool_desc *d, const char *op)
{
    if (d->n <= 0 || d->c <= 0 || d->h <= 0 || d->w <= 0 || d->size <= 0 || d->stride <= 0 || d->pad < 0 ||
        d->pad >= d->size || d->p <= 0 || d->q <= 0)
        return DC_ERROR(DC_ERR_ARG, "%s: bad shape x[%d,%d,%d,%d] size %d stride %d pad %d -> %dx%d", op,
                        d->n, d->c, d->h, d->w, d->size, d->stride, d->pad, d->p, d->q);
    DC_CUDNN_CHECK(cudnnSetPooling2dDescriptor(ctx->pool, CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING,
                                               CUDNN_NOT_PROPAGATE_NAN, d->size, d->size,
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

/* Offset in its plane of the first maximum of window (p, q), clipped to the
 * input (-1 when empty, which the shape check rules out). */
static __device__ int pool_argmax(const struct dc_pool_desc d, const float *plane, int p, int q)
{
    const int hs = p * d.stride - d.pad, ws = q * d.stride - d.pad;
    const int h0 = hs < 0 ? 0 : hs, w0 = ws < 0 ? 0 : ws;
    const int h1 = hs + d.size < d.h ? hs + d.size : d.h, w1 = ws + d.size < d.w ? ws + d.size : d.w;
    if (h0 >= h1 || w0 >= w1)
        return -1;
    int best = h0 * d.w + w0;
    float best_v = plane[best];
    for (int h = h0; h < h1; h++)
        for (int w = w0; w < w1; w++) {
            const float v = plane[h * d.w + w];
            if (v > best_v) {
                best_v = v;
                best = h * d.w + w;
            }
        }
    return best;
}

/* y [planes,P,Q]: one thread per output cell. */
static __global__ void k_maxpool_fwd(size_t total, struct dc_pool_desc d, const float *x, float *y)
{
    const size_t hw = (size_t)d.h * d.w, pq = (size_t)d.p * d.q;
    DC_CUDA_FOR(i, total)
    {
        const size_t plane = i / pq;
        const int cell = (int)(i - plane * pq), p = cell / d.q, q = cell - p * d.q;
        const float *xp = x + plane * hw;
        const int at = pool_argmax(d, xp, p, q);
        y[i] = at >= 0 ? xp[at] : 0.0f;
    }
}

/* dx [planes,H,W]: one thread per input cell gathers the dy of the windows
 * (in p, then q order) whose first maximum it is.  Signed zeros as on the CPU:
 * its 2x2 stride-2 path (`direct`) stores dy, its general path adds to +0. */
static __global__ void k_maxpool_bwd(size_t total, struct dc_pool_desc d, int direct, const float *x,
                                     const float *dy, float *dx)
{
    const size_t hw = (size_t)d.h * d.w, pq = (size_t)d.p * d.q;
    DC_CUDA_FOR(i, total)
    {
        const size_t plane = i / hw;
        const int cell = (int)(i - plane * hw), h = cell / d.w, w = cell - h * d.w;
        const float *xp = x + plane * hw, *dyp = dy + plane * pq;
        /* windows p with p*stride - pad <= h < p*stride - pad + size */
        const int ah = h + d.pad - d.size + 1, aw = w + d.pad - d.size + 1;
        const int p0 = ah <= 0 ? 0 : (ah + d.stride - 1) / d.stride;
        const int q0 = aw <= 0 ? 0 : (aw + d.stride - 1) / d.stride;
        const int p1 = min(d.p - 1, (h + d.pad) / d.stride), q1 = min(d.q - 1, (w + d.pad) / d.stride);
        float g = 0.0f;
        int any = 0;
        for (int p = p0; p <= p1; p++)
            for (int q = q0; q <= q1; q++)
                if (pool_argmax(d, xp, p, q) == cell) {
                    g = direct && !any ? dyp[p * d.q + q] : g + dyp[p * d.q + q];
                    any = 1;
                }
        dx[i] = g;
    }
}

/* Max pooling needs no cuDNN descriptor; its shape check is the CPU's plus
 * int offsets within a plane. */
static enum dc_status maxpool_check(const struct dc_pool_desc *d, const char *op)
{
    if (d->n <= 0 || d->c <= 0 || d->h <= 0 || d->w <= 0 || d->size <= 0 || d->stride <= 0 || d->pad < 0 ||
        d->pad >= d->size || d->p <= 0 || d->q <= 0)
        return DC_ERROR(DC_ERR_ARG, "%s: bad shape x[%d,%d,%d,%d] size %d stride %d pad %d -> %dx%d", op,
                        d->n, d->c, d->h, d->w, d->size, d->stride, d->pad, d->p, d->q);
    const int p = (d->h + 2 * d->pad - d->size) / d->stride + 1;
    const int q = (d->w + 2 * d->pad - d->size) / d->stride + 1;
    if (d->h + 2 * d->pad < d->size || d->w + 2 * d->pad < d->size || p != d->p || q != d->q)
        return DC_ERROR(DC_ERR_ARG, "%s: output %dx%d given, but input %dx%d with size %d stride %d pad %d "
                        "gives %dx%d", op, d->p, d->q, d->h, d->w, d->size, d->stride, d->pad, p, q);
    if ((size_t)d->h * d->w > (size_t)INT32_MAX)
        return DC_ERROR(DC_ERR_UNSUPPORTED, "%s: a %dx%d plane is too large for the GPU kernel", op, d->h, d->w);
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_pool_fwd(struct dc_backend *be, const struct dc_pool_desc *d,
                                           const float *x, float *y)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    if (d->is_max) {
        DC_TRY(maxpool_check(d, "pool_fwd"));
        const size_t total = (size_t)d->n * d->c * d->p * d->q;
        DC_CUDA_LAUNCH_N(k_maxpool_fwd, total, ctx->stream, total, *d, x, y);
        return DC_OK;
    }
    DC_TRY(pool_describe(ctx, d, "pool_fwd"));
    const float one = 1.0f, zero = 0.0f;
    DC_CUDNN_CHECK(cudnnPoolingForward(ctx->dnn, ctx->pool, &one, ctx->desc_a, x, &zero, ctx->desc_b, y));
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_pool_bwd(struct dc_backend *be, const struct dc_pool_desc *d,
                                           const float *x, const float *y, const float *dy, float *dx)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    if (d->is_max) { /* the first maximum is found again in x; y is not needed */
        DC_TRY(maxpool_check(d, "pool_bwd"));
        const size_t total = (size_t)d->n * d->c * d->h * d->w;
        const int direct = d->size == 2 && d->stride == 2 && d->pad == 0; /* CPU: dc_pool_is_max2 */
        DC_CUDA_LAUNCH_N(k_maxpool_bwd, total, ctx->stream, total, *d, direct, x, dy, dx);
        return DC_OK;
    }
    DC_TRY(pool_describe(ctx, d, "pool_bwd"));
    const float one = 1.0f, zero = 0.0f;
    DC_CUDNN_CHECK(cudnnPoolingBackward(ctx->dnn, ctx->pool, &one, ctx->desc_b, y, ctx->desc_b, dy,
                                        ctx->desc_a, x, &zero, ctx->desc_a, dx));
    return DC_OK;
}
