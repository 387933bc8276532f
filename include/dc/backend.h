/* backend.h: the table of operations a backend implements. Layers, the trainer
 * and the compression stages call only this table and never a CUDA function,
 * so one code path runs on the CPU reference and on the GPU, and a parity test
 * can run any entry on both and compare.
 *
 * Legend for shapes: N batch, C input channels, H W input height and width,
 * K output channels (conv) or output features (fc), R S kernel height and width,
 * P Q output height and width, M cluster count.  Tensors are NCHW float32,
 * row-major, contiguous.  All pointers passed to an op are backend memory
 * (device memory for CUDA) unless the parameter says "host".
 *
 * Every op returns DC_OK or an error with the message set; ops may run
 * asynchronously on the backend's stream: `sync` waits for them. */
#ifndef DC_BACKEND_H
#define DC_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "dc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

enum dc_device_kind { DC_DEVICE_CPU = 0, DC_DEVICE_CUDA = 1 };

/* 2-D convolution, cross-correlation as in cuDNN and PyTorch. */
struct dc_conv_desc {
    int n, c, h, w;   /* input  [N,C,H,W] */
    int k, r, s;      /* weight [K,C,R,S] */
    int stride, pad;  /* same in both directions */
    int p, q;         /* output [N,K,P,Q]: P = (H + 2pad - R)/stride + 1 */
};

/* Max or average pooling; average counts padded cells out (PyTorch's
 * count_include_pad=False). Global average pooling is size = H = W. */
struct dc_pool_desc {
    int n, c, h, w;
    int size, stride, pad;
    int p, q;
    int is_max;
};

/* Batch normalisation over N,H,W per channel (spatial mode). */
struct dc_bn_desc {
    int n, c, hw;
    float eps;      /* added to the variance */
    float momentum; /* running = (1-momentum)*running + momentum*batch (PyTorch) */
};

/* Data-batch builder: gathers uint8 images [count,C,H,W] by index, applies a
 * random crop from zero padding and a random horizontal flip drawn from
 * dc_hash_u32(seed, ...), and normalises (x/255 - mean[c]) / std[c]. */
struct dc_batch_desc {
    int c, h, w;        /* image shape */
    int n;              /* images in this batch */
    int pad;            /* crop padding in pixels, 0 = no crop */
    int flip;           /* 1 = random horizontal flip */
    uint64_t seed;      /* augmentation seed for this batch (derive from run seed, epoch, step) */
    float mean[3], std[3];
};

/* Soft targets for softmax_xent: label smoothing and distillation (Hinton et
 * al. 2015).  Row i with logits z, label y, teacher logits t:
 *   s = (1 - smoothing) onehot(y) + smoothing / K
 *   p = softmax(z), r = softmax(z / T), q = softmax(t / T)
 *   loss = (1 - alpha) sum_j -s_j log p_j + alpha T^2 sum_j q_j log(q_j / r_j)
 *   dlogits = grad_scale ((1 - alpha)(p - s) + alpha T (r - q))
 * The T^2 keeps the soft term's gradient on the scale of the hard one's as T
 * changes.  stats[1] still counts arg-max hits on the label. */
struct dc_soft_target {
    float smoothing;       /* [0, 1) */
    float alpha;           /* [0, 1]; 0 = no teacher */
    float temperature;     /* > 0; read when alpha > 0 */
    const float *teacher;  /* [N,K] backend memory; read when alpha > 0 */
};

/* DC_OK for NULL or a soft target within the ranges above (and a teacher
 * when alpha > 0); both backends' softmax_xent ask it first. */
enum dc_status dc_soft_target_check(const struct dc_soft_target *soft);

/* One tensor of a multi-tensor SGD update (sgd_multi).  The caller builds
 * an array of these once per network, in backend memory, and passes it to
 * every step: on CUDA the whole array is one launch. */
struct dc_sgd_tensor {
    float *w;           /* [n] weights */
    const float *g;     /* [n] gradients */
    float *v;           /* [n] velocity, NULL = keep none (the step is the gradient) */
    const float *mask;  /* [n] pruning mask or NULL */
    size_t n;
};

struct dc_backend;
struct dc_spmat; /* dc/spmat.h */

/* The operation table.  Keep the order in step with enum dc_op below; the
 * static assertion in backend.c counts the entries. */
struct dc_backend_ops {
    /* ---- memory ---- */
    enum dc_status (*alloc)(struct dc_backend *be, void **ptr, size_t bytes);
    void (*release)(struct dc_backend *be, void *ptr);
    enum dc_status (*upload)(struct dc_backend *be, void *dst, const void *host_src, size_t bytes);
    enum dc_status (*download)(struct dc_backend *be, void *host_dst, const void *src, size_t bytes);
    enum dc_status (*copy)(struct dc_backend *be, void *dst, const void *src, size_t bytes);
    enum dc_status (*fill)(struct dc_backend *be, float *x, float value, size_t n);
    enum dc_status (*sync)(struct dc_backend *be);

