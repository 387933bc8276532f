/* layer_param.c: parameter tensors and the life cycle every layer shares
 * (allocate, add parameters, initialise, free), so the layer files hold only
 * their own arithmetic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_internal.h"

enum dc_status dc_param_init(struct dc_backend *be, struct dc_param *p, const char *name, int n, int c,
                             int h, int w, int trainable)
{
    memset(p, 0, sizeof *p);
    if (snprintf(p->name, sizeof p->name, "%s", name) >= (int)sizeof p->name)
        return DC_ERROR(DC_ERR_ARG, "parameter name '%s' is longer than %d characters; use a shorter layer name",
                        name, (int)sizeof p->name - 1);
    p->trainable = trainable;
    enum dc_status s = dc_tensor_alloc(be, &p->w, n, c, h, w);
    if (s == DC_OK && trainable)
        s = dc_tensor_alloc(be, &p->g, n, c, h, w);
    if (s == DC_OK && trainable)
        s = dc_tensor_alloc(be, &p->v, n, c, h, w);
    if (s != DC_OK)
        dc_param_free(be, p);
    return s;
}

static void dc_param_release(struct dc_backend *be, void *ptr)
{
    if (ptr)
        be->ops.release(be, ptr);
}

/* The pruning and quantization buffers live in backend memory owned by the
 * parameter, so they go with it. */
void dc_param_free(struct dc_backend *be, struct dc_param *p)
{
    if (!p)
        return;
    dc_tensor_free(be, &p->w);
    dc_tensor_free(be, &p->g);
    dc_tensor_free(be, &p->v);
    dc_param_release(be, p->mask);
    dc_param_release(be, p->assign);
    dc_param_release(be, p->codebook);
    dc_param_release(be, p->dcode);
    dc_param_release(be, p->vcode);
    dc_spmat_free(be, p->sp);
    memset(p, 0, sizeof *p);
}

void dc_layer_free(struct dc_backend *be, struct dc_layer *l)
{
    if (!l)
        return;
    if (l->ops && l->ops->destroy)
        l->ops->destroy(l, be);
    for (int i = 0; i < l->nparams; i++) {
        dc_param_free(be, l->params[i]);
        free(l->params[i]);
    }
    free(l->priv);
    free(l);
}

enum dc_status dc_layer_new(const char *name, enum dc_layer_type type, const struct dc_layer_ops *ops,
                            int in_c, int in_h, int in_w, int max_batch, size_t priv_size,
                            struct dc_layer **out)
{
    *out = NULL;
    if (in_c <= 0 || in_h <= 0 || in_w <= 0)
        return DC_ERROR(DC_ERR_CONFIG, "layer %s: input shape %dx%dx%d is empty", name, in_c, in_h, in_w);
    if (max_batch <= 0)
        return DC_ERROR(DC_ERR_ARG, "layer %s: max_batch %d must be positive", name, max_batch);
    struct dc_layer *l = calloc(1, sizeof *l);
    if (!l)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory creating layer %s", name);
    if (snprintf(l->name, sizeof l->name, "%s", name) >= (int)sizeof l->name) {
        free(l);
        return DC_ERROR(DC_ERR_CONFIG, "layer name '%s' is longer than %d characters; shorten it", name,
                        (int)sizeof l->name - 1);
    }
    if (priv_size) {
        l->priv = calloc(1, priv_size);
        if (!l->priv) {
            free(l);
            return DC_ERROR(DC_ERR_NOMEM, "out of memory creating layer %s", name);
        }
    }
    l->ops = ops;
    l->type = type;
    l->in_c = in_c;
    l->in_h = in_h;
    l->in_w = in_w;
    l->max_batch = max_batch;
    *out = l;
    return DC_OK;
}

enum dc_status dc_layer_finish(struct dc_backend *be, struct dc_layer *l, enum dc_status s,
                               struct dc_layer **out)
{
    if (s != DC_OK) {
        dc_layer_free(be, l);
        return s;
    }
    *out = l;
    return DC_OK;
}

enum dc_status dc_layer_add_param(struct dc_backend *be, struct dc_layer *l, const char *suffix, int n,
                                  int c, int h, int w, int trainable, struct dc_param **out)
{
    *out = NULL;
    if (l->nparams >= DC_LAYER_MAX_PARAMS)
        return DC_ERROR(DC_ERR_ARG, "layer %s has more than %d parameters", l->name, DC_LAYER_MAX_PARAMS);
    char name[sizeof l->name + 32];
    snprintf(name, sizeof name, "%s.%s", l->name, suffix);
    struct dc_param *p = calloc(1, sizeof *p);
    if (!p)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory for parameter %s", name);
    enum dc_status s = dc_param_init(be, p, name, n, c, h, w, trainable);
    if (s != DC_OK) {
        free(p);
        return s;
    }
    l->params[l->nparams++] = p;
    *out = p;
    return DC_OK;
}

enum dc_status dc_param_init_uniform(struct dc_backend *be, struct dc_param *p, float bound,
                                     struct dc_rng *rng)
{
    size_t count = dc_param_count(p);
    float *host = malloc(count * sizeof *host);
    if (!host)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory initialising %s", p->name);
    for (size_t i = 0; i < count; i++)
        host[i] = (2.0f * dc_rng_uniform(rng) - 1.0f) * bound;
    enum dc_status s = dc_tensor_upload(be, &p->w, host);
    free(host);
    return s;
}

enum dc_status dc_layer_check_out(const struct dc_layer *l, const char *how)
{
    if (l->out_c > 0 && l->out_h > 0 && l->out_w > 0)
        return DC_OK;
    return DC_ERROR(DC_ERR_CONFIG,
                    "layer %s: input %dx%dx%d (CxHxW) with %s gives an empty output %dx%dx%d; "
                    "use a smaller size or stride, more padding, or fewer pooling layers before it",
                    l->name, l->in_c, l->in_h, l->in_w, how, l->out_c, l->out_h, l->out_w);
}

enum dc_status dc_layer_check_batch(const struct dc_layer *l, const struct dc_tensor *x)
{
    if (x->n <= 0 || x->n > l->max_batch)
        return DC_ERROR(DC_ERR_ARG, "layer %s: batch of %d outside 1..%d", l->name, x->n, l->max_batch);
    return DC_OK;
}
