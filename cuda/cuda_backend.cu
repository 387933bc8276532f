/* cuda_backend.cu: the CUDA backend's constructor and destructor, its memory
 * ops, and the grow-only device buffers.  Every op runs on one stream owned
 * by the backend, so a training step is a fixed launch sequence that a CUDA
 * graph can capture; only downloads and `sync` wait for the device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

static_assert(sizeof(struct dc_backend_ops) == DC_OP_COUNT * sizeof(void (*)(void)),
              "struct dc_backend_ops and enum dc_op differ: wire the new op into the CUDA backend");

extern "C" int dc_cuda_compiled(void) { return 1; }

/* ---- grow-only buffers ---- */

extern "C" enum dc_status dc_cuda_grow(void **buf, size_t *have, size_t bytes, const char *what)
{
    if (bytes <= *have)
        return DC_OK;
    if (*buf) {
        DC_CUDA_CHECK(cudaFree(*buf)); /* synchronises: earlier users are done */
        *buf = NULL;
        *have = 0;
    }
    cudaError_t e = cudaMalloc(buf, bytes);
    if (e != cudaSuccess) {
        *buf = NULL;
        (void)cudaGetLastError();
        return DC_ERROR(DC_ERR_NOMEM, "cannot allocate %zu bytes of GPU %s: %s; use a smaller batch",
                        bytes, what, cudaGetErrorString(e));
    }
    *have = bytes;
    return DC_OK;
}

/* A reallocation bumps buffer_gen: graphs recorded before it are refused
 * (see cuda_graph.cu), since they hold the old address. */
extern "C" enum dc_status dc_cuda_workspace(struct dc_cuda_ctx *ctx, size_t bytes, void **out)
{
    if (bytes > ctx->workspace_bytes)
        ctx->buffer_gen++;
    DC_TRY(dc_cuda_grow(&ctx->workspace, &ctx->workspace_bytes, bytes, "cuDNN workspace"));
    *out = ctx->workspace;
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_scratch(struct dc_cuda_ctx *ctx, size_t bytes, void **out)
{
    if (bytes > ctx->scratch_bytes)
        ctx->buffer_gen++;
    DC_TRY(dc_cuda_grow(&ctx->scratch, &ctx->scratch_bytes, bytes, "scratch"));
    *out = ctx->scratch;
    return DC_OK;
}

/* ---- memory ops ---- */

static enum dc_status cuda_alloc(struct dc_backend *be, void **ptr, size_t bytes)
{
    (void)be;
    *ptr = NULL;
    if (bytes == 0)
        return DC_OK;
    cudaError_t e = cudaMalloc(ptr, bytes);
    if (e != cudaSuccess) {
        *ptr = NULL;
        (void)cudaGetLastError();
        return DC_ERROR(e == cudaErrorMemoryAllocation ? DC_ERR_NOMEM : DC_ERR_DEVICE,
                        "cudaMalloc of %zu bytes failed: %s; use a smaller batch or model", bytes,
                        cudaGetErrorString(e));
    }
    return DC_OK;
}

static void cuda_release(struct dc_backend *be, void *ptr)
{
    (void)be;
    if (ptr)
        (void)cudaFree(ptr); /* nothing useful to do on failure; the next call reports it */
}

static enum dc_status cuda_upload(struct dc_backend *be, void *dst, const void *host_src, size_t bytes)
{
    if (bytes == 0)
        return DC_OK;
    if (dc_cuda_ctx_of(be)->capturing) /* a graph would read the host address at every replay */
        return DC_ERROR(DC_ERR_UNSUPPORTED, "upload while a graph is recorded; upload before graph_begin");
    /* From pageable memory this returns once the source is staged, so the
     * caller may reuse its buffer at once. */
    DC_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice,
                                  dc_cuda_ctx_of(be)->stream));
    return DC_OK;
}

static enum dc_status cuda_download(struct dc_backend *be, void *host_dst, const void *src, size_t bytes)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    if (bytes == 0)
        return DC_OK;
    DC_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, ctx->stream));
    DC_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    return dc_cuda_deferred_check(ctx); /* e.g. a bad label, seen when the statistics are read */
}

static enum dc_status cuda_copy(struct dc_backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes == 0 || dst == src)
        return DC_OK;
    DC_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, dc_cuda_ctx_of(be)->stream));
    return DC_OK;
}

static __global__ void k_fill(float *x, float value, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = value;
}

