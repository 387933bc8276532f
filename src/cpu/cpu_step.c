/* cpu_step.c: the CPU side of the training-step ops: the multi-tensor SGD
 * update (a loop of sgd_update calls, so results are those of per-tensor
 * updates bit for bit) and graphs, which the CPU does not have: the trainer
 * then runs every step eagerly, which on the CPU costs nothing extra. */
#include "cpu/cpu_internal.h"

/* The list and the rate are backend memory, which on the CPU is host memory. */
enum dc_status dc_cpu_sgd_multi(struct dc_backend *be, int count, const struct dc_sgd_tensor *list,
                                const float *lr, float momentum, float wd, int nesterov)
{
    if (count < 0 || (count > 0 && (!list || !lr)))
        return DC_ERROR(DC_ERR_ARG, "sgd_multi: %d tensors with list %p and lr %p", count,
                        (const void *)list, (const void *)lr);
    for (int t = 0; t < count; t++) {
        const struct dc_sgd_tensor *d = &list[t];
        /* without a velocity buffer the step is the gradient, momentum unused */
        DC_TRY(dc_cpu_sgd_update(be, d->n, d->w, d->g, d->v, d->mask, *lr, d->v ? momentum : 0.0f, wd,
                                 nesterov));
    }
    return DC_OK;
}

enum dc_status dc_cpu_graph_begin(struct dc_backend *be)
{
    (void)be;
    return DC_ERROR(DC_ERR_UNSUPPORTED, "the cpu backend has no graphs");
}

enum dc_status dc_cpu_graph_end(struct dc_backend *be, void **graph)
{
    (void)be;
    *graph = NULL;
    return DC_ERROR(DC_ERR_UNSUPPORTED, "graph_end without a graph_begin on the cpu backend");
}

enum dc_status dc_cpu_graph_launch(struct dc_backend *be, void *graph, int *ran)
{
    (void)be;
    (void)graph;
    *ran = 0;
    return DC_ERROR(DC_ERR_UNSUPPORTED, "the cpu backend has no graphs to launch");
}

void dc_cpu_graph_free(struct dc_backend *be, void *graph)
{
    (void)be;
    (void)graph;
}
