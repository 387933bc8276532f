/* layer_fire.c: the SqueezeNet Fire module: squeeze 1x1 conv + ReLU, then
 * expand 1x1 and expand 3x3 (pad 1) convs on the squeezed map, concatenated on
 * channels + ReLU.  It is one layer to the config and the net; inside, it wires
 * three ordinary conv layers and owns their parameters, so pruning and
 * quantization see "<fire>.squeeze.weight" and the rest like any conv weight.
 *
 * Legend: N batch, C input channels, H W size (kept by every branch),
 * SQ squeeze width, E1 E3 expand widths. */
#include <stdio.h>

#include "layer_internal.h"

struct dc_fire_priv {
    struct dc_layer *squeeze, *expand1, *expand3; /* parameters moved to the fire layer */
    struct dc_tensor s;    /* [N,SQ,H,W] squeeze output after ReLU */
    struct dc_tensor e1;   /* [N,E1,H,W] expand1 output; its gradient in backward */
    struct dc_tensor e3;   /* [N,E3,H,W] expand3 output; its gradient in backward */
    struct dc_tensor dcat; /* [N,E1+E3,H,W] gradient at the concatenation */
    struct dc_tensor ds;   /* [N,SQ,H,W] gradient at the squeeze output (expand1 part, then the sum) */
    struct dc_tensor ds3;  /* [N,SQ,H,W] expand3's part of it */
};

/* x [N,C,H,W] -> y [N,E1+E3,H,W] */
static enum dc_status dc_fire_forward(struct dc_layer *l, struct dc_backend *be, const struct dc_tensor *x,
                                      struct dc_tensor *y, const struct dc_pass *pass)
{
    struct dc_fire_priv *fp = l->priv;
    DC_TRY(dc_layer_check_batch(l, x));
    int n = x->n, hw = l->in_h * l->in_w;
    DC_TRY(fp->squeeze->ops->forward(fp->squeeze, be, x, &fp->s, pass));
    DC_TRY(be->ops.relu_fwd(be, dc_tensor_count(&fp->s), fp->s.data, fp->s.data));
    DC_TRY(fp->expand1->ops->forward(fp->expand1, be, &fp->s, &fp->e1, pass));
    DC_TRY(fp->expand3->ops->forward(fp->expand3, be, &fp->s, &fp->e3, pass));
    dc_layer_shape_out(l, y, n);
    DC_TRY(be->ops.concat(be, n, fp->e1.c, fp->e3.c, hw, fp->e1.data, fp->e3.data, y->data));
    return be->ops.relu_fwd(be, dc_tensor_count(y), y->data, y->data);
}

/* dy [N,E1+E3,H,W] -> the six parameter gradients and dx [N,C,H,W] */
static enum dc_status dc_fire_backward(struct dc_layer *l, struct dc_backend *be, const struct dc_tensor *x,
                                       const struct dc_tensor *y, const struct dc_tensor *dy,
                                       struct dc_tensor *dx)
{
    struct dc_fire_priv *fp = l->priv;
    DC_TRY(dc_layer_check_batch(l, x));
    int n = x->n, hw = l->in_h * l->in_w;
    fp->dcat.n = n;
    DC_TRY(be->ops.relu_bwd(be, dc_tensor_count(y), y->data, dy->data, fp->dcat.data));
    /* the expand outputs are not needed any more: their buffers take the gradients */
    DC_TRY(be->ops.split(be, n, fp->e1.c, fp->e3.c, hw, fp->dcat.data, fp->e1.data, fp->e3.data));
    DC_TRY(fp->expand1->ops->backward(fp->expand1, be, &fp->s, &fp->e1, &fp->e1, &fp->ds));
    DC_TRY(fp->expand3->ops->backward(fp->expand3, be, &fp->s, &fp->e3, &fp->e3, &fp->ds3));
    size_t count = dc_tensor_count(&fp->s);
    DC_TRY(be->ops.axpby(be, count, 1.0f, fp->ds3.data, 1.0f, fp->ds.data));
    DC_TRY(be->ops.relu_bwd(be, count, fp->s.data, fp->ds.data, fp->ds.data));
    return fp->squeeze->ops->backward(fp->squeeze, be, x, &fp->s, &fp->ds, dx);
}

