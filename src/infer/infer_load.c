/* infer_load.c: loading a .dcm straight into compressed forms, choosing each
 * weight's form by timing the candidates on the backend at the plan's batch,
 * and the timed forward the dcinfer tool reports from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/log.h"
#include "dc/rng.h"
#include "infer_internal.h"

/* The kept weights of a section as a dc_spmat_src; a dense section lists every position. */
static enum dc_status dc_infer_src(const struct dc_modelfile_param *mp, const struct dc_param *p,
                                   struct dc_spmat_src *src, uint32_t **all_pos)
{
    size_t count = dc_param_count(p);
    *src = (struct dc_spmat_src){.rows = p->w.n, .cols = (int)(count / (size_t)p->w.n)};
    *all_pos = NULL;
    if (mp->pos) {
        src->nnz = mp->kept, src->pos = mp->pos, src->values = mp->kvalues;
        src->codes = mp->codes, src->codebook = mp->codebook, src->m = mp->m;
        return DC_OK;
    }
    if (!(*all_pos = malloc(count * sizeof(uint32_t))))
        return DC_ERROR(DC_ERR_NOMEM, "no memory for the positions of %s", p->name);
    for (size_t i = 0; i < count; i++)
        (*all_pos)[i] = (uint32_t)i;
    src->nnz = (int64_t)count, src->pos = *all_pos, src->values = mp->values;
    return DC_OK;
}

static enum dc_status dc_infer_run(struct dc_backend *be, const struct dc_conv_desc *geom, const struct dc_spmat *a,
                                   int n, const float *x, float *y)
{
    if (!geom)
        return be->ops.spmat_fc(be, a, n, x, y);
    struct dc_conv_desc d = *geom;
    d.n = n;
    return be->ops.spmat_conv(be, &d, a, x, y);
}

/* Seconds of one product at batch n, synchronised. */
static enum dc_status dc_infer_time_once(struct dc_backend *be, const struct dc_conv_desc *geom,
                                         const struct dc_spmat *a, int n, const float *x, float *y, double *s)
{
    double t0 = dc_time_now();
    DC_TRY(dc_infer_run(be, geom, a, n, x, y));
    DC_TRY(be->ops.sync(be));
    *s = dc_time_now() - t0;
    return DC_OK;
}

/* The candidates take turns (a warm-up each, then rounds until about 30 ms
 * have passed, 5 to 50 rounds), and each keeps its fastest round: on a
 * shared or throttled machine a slow moment then hits every candidate alike
 * and the minimum is the figure least disturbed by it. */
static enum dc_status dc_infer_race(struct dc_backend *be, const struct dc_conv_desc *geom,
                                    struct dc_spmat *const *cand, int ncand, int n, const float *x, float *y,
                                    double *best_s)
{
    double s;
    for (int c = 0; c < ncand; c++) {
        DC_TRY(dc_infer_time_once(be, geom, cand[c], n, x, y, &s));
        best_s[c] = 1e30;
    }
    double start = dc_time_now();
    for (int round = 0; round < 50 && (round < 5 || dc_time_now() - start < 0.03); round++)
        for (int c = 0; c < ncand; c++) {
            DC_TRY(dc_infer_time_once(be, geom, cand[c], n, x, y, &s));
            best_s[c] = s < best_s[c] ? s : best_s[c];
        }
    return DC_OK;
}

/* Backend buffers x [count_x] of random nonzero values (never time on zeros) and y [count_y]. */
static enum dc_status dc_infer_buffers(struct dc_backend *be, size_t count_x, size_t count_y, float **x, float **y)
{
    *x = *y = NULL;
    float *h = malloc(count_x * sizeof(float));
    if (!h)
        return DC_ERROR(DC_ERR_NOMEM, "no memory for a timing input of %zu values", count_x);
    struct dc_rng rng;
    dc_rng_seed(&rng, 7);
    for (size_t i = 0; i < count_x; i++)
        h[i] = 0.1f + dc_rng_uniform(&rng);
    enum dc_status st = be->ops.alloc(be, (void **)x, count_x * sizeof(float));
    if (st == DC_OK)
        st = be->ops.upload(be, *x, h, count_x * sizeof(float));
    if (st == DC_OK)
        st = be->ops.alloc(be, (void **)y, count_y * sizeof(float));
    free(h);
    return st;
}

