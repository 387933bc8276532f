/* cuda_conv.cu: 2-D convolution forward, backward-data and backward-filter
 * with cuDNN.  Each shape gets a plan (descriptors plus, per direction, the
 * chosen algorithm), made on first use and kept, so a training step after
 * the first does no searching and no allocation and can be captured in a
 * CUDA graph.
 *
 * The choice must make training repeatable and a resumed run bit-identical
 * (trainer.c promises both), so it is not timed: cudnnFind measures, and
 * another process (or the same one under load) may measure another winner.
 * cuDNN's heuristics (cudnnGetConvolution*Algorithm_v7) depend only on the
 * shape, the math type, the GPU and the cuDNN version; of their ranked list
 * we take the first entry that succeeded, is CUDNN_DETERMINISTIC (no
 * atomics-based backward-data or backward-filter variant), fits the workspace
 * cap and, without TF32, reports CUDNN_FMA_MATH (true FP32: cuDNN's default
 * math would let FP32 convolutions run on TF32 tensor cores).  With TF32 any
 * math type cuDNN reports is allowed and is set when the algorithm runs.
 *
 * Legend: x [N,C,H,W], w [K,C,R,S], y [N,K,P,Q]. */
#include <string.h>

#include "cuda_internal.h"

/* Largest workspace an algorithm may ask for; faster ones beyond it are skipped. */
#define DC_CONV_WORKSPACE_CAP ((size_t)1 << 30)

static enum dc_status conv_check(const struct dc_conv_desc *d, const char *op)
{
    if (d->n <= 0 || d->c <= 0 || d->h <= 0 || d->w <= 0 || d->k <= 0 || d->r <= 0 || d->s <= 0 ||
        d->stride <= 0 || d->pad < 0)
        return DC_ERROR(DC_ERR_ARG, "%s: bad shape x[%d,%d,%d,%d] w[%d,%d,%d,%d] stride %d pad %d", op,
                        d->n, d->c, d->h, d->w, d->k, d->c, d->r, d->s, d->stride, d->pad);
    int p = (d->h + 2 * d->pad - d->r) / d->stride + 1;
    int q = (d->w + 2 * d->pad - d->s) / d->stride + 1;
    if (d->h + 2 * d->pad < d->r || d->w + 2 * d->pad < d->s || d->p != p || d->q != q)
        return DC_ERROR(DC_ERR_ARG, "%s: output %dx%d does not match input %dx%d, kernel %dx%d, "
                        "stride %d, pad %d (expected %dx%d)", op, d->p, d->q, d->h, d->w, d->r, d->s,
                        d->stride, d->pad, p, q);
    return DC_OK;
}

static enum dc_status plan_describe(struct dc_cuda_conv_plan *pl, const struct dc_conv_desc *d)
{
    if (!pl->conv) {
        DC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&pl->x));
        DC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&pl->y));
        DC_CUDNN_CHECK(cudnnCreateFilterDescriptor(&pl->w));
        DC_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&pl->conv));
    }
    DC_CUDNN_CHECK(cudnnSetTensor4dDescriptor(pl->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->c, d->h, d->w));
    DC_CUDNN_CHECK(cudnnSetTensor4dDescriptor(pl->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->k, d->p, d->q));
    DC_CUDNN_CHECK(cudnnSetFilter4dDescriptor(pl->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, d->k, d->c, d->r, d->s));
    DC_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(pl->conv, d->pad, d->pad, d->stride, d->stride, 1, 1,
                                                   CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    int n, c, h, w;
    DC_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(pl->conv, pl->x, pl->w, &n, &c, &h, &w));
    if (n != d->n || c != d->k || h != d->p || w != d->q)
        return DC_ERROR(DC_ERR_ARG, "conv: cuDNN computes output [%d,%d,%d,%d], the layer expects [%d,%d,%d,%d]",
                        n, c, h, w, d->n, d->k, d->p, d->q);
    return DC_OK;
}

/* The plan for this shape: cached, else a free slot, else the oldest-filled one. */
static enum dc_status plan_get(struct dc_cuda_ctx *ctx, const struct dc_conv_desc *d,
                               struct dc_cuda_conv_plan **out)
{
    for (int i = 0; i < DC_CUDA_MAX_PLANS; i++)
        if (ctx->plans[i].used && memcmp(&ctx->plans[i].key, d, sizeof *d) == 0) {
            *out = &ctx->plans[i];
            return DC_OK;
        }
    struct dc_cuda_conv_plan *pl = NULL;
    for (int i = 0; i < DC_CUDA_MAX_PLANS && !pl; i++)
        if (!ctx->plans[i].used)
            pl = &ctx->plans[i];
    if (!pl) {
        pl = &ctx->plans[ctx->next_victim];
        ctx->next_victim = (ctx->next_victim + 1) % DC_CUDA_MAX_PLANS;
    }
    pl->used = 0;
    for (int dir = 0; dir < DC_CUDA_CONV_DIRS; dir++)
        pl->dir[dir].found = 0;
    DC_TRY(plan_describe(pl, d));
    pl->key = *d;
    pl->used = 1;
    *out = pl;
    return DC_OK;
}

