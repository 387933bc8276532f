/* layer_relu.c: rectified linear unit.  Backward reads the output rather than
 * the input, so a backend may run it in place. */
#include "layer_internal.h"

/* x [N,C,H,W] -> y [N,C,H,W] */
static enum dc_status dc_relu_forward(struct dc_layer *l, struct dc_backend *be, const struct dc_tensor *x,
                                      struct dc_tensor *y, const struct dc_pass *pass)
{
    (void)pass;
    DC_TRY(dc_layer_check_batch(l, x));
    dc_layer_shape_out(l, y, x->n);
    return be->ops.relu_fwd(be, dc_tensor_count(x), x->data, y->data);
}

static enum dc_status dc_relu_backward(struct dc_layer *l, struct dc_backend *be, const struct dc_tensor *x,
                                       const struct dc_tensor *y, const struct dc_tensor *dy,
                                       struct dc_tensor *dx)
{
    if (!dx)
        return DC_OK;
    DC_TRY(dc_layer_check_batch(l, x));
    dc_layer_shape_in(dx, x);
    return be->ops.relu_bwd(be, dc_tensor_count(x), y->data, dy->data, dx->data);
}

static const struct dc_layer_ops dc_relu_ops = {dc_relu_forward, dc_relu_backward, NULL};

enum dc_status dc_layer_relu_create(struct dc_backend *be, const char *name, int in_c, int in_h, int in_w,
                                    int max_batch, struct dc_layer **out)
{
    (void)be;
    struct dc_layer *l;
    DC_TRY(dc_layer_new(name, DC_LAYER_RELU, &dc_relu_ops, in_c, in_h, in_w, max_batch, 0, &l));
    l->out_c = in_c;
    l->out_h = in_h;
    l->out_w = in_w;
    *out = l;
    return DC_OK;
}