enum dc_status dc_infer_pick(struct dc_backend *be, const struct dc_spmat_src *src, const struct dc_conv_desc *geom,
                             int format, int batch, int max_batch, const float *scale, const float *shift,
                             struct dc_spmat **best, double cand_us[DC_FORMAT_COUNT])
{
    int first = format == DC_INFER_AUTO ? 0 : format, last = format == DC_INFER_AUTO ? DC_FORMAT_COUNT - 1 : format;
    if (format == DC_FORMAT_CODEBOOK && !src->codes)
        first = last = DC_FORMAT_CSR; /* not quantized: no codebook to run from */
    for (int f = 0; f < DC_FORMAT_COUNT; f++)
        cand_us[f] = -1.0;
    *best = NULL;
    float *x = NULL, *y = NULL;
    size_t in = geom ? (size_t)geom->c * geom->h * geom->w : (size_t)src->cols;
    size_t out = geom ? (size_t)geom->k * geom->p * geom->q : (size_t)src->rows;
    enum dc_status st = DC_OK;
    if (first != last)
        st = dc_infer_buffers(be, in * (size_t)batch, out * (size_t)batch, &x, &y);
    struct dc_spmat *cand[DC_FORMAT_COUNT];
    int form[DC_FORMAT_COUNT], ncand = 0;
    for (int f = first; st == DC_OK && f <= last; f++) {
        if (f == DC_FORMAT_CODEBOOK && !src->codes)
            continue;
        st = dc_spmat_create(be, (enum dc_spmat_format)f, src, max_batch, &cand[ncand]);
        if (st != DC_OK)
            break;
        form[ncand++] = f;
        st = dc_spmat_set_epilogue(be, cand[ncand - 1], scale, shift);
    }
    double secs[DC_FORMAT_COUNT] = {0};
    if (st == DC_OK && ncand > 1)
        st = dc_infer_race(be, geom, cand, ncand, batch, x, y, secs);
    int win = 0;
    for (int c = 0; st == DC_OK && c < ncand; c++) {
        if (ncand > 1)
            cand_us[form[c]] = 1e6 * secs[c];
        win = secs[c] < secs[win] ? c : win;
    }
    for (int c = 0; c < ncand; c++)
        if (st != DC_OK || c != win)
            dc_spmat_free(be, cand[c]);
    if (st == DC_OK)
        *best = cand[win];
    if (x)
        be->ops.release(be, x);
    if (y)
        be->ops.release(be, y);
    return st;
}

/* Free a tensor's buffer but keep its shape (parameter counts read it). */
static void dc_infer_drop_data(struct dc_backend *be, struct dc_tensor *t)
{
    struct dc_tensor shape = *t;
    dc_tensor_free(be, t);
    *t = shape, t->data = NULL;
}

/* Give weight p of section mp its compressed form; fold what follows it. */
static enum dc_status dc_infer_weight(struct dc_infer *inf, const struct dc_modelfile *mf, const char *path,
                                      const struct dc_infer_opts *o, const struct dc_modelfile_param *mp,
                                      struct dc_param *p, int *bn_layer)
{
    struct dc_backend *be = inf->net->be;
    struct dc_infer_weight *w = &inf->w[inf->nweights++];
    *w = (struct dc_infer_weight){.rows = p->w.n, .is_conv = p->is_conv, .param = p};
    snprintf(w->name, sizeof w->name, "%s", p->name);
    w->cols = (int)(dc_param_count(p) / (size_t)p->w.n);
    struct dc_spmat_src src;
    uint32_t *all_pos;
    float *scale, *shift;
    DC_TRY(dc_infer_src(mp, p, &src, &all_pos));
    w->nnz = src.nnz;
    enum dc_status st = dc_infer_epilogue(mf, path, inf->net, p, &scale, &shift, bn_layer);
    struct dc_spmat *a = NULL;
    if (st == DC_OK)
        st = dc_infer_pick(be, &src, p->is_conv ? &p->geom : NULL, o->format, o->batch, o->max_batch, scale, shift,
                           &a, w->cand_us);
    free(all_pos), free(scale), free(shift);
    DC_TRY(st);
    p->sp = a;
    w->format = a->format;
    w->bytes = dc_spmat_bytes(a);
    w->folded_bn = *bn_layer >= 0;
    dc_infer_drop_data(be, &p->w); /* the dense buffer is not needed any more */
    return DC_OK;
}

/* Dense sections of everything that is not an fc or conv weight. */
static enum dc_status dc_infer_plain(struct dc_backend *be, const struct dc_modelfile_param *mp, struct dc_param *p,
                                     const char *path, int sec)
{
    if (!mp->values)
        return DC_ERROR(DC_ERR_FORMAT, "%s: section %d (%s) is coded but %s is not a weight", path, sec, mp->name,
                        mp->name);
    return be->ops.upload(be, p->w.data, mp->values, sizeof(float) * dc_param_count(p));
}

