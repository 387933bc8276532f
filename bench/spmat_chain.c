/* spmat_chain.c: bench_spmat --chain, the fully connected layers of AlexNet
 * and of VGG-16 run in turn (fc6, fc7, fc8), as a forward pass runs them,
 * with each layer's time taken inside the sequence.  A layer timed alone,
 * call after call, keeps its csr form in the L3 cache when it fits (AlexNet
 * fc7: 12 MB of a 32 MiB L3), so the codebook form's fewer bytes buy nothing
 * there; in a forward pass the other layers' weights pass through the same
 * cache between two calls of it.  Each layer reads a fixed input, the
 * reference output of the layer before rounded to float, so every form gets
 * the same numbers and is checked against the same reference before any
 * timing. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dc/log.h"
#include "dc/rng.h"
#include "spmat_bench.h"

#define BS_CHAIN 3 /* fc6, fc7, fc8 */

static const char *const bs_nets[] = {"alexnet", "vgg16"};

struct bs_chain {
    const struct bs_layer *l[BS_CHAIN];
    struct bs_mat w[BS_CHAIN];
    float *hx[BS_CHAIN], *dx[BS_CHAIN], *dy[BS_CHAIN]; /* input [maxn,K] on the host and the backend, output */
    double *ref[BS_CHAIN];                             /* [maxn,M] */
    struct bs_method me[BS_CHAIN][BS_METHODS];
    int nme;
};

static void bs_chain_free(struct dc_backend *be, struct bs_chain *c)
{
    for (int i = 0; i < BS_CHAIN; i++) {
        for (int j = 0; j < BS_METHODS; j++)
            if (c->me[i][j].a)
                dc_spmat_free(be, c->me[i][j].a);
        if (c->dx[i])
            be->ops.release(be, c->dx[i]);
        if (c->dy[i])
            be->ops.release(be, c->dy[i]);
        bs_mat_free(&c->w[i]);
        free(c->hx[i]);
        free(c->ref[i]);
    }
}

/* The three layers' matrices, inputs, references and forms. */
static enum dc_status bs_chain_make(struct dc_backend *be, const char *net, const struct bs_opts *o, int maxn,
                                    struct bs_chain *c)
{
    for (int i = 0; i < BS_CHAIN; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s-fc%d", net, 6 + i);
        for (int j = 0; j < bs_nlayers; j++)
            if (!strcmp(bs_layers[j].name, name))
                c->l[i] = &bs_layers[j];
        if (!c->l[i] || (i > 0 && c->l[i]->k != c->l[i - 1]->m))
            return DC_ERROR(DC_ERR_INTERNAL, "--chain: %s does not follow the layer before", name);
    }
    for (int i = 0; i < BS_CHAIN; i++) {
        const struct bs_layer *l = c->l[i];
        DC_TRY(bs_mat_make(l, o->seed, &c->w[i])); /* the seed of the layer alone: the same matrix */
        c->hx[i] = malloc(sizeof(float) * (size_t)maxn * l->k);
        c->ref[i] = malloc(sizeof(double) * (size_t)maxn * l->m);
        if (!c->hx[i] || !c->ref[i])
            return DC_ERROR(DC_ERR_NOMEM, "%s: no memory", l->name);
        struct dc_rng rng;
        dc_rng_seed(&rng, o->seed + 1);
        for (size_t j = 0; j < (size_t)maxn * l->k; j++) {
            float v = i == 0 ? dc_rng_normal(&rng) : (float)c->ref[i - 1][j];
            c->hx[i][j] = v != 0.0f ? v : 0.5f; /* never time on zeros */
        }
        bs_reference(&c->w[i], maxn, c->hx[i], c->ref[i]);
        DC_TRY(be->ops.alloc(be, (void **)&c->dx[i], sizeof(float) * (size_t)maxn * l->k));
        DC_TRY(be->ops.alloc(be, (void **)&c->dy[i], sizeof(float) * (size_t)maxn * l->m));
        DC_TRY(be->ops.upload(be, c->dx[i], c->hx[i], sizeof(float) * (size_t)maxn * l->k));
        DC_TRY(bs_methods_make(be, &c->w[i], maxn, c->me[i], &c->nme));
    }
    return DC_OK;
}

/* One pass of method j through the three layers at batch n; t[i] += layer i's seconds. */
static enum dc_status bs_chain_pass(struct dc_backend *be, const struct bs_chain *c, int j, int n, double *t)
{
    for (int i = 0; i < BS_CHAIN; i++) {
        double a = dc_time_now();
        DC_TRY(bs_call(be, &c->w[i], &c->me[i][j], n, c->dx[i], c->dy[i]));
        t[i] = dc_time_now() - a;
    }
    return DC_OK;
}

/* Check every method on every layer at batch n, then time the passes: the
 * median of each layer's time and of the whole pass. */
