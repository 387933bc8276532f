/* net_build.c: turning the layer sections of a config into a network on a
 * backend: expanding conv/fc sections into their layers (conv, batch norm,
 * ReLU), inferring shapes from layer to layer, checking them against the
 * input and the class count with messages that name the layer and its line,
 * and allocating the activations for the largest batch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/net.h"
#include "net_internal.h"

/* Running shape and state while the layers are appended. */
struct dc_net_builder {
    struct dc_net *net;
    const struct dc_config *cfg;
    int cfg_index;
    int c, h, w;
    struct dc_rng rng;
    struct dc_net_budget budget;
};

/* Prefix the current error message with the config file and line of the
 * section being built, so a user sees where to look. */
static enum dc_status dc_net_where(const struct dc_net_builder *b, enum dc_status s)
{
    char msg[768];
    snprintf(msg, sizeof msg, "%s", dc_error_msg());
    const struct dc_layer_cfg *lc = &b->cfg->layers[b->cfg_index];
    return DC_ERROR(s, "%s:%d: [%s] %s", dc_config_layer_file(b->cfg, lc), lc->line, dc_layer_type_name(lc->type), msg);
}

static enum dc_status dc_net_append(struct dc_net_builder *b, struct dc_layer *l)
{
    struct dc_net *net = b->net;
    if (net->nlayers >= DC_NET_MAX_LAYERS) {
        dc_layer_free(net->be, l);
        return DC_ERROR(DC_ERR_CONFIG, "layer %s: the network has more than %d layers", l->name,
                        DC_NET_MAX_LAYERS);
    }
    l->index = (uint64_t)net->nlayers;
    l->cfg_index = b->cfg_index;
    net->layers[net->nlayers++] = l;
    for (int i = 0; i < l->nparams; i++) {
        if (net->nparams >= DC_NET_MAX_PARAMS)
            return DC_ERROR(DC_ERR_CONFIG, "layer %s: the network has more than %d parameter tensors",
                            l->name, DC_NET_MAX_PARAMS);
        l->params[i]->cfg_index = b->cfg_index;
        net->params[net->nparams++] = l->params[i];
    }
    b->c = l->out_c;
    b->h = l->out_h;
    b->w = l->out_w;
    return DC_OK;
}

/* "<section name>.<suffix>" for the layers a section expands into */
static enum dc_status dc_net_sub_name(const char *base, const char *suffix, char *out, size_t len)
{
    if (snprintf(out, len, "%s.%s", base, suffix) >= (int)len)
        return DC_ERROR(DC_ERR_CONFIG, "layer name %s.%s is longer than %d characters; shorten %s", base,
                        suffix, (int)len - 1, base);
    return DC_OK;
}

/* The ReLU and batch norm that follow a conv or fc section. */
static enum dc_status dc_net_add_followers(struct dc_net_builder *b, const struct dc_layer_cfg *lc, int bn)
{
    struct dc_backend *be = b->net->be;
    int mb = b->net->max_batch;
    char name[DC_NAME_LEN];
    struct dc_layer *l;
    if (bn) {
        DC_TRY(dc_net_sub_name(lc->name, "bn", name, sizeof name));
        DC_TRY(dc_layer_bn_create(be, name, b->c, b->h, b->w, mb, &l));
        DC_TRY(dc_net_append(b, l));
    }
    if (lc->relu) {
        DC_TRY(dc_net_sub_name(lc->name, "relu", name, sizeof name));
        DC_TRY(dc_layer_relu_create(be, name, b->c, b->h, b->w, mb, &l));
        DC_TRY(dc_net_append(b, l));
    }
    return DC_OK;
}

static enum dc_status dc_net_add_section(struct dc_net_builder *b, const struct dc_layer_cfg *lc)
{
    struct dc_backend *be = b->net->be;
    int mb = b->net->max_batch, c = b->c, h = b->h, w = b->w;
    const char *nm = lc->name;
    struct dc_layer *l = NULL;
    DC_TRY(dc_net_budget_add(&b->budget, lc, c, h, w, mb));
    switch (lc->type) {
    case DC_LAYER_CONV:
        DC_TRY(dc_layer_conv_create(be, nm, c, h, w, lc->filters, lc->size, lc->stride, lc->pad,
                                    !lc->batch_normalize, mb, &b->rng, &l));
        DC_TRY(dc_net_append(b, l));
        return dc_net_add_followers(b, lc, lc->batch_normalize);
    case DC_LAYER_FC:
        DC_TRY(dc_layer_fc_create(be, nm, c, h, w, lc->outputs, mb, &b->rng, &l));
        DC_TRY(dc_net_append(b, l));
        return dc_net_add_followers(b, lc, 0);
    case DC_LAYER_MAXPOOL:
    case DC_LAYER_AVGPOOL:
        DC_TRY(dc_layer_pool_create(be, nm, c, h, w, lc->type == DC_LAYER_MAXPOOL, lc->size, lc->stride,
                                    lc->pad, mb, &l));
        break;
    case DC_LAYER_RELU:
        DC_TRY(dc_layer_relu_create(be, nm, c, h, w, mb, &l));
        break;
    case DC_LAYER_BN:
        DC_TRY(dc_layer_bn_create(be, nm, c, h, w, mb, &l));
        break;
    case DC_LAYER_DROPOUT:
        DC_TRY(dc_layer_dropout_create(be, nm, c, h, w, lc->probability, mb, &l));
        break;
    case DC_LAYER_FIRE:
        DC_TRY(dc_layer_fire_create(be, nm, c, h, w, lc->squeeze, lc->expand1, lc->expand3, mb, &b->rng, &l));
        break;
    default:
        return DC_ERROR(DC_ERR_CONFIG, "layer %s: unknown layer type %d", nm, (int)lc->type);
    }
    return dc_net_append(b, l);
}