    /* ---- dense linear algebra ---- */
    /* C[m,n] = alpha * op(A) op(B) + beta * C, row-major; op(A) is [m,k]:
     * A is [m,k] (lda >= k) or, with trans_a, [k,m] (lda >= m); likewise B. */
    enum dc_status (*gemm)(struct dc_backend *be, int trans_a, int trans_b, int m, int n, int k,
                           float alpha, const float *a, int lda, const float *b, int ldb,
                           float beta, float *c, int ldc);
    /* y[i] = a * x[i] + b * y[i] */
    enum dc_status (*axpby)(struct dc_backend *be, size_t n, float a, const float *x, float b, float *y);
    /* out[i] = x[i] * y[i] (out may alias x or y) */
    enum dc_status (*mul)(struct dc_backend *be, size_t n, const float *x, const float *y, float *out);
    /* y[n,c,i] += bias[c], y is [N,C,HW] */
    enum dc_status (*bias_add)(struct dc_backend *be, float *y, const float *bias, int n, int c, int hw);
    /* db[c] = sum over n, i of dy[n,c,i] (overwrites) */
    enum dc_status (*bias_grad)(struct dc_backend *be, const float *dy, float *db, int n, int c, int hw);

    /* ---- activations ---- */
    enum dc_status (*relu_fwd)(struct dc_backend *be, size_t n, const float *x, float *y);
    /* dx = dy where y > 0 else 0 (uses the output, so it works in place) */
    enum dc_status (*relu_bwd)(struct dc_backend *be, size_t n, const float *y, const float *dy, float *dx);
    /* Inverted dropout: mask[i] = (u >= p) / (1 - p) with u = dc_hash_uniform(seed, i);
     * y = x * mask.  Backward is `mul` by the mask. */
    enum dc_status (*dropout_fwd)(struct dc_backend *be, size_t n, float p, uint64_t seed,
                                  const float *x, float *mask, float *y);

    /* ---- convolution: x [N,C,H,W], w [K,C,R,S], y [N,K,P,Q]; no bias ---- */
    enum dc_status (*conv_fwd)(struct dc_backend *be, const struct dc_conv_desc *d,
                               const float *x, const float *w, float *y);
    /* dx = conv^T(dy, w) (overwrites dx) */
    enum dc_status (*conv_bwd_data)(struct dc_backend *be, const struct dc_conv_desc *d,
                                    const float *w, const float *dy, float *dx);
    /* dw = sum over batch of x (*) dy (overwrites dw) */
    enum dc_status (*conv_bwd_filter)(struct dc_backend *be, const struct dc_conv_desc *d,
                                      const float *x, const float *dy, float *dw);

    /* ---- pooling: x [N,C,H,W], y [N,C,P,Q] ---- */
    enum dc_status (*pool_fwd)(struct dc_backend *be, const struct dc_pool_desc *d,
                               const float *x, float *y);
    /* dx (overwritten) from dy; max pooling routes to the first maximum of x */
    enum dc_status (*pool_bwd)(struct dc_backend *be, const struct dc_pool_desc *d,
                               const float *x, const float *y, const float *dy, float *dx);

    /* ---- batch norm: x, y [N,C,HW]; gamma, beta, running_*, save_* [C] ---- */
    /* Training: normalise with batch statistics (biased variance), update running
     * mean/var (unbiased variance, as PyTorch), save mean and 1/sqrt(var+eps). */
    enum dc_status (*bn_fwd_train)(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                                   const float *gamma, const float *beta, float *running_mean,
                                   float *running_var, float *y, float *save_mean, float *save_invstd);
    enum dc_status (*bn_fwd_infer)(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                                   const float *gamma, const float *beta, const float *running_mean,
                                   const float *running_var, float *y);
    /* dx, dgamma, dbeta overwritten */
    enum dc_status (*bn_bwd)(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                             const float *dy, const float *gamma, const float *save_mean,
                             const float *save_invstd, float *dx, float *dgamma, float *dbeta);

    /* ---- channel concat / split (Fire modules): a [N,CA,HW], b [N,CB,HW], out [N,CA+CB,HW] ---- */
    enum dc_status (*concat)(struct dc_backend *be, int n, int ca, int cb, int hw,
                             const float *a, const float *b, float *out);
    enum dc_status (*split)(struct dc_backend *be, int n, int ca, int cb, int hw,
                            const float *in, float *a, float *b);

