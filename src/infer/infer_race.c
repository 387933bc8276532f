/* infer_race.c: choosing each weight's form by timing it, at load.
 *
 * First each weight alone: its candidate forms take turns running blocks of
 * products on the same input (a warm-up call, then timed calls for about
 * 8 ms, so each form is timed in its own steady state, not just after
 * another form evicted it from the caches), and the lowest median wins.  That is the per-layer choice, and what a
 * single-layer plan (dc_infer_pick) keeps.
 *
 * Then, when every candidate could be kept, the whole network: a form that
 * wins alone can lose inside the network (caches shared with the layers
 * around it, thread start-up, the batch transposes), and what counts is the
 * whole forward.  Plans (a form for each weight) race by whole forwards at
 * the plan's batch, taking turns forward by forward so that a slow spell of
 * a shared machine hits them all alike; each plan's figure is its median.
 * The seeds are the per-layer choices and each form on every weight; from
 * the fastest, each weight's other forms race the current plan in turn (a
 * change stays when 2% faster), and the result races the fastest one-form
 * plan at the end, so the plan kept is never one a single lucky measurement
 * made look faster than the plain choice.  About 1 s for the LeNets at batch
 * 64, bounded by DC_RACE_NET_S.
 *
 * Where the clock cannot tell the candidates apart (every time zero), a fixed
 * rule decides instead (dc_infer_rule): the plan is then reproducible. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dc/log.h"
#include "dc/rng.h"
#include "infer_internal.h"

#define DC_RACE_BLOCK_S 0.008    /* a block of timed calls of one form lasts about this long */
#define DC_RACE_BLOCK_MAX 32     /* calls in a block, at most */
#define DC_RACE_ROUNDS 12        /* turns of every form, at most (at least 3) */
#define DC_RACE_LAYER_S 0.06     /* a layer's race stops after this, its 3 turns done */
#define DC_RACE_NET_ROUNDS 31    /* timed forwards of each plan in a race of plans, at most (at least 5) */
#define DC_RACE_NET_S 1.5        /* the network race stops trying new plans after this */

static int dc_race_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v [n] (reorders v). */
static double dc_race_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, dc_race_cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int dc_infer_rule(int64_t nnz, int rows, int cols, int is_conv, int quantized, int batch)
{
    double density = (double)nnz / ((double)rows * cols);
    if (density >= (batch == 1 ? 0.5 : 0.25))
        return DC_FORMAT_DENSE;
    return quantized && !is_conv ? DC_FORMAT_CODEBOOK : DC_FORMAT_CSR;
}

static enum dc_status dc_race_run(struct dc_backend *be, const struct dc_conv_desc *geom, const struct dc_spmat *a,
                                  int n, const float *x, float *y)
{
    if (!geom)
        return be->ops.spmat_fc(be, a, n, x, y);
    struct dc_conv_desc d = *geom;
    d.n = n;
    return be->ops.spmat_conv(be, &d, a, x, y);
}

/* Seconds of one product at batch n, synchronised. */
static enum dc_status dc_race_once(struct dc_backend *be, const struct dc_conv_desc *geom, const struct dc_spmat *a,
                                   int n, const float *x, float *y, double *s)
{
    double t0 = dc_time_now();
    DC_TRY(dc_race_run(be, geom, a, n, x, y));
    DC_TRY(be->ops.sync(be));
    *s = dc_time_now() - t0;
    return DC_OK;
}

