/* job_summary.h: metrics.csv rows and summary.json of a job (private to src/train). */
#ifndef DC_JOB_SUMMARY_H
#define DC_JOB_SUMMARY_H

#include <stdio.h>

#include "dc/train.h"

#define DC_JOB_MAX_STAGES 64

struct dc_summary {
    char out_dir[512];
    char config[512], model[128], dataset[32], device[160];
    size_t params;
    int nstages;
    char *stages[DC_JOB_MAX_STAGES]; /* JSON object text of each finished stage */
    char weights_csv[2048];          /* JSON list items: the weights_<stage>.csv present */
    char *overrides;                 /* JSON list items: the --set values, as given; owned */
    char init[1100];                 /* JSON string of --init FILE, or null */
};

/* A JSON string literal of s (escaped) into buf. */
const char *dc_json_str(char *buf, size_t len, const char *s);

enum dc_status dc_summary_add_stage(struct dc_summary *sm, const char *json_object);
/* Rewrites DIR/summary.json and DIR/stages.jsonl (what a resume reads back). */
enum dc_status dc_summary_write(const struct dc_summary *sm);
/* Reads DIR/stages.jsonl, keeping the first `keep` records (for --resume). */
enum dc_status dc_summary_restore(struct dc_summary *sm, int keep);
void dc_summary_free(struct dc_summary *sm);

/* metrics.csv: header on a fresh run, one row per epoch. */
enum dc_status dc_metrics_open(const char *out_dir, int append, FILE **f);
enum dc_status dc_metrics_row(FILE *f, const struct dc_epoch_report *r);

#endif
