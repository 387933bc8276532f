/* layer.h: one interface for every layer (darknet's habit: each layer type in
 * its own file with the same entry points).  A layer owns its parameters and
 * any scratch it needs; the network owns activations and their gradients. */
#ifndef DC_LAYER_H
#define DC_LAYER_H

#include <stdint.h>

#include "dc/backend.h"
#include "dc/config.h"
#include "dc/rng.h"
#include "dc/spmat.h"
#include "dc/tensor.h"

/* Batch norm's epsilon (PyTorch's default); folding it at load time must use the same. */
#define DC_BN_EPS 1e-5f

/* A parameter tensor and its training and compression state. */
struct dc_param {
    char name[48];           /* "<layer>.weight", "<layer>.bias", "<layer>.gamma", "<layer>.running_mean", ... */
    struct dc_tensor w;      /* value */
    struct dc_tensor g;      /* gradient (trainable only; overwritten by each backward) */
    struct dc_tensor v;      /* momentum buffer (trainable only) */
    int trainable;           /* 0 for batch-norm running statistics */
    int prunable;            /* 1 for conv and fc weights only */
    int is_conv;             /* selects the conv or fc compression defaults */
    int cfg_index;           /* index of the config layer section it came from (per-layer overrides) */
    /* pruning: backend memory [count], NULL until pruned; 1 keeps, 0 prunes */
    float *mask;
    /* trained quantization: NULL until quantized */
    uint8_t *assign;         /* backend memory [count]: cluster index of each weight */
    float *codebook;         /* backend memory [m] */
    float *dcode;            /* backend memory [m]: centroid gradient scratch */
    float *vcode;            /* backend memory [m]: centroid momentum */
    int m;                   /* codebook size (2^bits) */
    /* compressed inference (dc/infer.h): when set, forward runs from this
     * form (bias and folded batch norm in its epilogue), w may be released,
     * and backward refuses */
    struct dc_spmat *sp;
    struct dc_conv_desc geom; /* conv weights: the convolution it serves, for a batch of 1 */
};

static inline size_t dc_param_count(const struct dc_param *p) { return dc_tensor_count(&p->w); }

/* Allocate value (and, when trainable, gradient and momentum) tensors; zeroed. */
enum dc_status dc_param_init(struct dc_backend *be, struct dc_param *p, const char *name,
                             int n, int c, int h, int w, int trainable);
void dc_param_free(struct dc_backend *be, struct dc_param *p);

/* What a forward pass needs beyond its input. */
struct dc_pass {
    int train;        /* 1: batch statistics, dropout on */
    uint64_t seed;    /* per-step seed for dropout (the layer mixes in its own index) */
    float bn_recal;   /* > 0 with train 0: batch norm normalises with the batch's statistics and
                         folds them into the running ones with this momentum; dropout stays off
                         (dc_bn_recalibrate) */
};

struct dc_layer;

struct dc_layer_ops {
    /* y [N,out] from x [N,in]; N = x->n <= max_batch; y is preallocated for max_batch, set y->n. */
    enum dc_status (*forward)(struct dc_layer *l, struct dc_backend *be, const struct dc_tensor *x,
                              struct dc_tensor *y, const struct dc_pass *pass);
    /* Parameter gradients (overwritten, not accumulated) and, unless dx is NULL,
     * dx from dy.  x and y are the tensors of the last forward (train mode). */
    enum dc_status (*backward)(struct dc_layer *l, struct dc_backend *be, const struct dc_tensor *x,
                               const struct dc_tensor *y, const struct dc_tensor *dy,
                               struct dc_tensor *dx);
    void (*destroy)(struct dc_layer *l, struct dc_backend *be);
};

#define DC_LAYER_MAX_PARAMS 16

struct dc_layer {
    const struct dc_layer_ops *ops;
    enum dc_layer_type type;
    char name[DC_NAME_LEN];
    int cfg_index;                  /* config section this layer came from */
    int in_c, in_h, in_w;           /* per-sample input shape */
    int out_c, out_h, out_w;        /* per-sample output shape */
    int max_batch;
    int nparams;
    struct dc_param *params[DC_LAYER_MAX_PARAMS]; /* owned by the layer */
    uint64_t index;                 /* position in the network, mixed into dropout seeds */
    void *priv;
};

/* Constructors.  Weights get PyTorch's default initialisation
 * (uniform +-1/sqrt(fan_in) for weights and biases); batch norm starts at
 * gamma 1, beta 0, running mean 0, running var 1. */
enum dc_status dc_layer_conv_create(struct dc_backend *be, const char *name, int in_c, int in_h, int in_w,
                                    int filters, int size, int stride, int pad, int bias, int max_batch,
                                    struct dc_rng *rng, struct dc_layer **out);
enum dc_status dc_layer_fc_create(struct dc_backend *be, const char *name, int in_c, int in_h, int in_w,
                                  int outputs, int max_batch, struct dc_rng *rng, struct dc_layer **out);
/* size 0 with is_max 0: global average pooling */
enum dc_status dc_layer_pool_create(struct dc_backend *be, const char *name, int in_c, int in_h, int in_w,
                                    int is_max, int size, int stride, int pad, int max_batch,
                                    struct dc_layer **out);
enum dc_status dc_layer_relu_create(struct dc_backend *be, const char *name, int in_c, int in_h, int in_w,
                                    int max_batch, struct dc_layer **out);
enum dc_status dc_layer_bn_create(struct dc_backend *be, const char *name, int in_c, int in_h, int in_w,
                                  int max_batch, struct dc_layer **out);
enum dc_status dc_layer_dropout_create(struct dc_backend *be, const char *name, int in_c, int in_h,
                                       int in_w, float probability, int max_batch, struct dc_layer **out);
/* squeeze 1x1 + ReLU, then expand 1x1 and expand 3x3 (pad 1) in parallel + ReLU,
 * concatenated on channels: out_c = expand1 + expand3 */
enum dc_status dc_layer_fire_create(struct dc_backend *be, const char *name, int in_c, int in_h, int in_w,
                                    int squeeze, int expand1, int expand3, int max_batch,
                                    struct dc_rng *rng, struct dc_layer **out);

void dc_layer_free(struct dc_backend *be, struct dc_layer *l);

#endif
