/* layer_conv.c: 2-D convolution (cross-correlation) with an optional bias,
 * over the backend's conv ops.  Without a bias when batch norm follows, as
 * the bias would only be cancelled by the normalisation.
 *
 * Legend: N batch, C input channels, H W input size, K filters, R S kernel
 * size, P Q output size. */
#include <math.h>
#include <stdio.h>

#include "layer_internal.h"

struct dc_conv_priv {
    struct dc_param *weight; /* [K,C,R,S] */
    struct dc_param *bias;   /* [K], NULL without bias */
    int size, stride, pad;
};

static struct dc_conv_desc dc_conv_layer_desc(const struct dc_layer *l, int n)
{
    const struct dc_conv_priv *cp = l->priv;
    struct dc_conv_desc d = {
        .n = n, .c = l->in_c, .h = l->in_h, .w = l->in_w,
        .k = l->out_c, .r = cp->size, .s = cp->size,
        .stride = cp->stride, .pad = cp->pad,
        .p = l->out_h, .q = l->out_w,
    };
    return d;
}

/* x [N,C,H,W] -> y [N,K,P,Q] */
static enum dc_status dc_conv_forward(struct dc_layer *l, struct dc_backend *be, const struct dc_tensor *x,
                                      struct dc_tensor *y, const struct dc_pass *pass)
{
    (void)pass;
    struct dc_conv_priv *cp = l->priv;
    DC_TRY(dc_layer_check_batch(l, x));
    struct dc_conv_desc d = dc_conv_layer_desc(l, x->n);
    dc_layer_shape_out(l, y, x->n);
    if (cp->weight->sp) /* bias and any folded batch norm are in its epilogue */
        return be->ops.spmat_conv(be, &d, cp->weight->sp, x->data, y->data);
    DC_TRY(be->ops.conv_fwd(be, &d, x->data, cp->weight->w.data, y->data));
    if (cp->bias)
        DC_TRY(be->ops.bias_add(be, y->data, cp->bias->w.data, x->n, l->out_c, l->out_h * l->out_w));
    return DC_OK;
}

/* dy [N,K,P,Q] -> dW [K,C,R,S], db [K], dx [N,C,H,W] */
static enum dc_status dc_conv_backward(struct dc_layer *l, struct dc_backend *be, const struct dc_tensor *x,
                                       const struct dc_tensor *y, const struct dc_tensor *dy,
                                       struct dc_tensor *dx)
{
    (void)y;
    struct dc_conv_priv *cp = l->priv;
    DC_TRY(dc_layer_check_batch(l, x));
    DC_TRY(dc_layer_check_dense(l, cp->weight));
    struct dc_conv_desc d = dc_conv_layer_desc(l, x->n);
    DC_TRY(be->ops.conv_bwd_filter(be, &d, x->data, dy->data, cp->weight->g.data));
    if (cp->bias)
        DC_TRY(be->ops.bias_grad(be, dy->data, cp->bias->g.data, x->n, l->out_c, l->out_h * l->out_w));
    if (dx) {
        dc_layer_shape_in(dx, x);
        DC_TRY(be->ops.conv_bwd_data(be, &d, cp->weight->w.data, dy->data, dx->data));
    }
    return DC_OK;
}

static const struct dc_layer_ops dc_conv_ops = {dc_conv_forward, dc_conv_backward, NULL};

enum dc_status dc_layer_conv_create(struct dc_backend *be, const char *name, int in_c, int in_h, int in_w,
                                    int filters, int size, int stride, int pad, int bias, int max_batch,
                                    struct dc_rng *rng, struct dc_layer **out)
{
    struct dc_layer *l;
    DC_TRY(dc_layer_new(name, DC_LAYER_CONV, &dc_conv_ops, in_c, in_h, in_w, max_batch,
                        sizeof(struct dc_conv_priv), &l));
    struct dc_conv_priv *cp = l->priv;
    cp->size = size;
    cp->stride = stride;
    cp->pad = pad;
    l->out_c = filters;
    l->out_h = size > 0 ? dc_layer_out_size(in_h, size, stride, pad) : 0;
    l->out_w = size > 0 ? dc_layer_out_size(in_w, size, stride, pad) : 0;
    char how[96];
    snprintf(how, sizeof how, "filters %d, size %d, stride %d, pad %d", filters, size, stride, pad);
    enum dc_status s = (pad < 0) ? DC_ERROR(DC_ERR_CONFIG, "layer %s: pad %d is negative", name, pad)
                                 : dc_layer_check_out(l, how);
    /* PyTorch's default: kaiming_uniform(a = sqrt 5) gives bound 1/sqrt(fan_in) for both */
    float bound = 1.0f / sqrtf((float)in_c * (float)size * (float)size);
    if (s == DC_OK)
        s = dc_layer_add_param(be, l, "weight", filters, in_c, size, size, 1, &cp->weight);
    if (s == DC_OK) {
        cp->weight->prunable = 1;
        cp->weight->is_conv = 1;
        cp->weight->geom = dc_conv_layer_desc(l, 1);
        s = dc_param_init_uniform(be, cp->weight, bound, rng);
    }
    if (s == DC_OK && bias)
        s = dc_layer_add_param(be, l, "bias", filters, 1, 1, 1, 1, &cp->bias);
    if (s == DC_OK && bias)
        s = dc_param_init_uniform(be, cp->bias, bound, rng);
    return dc_layer_finish(be, l, s, out);
}
