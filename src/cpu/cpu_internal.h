/* cpu_internal.h: private declarations shared by the CPU backend's files: its
 * context (thread count, scratch buffers), the op functions that
 * cpu_backend.c puts in the table, and helpers the tests reach directly (the
 * portable GEMM, so it can be checked against BLAS on the same machine).
 *
 * Legend: N batch, C input channels, H W input size, K output channels,
 * R S kernel size, P Q output size, M cluster count. */
#ifndef DC_CPU_INTERNAL_H
#define DC_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dc/backend.h"
#include "dc/spmat.h"

/* Element counts below which an elementwise loop runs on one thread: forking
 * costs more than the loop saves for small tensors. */
#define DC_CPU_PAR_MIN ((size_t)1 << 16)

/* OpenMP work-sharing over the next `for` loop, on `nt` threads when `cond`
 * holds.  Without OpenMP the loop runs serially and the arguments are still
 * evaluated, so a build without OpenMP stays warning-free. */
#define DC_CPU_PRAGMA_(x) _Pragma(#x)
#ifdef _OPENMP
#define DC_OMP_FOR(nt, cond) \
    DC_CPU_PRAGMA_(omp parallel for schedule(static) num_threads(nt) if (cond))
#define DC_OMP_FOR_COLLAPSE2(nt, cond) \
    DC_CPU_PRAGMA_(omp parallel for collapse(2) schedule(static) num_threads(nt) if (cond))
#else
#define DC_OMP_FOR(nt, cond) (void)(nt); (void)(cond);
#define DC_OMP_FOR_COLLAPSE2(nt, cond) (void)(nt); (void)(cond);
#endif

/* How many pieces a reduction or a sliced GEMM is cut into.  OpenBLAS's
 * result for an element of C depends on the shape of the call that computes it
 * (it picks other kernels for narrower products), and a sum cut into more
 * pieces rounds differently, so the cut must not follow the thread count if a
 * run is to give the same bits at 1 and 2 threads: one thread runs the two
 * pieces in turn.  Above two threads the pieces follow the thread count. */
static inline int dc_cpu_pieces(int threads)
{
    return threads > 2 ? threads : 2;
}

/* Scratch slots, grown on demand and kept for the backend's lifetime. */
enum dc_cpu_scratch_slot {
    DC_CPU_SCRATCH_COL = 0, DC_CPU_SCRATCH_OUT = 1,
    DC_CPU_SCRATCH_SPMAT_IN = 2, DC_CPU_SCRATCH_SPMAT_OUT = 3, /* transposed operands of spmat_fc */
    DC_CPU_SCRATCH_DW = 4, /* conv_bwd_filter's per-thread partial sums */
    DC_CPU_SCRATCH_SPMAT_TAIL = 5, /* the last columns of a product, padded to 8 (cpu_spmat.c) */
    DC_CPU_SCRATCH_COUNT
};

struct dc_cpu_ctx {
    int threads;                             /* OpenMP and BLAS threads */
    float *scratch[DC_CPU_SCRATCH_COUNT];
    size_t scratch_cap[DC_CPU_SCRATCH_COUNT]; /* in floats */
};

static inline struct dc_cpu_ctx *dc_cpu_ctx(struct dc_backend *be)
{
    return (struct dc_cpu_ctx *)be->ctx;
}

/* A scratch buffer of at least `count` floats (contents undefined). */
enum dc_status dc_cpu_scratch(struct dc_backend *be, enum dc_cpu_scratch_slot slot, size_t count,
                              float **out);

/* ---- gemm (cpu_gemm.c) ---- */
/* Row-major C[m,n] = alpha op(A) op(B) + beta C with the semantics of
 * backend.h's gemm, in plain C (OpenMP over rows of C, fixed summation order). */
enum dc_status dc_cpu_gemm_portable(int threads, int trans_a, int trans_b, int m, int n, int k,
                                    float alpha, const float *a, int lda, const float *b, int ldb,
                                    float beta, float *c, int ldc);
enum dc_status dc_cpu_gemm(struct dc_backend *be, int trans_a, int trans_b, int m, int n, int k,
                           float alpha, const float *a, int lda, const float *b, int ldb,
                           float beta, float *c, int ldc);