extern "C" void dc_cuda_conv_plans_free(struct dc_cuda_ctx *ctx)
{
    for (int i = 0; i < DC_CUDA_MAX_PLANS; i++) {
        struct dc_cuda_conv_plan *pl = &ctx->plans[i];
        if (pl->x)
            cudnnDestroyTensorDescriptor(pl->x);
        if (pl->y)
            cudnnDestroyTensorDescriptor(pl->y);
        if (pl->w)
            cudnnDestroyFilterDescriptor(pl->w);
        if (pl->conv)
            cudnnDestroyConvolutionDescriptor(pl->conv);
        memset(pl, 0, sizeof *pl);
    }
}

/* Whether a heuristic entry may run: it is supported, deterministic and,
 * without TF32, plain FP32 FMA math; with TF32 never a math type that lets
 * cuDNN convert FP32 data down to FP16 (CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION). */
template <typename Perf> static int algo_ok(const Perf &r, int tf32)
{
    return r.status == CUDNN_STATUS_SUCCESS && r.determinism == CUDNN_DETERMINISTIC &&
           (tf32 ? r.mathType == CUDNN_DEFAULT_MATH || r.mathType == CUDNN_TENSOR_OP_MATH ||
                       r.mathType == CUDNN_FMA_MATH
                 : r.mathType == CUDNN_FMA_MATH);
}

static const char *const dir_name[DC_CUDA_CONV_DIRS] = {"conv_fwd", "conv_bwd_data", "conv_bwd_filter"};

/* Workspace of algorithm `algo` of one direction under the math type already
 * set on the descriptor; a failure means "not usable" (status kept). */
static cudnnStatus_t conv_ws_size(struct dc_cuda_ctx *ctx, struct dc_cuda_conv_plan *pl, int dir, int algo,
                                  size_t *ws)
{
    if (dir == DC_CUDA_CONV_FWD)
        return cudnnGetConvolutionForwardWorkspaceSize(ctx->dnn, pl->x, pl->w, pl->conv, pl->y,
                                                       (cudnnConvolutionFwdAlgo_t)algo, ws);
    if (dir == DC_CUDA_CONV_BWD_DATA)
        return cudnnGetConvolutionBackwardDataWorkspaceSize(ctx->dnn, pl->w, pl->y, pl->conv, pl->x,
                                                            (cudnnConvolutionBwdDataAlgo_t)algo, ws);
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(ctx->dnn, pl->x, pl->y, pl->conv, pl->w,
                                                          (cudnnConvolutionBwdFilterAlgo_t)algo, ws);
}

/* The first usable entry of a heuristic ranking (see the file comment):
 * fills the plan's direction and returns 1, or 0 when none qualifies. */
template <typename Perf>
static int take_first(struct dc_cuda_ctx *ctx, struct dc_cuda_conv_plan *pl, int dir, const Perf *r, int count,
                      int tf32)
{
    for (int i = 0; i < count; i++) {
        if (!algo_ok(r[i], tf32))
            continue;
        /* the math type the entry was ranked under is the one it runs with */
        const cudnnMathType_t math = tf32 ? r[i].mathType : CUDNN_FMA_MATH;
        size_t ws = 0;
        if (cudnnSetConvolutionMathType(pl->conv, math) != CUDNN_STATUS_SUCCESS ||
            conv_ws_size(ctx, pl, dir, (int)r[i].algo, &ws) != CUDNN_STATUS_SUCCESS ||
            ws > DC_CONV_WORKSPACE_CAP)
            continue;
        pl->dir[dir].algo = (int)r[i].algo;
        pl->dir[dir].math = math;
        pl->dir[dir].workspace = ws;
        return 1;
    }
    return 0;
}

