/* job_budget.h: what the budget stage's three files share (job_budget.c: the
 * scan and the greedy fit; job_budget_drop.c: max_accuracy_drop's rounds;
 * job_budget_csv.c: budget.csv, written after every choice and read back on
 * resume).  Private to src/train. */
#ifndef DC_JOB_BUDGET_H
#define DC_JOB_BUDGET_H

#include "job_internal.h"

/* The sparsities each layer is scanned at (job_budget.c). */
#define DC_BUDGET_NG 21
extern const float dc_budget_grid[DC_BUDGET_NG];
/* Aim this fraction under the target: the last round's retraining and the
 * fine-tuning still move the file a little after the last measurement. */
#define DC_BUDGET_MARGIN 0.02

struct dc_budget_layer {
    int cfg;                       /* config layer index (a fire module's three convs are one) */
    size_t weights;
    double acc[DC_BUDGET_NG];      /* validation accuracy with this layer alone at grid[j] */
    long long bytes[DC_BUDGET_NG]; /* file bytes with this layer alone at grid[j] */
    float sp;                      /* the chosen sparsity (on the grid or between two points) */
};

struct dc_budget {
    int nl;
    struct dc_budget_layer ly[DC_NET_MAX_PARAMS];
    long long aim;                 /* target less the margin */
    long long off;                 /* the last real measurement minus the sum of parts */
    /* max_accuracy_drop: each prune round aims at fewer bytes; a round that
       loses more validation accuracy than allowed is undone, and the rounds
       after it aim halfway (in log bytes) from the last kept to `fail` */
    int drop;
    double base;                   /* validation accuracy entering the budget stage */
    long long dense, least;        /* the file with every layer dense, and at the grid's top */
    long long good;                /* bytes the last round kept aimed at */
    long long fail;                /* 0 until a round is undone; then the aim undone, moved down
                                      by each kept round as far as that round moved */
    float prev[DC_NET_MAX_PARAMS]; /* the choice before the raise of round `round` */
    int round, undone;             /* the round whose raise this is; the last round undone (0: none) */
};

/* Every parameter's values, momentum and mask on the host, to undo a trial. */
struct dc_budget_saved {
    int n;
    float *w[DC_NET_MAX_PARAMS], *v[DC_NET_MAX_PARAMS], *m[DC_NET_MAX_PARAMS];
};

enum dc_status dc_budget_save(struct dc_net *net, struct dc_budget_saved *sv);
void dc_budget_saved_free(struct dc_budget_saved *sv);
/* Bytes of the file with every layer at sparsity sp[] (the net restored from sv after). */
enum dc_status dc_budget_bytes(struct dc_job *job, const struct dc_budget *b, const float *sp,
                               const struct dc_budget_saved *sv, long long *bytes);
/* The config layers that own prunable weights, in network order, into b. */
void dc_budget_layers(const struct dc_net *net, struct dc_budget *b);
/* The choice into the config's layers (what the prune rounds read). */
void dc_budget_apply(struct dc_job *job, const struct dc_budget *b);
/* Raise sparsities until the network, encoded for real, is under b->aim. */
enum dc_status dc_budget_fit(struct dc_job *job, struct dc_budget *b, long long *first, long long *bytes);
void dc_budget_print(const struct dc_job *job, const struct dc_budget *b, const char *when, long long bytes);

/* job_budget_drop.c */
enum dc_status dc_budget_least(struct dc_job *job, struct dc_budget *b);
/* Drop mode, the bytes prune round r of R aims at: until a round is undone,
 * where the cubic schedule reaches in log scale from the dense file to the
 * least one (big steps first, small ones late, where accuracy starts to go);
 * after, halfway (in log bytes) from good to fail.  0: the step left is under
 * 1%, nothing to gain. */
long long dc_budget_round_aim(const struct dc_budget *b, int r, int rounds);
/* The round that aimed at b->aim was kept, or undone. */
void dc_budget_kept(struct dc_budget *b);
void dc_budget_failed(struct dc_budget *b);
enum dc_status dc_budget_raise(struct dc_job *job, struct dc_budget *b, int r);

/* job_budget_csv.c */
enum dc_status dc_budget_write_csv(struct dc_job *job, const struct dc_budget *b);

#endif