    /* ---- loss: logits [N,K], labels [N] int32 ---- */
    /* soft NULL: dlogits = (softmax - onehot) * grad_scale; stats[0] += sum of
     * -log p(label), stats[1] += number of rows whose arg-max equals the
     * label.  With soft (struct dc_soft_target): the loss and gradient below
     * it.  stats lives in backend memory so a training step needs no host
     * round trip. */
    enum dc_status (*softmax_xent)(struct dc_backend *be, int n, int k, const float *logits,
                                   const int32_t *labels, const struct dc_soft_target *soft,
                                   float grad_scale, float *dlogits, float *stats);
    /* pred[i] = arg-max of row i (first on ties) */
    enum dc_status (*argmax)(struct dc_backend *be, int n, int k, const float *logits, int32_t *pred);

    /* ---- optimiser ---- */
    /* SGD with momentum (PyTorch semantics): g' = g + wd*w; v = momentum*v + g';
     * step = nesterov ? g' + momentum*v : v; w -= lr*step.  With a mask (may be
     * NULL) g' is masked first and w is multiplied by the mask after the step, so
     * pruned weights stay exactly zero. */
    enum dc_status (*sgd_update)(struct dc_backend *be, size_t n, float *w, const float *g, float *v,
                                 const float *mask, float lr, float momentum, float wd, int nesterov);

    /* ---- compression ---- */
    /* mask[i] = |w[i]| > threshold ? 1 : 0 */
    enum dc_status (*threshold_mask)(struct dc_backend *be, size_t n, const float *w, float threshold,
                                     float *mask);
    /* 1-D Lloyd k-means of the x[i] where mask[i] != 0 (mask may be NULL):
     * centroids [M] in/out (initial values in, final out), `iters` iterations
     * or until no assignment changes; assign[i] = nearest centroid (ties to the
     * lower index), 0 where masked out. */
    enum dc_status (*kmeans_1d)(struct dc_backend *be, size_t n, const float *x, const float *mask,
                                float *centroids, int m, int iters, uint8_t *assign);
    /* w[i] = codebook[assign[i]] * (mask ? mask[i] : 1) */
    enum dc_status (*codebook_gather)(struct dc_backend *be, size_t n, const uint8_t *assign,
                                      const float *codebook, const float *mask, float *w);
    /* dcode[j] = sum of g[i] over i with assign[i] == j and mask[i] != 0 (overwrites [M]) */
    enum dc_status (*codebook_grad)(struct dc_backend *be, size_t n, const uint8_t *assign,
                                    const float *g, const float *mask, int m, float *dcode);

    /* ---- data ---- */
    /* out [N,C,H,W] from images u8 [*,C,H,W] at rows idx[0..N) (int32, backend memory) */
    enum dc_status (*batch_images)(struct dc_backend *be, const struct dc_batch_desc *d,
                                   const uint8_t *images, const int32_t *idx, float *out);
    /* out[i] = labels[idx[i]] */
    enum dc_status (*batch_labels)(struct dc_backend *be, int n, const uint8_t *labels,
                                   const int32_t *idx, int32_t *out);

    /* ---- compressed inference (dc/spmat.h): A is [M,K] in any format ---- */
    /* Backend state for products with up to a->max_n right-hand columns
     * (cuSPARSE descriptors, buffer sizes and buffers), made once at load;
     * a no-op on the CPU.  spmat_release frees that state only. */
    enum dc_status (*spmat_prepare)(struct dc_backend *be, struct dc_spmat *a);
    void (*spmat_release)(struct dc_backend *be, struct dc_spmat *a);
    /* y[N,M] = x[N,K] A^T, then the epilogue (N <= a->max_n; N = 1 is SpMV) */
    enum dc_status (*spmat_fc)(struct dc_backend *be, const struct dc_spmat *a, int n, const float *x,
                               float *y);
    /* y [N,K',P,Q] = conv(x [N,C,H,W], A viewed as [K',C,R,S]) then the
     * epilogue per output channel: A times the im2col matrix of each image */
    enum dc_status (*spmat_conv)(struct dc_backend *be, const struct dc_conv_desc *d,
                                 const struct dc_spmat *a, const float *x, float *y);

    /* ---- reductions (result to host) ---- */
    /* host_out[0] = sum x, host_out[1] = sum x^2, host_out[2] = count of x != 0, in double */
    enum dc_status (*moments)(struct dc_backend *be, size_t n, const float *x, double *host_out);