/* act[0] input, act[i+1] and grad[i+1] the output of layer i and its gradient */
static enum dc_status dc_net_alloc_buffers(struct dc_net *net)
{
    struct dc_backend *be = net->be;
    int mb = net->max_batch;
    DC_TRY(dc_tensor_alloc(be, &net->act[0], mb, net->in_c, net->in_h, net->in_w));
    for (int i = 0; i < net->nlayers; i++) {
        const struct dc_layer *l = net->layers[i];
        DC_TRY(dc_tensor_alloc(be, &net->act[i + 1], mb, l->out_c, l->out_h, l->out_w));
        DC_TRY(dc_tensor_alloc(be, &net->grad[i + 1], mb, l->out_c, l->out_h, l->out_w));
    }
    DC_TRY(be->ops.alloc(be, (void **)&net->labels, (size_t)mb * sizeof(int32_t)));
    DC_TRY(be->ops.alloc(be, (void **)&net->stats, 2 * sizeof(float)));
    return be->ops.fill(be, net->stats, 0.0f, 2);
}

static enum dc_status dc_net_build(struct dc_net_builder *b)
{
    const struct dc_config *cfg = b->cfg;
    struct dc_net *net = b->net;
    if (cfg->nlayers <= 0)
        return DC_ERROR(DC_ERR_CONFIG, "%s: the config has no layer sections; add [conv], [fc], ... sections",
                        cfg->path[0] ? cfg->path : "network");
    for (b->cfg_index = 0; b->cfg_index < cfg->nlayers; b->cfg_index++) {
        enum dc_status s = dc_net_add_section(b, &cfg->layers[b->cfg_index]);
        if (s != DC_OK)
            return dc_net_where(b, s);
    }
    b->cfg_index = cfg->nlayers - 1;
    const struct dc_layer *last = net->layers[net->nlayers - 1];
    long outputs = (long)last->out_c * last->out_h * last->out_w;
    if (outputs != net->classes) {
        DC_ERROR(DC_ERR_CONFIG,
                 "layer %s: the network ends with %ld outputs (%dx%dx%d, CxHxW) but the dataset has %d "
                 "classes; make the last layer give %d outputs (e.g. [fc] outputs = %d)",
                 last->name, outputs, last->out_c, last->out_h, last->out_w, net->classes, net->classes,
                 net->classes);
        return dc_net_where(b, DC_ERR_CONFIG);
    }
    return dc_net_alloc_buffers(net);
}

enum dc_status dc_net_create(struct dc_backend *be, const struct dc_config *cfg, int in_c, int in_h,
                             int in_w, int classes, int max_batch, uint64_t seed, struct dc_net **out)
{
    *out = NULL;
    if (in_c <= 0 || in_h <= 0 || in_w <= 0 || classes <= 0 || max_batch <= 0)
        return DC_ERROR(DC_ERR_ARG, "network input %dx%dx%d, %d classes, batch %d: all must be positive",
                        in_c, in_h, in_w, classes, max_batch);
    struct dc_net *net = calloc(1, sizeof *net);
    if (!net)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory creating the network");
    net->be = be;
    net->in_c = in_c;
    net->in_h = in_h;
    net->in_w = in_w;
    net->classes = classes;
    net->max_batch = max_batch;
    struct dc_net_builder b = {.net = net, .cfg = cfg, .c = in_c, .h = in_h, .w = in_w};
    b.budget.limit = dc_net_memory_limit();
    dc_rng_seed(&b.rng, seed);
    enum dc_status s = dc_net_build(&b);
    if (s != DC_OK) {
        dc_net_free(net);
        return s;
    }
    *out = net;
    return DC_OK;
}

void dc_net_free(struct dc_net *net)
{
    if (!net)
        return;
    struct dc_backend *be = net->be;
    dc_net_update_release(net);
    for (int i = 0; i < net->nlayers; i++)
        dc_layer_free(be, net->layers[i]);
    for (int i = 0; i <= DC_NET_MAX_LAYERS; i++) {
        dc_tensor_free(be, &net->act[i]);
        dc_tensor_free(be, &net->grad[i]);
    }
    if (net->labels)
        be->ops.release(be, net->labels);
    if (net->stats)
        be->ops.release(be, net->stats);
    free(net);
}
