/* layer_dropout.c: inverted dropout.  The mask comes from a stateless hash of
 * (step seed mixed with the layer index, element), so the CPU and GPU draw the
 * same mask and a resumed run draws the same masks as an unbroken one. */
#include "layer_internal.h"

struct dc_dropout_priv {
    float probability;
    struct dc_tensor mask; /* [N,C,H,W]: 0 or 1/(1-p), from the last training forward */
};

/* splitmix64 finaliser: a different, well-spread seed for every layer */
static uint64_t dc_dropout_seed(uint64_t seed, uint64_t index)
{
    uint64_t z = seed ^ (0x9E3779B97F4A7C15ull * (index + 1));
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* x [N,C,H,W] -> y [N,C,H,W] */
static enum dc_status dc_dropout_forward(struct dc_layer *l, struct dc_backend *be,
                                         const struct dc_tensor *x, struct dc_tensor *y,
                                         const struct dc_pass *pass)
{
    struct dc_dropout_priv *dp = l->priv;
    DC_TRY(dc_layer_check_batch(l, x));
    dc_layer_shape_out(l, y, x->n);
    size_t count = dc_tensor_count(x);
    if (pass && pass->train)
        return be->ops.dropout_fwd(be, count, dp->probability, dc_dropout_seed(pass->seed, l->index),
                                   x->data, dp->mask.data, y->data);
    if (y->data == x->data)
        return DC_OK;
    return be->ops.copy(be, y->data, x->data, count * sizeof(float));
}

static enum dc_status dc_dropout_backward(struct dc_layer *l, struct dc_backend *be,
                                          const struct dc_tensor *x, const struct dc_tensor *y,
                                          const struct dc_tensor *dy, struct dc_tensor *dx)
{
    (void)y;
    struct dc_dropout_priv *dp = l->priv;
    if (!dx)
        return DC_OK;
    DC_TRY(dc_layer_check_batch(l, x));
    dc_layer_shape_in(dx, x);
    return be->ops.mul(be, dc_tensor_count(x), dy->data, dp->mask.data, dx->data);
}

static void dc_dropout_destroy(struct dc_layer *l, struct dc_backend *be)
{
    struct dc_dropout_priv *dp = l->priv;
    dc_tensor_free(be, &dp->mask);
}

static const struct dc_layer_ops dc_dropout_ops = {dc_dropout_forward, dc_dropout_backward,
                                                   dc_dropout_destroy};

enum dc_status dc_layer_dropout_create(struct dc_backend *be, const char *name, int in_c, int in_h,
                                       int in_w, float probability, int max_batch, struct dc_layer **out)
{
    if (!(probability >= 0.0f && probability < 1.0f))
        return DC_ERROR(DC_ERR_CONFIG, "layer %s: dropout probability %g must be in [0, 1)", name,
                        (double)probability);
    struct dc_layer *l;
    DC_TRY(dc_layer_new(name, DC_LAYER_DROPOUT, &dc_dropout_ops, in_c, in_h, in_w, max_batch,
                        sizeof(struct dc_dropout_priv), &l));
    struct dc_dropout_priv *dp = l->priv;
    dp->probability = probability;
    l->out_c = in_c;
    l->out_h = in_h;
    l->out_w = in_w;
    enum dc_status s = dc_tensor_alloc(be, &dp->mask, max_batch, in_c, in_h, in_w);
    return dc_layer_finish(be, l, s, out);
}