extern "C" enum dc_status dc_cuda_fill(struct dc_backend *be, float *x, float value, size_t n)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if (n == 0)
        return DC_OK;
    if (bits == 0) { /* +0.0f is all zero bytes: the copy engine does it */
        DC_CUDA_CHECK(cudaMemsetAsync(x, 0, n * sizeof(float), ctx->stream));
        return DC_OK;
    }
    DC_CUDA_LAUNCH_N(k_fill, n, ctx->stream, x, value, n);
    return DC_OK;
}

static enum dc_status cuda_sync(struct dc_backend *be)
{
    DC_CUDA_CHECK(cudaStreamSynchronize(dc_cuda_ctx_of(be)->stream));
    return dc_cuda_deferred_check(dc_cuda_ctx_of(be));
}

/* ---- construction ---- */

static void cuda_set_ops(struct dc_backend_ops *o)
{
    o->alloc = cuda_alloc;
    o->release = cuda_release;
    o->upload = cuda_upload;
    o->download = cuda_download;
    o->copy = cuda_copy;
    o->fill = dc_cuda_fill;
    o->sync = cuda_sync;
    o->gemm = dc_cuda_gemm;
    o->axpby = dc_cuda_axpby;
    o->mul = dc_cuda_mul;
    o->bias_add = dc_cuda_bias_add;
    o->bias_grad = dc_cuda_bias_grad;
    o->relu_fwd = dc_cuda_relu_fwd;
    o->relu_bwd = dc_cuda_relu_bwd;
    o->dropout_fwd = dc_cuda_dropout_fwd;
    o->conv_fwd = dc_cuda_conv_fwd;
    o->conv_bwd_data = dc_cuda_conv_bwd_data;
    o->conv_bwd_filter = dc_cuda_conv_bwd_filter;
    o->pool_fwd = dc_cuda_pool_fwd;
    o->pool_bwd = dc_cuda_pool_bwd;
    o->bn_fwd_train = dc_cuda_bn_fwd_train;
    o->bn_fwd_infer = dc_cuda_bn_fwd_infer;
    o->bn_bwd = dc_cuda_bn_bwd;
    o->concat = dc_cuda_concat;
    o->split = dc_cuda_split;
    o->softmax_xent = dc_cuda_softmax_xent;
    o->argmax = dc_cuda_argmax;
    o->sgd_update = dc_cuda_sgd_update;
    o->threshold_mask = dc_cuda_threshold_mask;
    o->kmeans_1d = dc_cuda_kmeans_1d;
    o->codebook_gather = dc_cuda_codebook_gather;
    o->codebook_grad = dc_cuda_codebook_grad;
    o->batch_images = dc_cuda_batch_images;
    o->batch_labels = dc_cuda_batch_labels;
    o->spmat_prepare = dc_cuda_spmat_prepare;
    o->spmat_release = dc_cuda_spmat_release;
    o->spmat_fc = dc_cuda_spmat_fc;
    o->spmat_conv = dc_cuda_spmat_conv;
    o->moments = dc_cuda_moments;
    o->sgd_multi = dc_cuda_sgd_multi;
    o->graph_begin = dc_cuda_graph_begin;
    o->graph_end = dc_cuda_graph_end;
    o->graph_launch = dc_cuda_graph_launch;
    o->graph_free = dc_cuda_graph_free;
}

/* Is there a GPU at all?  Failing here is the ordinary CPU-only case, so the
 * status is UNSUPPORTED (`device = auto` then falls back to the CPU). */
static enum dc_status cuda_probe(int device_index)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return DC_ERROR(DC_ERR_UNSUPPORTED, "no CUDA GPU answered (cudaGetDeviceCount: %s); "
                        "use device = cpu", cudaGetErrorString(e));
    }
    if (count == 0)
        return DC_ERROR(DC_ERR_UNSUPPORTED, "no CUDA GPU found (cudaGetDeviceCount = 0); use device = cpu");
    if (device_index < 0 || device_index >= count)
        return DC_ERROR(DC_ERR_ARG, "GPU index %d asked for but this machine has %d GPU(s) (0..%d)",
                        device_index, count, count - 1);
    return DC_OK;
}

static enum dc_status cuda_open(struct dc_backend *be, struct dc_cuda_ctx *ctx)
{
    int tf32 = be->opts.tf32;
    struct cudaDeviceProp prop;