/* med_s[c]: median seconds of candidate c's timed calls (see the top). */
static enum dc_status dc_race_layer(struct dc_backend *be, const struct dc_conv_desc *geom,
                                    struct dc_spmat *const *cand, int ncand, int n, const float *x, float *y,
                                    double *med_s)
{
    double t[DC_FORMAT_COUNT][DC_RACE_ROUNDS * DC_RACE_BLOCK_MAX + 1];
    int count[DC_FORMAT_COUNT] = {0}, block[DC_FORMAT_COUNT];
    double s;
    for (int c = 0; c < ncand; c++) { /* each form's block lasts about DC_RACE_BLOCK_S */
        DC_TRY(dc_race_once(be, geom, cand[c], n, x, y, &s)); /* first touch */
        DC_TRY(dc_race_once(be, geom, cand[c], n, x, y, &t[c][count[c]++]));
        block[c] = t[c][0] > DC_RACE_BLOCK_S / DC_RACE_BLOCK_MAX ? (int)ceil(DC_RACE_BLOCK_S / t[c][0])
                                                                 : DC_RACE_BLOCK_MAX;
    }
    double start = dc_time_now();
    for (int round = 0; round < DC_RACE_ROUNDS && (round < 3 || dc_time_now() - start < DC_RACE_LAYER_S); round++)
        for (int c = 0; c < ncand; c++) {
            DC_TRY(dc_race_once(be, geom, cand[c], n, x, y, &s)); /* back to this form's own state */
            for (int b = 0; b < block[c]; b++)
                DC_TRY(dc_race_once(be, geom, cand[c], n, x, y, &t[c][count[c]++]));
        }
    for (int c = 0; c < ncand; c++)
        med_s[c] = dc_race_median(t[c], count[c]);
    return DC_OK;
}

/* Backend buffers x [count_x] of random nonzero values (never time on zeros) and y [count_y]. */
static enum dc_status dc_race_buffers(struct dc_backend *be, size_t count_x, size_t count_y, float **x, float **y)
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
    if (st == DC_OK && count_y)
        st = be->ops.alloc(be, (void **)y, count_y * sizeof(float));
    free(h);
    return st;
}

enum dc_status dc_infer_candidates(struct dc_backend *be, const struct dc_spmat_src *src,
                                   const struct dc_conv_desc *geom, int format, int batch, int max_batch,
                                   const float *scale, const float *shift, struct dc_spmat *cand[DC_FORMAT_COUNT],
                                   double cand_us[DC_FORMAT_COUNT], int *win)
{
    int first = format < 0 ? 0 : format, last = format < 0 ? DC_FORMAT_COUNT - 1 : format;
    if (format == DC_FORMAT_CODEBOOK && !src->codes)
        first = last = DC_FORMAT_CSR; /* not quantized: no codebook to run from */
    if (format == DC_INFER_RULE)
        first = last = dc_infer_rule(src->nnz, src->rows, src->cols, geom != NULL, src->codes != NULL, batch);
    for (int f = 0; f < DC_FORMAT_COUNT; f++)
        cand[f] = NULL, cand_us[f] = -1.0;
    *win = first;
    enum dc_status st = DC_OK;
    struct dc_spmat *built[DC_FORMAT_COUNT];
    int form[DC_FORMAT_COUNT], n = 0;
    for (int f = first; st == DC_OK && f <= last; f++) {
        if (f == DC_FORMAT_CODEBOOK && !src->codes)
            continue;
        st = dc_spmat_create(be, (enum dc_spmat_format)f, src, max_batch, &cand[f]);
        if (st == DC_OK)
            st = dc_spmat_set_epilogue(be, cand[f], scale, shift);
        if (cand[f])
            built[n] = cand[f], form[n++] = f;
    }
    double secs[DC_FORMAT_COUNT] = {0};
    if (st == DC_OK && n > 1) {
        float *x = NULL, *y = NULL;
        size_t in = geom ? (size_t)geom->c * geom->h * geom->w : (size_t)src->cols;
        size_t out = geom ? (size_t)geom->k * geom->p * geom->q : (size_t)src->rows;
        st = dc_race_buffers(be, in * (size_t)batch, out * (size_t)batch, &x, &y);
        if (st == DC_OK)
            st = dc_race_layer(be, geom, built, n, batch, x, y, secs);
        if (x)
            be->ops.release(be, x);
        if (y)
            be->ops.release(be, y);
    }
    if (st != DC_OK) {
        for (int f = 0; f < DC_FORMAT_COUNT; f++)
            dc_spmat_free(be, cand[f]), cand[f] = NULL;
        return st;
    }
    int w = 0;
    for (int c = 0; c < n; c++) {
        if (n > 1)
            cand_us[form[c]] = 1e6 * secs[c];
        w = secs[c] < secs[w] ? c : w;
    }
    *win = form[w];
    if (n > 1 && !(secs[w] > 0.0 && isfinite(secs[w]))) { /* the clock cannot tell them apart */
        *win = dc_infer_rule(src->nnz, src->rows, src->cols, geom != NULL, src->codes != NULL, batch);
        if (!cand[*win])
            *win = DC_FORMAT_CSR;
    }
    return DC_OK;
}

