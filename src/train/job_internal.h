/* job_internal.h: state shared by the stage runners of a dctrain job. */
#ifndef DC_JOB_INTERNAL_H
#define DC_JOB_INTERNAL_H

#include <stdio.h>

#include "dc/data.h"
#include "dc/job.h"
#include "dc/train.h"
#include "job_summary.h"

enum dc_stage_kind { DC_STAGE_TRAIN, DC_STAGE_BUDGET, DC_STAGE_PRUNE, DC_STAGE_QUANTIZE, DC_STAGE_ENCODE };

struct dc_stage {
    enum dc_stage_kind kind;
    char name[32];  /* "train", "budget", "prune-2", "quantize", "encode" */
    int round;      /* prune round, 1-based */
};

struct dc_budget;

struct dc_job {
    const struct dc_job_opts *opts;
    struct dc_config cfg;
    struct dc_backend *be;
    struct dc_data data;
    struct dc_device_data dd;
    struct dc_device_data vd; /* budget mode: validation images (as its test set), else empty */
    struct dc_net *net;
    struct dc_net *teacher; /* [distill]: made by dc_job_teacher, NULL until then */
    struct dc_budget *budget; /* budget mode: the scan and the choice (job_budget*.c), else NULL */
    struct dc_summary summary;
    FILE *metrics;
    char out_dir[512];
    char ckpt_path[600];
    int nstages;
    struct dc_stage stages[DC_JOB_MAX_STAGES];
    char plan_names[DC_RUN_PLAN_LEN]; /* the stages' names joined by commas (checkpoints record them) */
    int stage_index;  /* the stage running now (for checkpoints) */
    double stage_figure; /* its setup figure (accuracy after pruning or clustering); -1: none */
};

/* Train a phase with metrics rows and checkpoints; `start_epoch` > 0 resumes. */
enum dc_status dc_job_phase(struct dc_job *job, const struct dc_phase *ph, int start_epoch, struct dc_eval *last);
/* Checkpoint: the run continues at (stage_index, epoch); epoch -1 = stage not started. */
enum dc_status dc_job_checkpoint(struct dc_job *job, int stage_index, int epoch);
/* The same state and network into another file (the [distill] teacher). */
enum dc_status dc_job_save(struct dc_job *job, const char *path, int stage_index, int epoch);
/* The stages to run: those the config names, less those --stages leaves out;
 * `imported` (the weights came from --init) drops training unless --stages
 * asks for it. */
enum dc_status dc_job_plan(struct dc_job *job, int imported);

/* --resume: load the checkpoint, restore the stage records, trim metrics.csv
 * to the checkpoint's epoch; where to continue goes to *first, *start_epoch. */
enum dc_status dc_job_resume(struct dc_job *job, int *first, int *start_epoch);

/* Compression stages (job_compress.c). start_epoch < 0: a fresh stage (do its
 * setup: prune, cluster); >= 0: resumed after that many retraining epochs. */
enum dc_status dc_job_stage_prune(struct dc_job *job, const struct dc_stage *st, int start_epoch, char *rec, size_t len);
enum dc_status dc_job_stage_quantize(struct dc_job *job, int start_epoch, char *rec, size_t len);
enum dc_status dc_job_stage_encode(struct dc_job *job, char *rec, size_t len);
/* Weight-distribution snapshots for plots (job_weights.c): DIR/weights_<label>.csv.
 * begin: on a fresh run, drop stale snapshots and take "init" when no train
 * stage runs; stage: after each stage, and refresh summary.json's list. */
enum dc_status dc_job_weights_write(struct dc_job *job, const char *label);
enum dc_status dc_job_weights_begin(struct dc_job *job, int first, int start_epoch);
enum dc_status dc_job_weights_stage(struct dc_job *job, const struct dc_stage *st);
/* [distill] (job_teacher.c): the teacher for the running compression stage
 * into *out, NULL without [distill].  fresh: the stage is starting (its
 * setup not done), so the first compression stage saves the network as the
 * teacher; otherwise it is loaded from where that stage saved it. */
enum dc_status dc_job_teacher(struct dc_job *job, int fresh, struct dc_net **out);
/* Retraining epochs of prune round `round` (1..prune_rounds). */
static inline int dc_job_retrain_epochs(const struct dc_config *c, int round)
{
    return round == c->prune_rounds && c->final_epochs >= 0 ? c->final_epochs : c->retrain_epochs;
}

/* Budget mode ([compress] target_bytes or max_accuracy_drop set). */
static inline int dc_job_budget_mode(const struct dc_config *c)
{
    return c->has_compress && (c->target_bytes > 0 || c->max_accuracy_drop > 0.0f);
}
/* Budget mode (job_budget*.c): the budget stage chooses every prunable
 * layer's sparsity (into cfg and DIR/budget.csv); a run resumed after it
 * loads the choice back. */
enum dc_status dc_job_stage_budget(struct dc_job *job, char *rec, size_t len);
enum dc_status dc_job_budget_load(struct dc_job *job);
/* Before prune round `round` (from 2): measure the choice on the retrained
 * network and raise sparsities where it no longer fits. */
enum dc_status dc_job_budget_refit(struct dc_job *job, int round);
/* Before clustering: the file's exact size (fine-tuning moves codebook values,
 * never sizes); where it is over the target, the layer the greedy would
 * prune next is pruned further until it fits. */
enum dc_status dc_job_budget_trim(struct dc_job *job);
void dc_job_budget_free(struct dc_job *job);
/* max_accuracy_drop: the prune rounds prune to the chosen sparsities at once
 * (the byte aims are the schedule); after a round's retraining, check the
 * validation accuracy and undo the round (*undone) when it lost too much. */
int dc_job_budget_exact(const struct dc_job *job);
enum dc_status dc_job_budget_check(struct dc_job *job, int round, int *undone);
/* The last [compress] validation training images become job->vd's test set
 * and leave the training set. */
enum dc_status dc_job_budget_data(struct dc_job *job);
/* DIR/name with its header line, for rows written unchecked; close checks
 * them all and returns s, or the write error where s is DC_OK. */
enum dc_status dc_job_csv_create(const struct dc_job *job, const char *name, const char *header, char *path,
                                 size_t len, FILE **f);
enum dc_status dc_job_csv_close(FILE *f, const char *path, enum dc_status s);
/* Per-layer pruning sensitivity scan (job_sensitivity.c). */
enum dc_status dc_job_sensitivity(struct dc_job *job);

#endif