    DC_CUDA_CHECK(cudaSetDevice(ctx->device));
    DC_CUDA_CHECK(cudaGetDeviceProperties(&prop, ctx->device));
    ctx->sm_count = prop.multiProcessorCount;
    DC_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));

    DC_CUBLAS_CHECK(cublasCreate(&ctx->blas));
    DC_CUBLAS_CHECK(cublasSetStream(ctx->blas, ctx->stream));
    /* Our own workspace: cuBLAS then never allocates during a graph capture. */
    DC_CUDA_CHECK(cudaMalloc(&ctx->blas_ws, DC_CUDA_BLAS_WORKSPACE));
    DC_CUBLAS_CHECK(cublasSetWorkspace(ctx->blas, ctx->blas_ws, DC_CUDA_BLAS_WORKSPACE));
    /* Default math is true FP32; TF32 only when the config asks for it. */
    DC_CUBLAS_CHECK(cublasSetMathMode(ctx->blas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));

    DC_CUDNN_CHECK(cudnnCreate(&ctx->dnn));
    DC_CUDNN_CHECK(cudnnSetStream(ctx->dnn, ctx->stream));
    DC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&ctx->desc_a));
    DC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&ctx->desc_b));
    DC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&ctx->desc_param));
    DC_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&ctx->pool));
    DC_CUSPARSE_CHECK(cusparseCreate(&ctx->sparse));
    DC_CUSPARSE_CHECK(cusparseSetStream(ctx->sparse, ctx->stream));
    DC_CUDA_CHECK(cudaMalloc(&ctx->step_buf, DC_CUDA_STEP_DOUBLES * sizeof(double)));
    DC_TRY(dc_cuda_deferred_init(ctx));

    /* prop.name may be up to 256 bytes: keep the first 96, the rest fits 128 */
    snprintf(be->description, sizeof be->description, "%.96s (sm_%d%d), %s", prop.name, prop.major,
             prop.minor, tf32 ? "TF32" : "FP32");
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_backend_init(struct dc_backend *be)
{
    DC_TRY(cuda_probe(be->opts.device_index));
    struct dc_cuda_ctx *ctx = (struct dc_cuda_ctx *)calloc(1, sizeof *ctx);
    if (!ctx)
        return DC_ERROR(DC_ERR_NOMEM, "out of host memory for the CUDA backend state");
    ctx->device = be->opts.device_index;
    be->ctx = ctx;
    be->name = "cuda";
    be->kind = DC_DEVICE_CUDA;
    enum dc_status s = cuda_open(be, ctx);
    if (s != DC_OK) {
        dc_cuda_backend_shutdown(be);
        return s;
    }
    cuda_set_ops(&be->ops);
    return DC_OK;
}

/* Tears down whatever cuda_open got to, in reverse order; safe on a partial init. */
extern "C" void dc_cuda_backend_shutdown(struct dc_backend *be)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    if (!ctx)
        return;
    if (ctx->stream && ctx->capturing) { /* a caller that never called graph_end */
        cudaGraph_t g = NULL;
        if (cudaStreamEndCapture(ctx->stream, &g) == cudaSuccess && g)
            (void)cudaGraphDestroy(g);
        (void)cudaGetLastError();
    }
    if (ctx->stream)
        (void)cudaStreamSynchronize(ctx->stream);
    dc_cuda_conv_plans_free(ctx);
    if (ctx->pool)
        cudnnDestroyPoolingDescriptor(ctx->pool);
    if (ctx->desc_param)
        cudnnDestroyTensorDescriptor(ctx->desc_param);
    if (ctx->desc_b)
        cudnnDestroyTensorDescriptor(ctx->desc_b);
    if (ctx->desc_a)
        cudnnDestroyTensorDescriptor(ctx->desc_a);
    if (ctx->sparse)
        cusparseDestroy(ctx->sparse);
    if (ctx->dnn)
        cudnnDestroy(ctx->dnn);
    if (ctx->blas)
        cublasDestroy(ctx->blas);
    if (ctx->workspace)
        (void)cudaFree(ctx->workspace);
    if (ctx->scratch)
        (void)cudaFree(ctx->scratch);
    if (ctx->step_buf)
        (void)cudaFree(ctx->step_buf);
    dc_cuda_deferred_free(ctx);
    if (ctx->blas_ws)
        (void)cudaFree(ctx->blas_ws);
    if (ctx->stream)
        (void)cudaStreamDestroy(ctx->stream);
    free(ctx);
    be->ctx = NULL;
}
