/* job_budget.c: budget mode ([compress] target_bytes = N): the "budget" stage
 * chooses every layer's sparsity so that the encoded file fits in N bytes,
 * losing as little accuracy as it can, instead of a person tuning twenty
 * sparsities by hand.
 *
 * Two measurements per layer and sparsity on the grid below, each with that
 * layer alone pruned (one-shot, by magnitude) and the rest untouched:
 *  - accuracy on the validation images (held out from the end of the training
 *    set and never trained on, so the test set chooses nothing);
 *  - the file's size: the network pruned so, clustered with the config's bits
 *    and encoded with its [encode] keys, in memory.  Sections are coded one
 *    by one, so the layers' bytes add up independently, and a point codes
 *    only the layer it prunes again.
 * Then greedy: from every layer dense, repeatedly take the move (a layer to a
 * higher sparsity) that saves the most bytes per validation point lost,
 * until the allocation, encoded for real, is under the target less a margin.
 *
 * Retraining changes what the file costs (the clustered values of a one-shot
 * pruned network have lower entropy than retrained ones: LeNet-300-100's fc1
 * went from 3.1 to 3.7 bits a value), so every prune round after the first
 * measures the allocation again on the retrained network and makes more
 * greedy moves where it no longer fits.  The scan and the choice live in
 * DIR/budget.csv, which a resumed run reads back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/log.h"
#include "dc/modelfile.h"
#include "dc/prune.h"
#include "dc/quantize.h"
#include "job_budget.h"

/* Finer where compressed networks live: at 98% a step of 0.5% is a quarter
 * of the bytes (LeNet-300-100 left 7.5% of an 8 KB budget unused between
 * 97% and 98%). */
const float dc_budget_grid[] = {0.0f,  0.5f,    0.6f,   0.7f,    0.8f,  0.85f,   0.9f,
                                0.92f, 0.94f,   0.95f,  0.96f,   0.965f, 0.97f,  0.975f,
                                0.98f, 0.9825f, 0.985f, 0.9875f, 0.99f,  0.9925f, 0.995f};
_Static_assert(sizeof dc_budget_grid / sizeof dc_budget_grid[0] == DC_BUDGET_NG, "the grid's length");

#define DC_BUDGET_PATH 256 /* greedy moves planned at once, at most */

void dc_job_budget_free(struct dc_job *job)
{
    free(job->budget);
    job->budget = NULL;
}

void dc_budget_saved_free(struct dc_budget_saved *sv)
{
    for (int i = 0; i < sv->n; i++)
        free(sv->w[i]), free(sv->v[i]), free(sv->m[i]);
    sv->n = 0;
}

enum dc_status dc_budget_save(struct dc_net *net, struct dc_budget_saved *sv)
{
    struct dc_backend *be = net->be;
    memset(sv, 0, sizeof *sv);
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        size_t bytes = dc_param_count(p) * sizeof(float);
        sv->n = i + 1;
        if (!(sv->w[i] = malloc(bytes)) || (p->trainable && !(sv->v[i] = malloc(bytes))) ||
            (p->mask && !(sv->m[i] = malloc(bytes))))
            return DC_ERROR(DC_ERR_NOMEM, "budget: out of memory for a copy of %s", p->name);
        DC_TRY(be->ops.download(be, sv->w[i], p->w.data, bytes));
        if (p->trainable)
            DC_TRY(be->ops.download(be, sv->v[i], p->v.data, bytes));
        if (p->mask)
            DC_TRY(be->ops.download(be, sv->m[i], p->mask, bytes));
    }
    return DC_OK;
}

