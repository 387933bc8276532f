/* layer_pool.c: max, average and global average pooling over the backend's
 * pool ops.  Global average pooling is average pooling with the window set to
 * the whole (square) input, so both backends need only one pooling kernel.
 *
 * Legend: N batch, C channels, H W input size, P Q output size. */
#include <stdio.h>

#include "layer_internal.h"

struct dc_pool_priv {
    int size, stride, pad, is_max;
};

static struct dc_pool_desc dc_pool_layer_desc(const struct dc_layer *l, int n)
{
    const struct dc_pool_priv *pp = l->priv;
    struct dc_pool_desc d = {
        .n = n, .c = l->in_c, .h = l->in_h, .w = l->in_w,
        .size = pp->size, .stride = pp->stride, .pad = pp->pad,
        .p = l->out_h, .q = l->out_w, .is_max = pp->is_max,
    };
    return d;
}

/* x [N,C,H,W] -> y [N,C,P,Q] */
static enum dc_status dc_pool_forward(struct dc_layer *l, struct dc_backend *be, const struct dc_tensor *x,
                                      struct dc_tensor *y, const struct dc_pass *pass)
{
    (void)pass;
    DC_TRY(dc_layer_check_batch(l, x));
    struct dc_pool_desc d = dc_pool_layer_desc(l, x->n);
    dc_layer_shape_out(l, y, x->n);
    return be->ops.pool_fwd(be, &d, x->data, y->data);
}

/* dy [N,C,P,Q] -> dx [N,C,H,W]; nothing to learn, so nothing to do without dx */
static enum dc_status dc_pool_backward(struct dc_layer *l, struct dc_backend *be, const struct dc_tensor *x,
                                       const struct dc_tensor *y, const struct dc_tensor *dy,
                                       struct dc_tensor *dx)
{
    if (!dx)
        return DC_OK;
    DC_TRY(dc_layer_check_batch(l, x));
    struct dc_pool_desc d = dc_pool_layer_desc(l, x->n);
    dc_layer_shape_in(dx, x);
    return be->ops.pool_bwd(be, &d, x->data, y->data, dy->data, dx->data);
}

static const struct dc_layer_ops dc_pool_ops = {dc_pool_forward, dc_pool_backward, NULL};

enum dc_status dc_layer_pool_create(struct dc_backend *be, const char *name, int in_c, int in_h, int in_w,
                                    int is_max, int size, int stride, int pad, int max_batch,
                                    struct dc_layer **out)
{
    struct dc_layer *l;
    DC_TRY(dc_layer_new(name, is_max ? DC_LAYER_MAXPOOL : DC_LAYER_AVGPOOL, &dc_pool_ops, in_c, in_h,
                        in_w, max_batch, sizeof(struct dc_pool_priv), &l));
    struct dc_pool_priv *pp = l->priv;
    enum dc_status s = DC_OK;
    if (size == 0 && !is_max) {
        if (in_h != in_w)
            s = DC_ERROR(DC_ERR_CONFIG,
                         "layer %s: global average pooling needs a square input, got %dx%d (HxW)", name,
                         in_h, in_w);
        size = in_h;
        stride = in_h;
        pad = 0;
    }
    pp->size = size;
    pp->stride = stride;
    pp->pad = pad;
    pp->is_max = is_max;
    l->out_c = in_c;
    l->out_h = size > 0 ? dc_layer_out_size(in_h, size, stride, pad) : 0;
    l->out_w = size > 0 ? dc_layer_out_size(in_w, size, stride, pad) : 0;
    if (s == DC_OK && (pad < 0 || 2 * pad > size))
        s = DC_ERROR(DC_ERR_CONFIG, "layer %s: pad %d must be between 0 and size/2 (size %d)", name, pad,
                     size);
    char how[80];
    snprintf(how, sizeof how, "size %d, stride %d, pad %d", size, stride, pad);
    if (s == DC_OK)
        s = dc_layer_check_out(l, how);
    return dc_layer_finish(be, l, s, out);
}
