/* job_sensitivity.c: the per-layer pruning sensitivity scan (Han et al. 2015,
 * Figure 6): prune one layer at a time to each of a range of sparsities,
 * evaluate, restore, so a user can choose per-layer thresholds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/log.h"
#include "dc/prune.h"
#include "job_internal.h"

static const float dc_scan_sparsity[] = {0.5f, 0.7f, 0.8f, 0.9f, 0.95f, 0.97f, 0.99f};
#define DC_SCAN_N ((int)(sizeof dc_scan_sparsity / sizeof dc_scan_sparsity[0]))

/* Accuracy with p pruned to sparsity s (batch norm re-estimated as a prune
 * round does); p's values are restored from `saved`, the running statistics
 * from `bn`. */
static enum dc_status dc_scan_point(struct dc_job *job, struct dc_param *p, float s, const float *saved,
                                    const struct dc_bn_stats *bn, float *scratch, double *acc)
{
    struct dc_backend *be = job->be;
    size_t n = dc_param_count(p);
    float t;
    DC_TRY(dc_prune_threshold(be, p, DC_PRUNE_SPARSITY, s, &t));
    DC_TRY(be->ops.threshold_mask(be, n, p->w.data, t, scratch));
    DC_TRY(be->ops.mul(be, n, p->w.data, scratch, p->w.data));
    struct dc_eval ev;
    enum dc_status st = dc_bn_recalibrate(job->net, &job->dd, &job->cfg);
    if (st == DC_OK)
        st = dc_evaluate(job->net, &job->dd, &ev);
    DC_TRY(be->ops.upload(be, p->w.data, saved, n * sizeof(float)));
    DC_TRY(dc_bn_stats_restore(job->net, bn));
    *acc = ev.accuracy;
    return st;
}

enum dc_status dc_job_sensitivity(struct dc_job *job)
{
    struct dc_backend *be = job->be;
    struct dc_eval base;
    DC_TRY(dc_evaluate(job->net, &job->dd, &base));
    char path[600];
    FILE *csv;
    DC_TRY(dc_job_csv_create(job, "sensitivity.csv", "param,sparsity,test_accuracy", path, sizeof path, &csv));
    const int recal = job->cfg.bn_recal_batches > 0 && dc_net_has_bn(job->net);
    printf("pruning sensitivity: test accuracy (%%) with one layer pruned, the rest untouched (baseline %.2f%%)%s\n",
           100 * base.accuracy, recal ? "; batch-norm statistics re-estimated at each point" : "");
    struct dc_bn_stats bn;
    enum dc_status s = dc_bn_stats_save(job->net, &bn);
    if (s != DC_OK) {
        fclose(csv);
        return s;
    }
    printf("%-24s %10s", "layer", "weights");
    for (int j = 0; j < DC_SCAN_N; j++)
        printf("  %5.0f%%", 100 * dc_scan_sparsity[j]);
    printf("\n");
    for (int i = 0; s == DC_OK && i < job->net->nparams; i++) {
        struct dc_param *p = job->net->params[i];
        if (!p->prunable)
            continue;
        size_t n = dc_param_count(p);
        float *saved = malloc(n * sizeof(float)), *scratch = NULL;
        if (!saved || be->ops.alloc(be, (void **)&scratch, n * sizeof(float)) != DC_OK) {
            free(saved);
            s = DC_ERROR(DC_ERR_NOMEM, "out of memory for the sensitivity scan");
            break;
        }
        s = be->ops.download(be, saved, p->w.data, n * sizeof(float));
        printf("%-24s %10zu", p->name, n);
        for (int j = 0; s == DC_OK && j < DC_SCAN_N; j++) {
            double acc = 0;
            s = dc_scan_point(job, p, dc_scan_sparsity[j], saved, &bn, scratch, &acc);
            printf("  %6.2f", 100 * acc);
            fflush(stdout);
            fprintf(csv, "%s,%.4f,%.6f\n", p->name, (double)dc_scan_sparsity[j], acc);
        }
        printf("\n");
        be->ops.release(be, scratch);
        free(saved);
    }
    dc_bn_stats_free(&bn);
    s = dc_job_csv_close(csv, path, s);
    if (s == DC_OK)
        dc_info("wrote %s", path);
    return s;
}
