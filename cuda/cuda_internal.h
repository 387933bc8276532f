/* cuda_internal.h: state shared by the CUDA backend's files (stream, library
 * handles, the cuDNN convolution plan cache, grow-only device buffers) and the
 * declarations of every op, one .cu file per op family.  The ops follow the
 * contracts in include/dc/backend.h; shapes use its legend (N C H W K R S P Q M).
 * Only .cu files include this header. */
#ifndef DC_CUDA_INTERNAL_H
#define DC_CUDA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cuda_check.h"
#include "dc/backend.h"

#define DC_CUDA_THREADS 256     /* block size of the elementwise kernels */
#define DC_CUDA_MAX_BLOCKS 4096 /* grid-stride kernels never need more to fill an H100 */
#define DC_CUDA_MAX_PLANS 64    /* cached convolution shapes (VGG-19 uses about 20) */
#define DC_CUDA_STEP_DOUBLES 65536 /* fixed scratch of the ops inside a training step */
#define DC_CUDA_BLAS_WORKSPACE ((size_t)32 << 20) /* NVIDIA's advice for Hopper */

/* The three directions of a convolution, indexing dc_cuda_conv_plan.dir. */
enum dc_cuda_conv_dir { DC_CUDA_CONV_FWD, DC_CUDA_CONV_BWD_DATA, DC_CUDA_CONV_BWD_FILTER, DC_CUDA_CONV_DIRS };

/* One convolution shape: its cuDNN descriptors and, per direction, the
 * algorithm chosen from cuDNN's heuristics (on first use, then reused). */
struct dc_cuda_conv_plan {
    int used;
    struct dc_conv_desc key;
    cudnnTensorDescriptor_t x, y;      /* [N,C,H,W], [N,K,P,Q] */
    cudnnFilterDescriptor_t w;         /* [K,C,R,S] */
    cudnnConvolutionDescriptor_t conv;
    struct {
        int found;
        int algo;                      /* a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t */
        cudnnMathType_t math;
        size_t workspace;
    } dir[DC_CUDA_CONV_DIRS];
};

/* An argument error that a kernel finds (a label outside [0, K), an
 * assignment >= M) and the host cannot see without a sync.  The first launch
 * that finds one records the lowest row or weight index it saw; the next
 * download or sync reports it with the CPU reference's message
 * (dc_cuda_deferred_check) and clears it.  Device memory, zero = none. */
struct dc_cuda_deferred {
    unsigned int seq;            /* launch that recorded it (dc_cuda_defer_seq), 0 = none */
    int op;                      /* enum dc_op of that launch */
    int limit;                   /* K or M */
    int pad_;
    unsigned long long inv_key;  /* ~(index << bits | value): atomicMax keeps the lowest index */
};

struct dc_cuda_ctx {
    int device;
    int sm_count;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws;          /* cuBLAS workspace, DC_CUDA_BLAS_WORKSPACE bytes */
    cudnnHandle_t dnn;
    cusparseHandle_t sparse; /* csr products of compressed inference (cuda_spmat.cu) */
    /* reusable descriptors for pooling and batch norm (set per call, host only) */
    cudnnTensorDescriptor_t desc_a, desc_b, desc_param;
    cudnnPoolingDescriptor_t pool;
    /* Scratch of ops that run inside a training step (bias_grad,
     * codebook_grad): allocated once at init and never moved, so a captured
     * CUDA graph that uses it stays valid. */
    double *step_buf;
    /* cuDNN workspace and general scratch (k-means, moments): grown when a
     * call needs more, then kept.  Growing frees the old buffer, so capture
     * a graph only after a warm-up step has run every shape it contains, and
     * re-capture after running a new convolution shape. */
    void *workspace;
    size_t workspace_bytes;
    void *scratch;
    size_t scratch_bytes;
    struct dc_cuda_conv_plan plans[DC_CUDA_MAX_PLANS];
    int next_victim;
    struct dc_cuda_deferred *deferred; /* device record of a kernel-found argument error */
    unsigned int deferred_seq;         /* last launch id handed out; 0 = no such launch yet */
    int deferred_pending;              /* such a launch (or a graph) queued since the last check */
    /* Graphs (cuda_graph.cu): buffer_gen counts reallocations of the
     * workspace and scratch, so a graph recorded before one is refused. */
    unsigned int buffer_gen;
    unsigned int capture_gen;          /* buffer_gen at graph_begin */
    int capturing;                     /* between graph_begin and graph_end */
};

static inline struct dc_cuda_ctx *dc_cuda_ctx_of(struct dc_backend *be)
{
    return (struct dc_cuda_ctx *)be->ctx;
}

/* Blocks for a grid-stride loop over n elements (at least 1). */
static inline unsigned dc_cuda_blocks(size_t n)
{
    size_t b = (n + DC_CUDA_THREADS - 1) / DC_CUDA_THREADS;
    if (b < 1)
        b = 1;
    if (b > DC_CUDA_MAX_BLOCKS)
        b = DC_CUDA_MAX_BLOCKS;
    return (unsigned)b;
}