/* Undo a trial: codebooks dropped, masks, values and momentum as saved. */
static enum dc_status dc_budget_restore(struct dc_net *net, const struct dc_budget_saved *sv)
{
    struct dc_backend *be = net->be;
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        size_t bytes = dc_param_count(p) * sizeof(float);
        dc_quantize_release(be, p);
        if (p->mask && !sv->m[i]) {
            be->ops.release(be, p->mask);
            p->mask = NULL;
        } else if (p->mask) {
            DC_TRY(be->ops.upload(be, p->mask, sv->m[i], bytes));
        }
        DC_TRY(be->ops.upload(be, p->w.data, sv->w[i], bytes));
        if (p->trainable)
            DC_TRY(be->ops.upload(be, p->v.data, sv->v[i], bytes));
    }
    return DC_OK;
}

/* Prune every weight of config layer `cfg` to sparsity s (nothing at 0). */
static enum dc_status dc_budget_prune(struct dc_net *net, int cfg, float s)
{
    for (int i = 0; s > 0.0f && i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        float t;
        if (!p->prunable || p->cfg_index != cfg)
            continue;
        DC_TRY(dc_prune_threshold(net->be, p, DC_PRUNE_SPARSITY, s, &t));
        DC_TRY(dc_prune_apply(net->be, p, t, NULL));
    }
    return DC_OK;
}

/* Bytes of the file of the net as it stands: clustered, rounded and encoded
 * as the pipeline would, then undone (sv); with sec, each section's bytes
 * too (sections are coded one by one, modelfile.h). */
static enum dc_status dc_budget_encode(struct dc_job *job, const struct dc_budget_saved *sv, size_t *sec,
                                       long long *bytes)
{
    struct dc_net *net = job->net;
    const struct dc_config *c = &job->cfg;
    uint8_t *buf = NULL;
    size_t size = 0;
    enum dc_status s = dc_quantize_net(net, c);
    if (s == DC_OK && c->dense_bits == 16)
        s = dc_round_dense_half(net);
    if (s == DC_OK && c->codebook_bits == 16)
        s = dc_round_codebooks_half(net);
    for (int i = 0; s == DC_OK && sec && i < net->nparams; i++)
        s = dc_modelfile_section_bytes(net, c, i, &sec[i]);
    if (s == DC_OK)
        s = dc_modelfile_encode(net, c, &buf, &size);
    free(buf);
    *bytes = (long long)size;
    enum dc_status r = dc_budget_restore(net, sv);
    return s != DC_OK ? s : r;
}

/* Bytes of the file with every layer at sparsity sp[]. */
enum dc_status dc_budget_bytes(struct dc_job *job, const struct dc_budget *b, const float *sp,
                                      const struct dc_budget_saved *sv, long long *bytes)
{
    enum dc_status s = DC_OK;
    for (int g = 0; s == DC_OK && g < b->nl; g++)
        s = dc_budget_prune(job->net, b->ly[g].cfg, sp[g]);
    if (s != DC_OK) {
        dc_budget_restore(job->net, sv); /* the prune's failure is the one to report */
        return s;
    }
    return dc_budget_encode(job, sv, NULL, bytes);
}

/* Validation accuracy with layer `cfg` alone pruned to s. */
static enum dc_status dc_budget_acc(struct dc_job *job, int cfg, float s, const struct dc_budget_saved *sv,
                                    double *acc)
{
    struct dc_eval ev = {0};
    enum dc_status st = dc_budget_prune(job->net, cfg, s);
    if (st == DC_OK) /* the restore below puts the running statistics back too */
        st = dc_bn_recalibrate(job->net, &job->dd, &job->cfg);
    if (st == DC_OK)
        st = dc_evaluate(job->net, &job->vd, &ev);
    *acc = ev.accuracy;
    enum dc_status r = dc_budget_restore(job->net, sv);
    return st != DC_OK ? st : r;
}

/* The config layers that own prunable weights, in network order. */
void dc_budget_layers(const struct dc_net *net, struct dc_budget *b)
{
    b->nl = 0;
    for (int i = 0; i < net->nparams; i++) {
        const struct dc_param *p = net->params[i];
        if (!p->prunable)
            continue;
        if (b->nl == 0 || b->ly[b->nl - 1].cfg != p->cfg_index)
            b->ly[b->nl++] = (struct dc_budget_layer){.cfg = p->cfg_index};
        b->ly[b->nl - 1].weights += dc_param_count(p);
    }
}

