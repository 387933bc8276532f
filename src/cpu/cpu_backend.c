/* cpu_backend.c: the CPU reference backend's constructor, memory ops and
 * operation table.  On the CPU "backend memory" is host memory, so transfers
 * are memcpy; allocations are 64-byte aligned so BLAS and vector loops get
 * whole cache lines. */
#define _POSIX_C_SOURCE 200809L /* sysconf */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu/cpu_internal.h"

#define DC_CPU_ALIGN 64

static enum dc_status dc_cpu_alloc(struct dc_backend *be, void **ptr, size_t bytes)
{
    (void)be;
    /* aligned_alloc wants a size that is a multiple of the alignment, and a
     * zero-byte request still gets a pointer the caller may free. */
    size_t rounded = (bytes + DC_CPU_ALIGN - 1) / DC_CPU_ALIGN * DC_CPU_ALIGN;
    if (rounded == 0)
        rounded = DC_CPU_ALIGN;
    *ptr = aligned_alloc(DC_CPU_ALIGN, rounded);
    if (!*ptr)
        return DC_ERROR(DC_ERR_NOMEM, "cpu backend: out of memory allocating %zu bytes", bytes);
    return DC_OK;
}

static void dc_cpu_release(struct dc_backend *be, void *ptr)
{
    (void)be;
    free(ptr);
}

static enum dc_status dc_cpu_copy(struct dc_backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    if (bytes)
        memmove(dst, src, bytes);
    return DC_OK;
}

static enum dc_status dc_cpu_sync(struct dc_backend *be)
{
    (void)be;
    return DC_OK;
}

enum dc_status dc_cpu_scratch(struct dc_backend *be, enum dc_cpu_scratch_slot slot, size_t count,
                              float **out)
{
    struct dc_cpu_ctx *ctx = dc_cpu_ctx(be);
    if (count > ctx->scratch_cap[slot]) {
        free(ctx->scratch[slot]);
        ctx->scratch[slot] = NULL;
        ctx->scratch_cap[slot] = 0;
        void *p = NULL;
        DC_TRY(dc_cpu_alloc(be, &p, count * sizeof(float)));
        ctx->scratch[slot] = p;
        ctx->scratch_cap[slot] = count;
    }
    *out = ctx->scratch[slot];
    return DC_OK;
}

static int dc_cpu_default_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
#endif
}

static void dc_cpu_fill_table(struct dc_backend_ops *o)
{
    o->alloc = dc_cpu_alloc;
    o->release = dc_cpu_release;
    o->upload = dc_cpu_copy;
    o->download = dc_cpu_copy;
    o->copy = dc_cpu_copy;
    o->fill = dc_cpu_fill;
    o->sync = dc_cpu_sync;
    o->gemm = dc_cpu_gemm;
    o->axpby = dc_cpu_axpby;
    o->mul = dc_cpu_mul;
    o->bias_add = dc_cpu_bias_add;
    o->bias_grad = dc_cpu_bias_grad;
    o->relu_fwd = dc_cpu_relu_fwd;
    o->relu_bwd = dc_cpu_relu_bwd;
    o->dropout_fwd = dc_cpu_dropout_fwd;
    o->conv_fwd = dc_cpu_conv_fwd;
    o->conv_bwd_data = dc_cpu_conv_bwd_data;
    o->conv_bwd_filter = dc_cpu_conv_bwd_filter;
    o->pool_fwd = dc_cpu_pool_fwd;
    o->pool_bwd = dc_cpu_pool_bwd;
    o->bn_fwd_train = dc_cpu_bn_fwd_train;
    o->bn_fwd_infer = dc_cpu_bn_fwd_infer;
    o->bn_bwd = dc_cpu_bn_bwd;
    o->concat = dc_cpu_concat;
    o->split = dc_cpu_split;
    o->softmax_xent = dc_cpu_softmax_xent;
    o->argmax = dc_cpu_argmax;
    o->sgd_update = dc_cpu_sgd_update;
    o->threshold_mask = dc_cpu_threshold_mask;
    o->kmeans_1d = dc_cpu_kmeans_1d;
    o->codebook_gather = dc_cpu_codebook_gather;
    o->codebook_grad = dc_cpu_codebook_grad;
    o->batch_images = dc_cpu_batch_images;
    o->batch_labels = dc_cpu_batch_labels;
    o->spmat_prepare = dc_cpu_spmat_prepare;
    o->spmat_release = dc_cpu_spmat_release;
    o->spmat_fc = dc_cpu_spmat_fc;
    o->spmat_conv = dc_cpu_spmat_conv;
    o->moments = dc_cpu_moments;
    o->sgd_multi = dc_cpu_sgd_multi;
    o->graph_begin = dc_cpu_graph_begin;
    o->graph_end = dc_cpu_graph_end;
    o->graph_launch = dc_cpu_graph_launch;
    o->graph_free = dc_cpu_graph_free;
}

enum dc_status dc_cpu_backend_init(struct dc_backend *be)
{
    if (be->opts.threads < 0)
        return DC_ERROR(DC_ERR_ARG, "cpu backend: threads = %d; use 0 (all cores) or a positive count",
                        be->opts.threads);
    struct dc_cpu_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return DC_ERROR(DC_ERR_NOMEM, "cpu backend: out of memory for its context");
    ctx->threads = be->opts.threads > 0 ? be->opts.threads : dc_cpu_default_threads();
    dc_cpu_blas_threads(ctx->threads);

    be->ctx = ctx;
    be->name = "cpu";
    be->kind = DC_DEVICE_CPU;
    dc_cpu_fill_table(&be->ops);
    char blas[96];
    snprintf(be->description, sizeof be->description, "CPU, %d thread%s, %s", ctx->threads,
             ctx->threads == 1 ? "" : "s", dc_blas_kernels(blas, sizeof blas));
    return DC_OK;
}

void dc_cpu_backend_shutdown(struct dc_backend *be)
{
    struct dc_cpu_ctx *ctx = dc_cpu_ctx(be);
    if (!ctx)
        return;
    for (int i = 0; i < DC_CPU_SCRATCH_COUNT; i++)
        free(ctx->scratch[i]);
    free(ctx);
    be->ctx = NULL;
}