enum dc_status dc_infer_pick(struct dc_backend *be, const struct dc_spmat_src *src, const struct dc_conv_desc *geom,
                             int format, int batch, int max_batch, const float *scale, const float *shift,
                             struct dc_spmat **best, double cand_us[DC_FORMAT_COUNT])
{
    struct dc_spmat *cand[DC_FORMAT_COUNT];
    int win;
    *best = NULL;
    DC_TRY(dc_infer_candidates(be, src, geom, format, batch, max_batch, scale, shift, cand, cand_us, &win));
    for (int f = 0; f < DC_FORMAT_COUNT; f++)
        if (f != win)
            dc_spmat_free(be, cand[f]);
    *best = cand[win];
    return DC_OK;
}

/* ---- the whole network ---- */

struct dc_race_net {
    struct dc_infer *inf;
    struct dc_spmat *(*cand)[DC_FORMAT_COUNT];
    int n, rounds;
    struct dc_progress *pg; /* redrawn as forwards go by (a race of plans has no known length) */
};

typedef int8_t dc_race_plan[DC_NET_MAX_PARAMS];

/* One whole forward with weight i in form plan[i], synchronised; its seconds in *s. */
static enum dc_status dc_race_forward(const struct dc_race_net *r, const int8_t *plan, double *s)
{
    struct dc_net *net = r->inf->net;
    for (int i = 0; i < r->inf->nweights; i++)
        r->inf->w[i].param->sp = r->cand[i][plan[i]];
    double t0 = dc_time_now();
    DC_TRY(dc_net_forward(net, r->n, &(struct dc_pass){.train = 0}));
    DC_TRY(net->be->ops.sync(net->be));
    *s = dc_time_now() - t0;
    dc_progress_update(r->pg, r->pg->done, "racing whole forwards");
    return DC_OK;
}

/* med_s[p]: median seconds of a forward of plans[p], the np plans taking
 * turns forward by forward (an untimed round, then r->rounds timed), so a
 * slow spell of the machine hits them all alike. */
static enum dc_status dc_race_plans(const struct dc_race_net *r, const dc_race_plan *plans, int np, double *med_s)
{
    double t[DC_FORMAT_COUNT + 1][DC_RACE_NET_ROUNDS], s;
    for (int k = -1; k < r->rounds; k++)
        for (int p = 0; p < np; p++)
            DC_TRY(dc_race_forward(r, plans[p], k < 0 ? &s : &t[p][k]));
    for (int p = 0; p < np; p++)
        med_s[p] = dc_race_median(t[p], r->rounds);
    return DC_OK;
}

/* The plan with form f on every weight that has it (csr where codebook is missing). */
static void dc_race_uniform(const struct dc_race_net *r, int f, int8_t *plan)
{
    for (int i = 0; i < r->inf->nweights; i++)
        plan[i] = (int8_t)(r->cand[i][f] ? f : DC_FORMAT_CSR);
}

/* Each weight's other forms against cur in turn, until the time is spent:
 * a change stays when it is faster by 2% in the same duel. */
static enum dc_status dc_race_descend(const struct dc_race_net *r, int8_t *cur, double start)
{
    for (int pass = 0, changed = 1; pass < 2 && changed; pass++) {
        changed = 0;
        for (int i = 0; i < r->inf->nweights; i++)
            for (int f = 0; f < DC_FORMAT_COUNT; f++) {
                if (f == cur[i] || !r->cand[i][f])
                    continue;
                if (dc_time_now() - start > DC_RACE_NET_S)
                    return DC_OK;
                dc_race_plan duel[2];
                double s[2];
                memcpy(duel[0], cur, sizeof duel[0]);
                memcpy(duel[1], cur, sizeof duel[1]);
                duel[1][i] = (int8_t)f;
                DC_TRY(dc_race_plans(r, (const dc_race_plan *)duel, 2, s));
                if (s[1] < 0.98 * s[0]) {
                    cur[i] = (int8_t)f;
                    changed = 1;
                }
            }
    }
    return DC_OK;
}

