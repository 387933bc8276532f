/* net.h: a network built from the layer sections of a config, on one backend.
 * A conv section with batch_normalize = 1 and activation = relu becomes three
 * layers (conv without bias, "<name>.bn", "<name>.relu"); fc and conv with
 * activation = relu get a "<name>.relu" layer.  The output is logits [N,classes];
 * the loss is softmax cross-entropy. */
#ifndef DC_NET_H
#define DC_NET_H

#include "dc/config.h"
#include "dc/layer.h"

#define DC_NET_MAX_LAYERS (3 * DC_MAX_LAYERS)
#define DC_NET_MAX_PARAMS (4 * DC_NET_MAX_LAYERS)

struct dc_net {
    struct dc_backend *be;
    int nlayers;
    struct dc_layer *layers[DC_NET_MAX_LAYERS];
    int in_c, in_h, in_w, classes;
    int max_batch;
    struct dc_tensor act[DC_NET_MAX_LAYERS + 1];  /* act[0] input, act[i+1] output of layer i */
    struct dc_tensor grad[DC_NET_MAX_LAYERS + 1]; /* gradients of the same; grad[0] unused */
    /* flat view of every layer's parameters in layer order (not owned) */
    int nparams;
    struct dc_param *params[DC_NET_MAX_PARAMS];
    int32_t *labels;  /* backend memory [max_batch] */
    float *stats;     /* backend memory [2]: summed loss, correct count (see softmax_xent) */
    struct dc_net_update *update; /* the optimiser's update lists and rate (net.c), made on first use */
};

enum dc_status dc_net_create(struct dc_backend *be, const struct dc_config *cfg, int in_c, int in_h,
                             int in_w, int classes, int max_batch, uint64_t seed, struct dc_net **out);
void dc_net_free(struct dc_net *net);

/* Forward n samples from act[0] (set act[0].n = n first, or pass n). */
enum dc_status dc_net_forward(struct dc_net *net, int n, const struct dc_pass *pass);
/* Loss of the last forward against net->labels (first n), adds into net->stats,
 * writes grad[nlayers] scaled by 1/n. */
enum dc_status dc_net_loss(struct dc_net *net, int n);
/* The same against soft targets (label smoothing, a teacher's logits), soft
 * NULL being dc_net_loss. */
enum dc_status dc_net_loss_soft(struct dc_net *net, int n, const struct dc_soft_target *soft);
enum dc_status dc_net_backward(struct dc_net *net, int n);
/* One optimiser step over every trainable parameter: masked SGD for plain and
 * pruned parameters; quantized parameters update their codebook instead
 * (centroid gradient = sum of member gradients) and re-gather their weights. */
enum dc_status dc_net_update(struct dc_net *net, float lr, float momentum, float wd, int nesterov);
/* dc_net_update in two halves, so a recorded step (a CUDA graph) can replay
 * the update with each step's rate: set_lr stores lr in backend memory (run
 * it outside the recording), update_apply launches the update reading it.
 * update_apply's first call, and the first after the parameter set changed
 * (pruned, quantized), builds and uploads the update lists: run it once
 * eagerly before recording.  release frees them (dc_net_free calls it). */
enum dc_status dc_net_set_lr(struct dc_net *net, float lr);
enum dc_status dc_net_update_apply(struct dc_net *net, float momentum, float wd, int nesterov);
void dc_net_update_release(struct dc_net *net);

/* Zero net->stats; read them back (host) as summed loss and correct count. */
enum dc_status dc_net_stats_reset(struct dc_net *net);
enum dc_status dc_net_stats_read(struct dc_net *net, double *loss_sum, double *correct);

/* Number of trainable values (weights and biases, batch-norm gamma and beta). */
size_t dc_net_param_count(const struct dc_net *net);
/* Find a parameter by name; NULL when absent. */
struct dc_param *dc_net_find_param(struct dc_net *net, const char *name);
/* Logits of the last forward. */
static inline struct dc_tensor *dc_net_output(struct dc_net *net) { return &net->act[net->nlayers]; }

#endif
