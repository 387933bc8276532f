/* layer_internal.h: helpers the layer files share (allocating a layer and its
 * parameters, PyTorch-style initialisation, output-size arithmetic), so each
 * layer file holds only its own forward and backward.  Private to src/nn. */
#ifndef DC_LAYER_INTERNAL_H
#define DC_LAYER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dc/layer.h"

/* Allocate a zeroed layer with `priv_size` bytes of zeroed private state and
 * the given input shape; the output shape is the caller's to set. */
enum dc_status dc_layer_new(const char *name, enum dc_layer_type type, const struct dc_layer_ops *ops,
                            int in_c, int in_h, int in_w, int max_batch, size_t priv_size,
                            struct dc_layer **out);

/* Append a parameter named "<layer>.<suffix>" of shape [n,c,h,w] to l->params
 * (owned by the layer from then on). */
enum dc_status dc_layer_add_param(struct dc_backend *be, struct dc_layer *l, const char *suffix, int n,
                                  int c, int h, int w, int trainable, struct dc_param **out);

/* PyTorch's default init for conv and linear layers: uniform(-bound, bound),
 * drawn on the host from rng and uploaded. */
enum dc_status dc_param_init_uniform(struct dc_backend *be, struct dc_param *p, float bound,
                                     struct dc_rng *rng);

/* Error (DC_ERR_CONFIG) unless the output shape set on l is positive. `how`
 * says which settings produced it, for the message. */
enum dc_status dc_layer_check_out(const struct dc_layer *l, const char *how);

/* floor((in + 2 pad - size) / stride) + 1, or 0 when the window does not fit. */
static inline int dc_layer_out_size(int in, int size, int stride, int pad)
{
    int span = in + 2 * pad - size;
    return (span < 0 || stride <= 0) ? 0 : span / stride + 1;
}

/* Per-sample element count of the input and output. */
static inline size_t dc_layer_in_count(const struct dc_layer *l)
{
    return (size_t)l->in_c * (size_t)l->in_h * (size_t)l->in_w;
}
static inline size_t dc_layer_out_count(const struct dc_layer *l)
{
    return (size_t)l->out_c * (size_t)l->out_h * (size_t)l->out_w;
}

/* Set y's shape to the layer output for a batch of n (y is preallocated). */
static inline void dc_layer_shape_out(const struct dc_layer *l, struct dc_tensor *y, int n)
{
    y->n = n;
    y->c = l->out_c;
    y->h = l->out_h;
    y->w = l->out_w;
}

/* Give dx the shape of x (same batch), keeping its buffer. */
static inline void dc_layer_shape_in(struct dc_tensor *dx, const struct dc_tensor *x)
{
    *dx = (struct dc_tensor){dx->data, x->n, x->c, x->h, x->w};
}

/* End of a constructor: on failure free the half-built layer and pass s on,
 * else hand the layer out. */
enum dc_status dc_layer_finish(struct dc_backend *be, struct dc_layer *l, enum dc_status s,
                               struct dc_layer **out);

/* A layer whose weight runs from its compressed form cannot train. */
static inline enum dc_status dc_layer_check_dense(const struct dc_layer *l, const struct dc_param *w)
{
    return w->sp ? DC_ERROR(DC_ERR_UNSUPPORTED, "layer %s: its weight runs from the compressed form "
                            "(inference only); load the model with dc_modelfile_load to train it", l->name)
                 : DC_OK;
}

/* Error unless 0 < x->n <= max_batch (a caller's programming slip, but cheap to report). */
enum dc_status dc_layer_check_batch(const struct dc_layer *l, const struct dc_tensor *x);

#endif