/* Launch an elementwise kernel over n elements on `stream` and check the launch. */
#define DC_CUDA_LAUNCH_N(kernel, n, stream, ...)                                     \
    do {                                                                             \
        kernel<<<dc_cuda_blocks(n), DC_CUDA_THREADS, 0, (stream)>>>(__VA_ARGS__);    \
        DC_CUDA_LAUNCH_CHECK(#kernel);                                               \
    } while (0)

/* Round a byte offset up so carved sub-buffers stay aligned for any type. */
static inline size_t dc_cuda_align(size_t bytes) { return (bytes + 255) & ~(size_t)255; }

#ifdef __CUDACC__
/* One element of PyTorch's SGD (w, v updated in place): the CPU reference's
 * operation order without fused multiply-adds.  sgd_update and sgd_multi
 * share it so they stay bit-identical. */
static __device__ __forceinline__ void dc_sgd_element(size_t i, float *w, const float *g, float *v,
                                                      const float *mask, float lr, float momentum, float wd,
                                                      int nesterov)
{
    float wi = w[i];
    float gi = __fadd_rn(g[i], __fmul_rn(wd, wi));
    if (mask)
        gi = __fmul_rn(gi, mask[i]);
    float step = gi;
    if (v) {
        float vi = __fadd_rn(__fmul_rn(momentum, v[i]), gi);
        v[i] = vi;
        step = nesterov ? __fadd_rn(gi, __fmul_rn(momentum, vi)) : vi;
    }
    wi = __fsub_rn(wi, __fmul_rn(lr, step));
    w[i] = mask ? __fmul_rn(wi, mask[i]) : wi;
}

/* Sum over a block (blockDim.x a multiple of 32, at most 1024); every thread
 * must call it; the total is returned to every thread. */
static __device__ inline double dc_block_sum(double v)
{
    __shared__ double warp_sums[32];
    __shared__ double total;
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0)
        warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x >> 5) ? warp_sums[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0)
            total = v;
    }
    __syncthreads();
    double t = total;
    __syncthreads(); /* the shared slots may be reused by the next call */
    return t;
}

/* Record an argument error found by launch `seq` (see struct dc_cuda_deferred):
 * key = index << value_bits | value, so the lowest index of the first failing
 * launch wins.  Every thread of one launch passes the same op and limit. */
static __device__ inline void dc_cuda_defer(struct dc_cuda_deferred *e, unsigned int seq, int op,
                                            unsigned long long key, int limit)
{
    unsigned int prev = atomicCAS(&e->seq, 0u, seq);
    if (prev != 0u && prev != seq)
        return; /* an earlier launch's error is already waiting */
    atomicMax(&e->inv_key, ~key);
    atomicExch(&e->op, op);
    atomicExch(&e->limit, limit);
}

/* Grid-stride loop over [0, n). */
#define DC_CUDA_FOR(i, n)                                                            \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n);         \
         i += (size_t)gridDim.x * blockDim.x)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* *buf holds at least `bytes` afterwards (freed and reallocated, so contents
 * are lost, when it held less); `what` names it in the out-of-memory message. */
enum dc_status dc_cuda_grow(void **buf, size_t *have, size_t bytes, const char *what);
/* Grow-only buffers; growing synchronises the device (cudaFree) and is not
 * allowed during graph capture, so warm-up steps must be the ones that grow them. */
enum dc_status dc_cuda_workspace(struct dc_cuda_ctx *ctx, size_t bytes, void **out);
enum dc_status dc_cuda_scratch(struct dc_cuda_ctx *ctx, size_t bytes, void **out);
void dc_cuda_conv_plans_free(struct dc_cuda_ctx *ctx);

/* Kernel-found argument errors (cuda_loss.cu): the record is made at init
 * and freed at shutdown; a launch that may record one takes an id from
 * dc_cuda_defer_seq; download and sync call dc_cuda_deferred_check. */
enum dc_status dc_cuda_deferred_init(struct dc_cuda_ctx *ctx);
void dc_cuda_deferred_free(struct dc_cuda_ctx *ctx);
unsigned int dc_cuda_defer_seq(struct dc_cuda_ctx *ctx);
enum dc_status dc_cuda_deferred_check(struct dc_cuda_ctx *ctx);

/* memory (cuda_backend.cu) */
enum dc_status dc_cuda_fill(struct dc_backend *be, float *x, float value, size_t n);

/* cuda_gemm.cu */
enum dc_status dc_cuda_gemm(struct dc_backend *be, int trans_a, int trans_b, int m, int n, int k,
                            float alpha, const float *a, int lda, const float *b, int ldb,
                            float beta, float *c, int ldc);
enum dc_status dc_cuda_axpby(struct dc_backend *be, size_t n, float a, const float *x, float b, float *y);
enum dc_status dc_cuda_mul(struct dc_backend *be, size_t n, const float *x, const float *y, float *out);
enum dc_status dc_cuda_bias_add(struct dc_backend *be, float *y, const float *bias, int n, int c, int hw);
enum dc_status dc_cuda_bias_grad(struct dc_backend *be, const float *dy, float *db, int n, int c, int hw);