/* A layer's scanned figure at sparsity x, linear between grid points. */
static double dc_budget_at(const double *acc, const long long *bytes, float x)
{
    int j = 0;
    while (j + 2 < DC_BUDGET_NG && dc_budget_grid[j + 1] <= x)
        j++;
    double f = (x - dc_budget_grid[j]) / (dc_budget_grid[j + 1] - dc_budget_grid[j]);
    f = f < 0.0 ? 0.0 : f > 1.0 ? 1.0 : f;
    return acc ? acc[j] + f * (acc[j + 1] - acc[j]) : (double)bytes[j] + f * (double)(bytes[j + 1] - bytes[j]);
}
#define DC_ACC_AT(l, x) dc_budget_at((l)->acc, NULL, (x))
#define DC_BYTES_AT(l, x) dc_budget_at(NULL, (l)->bytes, (x))

/* The move from sp[] saving the most bytes per validation point lost: layer
 * *bg to grid point *bj above its sparsity; 0 when no move saves bytes. */
static int dc_budget_best_move(const struct dc_budget *b, const float *sp, double eps, int *bg, int *bj)
{
    double best = -1.0, best_saved = 0.0;
    for (int g = 0; g < b->nl; g++) {
        const struct dc_budget_layer *l = &b->ly[g];
        double bytes = DC_BYTES_AT(l, sp[g]), acc = DC_ACC_AT(l, sp[g]);
        for (int j = 0; j < DC_BUDGET_NG; j++) {
            double saved = bytes - (double)l->bytes[j], lost = acc - l->acc[j];
            if (dc_budget_grid[j] <= sp[g] + 1e-6f || saved <= 0.0)
                continue;
            double r = saved / (lost > eps ? lost : eps);
            if (r > best || (r == best && saved > best_saved))
                best = r, best_saved = saved, *bg = g, *bj = j;
        }
    }
    return best > 0.0;
}

/* The parts' sum for sp[]: the all-dense file plus each layer's change. */
static double dc_budget_parts(const struct dc_budget *b, const float *sp)
{
    double sum = (double)b->ly[0].bytes[0];
    for (int g = 0; g < b->nl; g++)
        sum += DC_BYTES_AT(&b->ly[g], sp[g]) - (double)b->ly[g].bytes[0];
    return sum;
}

/* The choice into the config's layers (what the prune rounds read). */
void dc_budget_apply(struct dc_job *job, const struct dc_budget *b)
{
    for (int g = 0; g < b->nl; g++)
        job->cfg.layers[b->ly[g].cfg].prune = b->ly[g].sp;
}

/* The greedy path from path[0] (the current choice): moves appended while
 * the parts, corrected by the last measurement, stay over 90% of the aim. */
static int dc_budget_plan(const struct dc_budget *b, double eps, int n, float (*path)[DC_NET_MAX_PARAMS])
{
    int g, j;
    while (n < DC_BUDGET_PATH && dc_budget_parts(b, path[n - 1]) + (double)b->off > 0.9 * (double)b->aim &&
           dc_budget_best_move(b, path[n - 1], eps, &g, &j)) {
        memcpy(path[n], path[n - 1], sizeof path[n]);
        path[n++][g] = dc_budget_grid[j];
    }
    return n;
}

/* Raise sparsities from the layers' current choice until the network as it
 * is now, pruned, clustered and encoded for real, is under the aim (*first:
 * the choice's bytes before, *bytes: after).  The greedy order gives a path
 * of allocations, each smaller than the one before; bisection finds the
 * first one that fits, then the sparsity of its last move that just fits:
 * whole grid steps near 98% are a quarter of the file. */
