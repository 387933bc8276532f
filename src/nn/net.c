/* net.c: running a built network: forward, softmax cross-entropy loss,
 * backward, the optimiser step over every parameter (plain, pruned or
 * quantized; two multi-tensor sgd_multi launches reading the rate from
 * backend memory, so a recorded step replays with each step's rate), and the
 * loss/accuracy counters kept in backend memory so a training step never
 * waits on the host.
 *
 * Legend: N batch, K classes. */
#include <stdlib.h>
#include <string.h>

#include "dc/net.h"

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
enum dc_status dc_net_loss_soft(struct dc_net *net, int n, const struct dc_soft_target *soft)
{
    DC_TRY(dc_net_check_n(net, n));
    struct dc_tensor *logits = &net->act[net->nlayers], *dlogits = &net->grad[net->nlayers];
    if (logits->n != n)
        return DC_ERROR(DC_ERR_ARG, "loss over %d samples after a forward of %d", n, logits->n);
    dlogits->n = n;
    return net->be->ops.softmax_xent(net->be, n, net->classes, logits->data, net->labels, soft, 1.0f / (float)n,
                                     dlogits->data, net->stats);
}

enum dc_status dc_net_loss(struct dc_net *net, int n)
{
    return dc_net_loss_soft(net, n, NULL);
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

/* The update lists in backend memory: list[0..nplain) are the plain and
 * pruned parameters, list[nplain..nplain+ncode) the codebooks of quantized
 * ones ({codebook, dcode, vcode, no mask, m}).  `host` is what was uploaded,
 * so a changed parameter set (a mask or codebook made since) is seen and
 * uploaded again; lr is the rate of the next update. */
struct dc_net_update {
    int nplain, ncode, cap;
    struct dc_sgd_tensor *host;  /* host [cap] */
    struct dc_sgd_tensor *now;   /* host [cap]: the lists the parameters call for now */
    struct dc_sgd_tensor *list;  /* backend memory [cap] */
    float *lr;                   /* backend memory [1] */
};

/* The lists the parameters call for now, into host [nparams]. */
static void dc_net_update_lists(const struct dc_net *net, struct dc_sgd_tensor *host, int *nplain, int *ncode)
{
    int k = 0;
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        if (p->trainable && !p->codebook)
            host[k++] = (struct dc_sgd_tensor){p->w.data, p->g.data, p->v.data, p->mask, dc_param_count(p)};
    }
    *nplain = k;
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        if (p->trainable && p->codebook)
            host[k++] = (struct dc_sgd_tensor){p->codebook, p->dcode, p->vcode, NULL, (size_t)p->m};
    }
    *ncode = k - *nplain;
}

void dc_net_update_release(struct dc_net *net)
{
    struct dc_net_update *u = net->update;
    if (!u)
        return;
    if (u->list)
        net->be->ops.release(net->be, u->list);
    if (u->lr)
        net->be->ops.release(net->be, u->lr);
    free(u->host);
    free(u->now);
    free(u);
    net->update = NULL;
}

static enum dc_status dc_net_update_init(struct dc_net *net)
{
    struct dc_backend *be = net->be;
    struct dc_net_update *u = calloc(1, sizeof *u);
    if (!u)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory for the optimiser's update lists");
    net->update = u;
    u->cap = net->nparams > 0 ? net->nparams : 1;
    u->host = calloc((size_t)u->cap, sizeof *u->host);
    u->now = calloc((size_t)u->cap, sizeof *u->now);
    if (!u->host || !u->now)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory for the optimiser's update lists");
    DC_TRY(be->ops.alloc(be, (void **)&u->list, sizeof(struct dc_sgd_tensor) * (size_t)u->cap));
    DC_TRY(be->ops.alloc(be, (void **)&u->lr, sizeof(float)));
    u->nplain = u->ncode = -1; /* nothing uploaded yet */
    return DC_OK;
}

enum dc_status dc_net_set_lr(struct dc_net *net, float lr)
{
    if (!net->update)
        DC_TRY(dc_net_update_init(net));
    return net->be->ops.upload(net->be, net->update->lr, &lr, sizeof lr);
}

/* Upload the lists when the parameter set differs from what was uploaded. */
static enum dc_status dc_net_update_sync(struct dc_net *net)
{
    struct dc_net_update *u = net->update;
    int nplain, ncode;
    memset(u->now, 0, sizeof(struct dc_sgd_tensor) * (size_t)u->cap); /* padding compares equal */
    dc_net_update_lists(net, u->now, &nplain, &ncode);
    size_t bytes = sizeof(struct dc_sgd_tensor) * (size_t)(nplain + ncode);
    if (nplain == u->nplain && ncode == u->ncode && memcmp(u->now, u->host, bytes) == 0)
        return DC_OK;
    memcpy(u->host, u->now, bytes);
    u->nplain = u->ncode = -1; /* until the upload succeeds */
    DC_TRY(net->be->ops.upload(net->be, u->list, u->host, bytes));
    u->nplain = nplain;
    u->ncode = ncode;
    return DC_OK;
}

/* Weight decay applies to every trainable tensor, batch-norm gamma and beta
 * included, as PyTorch's SGD does by default.  Quantized parameters: the
 * centroid gradients (sum of member gradients), one SGD step of every
 * codebook without weight decay or Nesterov, then the weights re-gathered
 * from the codebook.  Every tensor's update is independent of the others',
 * so grouping them in two launches gives the per-tensor results exactly. */
enum dc_status dc_net_update_apply(struct dc_net *net, float momentum, float wd, int nesterov)
{
    struct dc_backend *be = net->be;
    if (!net->update || !net->update->lr)
        return DC_ERROR(DC_ERR_ARG, "update without a learning rate: call dc_net_set_lr first");
    DC_TRY(dc_net_update_sync(net));
    struct dc_net_update *u = net->update;
    if (u->nplain > 0)
        DC_TRY(be->ops.sgd_multi(be, u->nplain, u->list, u->lr, momentum, wd, nesterov));
    if (u->ncode == 0)
        return DC_OK;
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        if (p->trainable && p->codebook)
            DC_TRY(be->ops.codebook_grad(be, dc_param_count(p), p->assign, p->g.data, p->mask, p->m, p->dcode));
    }
    DC_TRY(be->ops.sgd_multi(be, u->ncode, u->list + u->nplain, u->lr, momentum, 0.0f, 0));
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        if (p->trainable && p->codebook)
            DC_TRY(be->ops.codebook_gather(be, dc_param_count(p), p->assign, p->codebook, p->mask, p->w.data));
    }
    return DC_OK;
}

enum dc_status dc_net_update(struct dc_net *net, float lr, float momentum, float wd, int nesterov)
{
    DC_TRY(dc_net_set_lr(net, lr));
    return dc_net_update_apply(net, momentum, wd, nesterov);
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
