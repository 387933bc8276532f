/* job_compress.c: the compression stages of a job: a prune round with its
 * retraining, trained quantization with centroid fine-tuning, and encoding to
 * the model file followed by decoding it and evaluating what was decoded. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/killpoint.h"
#include "dc/log.h"
#include "dc/modelfile.h"
#include "dc/prune.h"
#include "dc/quantize.h"
#include "dc/report.h"
#include "job_internal.h"

/* Append printf output to rec at *o, never past len. */
#define DC_REC(...)                                                               \
    do {                                                                          \
        if (*o < len)                                                             \
            *o += (size_t)snprintf(rec + *o, len - *o, __VA_ARGS__);              \
    } while (0)

static void dc_rec_prune_layers(const struct dc_prune_stats *ps, char *rec, size_t len, size_t *o)
{
    DC_REC(", \"layers\": [");
    for (int i = 0; i < ps->n; i++)
        DC_REC("%s{\"param\": \"%s\", \"weights\": %zu, \"kept\": %zu, \"setting\": %.4f}", i ? ", " : "",
               ps->p[i].name, ps->p[i].total, ps->p[i].kept, (double)ps->p[i].setting);
    DC_REC("]");
}

/* What the figure right after pruning or clustering was measured with. */
static const char *dc_recal_note(const struct dc_job *job)
{
    return job->cfg.bn_recal_batches > 0 && dc_net_has_bn(job->net) ? " (batch-norm statistics re-estimated)" : "";
}

enum dc_status dc_job_stage_prune(struct dc_job *job, const struct dc_stage *st, int start_epoch, char *rec,
                                  size_t len)
{
    const struct dc_config *c = &job->cfg;
    static struct dc_prune_stats ps; /* large; one stage at a time */
    double t0 = dc_time_now(), acc_pruned = -1;
    struct dc_net *teacher;
    DC_TRY(dc_job_teacher(job, start_epoch < 0, &teacher));
    if (start_epoch < 0) {
        DC_TRY(dc_job_budget_refit(job, st->round));
        int r = dc_job_budget_exact(job) ? c->prune_rounds : st->round;
        DC_TRY(dc_prune_round(job->net, c, r, c->prune_rounds, &ps));
        DC_TRY(dc_bn_recalibrate(job->net, &job->dd, c));
        struct dc_eval ev;
        DC_TRY(dc_evaluate(job->net, &job->dd, &ev));
        acc_pruned = job->stage_figure = ev.accuracy;
        dc_killpoint("pruned");
        dc_info("%s: kept %zu of %zu weights (%.2f%%), test accuracy right after pruning %.2f%%%s", st->name,
                ps.kept, ps.total, 100.0 * (double)ps.kept / (double)ps.total, 100 * ev.accuracy, dc_recal_note(job));
        DC_TRY(dc_job_checkpoint(job, job->stage_index, 0));
    } else {
        DC_TRY(dc_prune_collect(job->net, &ps));
        /* the round's settings follow from the schedule; the thresholds are not reported */
        for (int i = 0, j = 0; i < job->net->nparams && j < ps.n; i++)
            if (job->net->params[i]->prunable)
                ps.p[j++].setting = dc_prune_schedule(c, job->net->params[i], st->round, c->prune_rounds);
        acc_pruned = job->stage_figure; /* from the checkpoint */
    }
    const int epochs = dc_job_retrain_epochs(c, st->round);
    struct dc_phase ph = {.stage = st->name, .epochs = epochs, .lr = c->retrain_lr,
                          .schedule = DC_LR_COSINE, .teacher = teacher};
    struct dc_eval ev = {0};
    DC_TRY(dc_job_phase(job, &ph, start_epoch > 0 ? start_epoch : 0, &ev));
    int undone = 0;
    DC_TRY(dc_job_budget_check(job, st->round, &undone));
    if (undone) { /* the record tells of the network the run goes on with */
        DC_TRY(dc_evaluate(job->net, &job->dd, &ev));
        DC_TRY(dc_prune_collect(job->net, &ps));
    }
    size_t off = 0, *o = &off;
    DC_REC("{\"stage\": \"%s\", \"round\": %d, \"epochs\": %d, \"seconds\": %.3f, \"kept\": %zu, \"total\": %zu, "
           "\"kept_fraction\": %.6f, \"test_accuracy_pruned\": %.6f, \"test_accuracy\": %.6f, \"test_loss\": %.6f",
           st->name, st->round, epochs, dc_time_now() - t0, ps.kept, ps.total,
           (double)ps.kept / (double)(ps.total ? ps.total : 1), acc_pruned, ev.accuracy, ev.loss);
    dc_rec_prune_layers(&ps, rec, len, o);
    if (dc_job_budget_exact(job))
        DC_REC(", \"undone\": %d", undone);
    DC_REC("}");
    return DC_OK;
}