enum dc_status dc_budget_fit(struct dc_job *job, struct dc_budget *b, long long *first, long long *bytes)
{
    double eps = 0.5 / (double)job->vd.test_count; /* half an image: a free move still has a price */
    float(*path)[DC_NET_MAX_PARAMS] = malloc(sizeof *path * DC_BUDGET_PATH);
    struct dc_budget_saved sv;
    if (!path)
        return DC_ERROR(DC_ERR_NOMEM, "budget: out of memory");
    enum dc_status s = dc_budget_save(job->net, &sv);
    for (int g = 0; g < b->nl; g++)
        path[0][g] = b->ly[g].sp;
    if (s == DC_OK)
        s = dc_budget_bytes(job, b, path[0], &sv, bytes);
    *first = *bytes;
    int n = 1, lo = 0, hi = 0; /* path[lo] is over the aim, path[hi] under */
    while (s == DC_OK && *bytes > b->aim) {
        b->off = *bytes - (long long)dc_budget_parts(b, path[n - 1]);
        int m = dc_budget_plan(b, eps, n, path);
        if (m == n) {
            s = DC_ERROR(DC_ERR_CONFIG,
                         "%s: [compress] target_bytes = %d: even %.1f%% sparsity in every layer leaves about "
                         "%lld bytes; raise the target or lower [quantize] bits",
                         job->cfg.path, job->cfg.target_bytes, 100.0 * dc_budget_grid[DC_BUDGET_NG - 1], *bytes);
            break;
        }
        lo = n - 1, n = hi = m, hi--;
        s = dc_budget_bytes(job, b, path[hi], &sv, bytes);
    }
    long long hb = *bytes;
    while (s == DC_OK && hi - lo > 1) {
        int mid = (lo + hi) / 2;
        long long mb = 0;
        s = dc_budget_bytes(job, b, path[mid], &sv, &mb);
        if (mb <= b->aim)
            hi = mid, hb = mb;
        else
            lo = mid;
    }
    if (s == DC_OK && hi > 0) { /* the last move only as far as needed */
        float part[DC_NET_MAX_PARAMS];
        memcpy(part, path[hi], sizeof part);
        int g = 0;
        while (g < b->nl && path[hi][g] == path[lo][g])
            g++;
        float a = path[lo][g], z = path[hi][g];
        for (int it = 0; s == DC_OK && it < 10 && z - a > 1e-4f; it++) {
            long long pb = 0;
            part[g] = 0.5f * (a + z);
            s = dc_budget_bytes(job, b, part, &sv, &pb);
            if (pb <= b->aim)
                z = part[g], hb = pb;
            else
                a = part[g];
        }
        path[hi][g] = z;
    }
    *bytes = hb;
    for (int g = 0; s == DC_OK && g < b->nl; g++)
        b->ly[g].sp = path[hi][g];
    if (s == DC_OK)
        dc_budget_apply(job, b);
    dc_budget_saved_free(&sv);
    free(path);
    return s;
}

/* Bytes of the file with config layer `cfg` alone pruned to sp: the dense
 * file's, with that layer's weight sections coded again. */
static enum dc_status dc_budget_layer_bytes(struct dc_job *job, int cfg, float sp, const size_t *sec,
                                            long long total, const struct dc_budget_saved *sv, long long *bytes)
{
    struct dc_net *net = job->net;
    const struct dc_config *c = &job->cfg;
    enum dc_status s = dc_budget_prune(net, cfg, sp);
    *bytes = total;
    for (int i = 0; s == DC_OK && i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        size_t n = 0;
        if (!p->prunable || p->cfg_index != cfg)
            continue;
        s = dc_quantize_net_param(net, c, i);
        if (s == DC_OK && c->codebook_bits == 16)
            s = dc_round_codebook_half(net->be, p);
        if (s == DC_OK)
            s = dc_modelfile_section_bytes(net, c, i, &n);
        *bytes += (long long)n - (long long)sec[i];
    }
    enum dc_status r = dc_budget_restore(net, sv);
    return s != DC_OK ? s : r;
}

