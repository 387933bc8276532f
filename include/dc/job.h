/* job.h: one whole dctrain run: config, data, network, then the stages the
 * config names (train, prune rounds, quantize, encode), with checkpoints,
 * metrics.csv and summary.json in the output folder. */
#ifndef DC_JOB_H
#define DC_JOB_H

#include "dc/status.h"

struct dc_job_opts {
    const char *config_path;
    const char *const *sets;  /* "section.key=value" overrides */
    int nsets;
    const char *device;       /* overrides [train] device when not NULL */
    const char *out_dir;      /* default "runs/<config name>" */
    const char *resume;       /* checkpoint to continue from, or NULL */
    const char *init;         /* checkpoint whose weights start the run (skips train), or NULL */
    int sensitivity;          /* 1: run the per-layer pruning sensitivity scan instead */
    int stop_after;           /* stop after this many stages (0 = all); for tests */
    unsigned stages;          /* DC_JOB_RUN_* bits: run only these kinds of stage, in pipeline
                                 order (dctrain --stages); 0 = every stage the config names */
};

enum {
    DC_JOB_RUN_TRAIN = 1u << 0,
    DC_JOB_RUN_PRUNE = 1u << 1,    /* every prune round */
    DC_JOB_RUN_QUANTIZE = 1u << 2,
    DC_JOB_RUN_ENCODE = 1u << 3,
};

/* Runs the job; returns DC_ERR_CONFIG for config problems (exit 2), others for
 * run-time failures (exit 1); the last-error message says what went wrong. */
enum dc_status dc_job_run(const struct dc_job_opts *opts);

#endif