static void dc_fire_destroy(struct dc_layer *l, struct dc_backend *be)
{
    struct dc_fire_priv *fp = l->priv;
    dc_layer_free(be, fp->squeeze);
    dc_layer_free(be, fp->expand1);
    dc_layer_free(be, fp->expand3);
    struct dc_tensor *t[] = {&fp->s, &fp->e1, &fp->e3, &fp->dcat, &fp->ds, &fp->ds3};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        dc_tensor_free(be, t[i]);
}

static const struct dc_layer_ops dc_fire_ops = {dc_fire_forward, dc_fire_backward, dc_fire_destroy};

/* Take the sub-layer's parameters over (renamed "<fire>.<sub>.weight"), so
 * the fire layer lists and frees them and the sub-layer only computes. */
static enum dc_status dc_fire_adopt(struct dc_layer *l, struct dc_layer *sub)
{
    for (int i = 0; i < sub->nparams; i++) {
        struct dc_param *p = sub->params[i];
        char name[sizeof p->name];
        if (snprintf(name, sizeof name, "%s.%s", l->name, p->name) >= (int)sizeof name)
            return DC_ERROR(DC_ERR_CONFIG, "layer %s: parameter name %s.%s is too long; shorten the name",
                            l->name, l->name, p->name);
        snprintf(p->name, sizeof p->name, "%s", name);
        l->params[l->nparams++] = p;
    }
    sub->nparams = 0;
    return DC_OK;
}

static enum dc_status dc_fire_init(struct dc_backend *be, struct dc_layer *l, int squeeze, int expand1,
                                   int expand3, struct dc_rng *rng)
{
    struct dc_fire_priv *fp = l->priv;
    int c = l->in_c, h = l->in_h, w = l->in_w, mb = l->max_batch;
    if (squeeze <= 0 || expand1 <= 0 || expand3 <= 0)
        return DC_ERROR(DC_ERR_CONFIG, "layer %s: squeeze %d, expand1x1 %d and expand3x3 %d must all be positive",
                        l->name, squeeze, expand1, expand3);
    DC_TRY(dc_layer_conv_create(be, "squeeze", c, h, w, squeeze, 1, 1, 0, 1, mb, rng, &fp->squeeze));
    DC_TRY(dc_fire_adopt(l, fp->squeeze));
    DC_TRY(dc_layer_conv_create(be, "expand1", squeeze, h, w, expand1, 1, 1, 0, 1, mb, rng, &fp->expand1));
    DC_TRY(dc_fire_adopt(l, fp->expand1));
    DC_TRY(dc_layer_conv_create(be, "expand3", squeeze, h, w, expand3, 3, 1, 1, 1, mb, rng, &fp->expand3));
    DC_TRY(dc_fire_adopt(l, fp->expand3));
    DC_TRY(dc_tensor_alloc(be, &fp->s, mb, squeeze, h, w));
    DC_TRY(dc_tensor_alloc(be, &fp->e1, mb, expand1, h, w));
    DC_TRY(dc_tensor_alloc(be, &fp->e3, mb, expand3, h, w));
    DC_TRY(dc_tensor_alloc(be, &fp->dcat, mb, expand1 + expand3, h, w));
    DC_TRY(dc_tensor_alloc(be, &fp->ds, mb, squeeze, h, w));
    DC_TRY(dc_tensor_alloc(be, &fp->ds3, mb, squeeze, h, w));
    return DC_OK;
}

enum dc_status dc_layer_fire_create(struct dc_backend *be, const char *name, int in_c, int in_h, int in_w,
                                    int squeeze, int expand1, int expand3, int max_batch,
                                    struct dc_rng *rng, struct dc_layer **out)
{
    struct dc_layer *l;
    DC_TRY(dc_layer_new(name, DC_LAYER_FIRE, &dc_fire_ops, in_c, in_h, in_w, max_batch,
                        sizeof(struct dc_fire_priv), &l));
    l->out_c = expand1 + expand3;
    l->out_h = in_h;
    l->out_w = in_w;
    enum dc_status s = dc_fire_init(be, l, squeeze, expand1, expand3, rng);
    return dc_layer_finish(be, l, s, out);
}