/* The scan: every layer at every grid sparsity, alone.  A point re-codes
 * only the sections of the layer it prunes, against the dense file's
 * sections, instead of clustering and coding the whole network.  One point per layer
 * (the grid's top, where the layer costs least) is also encoded whole, as a
 * check that the section sizes add up. */
static enum dc_status dc_budget_scan(struct dc_job *job, struct dc_budget *b, double base)
{
    float sp[DC_NET_MAX_PARAMS] = {0};
    size_t sec[DC_NET_MAX_PARAMS];
    long long total = 0;
    struct dc_budget_saved sv;
    enum dc_status s = dc_budget_save(job->net, &sv);
    if (s == DC_OK)
        s = dc_budget_encode(job, &sv, sec, &total); /* every layer dense */
    for (int g = 0; s == DC_OK && g < b->nl; g++) {
        struct dc_budget_layer *l = &b->ly[g];
        const char *name = job->cfg.layers[l->cfg].name;
        dc_info("budget: scanning %s (%zu weights) at %d sparsities", name, l->weights, DC_BUDGET_NG - 1);
        l->acc[0] = base;
        l->bytes[0] = total;
        for (int j = 1; s == DC_OK && j < DC_BUDGET_NG; j++) {
            s = dc_budget_acc(job, l->cfg, dc_budget_grid[j], &sv, &l->acc[j]);
            if (s == DC_OK)
                s = dc_budget_layer_bytes(job, l->cfg, dc_budget_grid[j], sec, total, &sv, &l->bytes[j]);
        }
        long long whole = 0;
        sp[g] = dc_budget_grid[DC_BUDGET_NG - 1];
        if (s == DC_OK)
            s = dc_budget_bytes(job, b, sp, &sv, &whole);
        if (s == DC_OK && whole != l->bytes[DC_BUDGET_NG - 1])
            s = DC_ERROR(DC_ERR_INTERNAL, "budget: %s at %.1f%% sparsity: its sections say %lld bytes, the whole "
                         "file has %lld (a bug: please report it with the config)", name,
                         100.0 * dc_budget_grid[DC_BUDGET_NG - 1], l->bytes[DC_BUDGET_NG - 1], whole);
        sp[g] = 0.0f;
    }
    dc_budget_saved_free(&sv);
    return s;
}

void dc_budget_print(const struct dc_job *job, const struct dc_budget *b, const char *when, long long bytes)
{
    if (b->drop)
        printf("\nBudget %s: aiming at %lld bytes; validation %d images\n%-16s %10s %9s %22s\n", when, b->aim,
               job->vd.test_count, "layer", "weights", "sparsity", "validation acc. alone");
    else
        printf("\nBudget %s: %d bytes (aiming at %lld); validation %d images\n%-16s %10s %9s %22s\n", when,
               job->cfg.target_bytes, b->aim, job->vd.test_count, "layer", "weights", "sparsity",
               "validation acc. alone");
    for (int g = 0; g < b->nl; g++)
        printf("%-16s %10zu %8.2f%% %21.2f%%\n", job->cfg.layers[b->ly[g].cfg].name, b->ly[g].weights,
               100.0 * b->ly[g].sp, 100 * DC_ACC_AT(&b->ly[g], b->ly[g].sp));
    printf("pruned to these sparsities at once, clustered and encoded: %lld bytes\n\n", bytes);
    fflush(stdout);
}

static void dc_budget_record(struct dc_job *job, const struct dc_budget *b, long long bytes, double base,
                             double t0, char *rec, size_t len)
{
    size_t o = (size_t)snprintf(rec, len,
                                "{\"stage\": \"budget\", \"epochs\": 0, \"seconds\": %.3f, \"target_bytes\": %d, "
                                "\"aim_bytes\": %lld, \"predicted_bytes\": %lld, \"validation_images\": %d, "
                                "\"validation_accuracy\": %.6f, \"layers\": [",
                                dc_time_now() - t0, job->cfg.target_bytes, b->aim, bytes, job->vd.test_count, base);
    for (int g = 0; g < b->nl && o < len; g++)
        o += (size_t)snprintf(rec + o, len - o,
                              "%s{\"layer\": \"%s\", \"weights\": %zu, \"sparsity\": %.4f, "
                              "\"validation_accuracy_alone\": %.6f}",
                              g ? ", " : "", job->cfg.layers[b->ly[g].cfg].name, b->ly[g].weights,
                              (double)b->ly[g].sp, DC_ACC_AT(&b->ly[g], b->ly[g].sp));
    if (o < len)
        snprintf(rec + o, len - o, "]}");
}