    /* ---- training step: multi-tensor update and graphs ---- */
    /* sgd_update applied to each of list[0..count) (backend memory) with the
     * same per-element arithmetic, so the results equal `count` sgd_update
     * calls bit for bit; lr is read from backend memory [1] when the op runs,
     * so a captured graph replays with each step's rate.  count <= 4096. */
    enum dc_status (*sgd_multi)(struct dc_backend *be, int count, const struct dc_sgd_tensor *list,
                                const float *lr, float momentum, float wd, int nesterov);
    /* Record the ops that follow (until graph_end) into a graph instead of
     * running them.  Nothing recorded may allocate, free or wait for the
     * device: run the same ops once before (a warm-up) so lazily made state
     * (convolution plans, workspaces) exists.  DC_ERR_UNSUPPORTED where the
     * backend has no graphs (the CPU): run the ops eagerly then. */
    enum dc_status (*graph_begin)(struct dc_backend *be);
    /* Stop recording; *graph = a replayable graph (NULL on failure).  Call it
     * after every successful graph_begin, even when a recorded op failed. */
    enum dc_status (*graph_end)(struct dc_backend *be, void **graph);
    /* Replay a graph on the backend's stream: *ran = 1.  *ran = 0 (and
     * nothing runs) when a buffer the graph uses has been reallocated since
     * it was recorded (a workspace grew): free it, warm up and record anew. */
    enum dc_status (*graph_launch)(struct dc_backend *be, void *graph, int *ran);
    void (*graph_free)(struct dc_backend *be, void *graph);
};

/* One enum value per table entry, in table order, for parity tests and names. */
enum dc_op {
    DC_OP_ALLOC, DC_OP_RELEASE, DC_OP_UPLOAD, DC_OP_DOWNLOAD, DC_OP_COPY, DC_OP_FILL, DC_OP_SYNC,
    DC_OP_GEMM, DC_OP_AXPBY, DC_OP_MUL, DC_OP_BIAS_ADD, DC_OP_BIAS_GRAD,
    DC_OP_RELU_FWD, DC_OP_RELU_BWD, DC_OP_DROPOUT_FWD,
    DC_OP_CONV_FWD, DC_OP_CONV_BWD_DATA, DC_OP_CONV_BWD_FILTER,
    DC_OP_POOL_FWD, DC_OP_POOL_BWD,
    DC_OP_BN_FWD_TRAIN, DC_OP_BN_FWD_INFER, DC_OP_BN_BWD,
    DC_OP_CONCAT, DC_OP_SPLIT,
    DC_OP_SOFTMAX_XENT, DC_OP_ARGMAX,
    DC_OP_SGD_UPDATE,
    DC_OP_THRESHOLD_MASK, DC_OP_KMEANS_1D, DC_OP_CODEBOOK_GATHER, DC_OP_CODEBOOK_GRAD,
    DC_OP_BATCH_IMAGES, DC_OP_BATCH_LABELS,
    DC_OP_SPMAT_PREPARE, DC_OP_SPMAT_RELEASE, DC_OP_SPMAT_FC, DC_OP_SPMAT_CONV,
    DC_OP_MOMENTS,
    DC_OP_SGD_MULTI, DC_OP_GRAPH_BEGIN, DC_OP_GRAPH_END, DC_OP_GRAPH_LAUNCH, DC_OP_GRAPH_FREE,
    DC_OP_COUNT
};
const char *dc_op_name(enum dc_op op);

/* Options a backend is created with. */
struct dc_backend_opts {
    int threads;     /* CPU: worker threads, 0 = all cores */
    int tf32;        /* CUDA: allow TF32 tensor-core math */
    int device_index;
};

struct dc_backend {
    const char *name;             /* "cpu" or "cuda" */
    enum dc_device_kind kind;
    struct dc_backend_ops ops;
    struct dc_backend_opts opts;
    void *ctx;                    /* backend-private state (handles, workspaces) */
    char description[128];        /* e.g. "NVIDIA H100 80GB HBM3 (sm_90)" or "CPU, 2 threads, OpenBLAS" */
};

/* Create a backend by name: "cpu", "cuda", or "auto" (CUDA when the build has
 * it and a GPU answers, else CPU after one notice on stderr). */
enum dc_status dc_backend_create(const char *name, const struct dc_backend_opts *opts,
                                 struct dc_backend **out);
void dc_backend_free(struct dc_backend *be);

/* Call first in main(): where OpenBLAS chose generic kernels because the CPU
 * hides its model, sets OPENBLAS_CORETYPE from the CPU's features and restarts
 * the program with argv (src/cpu/cpu_blas_core.c); otherwise returns. */
void dc_blas_fix_kernels(char **argv);
/* "OpenBLAS SkylakeX" (and why, when dc_blas_fix_kernels chose it) or
 * "portable GEMM", in buf; returns buf. */
const char *dc_blas_kernels(char *buf, size_t size);

/* Each backend's constructor (cuda returns DC_ERR_UNSUPPORTED when built without CUDA
 * or no GPU answers; the message says which). */
enum dc_status dc_cpu_backend_init(struct dc_backend *be);
enum dc_status dc_cuda_backend_init(struct dc_backend *be);
void dc_cpu_backend_shutdown(struct dc_backend *be);
void dc_cuda_backend_shutdown(struct dc_backend *be);
/* 1 when this build contains the CUDA backend. */
int dc_cuda_compiled(void);

#ifdef __cplusplus
}
#endif
#endif