/* cuda_elementwise.cu */
enum dc_status dc_cuda_relu_fwd(struct dc_backend *be, size_t n, const float *x, float *y);
enum dc_status dc_cuda_relu_bwd(struct dc_backend *be, size_t n, const float *y, const float *dy, float *dx);
enum dc_status dc_cuda_dropout_fwd(struct dc_backend *be, size_t n, float p, uint64_t seed,
                                   const float *x, float *mask, float *y);
enum dc_status dc_cuda_concat(struct dc_backend *be, int n, int ca, int cb, int hw,
                              const float *a, const float *b, float *out);
enum dc_status dc_cuda_split(struct dc_backend *be, int n, int ca, int cb, int hw,
                             const float *in, float *a, float *b);
enum dc_status dc_cuda_sgd_update(struct dc_backend *be, size_t n, float *w, const float *g, float *v,
                                  const float *mask, float lr, float momentum, float wd, int nesterov);
enum dc_status dc_cuda_threshold_mask(struct dc_backend *be, size_t n, const float *w, float threshold,
                                      float *mask);

/* cuda_conv.cu */
enum dc_status dc_cuda_conv_fwd(struct dc_backend *be, const struct dc_conv_desc *d,
                                const float *x, const float *w, float *y);
enum dc_status dc_cuda_conv_bwd_data(struct dc_backend *be, const struct dc_conv_desc *d,
                                     const float *w, const float *dy, float *dx);
enum dc_status dc_cuda_conv_bwd_filter(struct dc_backend *be, const struct dc_conv_desc *d,
                                       const float *x, const float *dy, float *dw);

/* cuda_pool.cu */
enum dc_status dc_cuda_pool_fwd(struct dc_backend *be, const struct dc_pool_desc *d,
                                const float *x, float *y);
enum dc_status dc_cuda_pool_bwd(struct dc_backend *be, const struct dc_pool_desc *d,
                                const float *x, const float *y, const float *dy, float *dx);

/* cuda_bn.cu */
enum dc_status dc_cuda_bn_fwd_train(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                                    const float *gamma, const float *beta, float *running_mean,
                                    float *running_var, float *y, float *save_mean, float *save_invstd);
enum dc_status dc_cuda_bn_fwd_infer(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                                    const float *gamma, const float *beta, const float *running_mean,
                                    const float *running_var, float *y);
enum dc_status dc_cuda_bn_bwd(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                              const float *dy, const float *gamma, const float *save_mean,
                              const float *save_invstd, float *dx, float *dgamma, float *dbeta);

/* cuda_loss.cu */
enum dc_status dc_cuda_softmax_xent(struct dc_backend *be, int n, int k, const float *logits,
                                    const int32_t *labels, const struct dc_soft_target *soft, float grad_scale,
                                    float *dlogits, float *stats);
enum dc_status dc_cuda_argmax(struct dc_backend *be, int n, int k, const float *logits, int32_t *pred);

/* cuda_kmeans.cu */
enum dc_status dc_cuda_kmeans_1d(struct dc_backend *be, size_t n, const float *x, const float *mask,
                                 float *centroids, int m, int iters, uint8_t *assign);
enum dc_status dc_cuda_codebook_gather(struct dc_backend *be, size_t n, const uint8_t *assign,
                                       const float *codebook, const float *mask, float *w);
enum dc_status dc_cuda_codebook_grad(struct dc_backend *be, size_t n, const uint8_t *assign,
                                     const float *g, const float *mask, int m, float *dcode);

/* cuda_data.cu */
enum dc_status dc_cuda_batch_images(struct dc_backend *be, const struct dc_batch_desc *d,
                                    const uint8_t *images, const int32_t *idx, float *out);
enum dc_status dc_cuda_batch_labels(struct dc_backend *be, int n, const uint8_t *labels,
                                    const int32_t *idx, int32_t *out);

/* cuda_spmat.cu */
enum dc_status dc_cuda_spmat_prepare(struct dc_backend *be, struct dc_spmat *a);
void dc_cuda_spmat_release(struct dc_backend *be, struct dc_spmat *a);
enum dc_status dc_cuda_spmat_fc(struct dc_backend *be, const struct dc_spmat *a, int n, const float *x, float *y);
enum dc_status dc_cuda_spmat_conv(struct dc_backend *be, const struct dc_conv_desc *d, const struct dc_spmat *a,
                                  const float *x, float *y);

/* cuda_reduce.cu */
enum dc_status dc_cuda_moments(struct dc_backend *be, size_t n, const float *x, double *host_out);

/* cuda_graph.cu */
enum dc_status dc_cuda_sgd_multi(struct dc_backend *be, int count, const struct dc_sgd_tensor *list,
                                 const float *lr, float momentum, float wd, int nesterov);
enum dc_status dc_cuda_graph_begin(struct dc_backend *be);
enum dc_status dc_cuda_graph_end(struct dc_backend *be, void **graph);
enum dc_status dc_cuda_graph_launch(struct dc_backend *be, void *graph, int *ran);
void dc_cuda_graph_free(struct dc_backend *be, void *graph);

#ifdef __cplusplus
}
#endif
#endif