/* Choose the algorithm of one direction (once per shape) and size its workspace. */
static enum dc_status conv_find(struct dc_cuda_ctx *ctx, struct dc_cuda_conv_plan *pl, int dir, int tf32)
{
    cudnnConvolutionFwdAlgoPerf_t rf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    cudnnConvolutionBwdDataAlgoPerf_t rd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    cudnnConvolutionBwdFilterAlgoPerf_t rw[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int count = 0, ok = 0;
    /* rank under the math this run allows: FMA only, or anything with TF32 */
    DC_CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv, tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    if (dir == DC_CUDA_CONV_FWD) {
        DC_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(ctx->dnn, pl->x, pl->w, pl->conv, pl->y,
                                                              CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, rf));
        ok = take_first(ctx, pl, dir, rf, count, tf32);
    } else if (dir == DC_CUDA_CONV_BWD_DATA) {
        DC_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx->dnn, pl->w, pl->y, pl->conv, pl->x,
                                                                   CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count,
                                                                   rd));
        ok = take_first(ctx, pl, dir, rd, count, tf32);
    } else {
        DC_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(ctx->dnn, pl->x, pl->y, pl->conv, pl->w,
                                                                     CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                                     &count, rw));
        ok = take_first(ctx, pl, dir, rw, count, tf32);
    }
    const struct dc_conv_desc *d = &pl->key;
    if (!ok)
        return DC_ERROR(DC_ERR_DEVICE, "%s: cuDNN offers no deterministic %s algorithm within %zu MiB of "
                        "workspace for x[%d,%d,%d,%d] w[%d,%d,%d,%d] stride %d pad %d", dir_name[dir],
                        tf32 ? "(TF32 allowed)" : "FP32 (FMA math)", DC_CONV_WORKSPACE_CAP >> 20, d->n, d->c,
                        d->h, d->w, d->k, d->c, d->r, d->s, d->stride, d->pad);
    pl->dir[dir].found = 1;
    return DC_OK;
}

/* Everything a direction needs before its cuDNN call: checked shape, plan,
 * algorithm, workspace, and the math type set on the descriptor. */
static enum dc_status conv_prepare(struct dc_backend *be, const struct dc_conv_desc *d, int dir,
                                   struct dc_cuda_conv_plan **plan, void **ws)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    struct dc_cuda_conv_plan *pl;
    DC_TRY(conv_check(d, dir_name[dir]));
    DC_TRY(plan_get(ctx, d, &pl));
    if (!pl->dir[dir].found)
        DC_TRY(conv_find(ctx, pl, dir, be->opts.tf32));
    DC_TRY(dc_cuda_workspace(ctx, pl->dir[dir].workspace, ws));
    DC_CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv, pl->dir[dir].math));
    *plan = pl;
    return DC_OK;
}

static const float dc_one = 1.0f, dc_zero = 0.0f;

extern "C" enum dc_status dc_cuda_conv_fwd(struct dc_backend *be, const struct dc_conv_desc *d,
                                           const float *x, const float *w, float *y)
{
    struct dc_cuda_conv_plan *pl;
    void *ws;
    DC_TRY(conv_prepare(be, d, DC_CUDA_CONV_FWD, &pl, &ws));
    DC_CUDNN_CHECK(cudnnConvolutionForward(dc_cuda_ctx_of(be)->dnn, &dc_one, pl->x, x, pl->w, w, pl->conv,
                                           (cudnnConvolutionFwdAlgo_t)pl->dir[DC_CUDA_CONV_FWD].algo, ws,
                                           pl->dir[DC_CUDA_CONV_FWD].workspace, &dc_zero, pl->y, y));
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_conv_bwd_data(struct dc_backend *be, const struct dc_conv_desc *d,
                                                const float *w, const float *dy, float *dx)
{
    struct dc_cuda_conv_plan *pl;
    void *ws;
    DC_TRY(conv_prepare(be, d, DC_CUDA_CONV_BWD_DATA, &pl, &ws));
    DC_CUDNN_CHECK(cudnnConvolutionBackwardData(dc_cuda_ctx_of(be)->dnn, &dc_one, pl->w, w, pl->y, dy, pl->conv,
                                                (cudnnConvolutionBwdDataAlgo_t)pl->dir[DC_CUDA_CONV_BWD_DATA].algo, ws,
                                                pl->dir[DC_CUDA_CONV_BWD_DATA].workspace, &dc_zero, pl->x, dx));
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_conv_bwd_filter(struct dc_backend *be, const struct dc_conv_desc *d,
                                                  const float *x, const float *dy, float *dw)
{
    struct dc_cuda_conv_plan *pl;
    void *ws;
    DC_TRY(conv_prepare(be, d, DC_CUDA_CONV_BWD_FILTER, &pl, &ws));
    DC_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
        dc_cuda_ctx_of(be)->dnn, &dc_one, pl->x, x, pl->y, dy, pl->conv,
        (cudnnConvolutionBwdFilterAlgo_t)pl->dir[DC_CUDA_CONV_BWD_FILTER].algo, ws,
        pl->dir[DC_CUDA_CONV_BWD_FILTER].workspace, &dc_zero, pl->w, dw));
    return DC_OK;
}