enum dc_status dc_job_stage_budget(struct dc_job *job, char *rec, size_t len)
{
    double t0 = dc_time_now();
    dc_job_budget_free(job);
    struct dc_budget *b = job->budget = calloc(1, sizeof *b);
    if (!b)
        return DC_ERROR(DC_ERR_NOMEM, "budget: out of memory");
    dc_budget_layers(job->net, b);
    if (b->nl == 0)
        return DC_ERROR(DC_ERR_CONFIG, "%s: [compress] target_bytes: the network has no prunable layer",
                        job->cfg.path);
    b->aim = (long long)((1.0 - DC_BUDGET_MARGIN) * job->cfg.target_bytes);
    struct dc_eval ev;
    long long bytes = 0;
    DC_TRY(dc_evaluate(job->net, &job->vd, &ev));
    dc_info("budget: validation accuracy %.2f%% on %d held-out training images", 100 * ev.accuracy,
            job->vd.test_count);
    DC_TRY(dc_budget_scan(job, b, ev.accuracy));
    b->base = ev.accuracy;
    b->dense = b->ly[0].bytes[0];
    if ((b->drop = job->cfg.max_accuracy_drop > 0.0f)) {
        DC_TRY(dc_budget_least(job, b));
        b->aim = bytes = b->good = b->dense;
        printf("\nBudget: at most %.2f validation points lost (from %.2f%% on %d held-out images): each prune round "
               "aims at fewer bytes, from %lld (every layer dense) towards %lld (every layer at %.1f%%), and a round "
               "that loses more is undone\n\n",
               (double)job->cfg.max_accuracy_drop, 100 * b->base, job->vd.test_count, b->dense, b->least,
               100.0 * dc_budget_grid[DC_BUDGET_NG - 1]);
    } else {
        long long dense;
        DC_TRY(dc_budget_fit(job, b, &dense, &bytes));
        dc_budget_print(job, b, "chosen", bytes);
    }
    DC_TRY(dc_budget_write_csv(job, b));
    dc_budget_record(job, b, bytes, ev.accuracy, t0, rec, len);
    return DC_OK;
}

enum dc_status dc_job_budget_refit(struct dc_job *job, int round)
{
    struct dc_budget *b = job->budget;
    if (b && b->drop)
        return dc_budget_raise(job, b, round);
    if (!b || round < 2)
        return DC_OK;
    float before[DC_NET_MAX_PARAMS];
    for (int g = 0; g < b->nl; g++)
        before[g] = b->ly[g].sp;
    long long bytes = 0, first = 0;
    DC_TRY(dc_budget_fit(job, b, &first, &bytes));
    int moved = 0;
    for (int g = 0; g < b->nl; g++)
        moved |= before[g] != b->ly[g].sp;
    if (moved)
        dc_info("budget: the retrained network at these sparsities would take %lld bytes, over the aim of %lld: "
                "sparsities raised (%lld bytes)", first, b->aim, bytes);
    else
        dc_info("budget: the retrained network at these sparsities takes %lld bytes (aim %lld)", bytes, b->aim);
    if (moved)
        dc_budget_print(job, b, "raised", bytes);
    return dc_budget_write_csv(job, b);
}

