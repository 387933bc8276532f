/* layer_fc.c: fully connected layer y = x W^T + b with PyTorch's weight
 * layout (outputs x inputs), so weights, pruning masks and model files read
 * the same way as a torch.nn.Linear.  Any input shape is flattened.
 *
 * Legend: N batch, C = in_c*in_h*in_w inputs, K outputs. */
#include <math.h>
#include <stdio.h>

#include "layer_internal.h"

struct dc_fc_priv {
    struct dc_param *weight; /* [K,C] */
    struct dc_param *bias;   /* [K] */
};

/* x [N,C] -> y [N,K] */
static enum dc_status dc_fc_forward(struct dc_layer *l, struct dc_backend *be, const struct dc_tensor *x,
                                    struct dc_tensor *y, const struct dc_pass *pass)
{
    (void)pass;
    struct dc_fc_priv *fp = l->priv;
    DC_TRY(dc_layer_check_batch(l, x));
    int n = x->n, c = (int)dc_layer_in_count(l), k = l->out_c;
    dc_layer_shape_out(l, y, n);
    if (fp->weight->sp) /* the bias is in its epilogue */
        return be->ops.spmat_fc(be, fp->weight->sp, n, x->data, y->data);
    DC_TRY(be->ops.gemm(be, 0, 1, n, k, c, 1.0f, x->data, c, fp->weight->w.data, c, 0.0f, y->data, k));
    return be->ops.bias_add(be, y->data, fp->bias->w.data, n, k, 1);
}

/* dy [N,K] -> dW = dy^T x [K,C], db [K], dx = dy W [N,C] */
static enum dc_status dc_fc_backward(struct dc_layer *l, struct dc_backend *be, const struct dc_tensor *x,
                                     const struct dc_tensor *y, const struct dc_tensor *dy,
                                     struct dc_tensor *dx)
{
    (void)y;
    struct dc_fc_priv *fp = l->priv;
    DC_TRY(dc_layer_check_batch(l, x));
    DC_TRY(dc_layer_check_dense(l, fp->weight));
    int n = x->n, c = (int)dc_layer_in_count(l), k = l->out_c;
    DC_TRY(be->ops.gemm(be, 1, 0, k, c, n, 1.0f, dy->data, k, x->data, c, 0.0f, fp->weight->g.data, c));
    DC_TRY(be->ops.bias_grad(be, dy->data, fp->bias->g.data, n, k, 1));
    if (dx) {
        dc_layer_shape_in(dx, x);
        DC_TRY(be->ops.gemm(be, 0, 0, n, c, k, 1.0f, dy->data, k, fp->weight->w.data, c, 0.0f, dx->data, c));
    }
    return DC_OK;
}

static const struct dc_layer_ops dc_fc_ops = {dc_fc_forward, dc_fc_backward, NULL};

enum dc_status dc_layer_fc_create(struct dc_backend *be, const char *name, int in_c, int in_h, int in_w,
                                  int outputs, int max_batch, struct dc_rng *rng, struct dc_layer **out)
{
    struct dc_layer *l;
    DC_TRY(dc_layer_new(name, DC_LAYER_FC, &dc_fc_ops, in_c, in_h, in_w, max_batch,
                        sizeof(struct dc_fc_priv), &l));
    struct dc_fc_priv *fp = l->priv;
    l->out_c = outputs;
    l->out_h = 1;
    l->out_w = 1;
    int inputs = (int)dc_layer_in_count(l);
    float bound = 1.0f / sqrtf((float)inputs);
    char how[32];
    snprintf(how, sizeof how, "outputs %d", outputs);
    enum dc_status s = dc_layer_check_out(l, how);
    if (s == DC_OK)
        s = dc_layer_add_param(be, l, "weight", outputs, inputs, 1, 1, 1, &fp->weight);
    if (s == DC_OK) {
        fp->weight->prunable = 1;
        s = dc_param_init_uniform(be, fp->weight, bound, rng);
    }
    if (s == DC_OK)
        s = dc_layer_add_param(be, l, "bias", outputs, 1, 1, 1, 1, &fp->bias);
    if (s == DC_OK)
        s = dc_param_init_uniform(be, fp->bias, bound, rng);
    return dc_layer_finish(be, l, s, out);
}
