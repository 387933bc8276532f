/* job_weights.c: the weight distributions a job leaves for plots
 * (scripts/dcplot.py draws the paper's Figures 4-5 from them): after each
 * stage, DIR/weights_<stage>.csv holds per pruned-or-quantized-able weight a
 * histogram of its non-zero values, the count of zeros, and, once
 * quantized, each shared value with the number of weights using it.  A
 * snapshot is a few kB whatever the model's size, so every stage gets one.
 *
 * Rows: param,kind,lo,hi,count with kind
 *   total     lo = min, hi = max over all values, count = all values
 *   zero      count of values exactly 0 (pruned)
 *   bin       count of non-zero values in [lo, hi) (the last bin includes hi)
 *   centroid  lo = hi = the shared value, count = kept weights assigned to it */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "job_internal.h"

#define DC_WEIGHT_BINS 160

static void dc_weights_histogram(FILE *f, const char *name, const float *v, size_t n)
{
    float lo = v[0], hi = v[0];
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
        zeros += v[i] == 0.0f;
    }
    fprintf(f, "%s,total,%.9g,%.9g,%zu\n%s,zero,0,0,%zu\n", name, (double)lo, (double)hi, n, name, zeros);
    size_t count[DC_WEIGHT_BINS] = {0};
    double width = ((double)hi - (double)lo) / DC_WEIGHT_BINS;
    for (size_t i = 0; width > 0 && i < n; i++) {
        if (v[i] == 0.0f)
            continue;
        int b = (int)(((double)v[i] - (double)lo) / width);
        count[b < DC_WEIGHT_BINS ? b : DC_WEIGHT_BINS - 1]++;
    }
    for (int b = 0; width > 0 && b < DC_WEIGHT_BINS; b++)
        fprintf(f, "%s,bin,%.9g,%.9g,%zu\n", name, (double)lo + b * width, (double)lo + (b + 1) * width, count[b]);
}

/* Shared values of a quantized weight with the number of kept weights on each. */
static enum dc_status dc_weights_centroids(FILE *f, struct dc_backend *be, const struct dc_param *p, size_t n)
{
    float cb[256];
    size_t use[256] = {0};
    uint8_t *assign = malloc(n);
    float *mask = p->mask ? malloc(n * sizeof *mask) : NULL;
    enum dc_status s = assign && (mask || !p->mask) ? DC_OK : DC_ERROR(DC_ERR_NOMEM, "out of memory for %s", p->name);
    if (s == DC_OK && (p->m < 1 || p->m > 256))
        s = DC_ERROR(DC_ERR_ARG, "%s: codebook of %d values", p->name, p->m);
    if (s == DC_OK)
        s = be->ops.download(be, cb, p->codebook, (size_t)p->m * sizeof(float));
    if (s == DC_OK)
        s = be->ops.download(be, assign, p->assign, n);
    if (s == DC_OK && mask)
        s = be->ops.download(be, mask, p->mask, n * sizeof(float));
    for (size_t i = 0; s == DC_OK && i < n; i++)
        if (!mask || mask[i] != 0.0f)
            use[assign[i] < p->m ? assign[i] : 0]++;
    for (int k = 0; s == DC_OK && k < p->m; k++)
        fprintf(f, "%s,centroid,%.9g,%.9g,%zu\n", p->name, (double)cb[k], (double)cb[k], use[k]);
    free(assign);
    free(mask);
    return s;
}

static void dc_weights_path(const struct dc_job *job, const char *label, char *path, size_t len)
{
    snprintf(path, len, "%s/weights_%s.csv", job->out_dir, label);
}

enum dc_status dc_job_weights_write(struct dc_job *job, const char *label)
{
    char path[700], tmp[710];
    dc_weights_path(job, label, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return DC_ERROR(DC_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    fputs("param,kind,lo,hi,count\n", f);
    enum dc_status s = DC_OK;
    for (int i = 0; s == DC_OK && i < job->net->nparams; i++) {
        const struct dc_param *p = job->net->params[i];
        size_t n = dc_param_count(p);
        if (!p->prunable || n == 0)
            continue;
        float *v = malloc(n * sizeof *v);
        s = v ? dc_tensor_download(job->be, &p->w, v) : DC_ERROR(DC_ERR_NOMEM, "out of memory for %s", p->name);
        if (s == DC_OK)
            dc_weights_histogram(f, p->name, v, n);
        if (s == DC_OK && p->codebook && p->assign)
            s = dc_weights_centroids(f, job->be, p, n);
        free(v);
    }
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (s == DC_OK && (bad || rename(tmp, path) != 0))
        s = DC_ERROR(DC_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (s != DC_OK)
        remove(tmp);
    return s;
}

/* Snapshot labels in pipeline order: the starting weights when no train
 * stage runs, each stage, and the k-means result before fine-tuning. */
static int dc_weights_labels(const struct dc_job *job, const char **labels, int max)
{
    int n = 0;
    labels[n++] = "init";
    for (int i = 0; i < job->nstages && n + 2 <= max; i++) {
        if (job->stages[i].kind == DC_STAGE_QUANTIZE)
            labels[n++] = "clustered";
        if (job->stages[i].kind != DC_STAGE_ENCODE && job->stages[i].kind != DC_STAGE_BUDGET)
            labels[n++] = job->stages[i].name;
    }
    return n;
}

/* The list summary.json shows: the snapshots present, in pipeline order. */
static void dc_weights_list(struct dc_job *job)
{
    const char *labels[DC_JOB_MAX_STAGES + 2];
    int n = dc_weights_labels(job, labels, DC_JOB_MAX_STAGES + 2);
    struct dc_summary *sm = &job->summary;
    size_t o = 0;
    sm->weights_csv[0] = '\0';
    for (int i = 0; i < n && o + 64 < sizeof sm->weights_csv; i++) {
        char path[700];
        struct stat sb;
        dc_weights_path(job, labels[i], path, sizeof path);
        if (stat(path, &sb) == 0)
            o += (size_t)snprintf(sm->weights_csv + o, sizeof sm->weights_csv - o, "%s\"weights_%s.csv\"",
                                  o ? ", " : "", labels[i]);
    }
}

enum dc_status dc_job_weights_begin(struct dc_job *job, int first, int start_epoch)
{
    if (first > 0 || start_epoch >= 0) {
        dc_weights_list(job); /* resumed: earlier snapshots belong to this run, and are listed */
        return DC_OK;
    }
    const char *labels[DC_JOB_MAX_STAGES + 2];
    int n = dc_weights_labels(job, labels, DC_JOB_MAX_STAGES + 2);
    for (int i = 0; i < n; i++) { /* a previous run's files in the same folder would mislead a plot */
        char path[700];
        dc_weights_path(job, labels[i], path, sizeof path);
        remove(path);
    }
    if (job->nstages > 0 && job->stages[0].kind == DC_STAGE_TRAIN)
        return DC_OK;
    return dc_job_weights_write(job, "init");
}

enum dc_status dc_job_weights_stage(struct dc_job *job, const struct dc_stage *st)
{
    if (st->kind != DC_STAGE_ENCODE && st->kind != DC_STAGE_BUDGET)
        DC_TRY(dc_job_weights_write(job, st->name));
    dc_weights_list(job);
    return DC_OK;
}