enum dc_status dc_job_budget_trim(struct dc_job *job)
{
    struct dc_budget *b = job->budget;
    if (!b || b->drop)
        return DC_OK;
    float sp[DC_NET_MAX_PARAMS];
    for (int g = 0; g < b->nl; g++)
        sp[g] = b->ly[g].sp;
    struct dc_budget_saved sv;
    long long bytes = 0, target = job->cfg.target_bytes, over = 0;
    double eps = 0.5 / (double)job->vd.test_count;
    int g = 0, j = 0;
    enum dc_status s = dc_budget_save(job->net, &sv);
    if (s == DC_OK)
        s = dc_budget_bytes(job, b, sp, &sv, &bytes);
    if (s == DC_OK && bytes > target) {
        /* the next greedy move's layer gives up weights, pruned without
         * retraining: steps of what the excess costs at its bytes per weight on
         * the grid until the file fits, then bisection back to just fitting */
        over = bytes;
        if (!dc_budget_best_move(b, sp, eps, &g, &j))
            s = DC_ERROR(DC_ERR_CONFIG, "%s: [compress] target_bytes = %lld: the file takes %lld bytes",
                         job->cfg.path, target, bytes);
        const struct dc_budget_layer *l = &b->ly[g];
        double per_weight = (DC_BYTES_AT(l, sp[g]) - (double)l->bytes[j]) /
                            ((double)l->weights * (dc_budget_grid[j] - sp[g]));
        float a = sp[g], z = sp[g];
        for (int it = 0; s == DC_OK && bytes > target; it++) {
            if (it == 20 || z >= 0.999f) {
                s = DC_ERROR(DC_ERR_CONFIG, "%s: [compress] target_bytes = %lld: the file still takes %lld bytes",
                             job->cfg.path, target, bytes);
                break;
            }
            a = z;
            z += (float)(1.5 * (double)(bytes - target) / per_weight / (double)l->weights);
            sp[g] = z = z < 0.999f ? z : 0.999f;
            s = dc_budget_bytes(job, b, sp, &sv, &bytes);
        }
        for (int it = 0; s == DC_OK && it < 10 && z - a > 1e-5f; it++) {
            long long mb = 0;
            sp[g] = 0.5f * (a + z);
            s = dc_budget_bytes(job, b, sp, &sv, &mb);
            if (mb <= target)
                z = sp[g], bytes = mb;
            else
                a = sp[g];
        }
        sp[g] = z;
    }
    dc_budget_saved_free(&sv);
    for (int k = 0; s == DC_OK && k < b->nl; k++) {
        b->ly[k].sp = job->cfg.layers[b->ly[k].cfg].prune = sp[k];
        s = dc_budget_prune(job->net, b->ly[k].cfg, sp[k]);
    }
    if (s == DC_OK && over)
        dc_warn("budget: the retrained network took %lld bytes, over the target of %lld: %s pruned further to "
                "%.3f%% without retraining to fit (%lld bytes); fine-tuning follows",
                over, target, job->cfg.layers[b->ly[g].cfg].name, 100.0 * sp[g], bytes);
    else if (s == DC_OK)
        dc_info("budget: the file will take %lld bytes (target %lld)", bytes, target);
    return s;
}

enum dc_status dc_job_budget_data(struct dc_job *job)
{
    const struct dc_config *c = &job->cfg;
    struct dc_dataset *tr = &job->data.train;
    if (c->validation >= tr->count)
        return DC_ERROR(DC_ERR_CONFIG,
                        "%s: [compress] validation = %d leaves none of the %d training images to train on",
                        c->path, c->validation, tr->count);
    size_t img = (size_t)tr->c * tr->h * tr->w, first = (size_t)(tr->count - c->validation);
    struct dc_data val = job->data; /* classes and normalisation */
    val.train.count = 0;
    val.test = *tr;
    val.test.count = c->validation;
    val.test.images = tr->images + img * first;
    val.test.labels = tr->labels + first;
    tr->count -= c->validation; /* the tail stays in the same allocation, freed with it */
    return dc_device_data_init(job->be, &val, &job->vd);
}
