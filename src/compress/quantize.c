/* quantize.c: trained quantization (Han et al. 2016, section 3) over the
 * backend table: k-means weight sharing per layer, then centroid fine-tuning
 * where each centroid moves by the sum of its members' gradients.  Pruned
 * weights are excluded from the clusters and stay exactly zero. */
#include <math.h>
#include <stdlib.h>

#include "dc/modelfile.h"
#include "dc/net.h"
#include "dc/quantize.h"

static enum dc_status quantize_alloc(struct dc_backend *be, struct dc_param *p, int m)
{
    size_t n = dc_param_count(p);
    enum dc_status st = be->ops.alloc(be, (void **)&p->assign, n ? n : 1);
    if (st == DC_OK)
        st = be->ops.alloc(be, (void **)&p->codebook, sizeof(float) * (size_t)m);
    if (st == DC_OK)
        st = be->ops.alloc(be, (void **)&p->dcode, sizeof(float) * (size_t)m);
    if (st == DC_OK)
        st = be->ops.alloc(be, (void **)&p->vcode, sizeof(float) * (size_t)m);
    if (st == DC_OK)
        st = be->ops.fill(be, p->dcode, 0.0f, (size_t)m);
    if (st == DC_OK)
        st = be->ops.fill(be, p->vcode, 0.0f, (size_t)m);
    if (st != DC_OK) {
        dc_quantize_release(be, p);
        return st;
    }
    p->m = m;
    return DC_OK;
}

/* Host copies of p's weights and mask (mask NULL when p is not pruned). */
static enum dc_status download_weights(struct dc_backend *be, const struct dc_param *p, float **w, float **mask)
{
    size_t n = dc_param_count(p);
    *w = malloc(sizeof(float) * (n ? n : 1));
    *mask = p->mask ? malloc(sizeof(float) * (n ? n : 1)) : NULL;
    if (!*w || (p->mask && !*mask))
        return DC_ERROR(DC_ERR_NOMEM, "%s: no memory for a host copy of %zu weights", p->name, n);
    DC_TRY(be->ops.download(be, *w, p->w.data, sizeof(float) * n));
    if (p->mask)
        DC_TRY(be->ops.download(be, *mask, p->mask, sizeof(float) * n));
    return DC_OK;
}

struct dc_far {
    float d;
    size_t i;
};

static int dc_far_cmp(const void *a, const void *b)
{
    float x = ((const struct dc_far *)a)->d, y = ((const struct dc_far *)b)->d;
    return (x < y) - (x > y); /* farthest first */
}

/* Move each empty centroid onto a surviving weight far from its own
 * centroid, as scikit-learn does.  Returns the number moved (0: none empty,
 * or no candidate left).  w, mask, assign are host copies [n]. */
static int dc_relocate_empty(const float *w, const float *mask, const uint8_t *assign, size_t n, int m,
                             float *centroids, struct dc_far *far)
{
    int count[256] = {0}, moved = 0;
    size_t nf = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask && mask[i] == 0.0f)
            continue;
        count[assign[i]]++;
        far[nf].d = fabsf(w[i] - centroids[assign[i]]);
        far[nf++].i = i;
    }
    qsort(far, nf, sizeof *far, dc_far_cmp);
    size_t next = 0;
    for (int j = 0; j < m; j++) {
        if (count[j])
            continue;
        while (next < nf && far[next].d == 0.0f)
            next = nf; /* every remaining weight sits on a centroid */
        if (next >= nf)
            break;
        centroids[j] = w[far[next++].i];
        moved++;
    }
    return moved;
}

/* Linear initialisation puts centroids into the gap that pruning cut around
 * zero; they never gain members and waste codebook entries (and precision).
 * Relocate them and run Lloyd again, a few passes at most. */
static enum dc_status quantize_fill_empty(struct dc_backend *be, struct dc_param *p, int iters)
{
    size_t n = dc_param_count(p);
    float *w = NULL, *mask = NULL, centroids[256];
    uint8_t *assign = malloc(n ? n : 1);
    struct dc_far *far = malloc(sizeof *far * (n ? n : 1));
    enum dc_status st = assign && far ? download_weights(be, p, &w, &mask)
                                      : DC_ERROR(DC_ERR_NOMEM, "%s: no memory for k-means", p->name);
    for (int pass = 0; st == DC_OK && pass < 8; pass++) {
        st = be->ops.download(be, assign, p->assign, n);
        if (st == DC_OK)
            st = be->ops.download(be, centroids, p->codebook, sizeof(float) * (size_t)p->m);
        if (st != DC_OK || dc_relocate_empty(w, mask, assign, n, p->m, centroids, far) == 0)
            break;
        st = be->ops.upload(be, p->codebook, centroids, sizeof(float) * (size_t)p->m);
        if (st == DC_OK)
            st = be->ops.kmeans_1d(be, n, p->w.data, p->mask, p->codebook, p->m, iters, p->assign);
    }
    free(w);
    free(mask);
    free(assign);
    free(far);
    return st;
}