enum dc_status dc_job_stage_quantize(struct dc_job *job, int start_epoch, char *rec, size_t len)
{
    const struct dc_config *c = &job->cfg;
    struct dc_net *net = job->net;
    double t0 = dc_time_now(), acc_q = -1;
    struct dc_net *teacher;
    DC_TRY(dc_job_teacher(job, start_epoch < 0, &teacher));
    if (start_epoch < 0) {
        DC_TRY(dc_job_budget_trim(job));
        DC_TRY(dc_quantize_net(net, c));
        DC_TRY(dc_bn_recalibrate(net, &job->dd, c));
        struct dc_eval ev;
        DC_TRY(dc_evaluate(net, &job->dd, &ev));
        acc_q = job->stage_figure = ev.accuracy;
        dc_killpoint("clustered");
        dc_info("quantize: test accuracy with shared weights, before fine-tuning %.2f%%%s", 100 * ev.accuracy,
                dc_recal_note(job));
        DC_TRY(dc_job_weights_write(job, "clustered"));
        DC_TRY(dc_job_checkpoint(job, job->stage_index, 0));
    } else {
        acc_q = job->stage_figure; /* from the checkpoint */
    }
    struct dc_phase ph = {.stage = "finetune", .epochs = c->finetune_epochs, .lr = c->finetune_lr,
                          .schedule = DC_LR_CONST, .teacher = teacher};
    struct dc_eval ev = {0};
    DC_TRY(dc_job_phase(job, &ph, start_epoch > 0 ? start_epoch : 0, &ev));
    size_t off = 0, *o = &off;
    DC_REC("{\"stage\": \"quantize\", \"epochs\": %d, \"seconds\": %.3f, \"test_accuracy_quantized\": %.6f, "
           "\"test_accuracy\": %.6f, \"test_loss\": %.6f, \"bits\": {",
           c->finetune_epochs, dc_time_now() - t0, acc_q, ev.accuracy, ev.loss);
    int first = 1;
    for (int i = 0; i < net->nparams; i++)
        if (net->params[i]->prunable || net->params[i]->codebook) {
            DC_REC("%s\"%s\": %d", first ? "" : ", ", net->params[i]->name, dc_quantize_bits(c, net->params[i]));
            first = 0;
        }
    DC_REC("}}");
    return DC_OK;
}

/* Test images on which two prediction lists differ. */
static int dc_count_mismatch(const int32_t *a, const int32_t *b, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad += a[i] != b[i];
    return bad;
}

/* Decode the written file into a fresh network and evaluate what was decoded. */
static enum dc_status dc_job_check_decoded(struct dc_job *job, const char *path, struct dc_eval *ev, int *mismatch)
{
    int n = job->dd.test_count;
    int32_t *pa = malloc(sizeof(int32_t) * (size_t)(n ? n : 1)), *pb = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    struct dc_net *dec = NULL;
    struct dc_config dcfg;
    memset(&dcfg, 0, sizeof dcfg);
    enum dc_status s = pa && pb ? DC_OK : DC_ERROR(DC_ERR_NOMEM, "out of memory for predictions");
    if (s == DC_OK)
        s = dc_predict(job->net, &job->dd, pa);
    if (s == DC_OK)
        s = dc_modelfile_load(path, job->be, job->cfg.batch, &dec, &dcfg, NULL);
    if (s == DC_OK)
        s = dc_predict(dec, &job->dd, pb);
    if (s == DC_OK)
        s = dc_evaluate(dec, &job->dd, ev);
    if (s == DC_OK)
        *mismatch = dc_count_mismatch(pa, pb, n);
    if (dec)
        dc_net_free(dec);
    dc_config_free(&dcfg);
    free(pa);
    free(pb);
    return s;
}