/* The same product on the calling thread only, for callers that split the
 * work over their own threads (arguments valid: no checks). */
enum dc_status dc_cpu_gemm_serial(int trans_a, int trans_b, int m, int n, int k, float alpha,
                                  const float *a, int lda, const float *b, int ldb, float beta,
                                  float *c, int ldc);
/* Sets the BLAS library's own thread count (no-op without BLAS). */
void dc_cpu_blas_threads(int threads);

/* ---- elementwise (cpu_elementwise.c) ---- */
enum dc_status dc_cpu_fill(struct dc_backend *be, float *x, float value, size_t n);
enum dc_status dc_cpu_axpby(struct dc_backend *be, size_t n, float a, const float *x, float b, float *y);
enum dc_status dc_cpu_mul(struct dc_backend *be, size_t n, const float *x, const float *y, float *out);
enum dc_status dc_cpu_bias_add(struct dc_backend *be, float *y, const float *bias, int n, int c, int hw);
enum dc_status dc_cpu_bias_grad(struct dc_backend *be, const float *dy, float *db, int n, int c, int hw);
enum dc_status dc_cpu_relu_fwd(struct dc_backend *be, size_t n, const float *x, float *y);
enum dc_status dc_cpu_relu_bwd(struct dc_backend *be, size_t n, const float *y, const float *dy, float *dx);
enum dc_status dc_cpu_dropout_fwd(struct dc_backend *be, size_t n, float p, uint64_t seed,
                                  const float *x, float *mask, float *y);
enum dc_status dc_cpu_concat(struct dc_backend *be, int n, int ca, int cb, int hw, const float *a,
                             const float *b, float *out);
enum dc_status dc_cpu_split(struct dc_backend *be, int n, int ca, int cb, int hw, const float *in,
                            float *a, float *b);
enum dc_status dc_cpu_sgd_update(struct dc_backend *be, size_t n, float *w, const float *g, float *v,
                                 const float *mask, float lr, float momentum, float wd, int nesterov);
enum dc_status dc_cpu_threshold_mask(struct dc_backend *be, size_t n, const float *w, float threshold,
                                     float *mask);

/* ---- convolution (cpu_conv.c) ---- */
enum dc_status dc_cpu_conv_fwd(struct dc_backend *be, const struct dc_conv_desc *d, const float *x,
                               const float *w, float *y);
enum dc_status dc_cpu_conv_bwd_data(struct dc_backend *be, const struct dc_conv_desc *d,
                                    const float *w, const float *dy, float *dx);
enum dc_status dc_cpu_conv_bwd_filter(struct dc_backend *be, const struct dc_conv_desc *d,
                                      const float *x, const float *dy, float *dw);

/* col [CRS, nb*PQ] from x [nb,C,H,W]; padding reads as zero. */
void dc_cpu_im2col(struct dc_backend *be, const struct dc_conv_desc *d, const float *x, int nb, float *col);

/* ---- compressed inference (cpu_spmat.c, cpu_spmat_kernels.c) ---- */
enum dc_status dc_cpu_spmat_prepare(struct dc_backend *be, struct dc_spmat *a);
void dc_cpu_spmat_release(struct dc_backend *be, struct dc_spmat *a);
enum dc_status dc_cpu_spmat_fc(struct dc_backend *be, const struct dc_spmat *a, int n, const float *x, float *y);
enum dc_status dc_cpu_spmat_conv(struct dc_backend *be, const struct dc_conv_desc *d, const struct dc_spmat *a,
                                 const float *x, float *y);
/* The kernels, over rows [r0, r1) of A:
 *   spmv: y[r] = epilogue(sum_c A[r,c] x[c]) for r in [r0,r1)   (x [K], y [M])
 *   spmm: out[r, 0..ncols) = epilogue(A[r,:] B) with B [K, ldb] and out [M, ldo] row-major,
 *         ncols a multiple of 8 */
void dc_cpu_spmv_rows(const struct dc_spmat *a, int r0, int r1, const float *x, float *y);
void dc_cpu_spmv_slices(const struct dc_spmat *a, int s0, int s1, const float *x, float *y);
void dc_cpu_spmm_rows(const struct dc_spmat *a, int q0, int q1, int ncols, const float *b, int ldb, float *out,
                      int ldo);
