/* net_budget.c: what a network will take before any of it is allocated.  A
 * config or a model file's description (which may be crafted) names layer
 * widths; a width of millions would make the builder ask for gigabytes or
 * terabytes, so each section's parameters and activations are added up from
 * the running shape before its layer is created, and the build stops with
 * the estimate in the message when the total passes the memory limit. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <unistd.h>

#include "net_internal.h"

double dc_net_memory_limit(void)
{
    const char *env = getenv("DC_MEMORY_LIMIT_MB");
    if (env && *env) {
        char *end;
        double mb = strtod(env, &end);
        if (*end == '\0' && mb > 0)
            return mb * 1048576.0;
    }
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (double)pages * (double)page : 64.0 * 1073741824.0;
}

/* Floats per sample of a section's output (and inner buffers), and its parameter count. */
static void dc_net_section_size(const struct dc_layer_cfg *lc, int c, int h, int w, double *params, double *acts)
{
    double in = (double)c * h * w;
    *params = 0.0, *acts = in;
    switch (lc->type) {
    case DC_LAYER_CONV: {
        int oh = lc->size > 0 ? dc_layer_out_size(h, lc->size, lc->stride, lc->pad) : 0;
        int ow = lc->size > 0 ? dc_layer_out_size(w, lc->size, lc->stride, lc->pad) : 0;
        *params = (double)lc->filters * c * lc->size * lc->size + (lc->batch_normalize ? 4.0 : 1.0) * lc->filters;
        *acts = (double)lc->filters * oh * ow * (1 + lc->batch_normalize + lc->relu); /* conv, bn, relu outputs */
        break;
    }
    case DC_LAYER_FC:
        *params = (double)lc->outputs * in + lc->outputs;
        *acts = (double)lc->outputs * (1 + lc->relu);
        break;
    case DC_LAYER_FIRE: {
        double sq = lc->squeeze, e = (double)lc->expand1 + lc->expand3;
        *params = sq * c + sq + lc->expand1 * sq + lc->expand1 + lc->expand3 * sq * 9.0 + lc->expand3;
        *acts = (3.0 * sq + 3.0 * e) * h * w; /* squeeze output and gradients, both expands, the concat */
        break;
    }
    case DC_LAYER_DROPOUT:
        *acts = 2.0 * in; /* output and mask */
        break;
    case DC_LAYER_BN:
        *params = 4.0 * c;
        break;
    default: /* pooling and ReLU give at most their input */
        break;
    }
}

enum dc_status dc_net_budget_add(struct dc_net_budget *bud, const struct dc_layer_cfg *lc, int c, int h, int w,
                                 int max_batch)
{
    double params, acts;
    dc_net_section_size(lc, c, h, w, &params, &acts);
    /* trainable parameters keep a gradient and a momentum; activations keep a gradient */
    bud->bytes += 4.0 * (3.0 * params + 2.0 * acts * max_batch);
    if (bud->bytes <= bud->limit)
        return DC_OK;
    return DC_ERROR(DC_ERR_CONFIG, "layer %s: the network would need about %.0f MiB up to this layer (parameters, "
                    "and activations for batches of %d), more than the %.0f MiB limit (the machine's memory, or "
                    "DC_MEMORY_LIMIT_MB); use fewer filters or outputs, or a smaller batch",
                    lc->name, bud->bytes / 1048576.0, max_batch, bud->limit / 1048576.0);
}