/* [encode] dense_bits = 16: the file keeps dense values as half, so round the
 * network itself first; then the network evaluated here is the one the file
 * holds, and the decoded model must agree with it on every test image. */
static enum dc_status dc_job_round_dense(struct dc_job *job)
{
    struct dc_eval ev;
    const struct dc_config *c = &job->cfg;
    if (c->dense_bits == 16)
        DC_TRY(dc_round_dense_half(job->net));
    if (c->codebook_bits == 16)
        DC_TRY(dc_round_codebooks_half(job->net));
    DC_TRY(dc_evaluate(job->net, &job->dd, &ev));
    dc_info("encode: %s rounded to half precision: test accuracy %.2f%%",
            c->dense_bits == 16 && c->codebook_bits == 16 ? "dense parameters and codebooks"
            : c->dense_bits == 16                        ? "dense parameters"
                                                         : "codebooks",
            100 * ev.accuracy);
    return DC_OK;
}

enum dc_status dc_job_stage_encode(struct dc_job *job, char *rec, size_t len)
{
    double t0 = dc_time_now();
    char path[800];
    const char *file = job->cfg.encode_file;
    if (file[0] == '/')
        snprintf(path, sizeof path, "%s", file);
    else
        snprintf(path, sizeof path, "%s/%s", job->out_dir, file);
    struct dc_modelfile_stats st;
    memset(&st, 0, sizeof st);
    if (job->cfg.dense_bits == 16 || job->cfg.codebook_bits == 16)
        DC_TRY(dc_job_round_dense(job));
    DC_TRY(dc_modelfile_write(path, job->net, &job->cfg, &st));
    struct dc_eval ev = {0};
    int mismatch = 0;
    enum dc_status s = dc_job_check_decoded(job, path, &ev, &mismatch);
    if (s != DC_OK) {
        dc_modelfile_stats_free(&st);
        return s;
    }
    printf("\nCompression of %s (%s)\n", job->summary.model, path);
    dc_report_print(stdout, &st);
    printf("decoded model: test accuracy %.2f%% (error %.2f%%); predictions equal to the fine-tuned model's on "
           "%d of %d test images\n\n",
           100 * ev.accuracy, 100 * (1 - ev.accuracy), job->dd.test_count - mismatch, job->dd.test_count);
    fflush(stdout);
    char *layers = NULL;
    size_t layers_len = 0;
    FILE *mem = open_memstream(&layers, &layers_len);
    if (!mem) {
        dc_modelfile_stats_free(&st);
        return DC_ERROR(DC_ERR_NOMEM, "out of memory for the report");
    }
    dc_report_json(mem, &st);
    fclose(mem);
    char fj[900];
    size_t off = 0, *o = &off;
    DC_REC("{\"stage\": \"encode\", \"epochs\": 0, \"seconds\": %.3f, \"file\": %s, \"dense_bytes\": %llu, "
           "\"file_bytes\": %llu, \"dense_bits\": %d, \"compression_rate\": %.4f, \"test_accuracy\": %.6f, "
           "\"test_loss\": %.6f, \"prediction_mismatches\": %d, \"layers\": %s}",
           dc_time_now() - t0, dc_json_str(fj, sizeof fj, path), (unsigned long long)st.dense_bytes,
           (unsigned long long)st.file_bytes, job->cfg.dense_bits, dc_report_rate(&st), ev.accuracy, ev.loss,
           mismatch, layers);
    free(layers);
    dc_modelfile_stats_free(&st);
    if (off >= len)
        return DC_ERROR(DC_ERR_ARG, "encode record longer than %zu bytes", len);
    if (mismatch)
        dc_warn("the decoded model disagrees with the fine-tuned model on %d test images", mismatch);
    return DC_OK;
}