static enum dc_status bs_chain_batch(struct dc_backend *be, const char *net, const struct bs_chain *c, int n,
                                     const struct bs_opts *o, FILE *tsv)
{
    for (int j = 0; j < c->nme; j++)
        for (int i = 0; i < BS_CHAIN; i++) {
            float *hy = malloc(sizeof(float) * (size_t)n * c->l[i]->m);
            enum dc_status s = hy ? bs_verify(be, c->l[i], &c->w[i], &c->me[i][j], n, c->dx[i], c->dy[i], c->ref[i], hy)
                                  : DC_ERROR(DC_ERR_NOMEM, "no memory");
            free(hy);
            DC_TRY(s);
        }
    /* The methods take turns, pass by pass, so a slow spell of a shared
     * machine falls on all of them alike; about o->seconds each. */
    double total = 0.0, warm[BS_CHAIN];
    for (int j = 0; j < c->nme; j++) {
        double t0 = dc_time_now();
        DC_TRY(bs_chain_pass(be, c, j, n, warm));
        DC_TRY(bs_chain_pass(be, c, j, n, warm));
        total += fmax((dc_time_now() - t0) / 2.0, 1e-7);
    }
    int reps = (int)fmin(BS_MAX_REPEAT, fmax(BS_MIN_REPEAT, ceil(o->seconds * c->nme / total)));
    const int cols = BS_CHAIN + 1; /* each layer's time, then the pass's */
    double *t = malloc(sizeof *t * (size_t)reps * c->nme * cols), *col = malloc(sizeof *col * (size_t)reps);
    enum dc_status s = t && col ? DC_OK : DC_ERROR(DC_ERR_NOMEM, "no memory");
    for (int r = 0; s == DC_OK && r < reps; r++)
        for (int j = 0; s == DC_OK && j < c->nme; j++) {
            double *tr = t + ((size_t)j * reps + r) * cols;
            s = bs_chain_pass(be, c, j, n, tr);
            tr[BS_CHAIN] = tr[0] + tr[1] + tr[2];
        }
    double base[BS_CHAIN + 1] = {0};
    for (int j = 0; s == DC_OK && j < c->nme; j++) {
        size_t bytes = 0;
        for (int i = 0; i < cols; i++) {
            for (int r = 0; r < reps; r++)
                col[r] = t[((size_t)j * reps + r) * cols + i];
            double med = bs_median(col, reps);
            if (j == 0)
                base[i] = med;
            char name[32];
            const struct bs_layer *l = i < BS_CHAIN ? c->l[i] : NULL;
            size_t b = l ? c->me[i][j].bytes : bytes;
            bytes += l ? b : 0;
            snprintf(name, sizeof name, "%s%s", l ? l->name : net, l ? "" : "-fc6..8");
            printf("%-14s chain batch %3d %-9s %10.2f us/sample %8.2f GB/s %12zu bytes %6.2fx vs %s  (%d passes)\n",
                   name, n, c->me[0][j].name, 1e6 * med / n, 1e-9 * (double)b / med, b, base[i] / med,
                   c->me[0][0].name, reps);
            if (tsv)
                fprintf(tsv, "%s\t%s\t%d\t%d\t%.4f\t%lld\t%d\tchain\t%d\t%s\t%.4f\t%.4f\t%zu\t%.4f\t%d\n", be->name,
                        name, l ? l->m : 0, l ? l->k : 0, l ? (double)l->density : 0.0,
                        l ? (long long)c->w[i].nnz : 0LL, l ? l->bits : 0, n, c->me[0][j].name, 1e6 * med / n,
                        1e-9 * (double)b / med, b, base[i] / med, o->threads);
        }
    }
    fflush(stdout);
    free(t);
    free(col);
    return s;
}

enum dc_status bs_chain_run(struct dc_backend *be, const struct bs_opts *o, FILE *tsv)
{
    int maxn = 1;
    for (int b = 0; b < o->nbatch; b++)
        maxn = o->batches[b] > maxn ? o->batches[b] : maxn;
    for (size_t k = 0; k < sizeof bs_nets / sizeof bs_nets[0]; k++) {
        if (o->layers) { /* --layers picks networks by any of their layers */
            int any = 0;
            for (int i = 0; i < BS_CHAIN; i++) {
                char name[32];
                snprintf(name, sizeof name, "%s-fc%d", bs_nets[k], 6 + i);
                any |= strstr(o->layers, name) != NULL;
            }
            if (!any)
                continue;
        }
        struct bs_chain c;
        memset(&c, 0, sizeof c);
        enum dc_status s = bs_chain_make(be, bs_nets[k], o, maxn, &c);
        for (int b = 0; s == DC_OK && b < o->nbatch; b++)
            s = bs_chain_batch(be, bs_nets[k], &c, o->batches[b], o, tsv);
        if (s != DC_OK)
            fprintf(stderr, "bench_spmat: --chain %s: %s (%s)\n", bs_nets[k], dc_error_msg(), dc_error_where());
        bs_chain_free(be, &c);
        DC_TRY(s);
    }
    return DC_OK;
}
