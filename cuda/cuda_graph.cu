/* cuda_graph.cu: the training step as one replayable launch sequence: the
 * multi-tensor SGD update (every plain and pruned parameter in one launch,
 * the learning rate read from device memory when it runs) and CUDA graphs
 * (stream capture of a step, instantiate, replay).
 *
 * What must not happen while a step is captured (it would allocate, free or
 * wait, which capture forbids; the capture then fails and the trainer falls
 * back to eager steps), and so happens in the eager warm-up step before:
 *   - conv_fwd / conv_bwd_data / conv_bwd_filter: the first call of a shape
 *     makes its plan (cuDNN descriptors, heuristics) and may grow the cuDNN
 *     workspace (cudaFree + cudaMalloc);
 *   - the network's update list (nn/net.c) is built and uploaded on the
 *     first update;
 *   - first launches of lazily loaded kernels (CUDA_MODULE_LOADING=LAZY).
 * Fixed at backend init, so safe in a graph: the cuBLAS workspace, the step
 * scratch (bias_grad, codebook_grad, softmax_xent statistics) and the record
 * of kernel-found errors.  k-means and moments grow the general scratch but
 * are not part of a step.  A workspace or scratch that grows after a graph
 * was recorded bumps ctx->buffer_gen, and graph_launch then refuses that
 * graph (*ran = 0) instead of replaying it over freed memory.
 *
 * Legend: T tensors in the update list, n elements of one tensor. */
#include <stdlib.h>

#include "cuda_internal.h"

/* Elements of one tensor that one block updates before taking the next chunk. */
#define DC_SGD_CHUNK 16384
#define DC_SGD_MAX_TENSORS 4096 /* shared memory of the chunk table: 8 bytes each */

/* list [T]: every block loads the chunk counts, takes chunks blockIdx.x,
 * blockIdx.x + gridDim.x, ... of the concatenated tensors and updates them
 * with k_sgd_update's arithmetic (cuda_elementwise.cu), operation for
 * operation, so the result equals one sgd_update per tensor bit for bit. */
static __global__ void k_sgd_multi(int count, const struct dc_sgd_tensor *list, const float *lr_dev,
                                   float momentum, float wd, int nesterov)
{
    extern __shared__ unsigned long long first_chunk[]; /* [T + 1]: chunks before tensor t */
    for (int t = threadIdx.x; t < count; t += blockDim.x)
        first_chunk[t + 1] = (list[t].n + DC_SGD_CHUNK - 1) / DC_SGD_CHUNK;
    __syncthreads();
    if (threadIdx.x == 0) {
        first_chunk[0] = 0;
        for (int t = 1; t <= count; t++)
            first_chunk[t] += first_chunk[t - 1];
    }
    __syncthreads();
    const unsigned long long chunks = first_chunk[count];
    const float lr = *lr_dev;
    int t = 0;
    for (unsigned long long c = blockIdx.x; c < chunks; c += gridDim.x) {
        while (first_chunk[t + 1] <= c) /* chunks only grow: t only moves forward */
            t++;
        float *w = list[t].w, *v = list[t].v;
        const float *g = list[t].g, *mask = list[t].mask;
        const size_t n = list[t].n;
        const size_t start = (size_t)(c - first_chunk[t]) * DC_SGD_CHUNK;
        const size_t end = start + DC_SGD_CHUNK < n ? start + DC_SGD_CHUNK : n;
        for (size_t i = start + threadIdx.x; i < end; i += blockDim.x)
            dc_sgd_element(i, w, g, v, mask, lr, momentum, wd, nesterov);
    }
}

extern "C" enum dc_status dc_cuda_sgd_multi(struct dc_backend *be, int count, const struct dc_sgd_tensor *list,
                                            const float *lr, float momentum, float wd, int nesterov)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    if (count < 0 || count > DC_SGD_MAX_TENSORS || (count > 0 && (!list || !lr)))
        return DC_ERROR(DC_ERR_ARG, "sgd_multi: %d tensors (at most %d) with list %p and lr %p", count,
                        DC_SGD_MAX_TENSORS, (const void *)list, (const void *)lr);
    if (count == 0)
        return DC_OK;
    /* The grid does not depend on the sizes (they are in device memory): a
     * few blocks per SM take the chunks in turn. */
    unsigned blocks = (unsigned)(ctx->sm_count > 0 ? 4 * ctx->sm_count : 128);
    size_t shared = sizeof(unsigned long long) * ((size_t)count + 1);
    k_sgd_multi<<<blocks, DC_CUDA_THREADS, shared, ctx->stream>>>(count, list, lr, momentum, wd, nesterov);
    DC_CUDA_LAUNCH_CHECK("k_sgd_multi");
    return DC_OK;
}