/* Random nonzero input images in act[0], and the rounds a race of plans
 * runs: enough for about 20 ms of forwards of the per-layer choices. */
static enum dc_status dc_race_setup(struct dc_race_net *r, dc_race_plan first)
{
    struct dc_net *net = r->inf->net;
    struct dc_tensor *in = &net->act[0];
    size_t count = (size_t)r->n * in->c * in->h * in->w;
    float *h = malloc(count * sizeof *h);
    if (!h)
        return DC_ERROR(DC_ERR_NOMEM, "no memory for a timing input of %zu values", count);
    struct dc_rng rng;
    dc_rng_seed(&rng, 11);
    for (size_t i = 0; i < count; i++)
        h[i] = dc_rng_uniform(&rng) * 2.0f - 0.5f;
    enum dc_status st = net->be->ops.upload(net->be, in->data, h, count * sizeof *h);
    free(h);
    DC_TRY(st);
    double s;
    DC_TRY(dc_race_forward(r, first, &s)); /* first touch */
    DC_TRY(dc_race_forward(r, first, &s));
    r->rounds = s > 0.0 ? (int)ceil(0.02 / s) : DC_RACE_NET_ROUNDS;
    r->rounds = r->rounds < 5 ? 5 : r->rounds > DC_RACE_NET_ROUNDS ? DC_RACE_NET_ROUNDS : r->rounds;
    return DC_OK;
}

enum dc_status dc_infer_race_net(struct dc_infer *inf, struct dc_spmat *(*cand)[DC_FORMAT_COUNT], int batch,
                                  struct dc_progress *pg)
{
    struct dc_race_net r = {inf, cand, batch, 1, pg};
    double start = dc_time_now();
    /* the seeds: every weight in one form, for each form, and the per-layer choices (distinct ones only) */
    dc_race_plan plans[DC_FORMAT_COUNT + 1], cur;
    double secs[DC_FORMAT_COUNT + 1];
    int of[DC_FORMAT_COUNT + 1], np = 0; /* the seed each stands for */
    for (int k = 0; k <= DC_FORMAT_COUNT; k++) {
        for (int i = 0; i < inf->nweights; i++)
            cur[i] = (int8_t)inf->w[i].format;
        if (k < DC_FORMAT_COUNT)
            dc_race_uniform(&r, k, cur);
        of[k] = 0;
        while (of[k] < np && memcmp(plans[of[k]], cur, sizeof cur))
            of[k]++;
        if (of[k] == np)
            memcpy(plans[np++], cur, sizeof cur);
    }
    DC_TRY(dc_race_setup(&r, plans[of[DC_FORMAT_COUNT]]));
    DC_TRY(dc_race_plans(&r, (const dc_race_plan *)plans, np, secs));
    int best = 0, uni = of[0];
    for (int p = 1; p < np; p++)
        best = secs[p] < secs[best] ? p : best;
    for (int f = 0; f < DC_FORMAT_COUNT; f++) {
        inf->uniform_us[f] = 1e6 * secs[of[f]];
        uni = secs[of[f]] < secs[uni] ? of[f] : uni;
    }
    memcpy(cur, plans[best], sizeof cur);
    double cur_s = secs[best];
    if (cur_s > 0.0) { /* the clock resolves a forward */
        DC_TRY(dc_race_descend(&r, cur, start));
        /* the end against the fastest one-form plan, in a race of their own */
        dc_race_plan fin[2];
        memcpy(fin[0], cur, sizeof cur);
        memcpy(fin[1], plans[uni], sizeof cur);
        DC_TRY(dc_race_plans(&r, (const dc_race_plan *)fin, memcmp(fin[0], fin[1], sizeof cur) ? 2 : 1, secs));
        if (memcmp(fin[0], fin[1], sizeof cur) && secs[1] < secs[0])
            memcpy(cur, fin[1], sizeof cur), secs[0] = secs[1];
        cur_s = secs[0];
    } else {
        memcpy(cur, plans[of[DC_FORMAT_COUNT]], sizeof cur);
    }
    for (int i = 0; i < inf->nweights; i++) {
        inf->w[i].format = (enum dc_spmat_format)cur[i];
        inf->w[i].param->sp = cand[i][cur[i]];
    }
    inf->plan_us = 1e6 * cur_s;
    return DC_OK;
}