/* The codebook form in slices of 8 rows (spmat.h), in place; and slices
 * [s0, s1) for part t of nt, balanced by entries. */
enum dc_status dc_cpu_spmat_slice(struct dc_backend *be, struct dc_spmat *a);
void dc_cpu_spmat_slice_range(const struct dc_spmat *a, int t, int nt, int *s0, int *s1);

/* ---- pooling (cpu_pool.c) ---- */
enum dc_status dc_cpu_pool_fwd(struct dc_backend *be, const struct dc_pool_desc *d, const float *x,
                               float *y);
enum dc_status dc_cpu_pool_bwd(struct dc_backend *be, const struct dc_pool_desc *d, const float *x,
                               const float *y, const float *dy, float *dx);

/* ---- batch norm (cpu_bn.c) ---- */
/* sum of p[0..n) in double, in eight interleaved partial sums (a fixed order) */
double dc_cpu_sum_f64(const float *p, size_t n);
/* Per-channel passes over [N,C,HW] take channels in blocks (one per thread)
 * and run image by image inside a block, so memory is read in long streams:
 * the block size for C channels on `threads` threads, at most this. */
enum { DC_CPU_CHANNEL_BLOCK = 64 };
int dc_cpu_channel_block(int c, int threads);
enum dc_status dc_cpu_bn_fwd_train(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                                   const float *gamma, const float *beta, float *running_mean,
                                   float *running_var, float *y, float *save_mean, float *save_invstd);
enum dc_status dc_cpu_bn_fwd_infer(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                                   const float *gamma, const float *beta, const float *running_mean,
                                   const float *running_var, float *y);
enum dc_status dc_cpu_bn_bwd(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                             const float *dy, const float *gamma, const float *save_mean,
                             const float *save_invstd, float *dx, float *dgamma, float *dbeta);

/* ---- loss (cpu_loss.c) ---- */
enum dc_status dc_cpu_softmax_xent(struct dc_backend *be, int n, int k, const float *logits,
                                   const int32_t *labels, const struct dc_soft_target *soft, float grad_scale,
                                   float *dlogits, float *stats);
enum dc_status dc_cpu_argmax(struct dc_backend *be, int n, int k, const float *logits, int32_t *pred);

/* ---- k-means and codebooks (cpu_kmeans.c) ---- */
enum dc_status dc_cpu_kmeans_1d(struct dc_backend *be, size_t n, const float *x, const float *mask,
                                float *centroids, int m, int iters, uint8_t *assign);
enum dc_status dc_cpu_codebook_gather(struct dc_backend *be, size_t n, const uint8_t *assign,
                                      const float *codebook, const float *mask, float *w);
enum dc_status dc_cpu_codebook_grad(struct dc_backend *be, size_t n, const uint8_t *assign,
                                    const float *g, const float *mask, int m, float *dcode);

/* ---- data (cpu_data.c) ---- */
enum dc_status dc_cpu_batch_images(struct dc_backend *be, const struct dc_batch_desc *d,
                                   const uint8_t *images, const int32_t *idx, float *out);
enum dc_status dc_cpu_batch_labels(struct dc_backend *be, int n, const uint8_t *labels,
                                   const int32_t *idx, int32_t *out);

/* ---- reductions (cpu_reduce.c) ---- */
enum dc_status dc_cpu_moments(struct dc_backend *be, size_t n, const float *x, double *host_out);

/* ---- training step (cpu_step.c) ---- */
enum dc_status dc_cpu_sgd_multi(struct dc_backend *be, int count, const struct dc_sgd_tensor *list,
                                const float *lr, float momentum, float wd, int nesterov);
enum dc_status dc_cpu_graph_begin(struct dc_backend *be);
enum dc_status dc_cpu_graph_end(struct dc_backend *be, void **graph);
enum dc_status dc_cpu_graph_launch(struct dc_backend *be, void *graph, int *ran);
void dc_cpu_graph_free(struct dc_backend *be, void *graph);

#endif