/* ---- graphs ---- */

struct dc_cuda_graph {
    cudaGraphExec_t exec;
    unsigned int buffer_gen; /* ctx->buffer_gen when recorded */
};

extern "C" enum dc_status dc_cuda_graph_begin(struct dc_backend *be)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    if (ctx->capturing)
        return DC_ERROR(DC_ERR_ARG, "graph_begin while a graph is already being recorded");
    /* Thread-local: an unsafe call (cudaMalloc, a synchronisation) from this
     * thread invalidates the capture instead of silently baking in a pointer;
     * other threads are not disturbed. */
    DC_CUDA_CHECK(cudaStreamBeginCapture(ctx->stream, cudaStreamCaptureModeThreadLocal));
    ctx->capturing = 1;
    ctx->capture_gen = ctx->buffer_gen;
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_graph_end(struct dc_backend *be, void **graph)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    *graph = NULL;
    if (!ctx->capturing)
        return DC_ERROR(DC_ERR_ARG, "graph_end without a graph_begin");
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(ctx->stream, &g);
    ctx->capturing = 0;
    if (e != cudaSuccess || !g) {
        (void)cudaGetLastError(); /* not sticky: the stream is out of capture mode again */
        if (g)
            (void)cudaGraphDestroy(g);
        return DC_ERROR(DC_ERR_UNSUPPORTED, "recording the step as a CUDA graph failed: %s (%s)",
                        cudaGetErrorString(e), cudaGetErrorName(e));
    }
    if (ctx->buffer_gen != ctx->capture_gen) {
        (void)cudaGraphDestroy(g);
        return DC_ERROR(DC_ERR_UNSUPPORTED, "a workspace was reallocated while the step was recorded");
    }
    cudaGraphExec_t exec = NULL;
    e = cudaGraphInstantiate(&exec, g, 0);
    (void)cudaGraphDestroy(g); /* the executable graph is independent of it */
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return DC_ERROR(DC_ERR_UNSUPPORTED, "cudaGraphInstantiate of the recorded step failed: %s (%s)",
                        cudaGetErrorString(e), cudaGetErrorName(e));
    }
    struct dc_cuda_graph *h = (struct dc_cuda_graph *)calloc(1, sizeof *h);
    if (!h) {
        (void)cudaGraphExecDestroy(exec);
        return DC_ERROR(DC_ERR_NOMEM, "out of host memory for a CUDA graph");
    }
    h->exec = exec;
    h->buffer_gen = ctx->capture_gen;
    *graph = h;
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_graph_launch(struct dc_backend *be, void *graph, int *ran)
{
    struct dc_cuda_ctx *ctx = dc_cuda_ctx_of(be);
    struct dc_cuda_graph *h = (struct dc_cuda_graph *)graph;
    *ran = 0;
    if (!h)
        return DC_ERROR(DC_ERR_ARG, "graph_launch of a NULL graph");
    if (h->buffer_gen != ctx->buffer_gen)
        return DC_OK; /* it would use a freed workspace: the caller records anew */
    DC_CUDA_CHECK(cudaGraphLaunch(h->exec, ctx->stream));
    ctx->deferred_pending = 1; /* its softmax_xent may record a bad label */
    *ran = 1;
    return DC_OK;
}

extern "C" void dc_cuda_graph_free(struct dc_backend *be, void *graph)
{
    (void)be;
    struct dc_cuda_graph *h = (struct dc_cuda_graph *)graph;
    if (!h)
        return;
    (void)cudaGraphExecDestroy(h->exec); /* waits for nothing: replays in flight finish */
    free(h);
}
