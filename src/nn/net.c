/* net.c: running a built network: forward, softmax cross-entropy loss,
 * backward, the optimiser step over every parameter (plain, pruned or
 * quantized), and the loss/accuracy counters kept in backend memory so a
 * training step never waits on the host.
 *
 * Legend: N batch, K classes. */
#include <string.h>

#include "dc/net.h"
#include "dc/quantize.h"

static enum dc_status dc_net_check_n(const struct dc_net *net, int n)
{
    if (n <= 0 || n > net->max_batch)
        return DC_ERROR(DC_ERR_ARG, "batch of %d outside 1..%d (the network's max_batch)", n, net->max_batch);
    return DC_OK;
}

enum dc_status dc_net_forward(struct dc_net *net, int n, const struct dc_pass *pass)
{
    DC_TRY(dc_net_check_n(net, n));
    net->act[0].n = n;
    for (int i = 0; i < net->nlayers; i++) {
        struct dc_layer *l = net->layers[i];
        DC_TRY(l->ops->forward(l, net->be, &net->act[i], &net->act[i + 1], pass));
    }
    return DC_OK;
}

/* logits act[L] [N,K], labels [N] -> grad[L] [N,K] = (softmax - onehot) / N */
enum dc_status dc_net_loss(struct dc_net *net, int n)
{
    DC_TRY(dc_net_check_n(net, n));
    struct dc_tensor *logits = &net->act[net->nlayers], *dlogits = &net->grad[net->nlayers];
    if (logits->n != n)
        return DC_ERROR(DC_ERR_ARG, "loss over %d samples after a forward of %d", n, logits->n);
    dlogits->n = n;
    return net->be->ops.softmax_xent(net->be, n, net->classes, logits->data, net->labels, 1.0f / (float)n,
                                     dlogits->data, net->stats);
}

enum dc_status dc_net_backward(struct dc_net *net, int n)
{
    DC_TRY(dc_net_check_n(net, n));
    if (net->act[net->nlayers].n != n || net->grad[net->nlayers].n != n)
        return DC_ERROR(DC_ERR_ARG, "backward over %d samples after a forward of %d and a loss of %d", n,
                        net->act[net->nlayers].n, net->grad[net->nlayers].n);
    for (int i = net->nlayers - 1; i >= 0; i--) {
        struct dc_layer *l = net->layers[i];
        DC_TRY(l->ops->backward(l, net->be, &net->act[i], &net->act[i + 1], &net->grad[i + 1],
                                i > 0 ? &net->grad[i] : NULL));
    }
    return DC_OK;
}

/* Weight decay applies to every trainable tensor, batch-norm gamma and beta
 * included, as PyTorch's SGD does by default. */
enum dc_status dc_net_update(struct dc_net *net, float lr, float momentum, float wd, int nesterov)
{
    struct dc_backend *be = net->be;
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        if (!p->trainable)
            continue;
        if (p->codebook)
            DC_TRY(dc_quantize_step(be, p, lr, momentum));
        else
            DC_TRY(be->ops.sgd_update(be, dc_param_count(p), p->w.data, p->g.data, p->v.data, p->mask, lr,
                                      momentum, wd, nesterov));
    }
    return DC_OK;
}

enum dc_status dc_net_stats_reset(struct dc_net *net)
{
    return net->be->ops.fill(net->be, net->stats, 0.0f, 2);
}

enum dc_status dc_net_stats_read(struct dc_net *net, double *loss_sum, double *correct)
{
    float host[2];
    DC_TRY(net->be->ops.download(net->be, host, net->stats, sizeof host));
    *loss_sum = host[0];
    *correct = host[1];
    return DC_OK;
}

size_t dc_net_param_count(const struct dc_net *net)
{
    size_t total = 0;
    for (int i = 0; i < net->nparams; i++)
        if (net->params[i]->trainable)
            total += dc_param_count(net->params[i]);
    return total;
}

struct dc_param *dc_net_find_param(struct dc_net *net, const char *name)
{
    for (int i = 0; i < net->nparams; i++)
        if (strcmp(net->params[i]->name, name) == 0)
            return net->params[i];
    return NULL;
}
