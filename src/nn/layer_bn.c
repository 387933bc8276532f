/* layer_bn.c: spatial batch normalisation with PyTorch's conventions (eps
 * 1e-5, momentum 0.1, unbiased running variance).  Training normalises with
 * the batch statistics and updates the running ones; inference uses the
 * running ones, so a trained net evaluates one image at a time the same way.
 *
 * Legend: N batch, C channels, HW = H*W positions per channel. */
#include "layer_internal.h"

#define DC_BN_MOMENTUM 0.1f

struct dc_bn_priv {
    struct dc_param *gamma, *beta;              /* [C] trainable */
    struct dc_param *running_mean, *running_var; /* [C] not trained, updated by forward */
    struct dc_tensor save_mean, save_invstd;    /* [C] from the last training forward */
    struct dc_tensor dx_scratch;                /* [N,C,H,W] when backward is asked for no dx */
};

static struct dc_bn_desc dc_bn_layer_desc(const struct dc_layer *l, int n)
{
    struct dc_bn_desc d = {.n = n, .c = l->in_c, .hw = l->in_h * l->in_w, .eps = DC_BN_EPS,
                           .momentum = DC_BN_MOMENTUM};
    return d;
}

/* x [N,C,H,W] -> y [N,C,H,W] */
static enum dc_status dc_bn_forward(struct dc_layer *l, struct dc_backend *be, const struct dc_tensor *x,
                                    struct dc_tensor *y, const struct dc_pass *pass)
{
    struct dc_bn_priv *bp = l->priv;
    DC_TRY(dc_layer_check_batch(l, x));
    struct dc_bn_desc d = dc_bn_layer_desc(l, x->n);
    dc_layer_shape_out(l, y, x->n);
    if (pass && !pass->train && pass->bn_recal > 0.0f)
        d.momentum = pass->bn_recal;
    if (pass && (pass->train || pass->bn_recal > 0.0f))
        return be->ops.bn_fwd_train(be, &d, x->data, bp->gamma->w.data, bp->beta->w.data,
                                    bp->running_mean->w.data, bp->running_var->w.data, y->data,
                                    bp->save_mean.data, bp->save_invstd.data);
    return be->ops.bn_fwd_infer(be, &d, x->data, bp->gamma->w.data, bp->beta->w.data,
                                bp->running_mean->w.data, bp->running_var->w.data, y->data);
}

/* dy -> dgamma, dbeta [C] and dx [N,C,H,W]; valid after a training forward */
static enum dc_status dc_bn_backward(struct dc_layer *l, struct dc_backend *be, const struct dc_tensor *x,
                                     const struct dc_tensor *y, const struct dc_tensor *dy,
                                     struct dc_tensor *dx)
{
    (void)y;
    struct dc_bn_priv *bp = l->priv;
    DC_TRY(dc_layer_check_batch(l, x));
    struct dc_bn_desc d = dc_bn_layer_desc(l, x->n);
    float *dx_data;
    if (dx) {
        dc_layer_shape_in(dx, x);
        dx_data = dx->data;
    } else {
        /* the op always writes dx; a first-layer batch norm rarely occurs, so allocate on demand */
        if (!bp->dx_scratch.data)
            DC_TRY(dc_tensor_alloc(be, &bp->dx_scratch, l->max_batch, l->in_c, l->in_h, l->in_w));
        dx_data = bp->dx_scratch.data;
    }
    return be->ops.bn_bwd(be, &d, x->data, dy->data, bp->gamma->w.data, bp->save_mean.data,
                          bp->save_invstd.data, dx_data, bp->gamma->g.data, bp->beta->g.data);
}

static void dc_bn_destroy(struct dc_layer *l, struct dc_backend *be)
{
    struct dc_bn_priv *bp = l->priv;
    dc_tensor_free(be, &bp->save_mean);
    dc_tensor_free(be, &bp->save_invstd);
    dc_tensor_free(be, &bp->dx_scratch);
}

static const struct dc_layer_ops dc_bn_ops = {dc_bn_forward, dc_bn_backward, dc_bn_destroy};

static enum dc_status dc_bn_init(struct dc_backend *be, struct dc_layer *l)
{
    struct dc_bn_priv *bp = l->priv;
    int c = l->in_c;
    DC_TRY(dc_layer_add_param(be, l, "gamma", c, 1, 1, 1, 1, &bp->gamma));
    DC_TRY(dc_layer_add_param(be, l, "beta", c, 1, 1, 1, 1, &bp->beta));
    DC_TRY(dc_layer_add_param(be, l, "running_mean", c, 1, 1, 1, 0, &bp->running_mean));
    DC_TRY(dc_layer_add_param(be, l, "running_var", c, 1, 1, 1, 0, &bp->running_var));
    DC_TRY(be->ops.fill(be, bp->gamma->w.data, 1.0f, (size_t)c));
    DC_TRY(be->ops.fill(be, bp->running_var->w.data, 1.0f, (size_t)c));
    DC_TRY(dc_tensor_alloc(be, &bp->save_mean, c, 1, 1, 1));
    DC_TRY(dc_tensor_alloc(be, &bp->save_invstd, c, 1, 1, 1));
    return DC_OK;
}

enum dc_status dc_layer_bn_create(struct dc_backend *be, const char *name, int in_c, int in_h, int in_w,
                                  int max_batch, struct dc_layer **out)
{
    struct dc_layer *l;
    DC_TRY(dc_layer_new(name, DC_LAYER_BN, &dc_bn_ops, in_c, in_h, in_w, max_batch,
                        sizeof(struct dc_bn_priv), &l));
    l->out_c = in_c;
    l->out_h = in_h;
    l->out_w = in_w;
    enum dc_status s = dc_bn_init(be, l);
    return dc_layer_finish(be, l, s, out);
}
