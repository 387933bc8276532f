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

#endif