enum dc_status dc_quantize_param(struct dc_backend *be, struct dc_param *p, int bits,
                                 enum dc_kmeans_init init, int iters, uint64_t seed)
{
    if (bits < 1 || bits > 8)
        return DC_ERROR(DC_ERR_ARG, "%s: %d quantization bits (1..8 allowed: indices are uint8)", p->name, bits);
    if (iters < 0)
        return DC_ERROR(DC_ERR_ARG, "%s: %d k-means iterations", p->name, iters);
    int m = 1 << bits;
    size_t n = dc_param_count(p);
    float centroids[256];
    float *w = NULL, *mask = NULL;
    enum dc_status st = download_weights(be, p, &w, &mask);
    if (st == DC_OK)
        st = dc_kmeans_init_centroids(w, mask, n, m, init, seed, centroids);
    free(w);
    free(mask);
    DC_TRY(st);
    dc_quantize_release(be, p);
    DC_TRY(quantize_alloc(be, p, m));
    DC_TRY(be->ops.upload(be, p->codebook, centroids, sizeof(float) * (size_t)m));
    DC_TRY(be->ops.kmeans_1d(be, n, p->w.data, p->mask, p->codebook, m, iters, p->assign));
    DC_TRY(quantize_fill_empty(be, p, iters));
    return be->ops.codebook_gather(be, n, p->assign, p->codebook, p->mask, p->w.data);
}

enum dc_status dc_quantize_step(struct dc_backend *be, struct dc_param *p, float lr, float momentum)
{
    if (!p->codebook)
        return DC_ERROR(DC_ERR_ARG, "%s: fine-tuning step on a parameter that is not quantized", p->name);
    size_t n = dc_param_count(p);
    DC_TRY(be->ops.codebook_grad(be, n, p->assign, p->g.data, p->mask, p->m, p->dcode));
    DC_TRY(be->ops.sgd_update(be, (size_t)p->m, p->codebook, p->dcode, p->vcode, NULL, lr, momentum, 0.0f, 0));
    return be->ops.codebook_gather(be, n, p->assign, p->codebook, p->mask, p->w.data);
}

void dc_quantize_release(struct dc_backend *be, struct dc_param *p)
{
    void **bufs[] = {(void **)&p->assign, (void **)&p->codebook, (void **)&p->dcode, (void **)&p->vcode};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        if (*bufs[i])
            be->ops.release(be, *bufs[i]);
        *bufs[i] = NULL;
    }
    p->m = 0;
}

enum dc_status dc_quantize_restore(struct dc_backend *be, struct dc_param *p, int m, const float *codebook,
                                   const uint8_t *assign)
{
    if (m < 1 || m > 256)
        return DC_ERROR(DC_ERR_ARG, "%s: codebook of %d entries (1..256 allowed)", p->name, m);
    dc_quantize_release(be, p);
    DC_TRY(quantize_alloc(be, p, m));
    DC_TRY(be->ops.upload(be, p->codebook, codebook, sizeof(float) * (size_t)m));
    return be->ops.upload(be, p->assign, assign, dc_param_count(p));
}

int dc_quantize_bits(const struct dc_config *cfg, const struct dc_param *p)
{
    if (!p->prunable)
        return cfg->bits_bias;
    if (p->cfg_index >= 0 && p->cfg_index < cfg->nlayers && cfg->layers[p->cfg_index].bits > 0)
        return cfg->layers[p->cfg_index].bits;
    return p->is_conv ? cfg->bits_conv : cfg->bits_fc;
}

/* A codebook costs 4 bytes an entry (2 with codebook_bits = 16): a bias of
 * 10 values at 4 bits would take 64 bytes of codebook to save 15 of values,
 * so a dense parameter is quantized only when its codebook, its indices at
 * fixed width (the most Huffman can take) and the 11 bytes of a coded
 * section's extra fields come to fewer bytes than its dense values. */
int dc_quantize_pays(const struct dc_param *p, const struct dc_config *cfg)
{
    int bits = dc_quantize_bits(cfg, p);
    if (!p->trainable || bits <= 0)
        return 0;
    size_t n = dc_param_count(p);
    return dc_modelfile_coded_bytes(n, bits, cfg->codebook_bits) < dc_modelfile_dense_bytes(n, cfg->dense_bits);
}

enum dc_status dc_quantize_net_param(struct dc_net *net, const struct dc_config *cfg, int i)
{
    struct dc_param *p = net->params[i];
    if (!p->prunable && !dc_quantize_pays(p, cfg))
        return DC_OK;
    uint64_t seed = cfg->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(i + 1));
    return dc_quantize_param(net->be, p, dc_quantize_bits(cfg, p), cfg->kmeans_init, cfg->kmeans_iters, seed);
}

enum dc_status dc_quantize_net(struct dc_net *net, const struct dc_config *cfg)
{
    for (int i = 0; i < net->nparams; i++)
        DC_TRY(dc_quantize_net_param(net, cfg, i));
    return DC_OK;
}
