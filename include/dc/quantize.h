/* quantize.h: trained quantization (Han et al. 2016, section 3): per-layer
 * k-means weight sharing over the surviving weights, then centroid fine-tuning. */
#ifndef DC_QUANTIZE_H
#define DC_QUANTIZE_H

#include "dc/config.h"
#include "dc/layer.h"

/* Cluster p's surviving weights into 2^bits centroids (init as given,
 * `iters` Lloyd iterations on the backend), allocate p->assign/codebook/dcode/vcode
 * and replace p->w by the shared values. */
enum dc_status dc_quantize_param(struct dc_backend *be, struct dc_param *p, int bits,
                                 enum dc_kmeans_init init, int iters, uint64_t seed);
/* One fine-tuning step for a quantized parameter after backward: dcode =
 * sum of member gradients, SGD with momentum on the codebook, w = codebook[assign] * mask. */
enum dc_status dc_quantize_step(struct dc_backend *be, struct dc_param *p, float lr, float momentum);
/* Release the quantization state of p (keeps p->w as it is). */
void dc_quantize_release(struct dc_backend *be, struct dc_param *p);

/* Initial centroids [m] (host) for the x[i] (host [n]) where mask (host [n],
 * may be NULL) != 0: linear = evenly from min to max; density = quantiles
 * (i + 0.5) / m of the values; random = m values drawn with the seed (Forgy),
 * sorted.  All zero when no value survives. */
enum dc_status dc_kmeans_init_centroids(const float *x, const float *mask, size_t n, int m,
                                        enum dc_kmeans_init init, uint64_t seed, float *centroids);
/* Bits for p: bits_bias for a parameter that is not prunable (biases, batch
 * norm); else cfg->layers[p->cfg_index].bits when > 0, else bits_conv or bits_fc. */
int dc_quantize_bits(const struct dc_config *cfg, const struct dc_param *p);
/* 1 when p, not prunable, is to share a codebook: trainable, bits_bias > 0,
 * and its coded section (codebook at codebook_bits, fixed-width indices)
 * smaller than its dense values (dense_bits). */
int dc_quantize_pays(const struct dc_param *p, const struct dc_config *cfg);
struct dc_net;
/* Quantize every prunable parameter of the net's layers, and the others that
 * dc_quantize_pays (bits per dc_quantize_bits, init and iterations from cfg,
 * seed mixed with the parameter index). */
enum dc_status dc_quantize_net(struct dc_net *net, const struct dc_config *cfg);
/* The same for the net's parameter i alone (nothing when dc_quantize_net
 * leaves it dense): the same codebook as dc_quantize_net gives it. */
enum dc_status dc_quantize_net_param(struct dc_net *net, const struct dc_config *cfg, int i);
/* Re-create quantization state from decoded values: codebook (host [m]) and
 * assign (host [count], 0 where pruned); p->w is left as it is. */
enum dc_status dc_quantize_restore(struct dc_backend *be, struct dc_param *p, int m, const float *codebook,
                                   const uint8_t *assign);

#endif
