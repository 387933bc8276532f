/* train.h: the SGD trainer loop, learning-rate schedules, evaluation and
 * checkpoints (written atomically; a resume continues bit-identically). */
#ifndef DC_TRAIN_H
#define DC_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "dc/config.h"
#include "dc/data.h"
#include "dc/net.h"

/* The data uploaded once to the backend. */
struct dc_device_data {
    struct dc_backend *be;
    int train_count, test_count;
    uint8_t *train_images, *train_labels, *test_images, *test_labels;
    int32_t *perm;         /* [train_count] this epoch's order (uploaded once per epoch) */
    int32_t *test_idx;     /* [test_count] 0..n-1 */
    int c, h, w;
    float mean[3], std[3];
};
enum dc_status dc_device_data_init(struct dc_backend *be, const struct dc_data *d, struct dc_device_data *out);
void dc_device_data_free(struct dc_device_data *dd);

/* Evaluation of the whole test set in inference mode. */
struct dc_eval {
    double loss;      /* mean cross-entropy */
    double accuracy;  /* fraction 0..1 */
    int count;
};
enum dc_status dc_evaluate(struct dc_net *net, struct dc_device_data *dd, struct dc_eval *out);
/* Fill net->act[0] and net->labels with test images off..off+n-1, normalised
 * as the evaluation does (no augmentation). */
enum dc_status dc_load_test_batch(struct dc_net *net, const struct dc_device_data *dd, int off, int n);
/* The same with the training images at idx[0..n) (backend memory), augmented
 * as cfg says (cfg NULL: not at all) with the crops and flips of `seed`. */
enum dc_status dc_load_train_batch(struct dc_net *net, const struct dc_device_data *dd, const int32_t *idx, int n,
                                   const struct dc_config *cfg, uint64_t seed);
/* Arg-max predictions for the whole test set into host pred[test_count]. */
enum dc_status dc_predict(struct dc_net *net, struct dc_device_data *dd, int32_t *pred);

/* Batch-norm recalibration (bn_recal.c): after pruning or clustering, re-estimate
 * every batch norm's running statistics from cfg->bn_recal_batches batches of
 * training images (a fixed, evenly spaced subset, augmented as training
 * augments them, with crops and flips fixed by cfg->seed; each batch weighs
 * the same); weights are untouched.  Nothing happens for 0 batches or a
 * network without batch norm (dc_net_has_bn). */
int dc_net_has_bn(const struct dc_net *net);
enum dc_status dc_bn_recalibrate(struct dc_net *net, const struct dc_device_data *dd, const struct dc_config *cfg);
/* A host copy of the running statistics, to undo a recalibration (a scan point). */
struct dc_bn_stats {
    float *host[DC_NET_MAX_PARAMS]; /* by net->params index; NULL for trained parameters */
};
enum dc_status dc_bn_stats_save(struct dc_net *net, struct dc_bn_stats *bs);
enum dc_status dc_bn_stats_restore(struct dc_net *net, const struct dc_bn_stats *bs);
void dc_bn_stats_free(struct dc_bn_stats *bs);

/* What a training phase runs: the main train stage, a retrain round or a fine-tune. */
struct dc_phase {
    const char *stage;   /* "train", "prune-1", "finetune", ... (also the checkpoint tag) */
    int epochs;
    float lr;            /* peak learning rate */
    enum dc_lr_schedule schedule;
    struct dc_net *teacher; /* [distill]: run on every batch, its logits the soft targets; NULL = none */
};

/* Progress of a run, saved in checkpoints. */
#define DC_RUN_PLAN_LEN 512
struct dc_run_state {
    int stage_index;     /* index of the stage in the job's stage list */
    int epoch;           /* epochs completed in this stage; -1: stage not started */
    uint64_t seed;
    double stage_figure; /* the stage's setup figure (test accuracy right after pruning or
                            clustering), so a resumed stage reports it; -1: none */
    char plan[DC_RUN_PLAN_LEN]; /* the run's stage names, "train,prune-1,...,encode"; "": unknown
                                   (a version 1-2 checkpoint), not checked on resume */
};

/* Learning rate at (fractional) epoch t of a phase, from the config's schedule keys. */
float dc_lr_at(const struct dc_config *cfg, const struct dc_phase *ph, double epoch);

/* Per-epoch callback (for metrics.csv and checkpoints); return non-OK to stop. */
struct dc_epoch_report {
    const char *stage;
    int epoch;           /* 1-based */
    int epochs;
    float lr;
    double train_loss, train_accuracy, test_loss, test_accuracy;
    double seconds;       /* the whole epoch, evaluation included */
    double train_seconds; /* the training steps alone (what benchmarks compare) */
};
typedef enum dc_status (*dc_epoch_fn)(void *user, const struct dc_epoch_report *r);

/* Train `ph->epochs` epochs starting after epoch `start_epoch` (0 for a fresh
 * phase); calls fn after every epoch.  Shuffle order and augmentation are a
 * function of (cfg->seed, stage name, epoch), so resuming is exact. */
enum dc_status dc_train_phase(struct dc_net *net, struct dc_device_data *dd, const struct dc_config *cfg,
                              const struct dc_phase *ph, int start_epoch, dc_epoch_fn fn, void *user,
                              struct dc_eval *last);

/* Checkpoint: every parameter (value, momentum, mask, quantization state) and
 * the run state.  Written to path.tmp, fsync'd, renamed. */
enum dc_status dc_checkpoint_save(const char *path, struct dc_net *net, const struct dc_run_state *st);
/* Load into a network built from the same config; errors name the mismatch. */
enum dc_status dc_checkpoint_load(const char *path, struct dc_net *net, struct dc_run_state *st);

#endif
