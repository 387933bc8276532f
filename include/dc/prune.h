/* prune.h: magnitude pruning (Han et al. 2015): per prunable parameter a
 * mask of the weights whose magnitude exceeds a threshold, kept for good (a
 * pruned weight never returns: each round ANDs its new mask into the old one),
 * applied to the weights and their momentum.  Masked gradients and updates
 * are the optimiser's part (sgd_update with the mask).
 *
 * Thresholds: method std: quality x std of the layer's surviving (non-zero)
 * weights; method sparsity: the k-th smallest |w| with k = round(s * count),
 * so exactly the k smallest weights go when magnitudes are distinct.
 * Schedule over R rounds (round r = 1..R): std uses quality * r / R; sparsity
 * uses s * (1 - (1 - r/R)^3) (gradual pruning, Zhu & Gupta 2017). */
#ifndef DC_PRUNE_H
#define DC_PRUNE_H

#include <stddef.h>

#include "dc/config.h"
#include "dc/net.h"

struct dc_prune_param_stats {
    char name[48];
    size_t kept, total;   /* mask ones, weights */
    float setting;        /* quality or sparsity used in this round */
    float threshold;      /* magnitude threshold used (-1: nothing newly pruned) */
};

struct dc_prune_stats {
    int n;                                       /* prunable parameters */
    struct dc_prune_param_stats p[DC_NET_MAX_PARAMS];
    size_t kept, total;                          /* over all prunable parameters */
};

/* Quality (std) or sparsity (sparsity method) for p: cfg->layers[p->cfg_index].prune
 * when >= 0, else the conv or fc default. */
float dc_prune_setting(const struct dc_config *cfg, const struct dc_param *p);
/* The setting at round `round` of `rounds` (1-based) per the schedule above. */
float dc_prune_schedule(const struct dc_config *cfg, const struct dc_param *p, int round, int rounds);
/* Magnitude threshold for p under a method and setting (-1 when sparsity asks for none). */
enum dc_status dc_prune_threshold(struct dc_backend *be, const struct dc_param *p,
                                  enum dc_prune_method method, float setting, float *threshold);
/* mask = old mask AND |w| > threshold (p->mask allocated on first use);
 * w *= mask and, when trainable, v *= mask.  kept may be NULL. */
enum dc_status dc_prune_apply(struct dc_backend *be, struct dc_param *p, float threshold, size_t *kept);
/* Weights kept by p's mask (all of them when p has no mask). */
enum dc_status dc_prune_kept(struct dc_backend *be, const struct dc_param *p, size_t *kept);
/* One round of the schedule over every prunable parameter of net; out may be NULL. */
enum dc_status dc_prune_round(struct dc_net *net, const struct dc_config *cfg, int round, int rounds,
                              struct dc_prune_stats *out);
/* Kept and total of every prunable parameter as they stand (setting and threshold 0). */
enum dc_status dc_prune_collect(struct dc_net *net, struct dc_prune_stats *out);

#endif