static enum dc_status dc_infer_fill(struct dc_infer *inf, const struct dc_modelfile *mf, const char *path,
                                    const struct dc_infer_opts *o)
{
    struct dc_net *net = inf->net;
    int drop[DC_NET_MAX_PARAMS], ndrop = 0;
    enum dc_status st = DC_OK;
    for (int i = 0; st == DC_OK && i < mf->nparams; i++) {
        struct dc_param *p;
        int bn = -1;
        st = dc_modelfile_match(mf, net, path, i, &p);
        if (st == DC_OK && !p->prunable) {
            st = dc_infer_plain(net->be, &mf->params[i], p, path, i + 1);
        } else if (st == DC_OK) {
            st = dc_infer_weight(inf, mf, path, o, &mf->params[i], p, &bn);
            inf->w[inf->nweights - 1].file_bytes = mf->stats.s[i].total_bytes;
            if (bn >= 0)
                drop[ndrop++] = bn;
        }
    }
    DC_TRY(st);
    for (int k = ndrop - 1; k >= 0; k--) /* owners come in layer order: drop from the back */
        dc_infer_drop_layer(net, drop[k]);
    inf->folded = ndrop;
    return DC_OK;
}

/* Inference keeps no gradients, momenta, or the bias tensors an epilogue replaced. */
static void dc_infer_trim(struct dc_infer *inf)
{
    struct dc_net *net = inf->net;
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        dc_tensor_free(net->be, &p->g);
        dc_tensor_free(net->be, &p->v);
    }
    for (int i = 1; i < net->nlayers; i++) /* grad[nlayers] stays: the loss writes it */
        dc_tensor_free(net->be, &net->grad[i]);
    for (int i = 0; i < inf->nweights; i++) {
        const struct dc_spmat *a = inf->w[i].param->sp;
        inf->weight_bytes += inf->w[i].bytes;
        inf->other_bytes += ((a->scale ? 4u : 0u) + (a->shift ? 4u : 0u)) * (size_t)a->rows;
        char bias[64];
        snprintf(bias, sizeof bias, "%.*s.bias", (int)(strrchr(inf->w[i].name, '.') - inf->w[i].name),
                 inf->w[i].name);
        struct dc_param *b = dc_net_find_param(net, bias);
        if (b)
            dc_infer_drop_data(net->be, &b->w);
    }
    for (int i = 0; i < net->nparams; i++)
        if (net->params[i]->w.data)
            inf->other_bytes += 4 * dc_param_count(net->params[i]);
}

enum dc_status dc_infer_load(const char *path, struct dc_backend *be, const struct dc_infer_opts *opts,
                             struct dc_infer **out)
{
    *out = NULL;
    if (opts->max_batch < 1 || opts->batch < 1 || opts->batch > opts->max_batch ||
        (opts->format != DC_INFER_AUTO && (opts->format < 0 || opts->format >= DC_FORMAT_COUNT)))
        return DC_ERROR(DC_ERR_ARG, "inference plan: batch %d, max_batch %d, format %d", opts->batch,
                        opts->max_batch, opts->format);
    struct dc_infer *inf = calloc(1, sizeof *inf);
    if (!inf)
        return DC_ERROR(DC_ERR_NOMEM, "no memory for an inference plan");
    inf->batch = opts->batch;
    struct dc_modelfile mf;
    enum dc_status st = dc_modelfile_read_sparse(path, &mf);
    if (st != DC_OK) {
        free(inf);
        return st;
    }
    st = dc_config_parse_net(mf.net_text, path, &inf->cfg);
    if (st == DC_OK) {
        inf->cfg.dataset = mf.dataset;
        st = dc_modelfile_check_net(&mf, &inf->cfg, path);
    }
    if (st == DC_OK)
        st = dc_net_create(be, &inf->cfg, mf.in_c, mf.in_h, mf.in_w, mf.classes, opts->max_batch, 0, &inf->net);
    if (st == DC_OK)
        st = dc_infer_fill(inf, &mf, path, opts);
    if (st == DC_OK) {
        dc_infer_trim(inf);
        inf->file_bytes = mf.stats.file_bytes;
    }
    dc_modelfile_free(&mf);
    if (st != DC_OK) {
        dc_infer_free(inf);
        return st;
    }
    *out = inf;
    return DC_OK;
}

void dc_infer_free(struct dc_infer *inf)
{
    if (!inf)
        return;
    if (inf->net)
        dc_net_free(inf->net);
    dc_config_free(&inf->cfg);
    free(inf);
}

enum dc_status dc_infer_forward(struct dc_infer *inf, int n, double *layer_s)
{
    struct dc_net *net = inf->net;
    if (!layer_s)
        return dc_net_forward(net, n, &(struct dc_pass){0, 0});
    if (n < 1 || n > net->max_batch)
        return DC_ERROR(DC_ERR_ARG, "batch of %d outside 1..%d", n, net->max_batch);
    net->act[0].n = n;
    struct dc_pass pass = {0, 0};
    for (int i = 0; i < net->nlayers; i++) {
        struct dc_layer *l = net->layers[i];
        double t0 = dc_time_now();
        DC_TRY(l->ops->forward(l, net->be, &net->act[i], &net->act[i + 1], &pass));
        DC_TRY(net->be->ops.sync(net->be));
        layer_s[i] = dc_time_now() - t0;
    }
    return DC_OK;
}
