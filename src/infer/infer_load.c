/* infer_load.c: loading a .dcm straight into compressed forms (each weight's
 * form chosen by timing, infer_race.c), and the timed forward the dcinfer
 * tool reports from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/log.h"
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

/* Free a tensor's buffer but keep its shape (parameter counts read it). */
static void dc_infer_drop_data(struct dc_backend *be, struct dc_tensor *t)
{
    struct dc_tensor shape = *t;
    dc_tensor_free(be, t);
    *t = shape, t->data = NULL;
}

/* The network race keeps every form of every weight while it runs: only up
 * to this many bytes of them (else each weight keeps its own fastest form). */
#define DC_INFER_RACE_BYTES ((size_t)512 << 20)

/* Load-time state: the forms built for weight i, cand[i][f] (NULL: none). */
struct dc_infer_build {
    struct dc_spmat *cand[DC_NET_MAX_PARAMS][DC_FORMAT_COUNT];
    size_t kept; /* bytes of the forms kept for the network race */
    int all;     /* every weight kept all its forms */
};

/* Keep weight k's forms for the network race when they fit, else only its choice. */
static void dc_infer_keep(struct dc_backend *be, struct dc_infer_build *b, int k, int auto_race,
                          struct dc_spmat *cand[DC_FORMAT_COUNT], int win)
{
    size_t bytes = 0;
    int nform = 0;
    for (int f = 0; f < DC_FORMAT_COUNT; f++)
        if (cand[f])
            bytes += dc_spmat_bytes(cand[f]), nform++;
    int keep = auto_race && b->all && b->kept + bytes <= DC_INFER_RACE_BYTES;
    if (auto_race && nform > 1 && !keep)
        b->all = 0;
    b->kept += keep ? bytes : 0;
    for (int f = 0; f < DC_FORMAT_COUNT; f++) {
        if (cand[f] && f != win && !keep)
            dc_spmat_free(be, cand[f]), cand[f] = NULL;
        b->cand[k][f] = cand[f];
    }
}

/* Every form built but the one weight i runs (its param's sp). */
static void dc_infer_build_free(struct dc_infer *inf, struct dc_infer_build *b)
{
    for (int i = 0; i < inf->nweights; i++)
        for (int f = 0; f < DC_FORMAT_COUNT; f++) {
            if (b->cand[i][f] != inf->w[i].param->sp)
                dc_spmat_free(inf->net->be, b->cand[i][f]);
            b->cand[i][f] = NULL;
        }
}

/* Give weight p of section mp its compressed form (the forms it may take kept
 * in b); fold what follows it. */
static enum dc_status dc_infer_weight(struct dc_infer *inf, struct dc_infer_build *b, const struct dc_modelfile *mf,
                                      const char *path, const struct dc_infer_opts *o,
                                      const struct dc_modelfile_param *mp, struct dc_param *p, int *bn_layer)
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
    struct dc_spmat *cand[DC_FORMAT_COUNT];
    int win = 0;
    if (st == DC_OK)
        st = dc_infer_candidates(be, &src, p->is_conv ? &p->geom : NULL, o->format, o->batch, o->max_batch, scale,
                                 shift, cand, w->cand_us, &win);
    free(all_pos), free(scale), free(shift);
    DC_TRY(st);
    dc_infer_keep(be, b, inf->nweights - 1, o->format == DC_INFER_AUTO, cand, win);
    p->sp = cand[win];
    w->format = (enum dc_spmat_format)win;
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

static enum dc_status dc_infer_fill(struct dc_infer *inf, struct dc_infer_build *b, const struct dc_modelfile *mf,
                                    const char *path, const struct dc_infer_opts *o, struct dc_progress *pg)
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
            st = dc_infer_weight(inf, b, mf, path, o, &mf->params[i], p, &bn);
            inf->w[inf->nweights - 1].file_bytes = mf->stats.s[i].total_bytes;
            if (bn >= 0)
                drop[ndrop++] = bn;
        }
        dc_progress_update(pg, (size_t)i + 1, NULL);
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
        inf->w[i].bytes = dc_spmat_bytes(a);
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
        (opts->format != DC_INFER_AUTO && opts->format != DC_INFER_RULE &&
         (opts->format < 0 || opts->format >= DC_FORMAT_COUNT)))
        return DC_ERROR(DC_ERR_ARG, "inference plan: batch %d, max_batch %d, format %d", opts->batch,
                        opts->max_batch, opts->format);
    struct dc_infer *inf = calloc(1, sizeof *inf);
    struct dc_infer_build *b = calloc(1, sizeof *b);
    if (!inf || !b) {
        free(inf), free(b);
        return DC_ERROR(DC_ERR_NOMEM, "no memory for an inference plan");
    }
    inf->batch = opts->batch;
    inf->plan_us = -1.0;
    for (int f = 0; f < DC_FORMAT_COUNT; f++)
        inf->uniform_us[f] = -1.0;
    b->all = 1;
    struct dc_modelfile mf;
    enum dc_status st = dc_modelfile_read_sparse(path, &mf);
    if (st != DC_OK) {
        free(inf), free(b);
        return st;
    }
    st = dc_config_parse_net(mf.net_text, path, &inf->cfg);
    if (st == DC_OK) {
        inf->cfg.dataset = mf.dataset;
        st = dc_modelfile_check_net(&mf, &inf->cfg, path);
    }
    if (st == DC_OK)
        st = dc_net_create(be, &inf->cfg, mf.in_c, mf.in_h, mf.in_w, mf.classes, opts->max_batch, 0, &inf->net);
    /* Timing the forms of a large network at a large batch takes tens of
     * seconds: a progress bar (drawn only once the load lasts) says why. */
    struct dc_progress pg;
    dc_progress_begin(&pg, opts->format == DC_INFER_AUTO ? "timing forms" : "building forms", (size_t)mf.nparams + 1);
    if (st == DC_OK)
        st = dc_infer_fill(inf, b, &mf, path, opts, &pg);
    if (st == DC_OK && opts->format == DC_INFER_AUTO && b->all && inf->nweights > 0)
        st = dc_infer_race_net(inf, b->cand, opts->batch, &pg);
    if (pg.t_last > pg.t_start) /* a bar was drawn: finish its line */
        dc_progress_end(&pg, NULL);
    if (inf->net)
        dc_infer_build_free(inf, b);
    free(b);
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
        return dc_net_forward(net, n, &(struct dc_pass){.train = 0});
    if (n < 1 || n > net->max_batch)
        return DC_ERROR(DC_ERR_ARG, "batch of %d outside 1..%d", n, net->max_batch);
    net->act[0].n = n;
    struct dc_pass pass = {.train = 0};
    for (int i = 0; i < net->nlayers; i++) {
        struct dc_layer *l = net->layers[i];
        double t0 = dc_time_now();
        DC_TRY(l->ops->forward(l, net->be, &net->act[i], &net->act[i + 1], &pass));
        DC_TRY(net->be->ops.sync(net->be));
        layer_s[i] = dc_time_now() - t0;
    }
    return DC_OK;
}
