/* prune.c: magnitude pruning with persistent masks over the backend table
 * (rules and schedule in prune.h).  Thresholds are found from reductions
 * (moments) or, for a target sparsity, from one host copy of the weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/prune.h"

float dc_prune_setting(const struct dc_config *cfg, const struct dc_param *p)
{
    if (p->cfg_index >= 0 && p->cfg_index < cfg->nlayers && cfg->layers[p->cfg_index].prune >= 0.0f)
        return cfg->layers[p->cfg_index].prune;
    if (cfg->prune_method == DC_PRUNE_STD)
        return p->is_conv ? cfg->quality_conv : cfg->quality_fc;
    return p->is_conv ? cfg->sparsity_conv : cfg->sparsity_fc;
}

float dc_prune_schedule(const struct dc_config *cfg, const struct dc_param *p, int round, int rounds)
{
    float s = dc_prune_setting(cfg, p);
    if (rounds < 1)
        rounds = 1;
    double f = round < 1 ? 0.0 : round > rounds ? 1.0 : (double)round / rounds;
    if (cfg->prune_method == DC_PRUNE_STD)
        return (float)(s * f);
    return (float)(s * (1.0 - (1.0 - f) * (1.0 - f) * (1.0 - f)));
}

static void swap_f(float *a, float *b)
{
    float t = *a;
    *a = *b;
    *b = t;
}

/* k-th smallest (0-based) of v[0..n), reordering v: quickselect with a
 * three-way partition, since pruned weights make long runs of equal zeros. */
static float select_kth(float *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n; /* the answer lies in v[lo..hi) */
    while (hi - lo > 1) {
        float pivot = v[lo + (hi - lo) / 2];
        size_t lt = lo, i = lo, gt = hi; /* [lo,lt) < pivot, [lt,i) == pivot, [gt,hi) > pivot */
        while (i < gt) {
            if (v[i] < pivot)
                swap_f(&v[i++], &v[lt++]);
            else if (v[i] > pivot)
                swap_f(&v[i], &v[--gt]);
            else
                i++;
        }
        if (k < lt)
            hi = lt;
        else if (k >= gt)
            lo = gt;
        else
            return pivot;
    }
    return v[lo];
}

static enum dc_status sparsity_threshold(struct dc_backend *be, const struct dc_param *p, float s, float *t)
{
    size_t n = dc_param_count(p);
    size_t k = (size_t)llround((double)s * (double)n);
    if (k == 0 || n == 0) {
        *t = -1.0f;
        return DC_OK;
    }
    if (k > n)
        k = n;
    float *v = malloc(sizeof *v * n);
    if (!v)
        return DC_ERROR(DC_ERR_NOMEM, "%s: no memory for a host copy of %zu weights", p->name, n);
    enum dc_status st = be->ops.download(be, v, p->w.data, sizeof *v * n);
    if (st == DC_OK) {
        for (size_t i = 0; i < n; i++)
            v[i] = fabsf(v[i]);
        *t = select_kth(v, n, k - 1);
    }
    free(v);
    return st;
}

enum dc_status dc_prune_threshold(struct dc_backend *be, const struct dc_param *p,
                                  enum dc_prune_method method, float setting, float *threshold)
{
    if (!(setting >= 0.0f) || (method == DC_PRUNE_SPARSITY && setting > 1.0f))
        return DC_ERROR(DC_ERR_ARG, "%s: prune setting %g out of range", p->name, (double)setting);
    if (method == DC_PRUNE_SPARSITY)
        return sparsity_threshold(be, p, setting, threshold);
    double mom[3];
    DC_TRY(be->ops.moments(be, dc_param_count(p), p->w.data, mom));
    double nz = mom[2] > 0.0 ? mom[2] : 1.0;
    double mean = mom[0] / nz, var = mom[1] / nz - mean * mean;
    *threshold = (float)(setting * sqrt(var > 0.0 ? var : 0.0));
    return DC_OK;
}

enum dc_status dc_prune_kept(struct dc_backend *be, const struct dc_param *p, size_t *kept)
{
    size_t n = dc_param_count(p);
    if (!p->mask) {
        *kept = n;
        return DC_OK;
    }
    double mom[3];
    DC_TRY(be->ops.moments(be, n, p->mask, mom));
    *kept = (size_t)llround(mom[2]);
    return DC_OK;
}

enum dc_status dc_prune_apply(struct dc_backend *be, struct dc_param *p, float threshold, size_t *kept)
{
    size_t n = dc_param_count(p);
    if (!p->mask) {
        DC_TRY(be->ops.alloc(be, (void **)&p->mask, sizeof(float) * (n ? n : 1)));
        DC_TRY(be->ops.threshold_mask(be, n, p->w.data, threshold, p->mask));
    } else {
        float *fresh = NULL;
        DC_TRY(be->ops.alloc(be, (void **)&fresh, sizeof(float) * (n ? n : 1)));
        enum dc_status st = be->ops.threshold_mask(be, n, p->w.data, threshold, fresh);
        if (st == DC_OK)
            st = be->ops.mul(be, n, fresh, p->mask, p->mask);
        be->ops.release(be, fresh);
        DC_TRY(st);
    }
    DC_TRY(be->ops.mul(be, n, p->w.data, p->mask, p->w.data));
    if (p->trainable && p->v.data)
        DC_TRY(be->ops.mul(be, n, p->v.data, p->mask, p->v.data));
    return kept ? dc_prune_kept(be, p, kept) : DC_OK;
}

static void stats_add(struct dc_prune_stats *out, const struct dc_param *p, size_t kept, float setting,
                      float threshold)
{
    struct dc_prune_param_stats *s = &out->p[out->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", p->name);
    s->kept = kept;
    s->total = dc_param_count(p);
    s->setting = setting;
    s->threshold = threshold;
    out->kept += kept;
    out->total += s->total;
}

enum dc_status dc_prune_round(struct dc_net *net, const struct dc_config *cfg, int round, int rounds,
                              struct dc_prune_stats *out)
{
    if (rounds < 1 || round < 1 || round > rounds)
        return DC_ERROR(DC_ERR_ARG, "prune round %d of %d", round, rounds);
    if (out)
        out->n = 0, out->kept = out->total = 0;
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        if (!p->prunable)
            continue;
        float setting = dc_prune_schedule(cfg, p, round, rounds), t;
        size_t kept;
        DC_TRY(dc_prune_threshold(net->be, p, cfg->prune_method, setting, &t));
        DC_TRY(dc_prune_apply(net->be, p, t, &kept));
        if (out)
            stats_add(out, p, kept, setting, t);
    }
    return DC_OK;
}

enum dc_status dc_prune_collect(struct dc_net *net, struct dc_prune_stats *out)
{
    out->n = 0, out->kept = out->total = 0;
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        size_t kept;
        if (!p->prunable)
            continue;
        DC_TRY(dc_prune_kept(net->be, p, &kept));
        stats_add(out, p, kept, 0.0f, 0.0f);
    }
    return DC_OK;
}
