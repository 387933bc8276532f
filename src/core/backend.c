/* backend.c: choosing and creating a backend.  `auto` prefers CUDA and falls
 * back to the CPU with exactly one notice, so a machine without a GPU still
 * runs every job. */
#include "dc/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/log.h"

/* An added op must be added to enum dc_op and to every backend's table. */
_Static_assert(sizeof(struct dc_backend_ops) / sizeof(void (*)(void)) == DC_OP_COUNT,
               "struct dc_backend_ops and enum dc_op are out of step");

static const char *const dc_op_names[DC_OP_COUNT] = {
    "alloc", "release", "upload", "download", "copy", "fill", "sync",
    "gemm", "axpby", "mul", "bias_add", "bias_grad",
    "relu_fwd", "relu_bwd", "dropout_fwd",
    "conv_fwd", "conv_bwd_data", "conv_bwd_filter",
    "pool_fwd", "pool_bwd",
    "bn_fwd_train", "bn_fwd_infer", "bn_bwd",
    "concat", "split",
    "softmax_xent", "argmax",
    "sgd_update",
    "threshold_mask", "kmeans_1d", "codebook_gather", "codebook_grad",
    "batch_images", "batch_labels",
    "spmat_prepare", "spmat_release", "spmat_fc", "spmat_conv",
    "moments",
    "sgd_multi", "graph_begin", "graph_end", "graph_launch", "graph_free",
};

const char *dc_op_name(enum dc_op op)
{
    return (op >= 0 && op < DC_OP_COUNT) ? dc_op_names[op] : "unknown";
}

enum dc_status dc_soft_target_check(const struct dc_soft_target *soft)
{
    if (!soft)
        return DC_OK;
    if (!(soft->smoothing >= 0.0f && soft->smoothing < 1.0f))
        return DC_ERROR(DC_ERR_ARG, "softmax_xent: label smoothing %g outside [0, 1)", (double)soft->smoothing);
    if (!(soft->alpha >= 0.0f && soft->alpha <= 1.0f))
        return DC_ERROR(DC_ERR_ARG, "softmax_xent: distillation weight %g outside [0, 1]", (double)soft->alpha);
    if (soft->alpha > 0.0f && !(soft->temperature > 0.0f && soft->temperature < 1e6f))
        return DC_ERROR(DC_ERR_ARG, "softmax_xent: temperature %g must be positive", (double)soft->temperature);
    if (soft->alpha > 0.0f && !soft->teacher)
        return DC_ERROR(DC_ERR_ARG, "softmax_xent: distillation weight %g without teacher logits",
                        (double)soft->alpha);
    return DC_OK;
}

/* Every table entry must be filled: a NULL would crash far from its cause. */
static enum dc_status dc_backend_check_table(const struct dc_backend *be)
{
    void (*const *fn)(void) = (void (*const *)(void))(const void *)&be->ops;
    for (int i = 0; i < DC_OP_COUNT; i++)
        if (!fn[i])
            return DC_ERROR(DC_ERR_UNSUPPORTED, "backend %s does not implement op %s", be->name,
                            dc_op_name((enum dc_op)i));
    return DC_OK;
}

static enum dc_status dc_backend_try(const char *name, const struct dc_backend_opts *opts,
                                     struct dc_backend **out)
{
    struct dc_backend *be = calloc(1, sizeof *be);
    if (!be)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory creating the %s backend", name);
    if (opts)
        be->opts = *opts;
    enum dc_status s = strcmp(name, "cuda") == 0 ? dc_cuda_backend_init(be) : dc_cpu_backend_init(be);
    if (s == DC_OK)
        s = dc_backend_check_table(be);
    if (s != DC_OK) {
        free(be);
        return s;
    }
    *out = be;
    return DC_OK;
}

enum dc_status dc_backend_create(const char *name, const struct dc_backend_opts *opts,
                                 struct dc_backend **out)
{
    *out = NULL;
    if (!name || strcmp(name, "auto") == 0) {
        if (dc_backend_try("cuda", opts, out) == DC_OK)
            return DC_OK;
        dc_warn("no usable GPU (%s); running on the CPU backend", dc_error_msg());
        dc_error_clear();
        return dc_backend_try("cpu", opts, out);
    }
    if (strcmp(name, "cpu") == 0 || strcmp(name, "cuda") == 0)
        return dc_backend_try(name, opts, out);
    return DC_ERROR(DC_ERR_ARG, "unknown device '%s' (expected auto, cpu or cuda)", name);
}

void dc_backend_free(struct dc_backend *be)
{
    if (!be)
        return;
    if (be->kind == DC_DEVICE_CUDA)
        dc_cuda_backend_shutdown(be);
    else
        dc_cpu_backend_shutdown(be);
    free(be);
}
