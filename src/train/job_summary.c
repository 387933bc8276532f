/* job_summary.c: the files a job leaves for people and scripts: metrics.csv
 * (one row per epoch) and summary.json (the job and one record per stage). */
#define _POSIX_C_SOURCE 200809L
#include "job_summary.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dc/atomic_file.h"

const char *dc_json_str(char *buf, size_t len, const char *s)
{
    size_t o = 0;
    if (len < 3)
        return "\"\"";
    buf[o++] = '"';
    for (; *s && o + 7 < len; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(buf + o, len - o, "\\u%04x", ch);
        } else {
            buf[o++] = (char)ch;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

enum dc_status dc_summary_add_stage(struct dc_summary *sm, const char *json_object)
{
    if (sm->nstages >= DC_JOB_MAX_STAGES)
        return DC_ERROR(DC_ERR_ARG, "more than %d stages", DC_JOB_MAX_STAGES);
    sm->stages[sm->nstages] = strdup(json_object);
    if (!sm->stages[sm->nstages])
        return DC_ERROR(DC_ERR_NOMEM, "out of memory for the summary");
    sm->nstages++;
    return DC_OK;
}

static enum dc_status dc_write_atomic(const char *path, const char *text)
{
    return dc_file_write_atomic(path, text, strlen(text));
}

enum dc_status dc_summary_write(const struct dc_summary *sm)
{
    size_t cap = 4096 + sizeof sm->weights_csv + sizeof sm->init + (sm->overrides ? strlen(sm->overrides) : 0);
    for (int i = 0; i < sm->nstages; i++)
        cap += strlen(sm->stages[i]) + 8;
    char *text = malloc(cap), *lines = malloc(cap);
    if (!text || !lines) {
        free(text);
        free(lines);
        return DC_ERROR(DC_ERR_NOMEM, "out of memory for the summary");
    }
    char a[1100], b[300], c[80], d[400];
    size_t o = (size_t)snprintf(text, cap,
                                "{\n  \"config\": %s,\n  \"overrides\": [%s],\n  \"init\": %s,\n  \"model\": %s,\n"
                                "  \"dataset\": %s,\n  \"device\": %s,\n  \"params\": %zu,\n  \"stages\": [",
                                dc_json_str(a, sizeof a, sm->config), sm->overrides ? sm->overrides : "",
                                sm->init[0] ? sm->init : "null", dc_json_str(b, sizeof b, sm->model),
                                dc_json_str(c, sizeof c, sm->dataset), dc_json_str(d, sizeof d, sm->device),
                                sm->params);
    size_t lo = 0;
    lines[0] = '\0';
    for (int i = 0; i < sm->nstages; i++) {
        o += (size_t)snprintf(text + o, cap - o, "%s\n    %s", i ? "," : "", sm->stages[i]);
        size_t at = lo;
        lo += (size_t)snprintf(lines + lo, cap - lo, "%s\n", sm->stages[i]);
        /* one record a line: its own line breaks (the encode record's layer list) become
         * tabs, JSON whitespace too; a record has no raw tab, so the restore is exact */
        for (char *p = lines + at; p + 1 < lines + lo; p++)
            if (*p == '\n')
                *p = '\t';
    }
    snprintf(text + o, cap - o, "\n  ],\n  \"weights_csv\": [%s]\n}\n", sm->weights_csv);
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/summary.json", sm->out_dir);
    snprintf(p2, sizeof p2, "%s/stages.jsonl", sm->out_dir);
    enum dc_status s = dc_write_atomic(p1, text);
    if (s == DC_OK)
        s = dc_write_atomic(p2, lines);
    free(text);
    free(lines);
    return s;
}

enum dc_status dc_summary_restore(struct dc_summary *sm, int keep)
{
    char path[600];
    snprintf(path, sizeof path, "%s/stages.jsonl", sm->out_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return keep == 0 ? DC_OK : DC_ERROR(DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 0;
    char *line = NULL;
    ssize_t n;
    enum dc_status s = DC_OK;
    while (s == DC_OK && sm->nstages < keep && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[n - 1] = '\0';
        for (char *p = line; *p; p++) /* the record's own line breaks (see dc_summary_write) */
            if (*p == '\t')
                *p = '\n';
        s = dc_summary_add_stage(sm, line);
    }
    free(line);
    fclose(f);
    return s;
}

void dc_summary_free(struct dc_summary *sm)
{
    for (int i = 0; i < sm->nstages; i++)
        free(sm->stages[i]);
    sm->nstages = 0;
    free(sm->overrides);
    sm->overrides = NULL;
}

enum dc_status dc_metrics_open(const char *out_dir, int append, FILE **f)
{
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.csv", out_dir);
    *f = fopen(path, append ? "a" : "w");
    if (!*f)
        return DC_ERROR(DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if ((!append && fputs("stage,epoch,lr,train_loss,train_accuracy,test_loss,test_accuracy,seconds\n", *f) < 0) ||
        fflush(*f) != 0) {
        int err = errno;
        fclose(*f);
        *f = NULL;
        return DC_ERROR(DC_ERR_IO, "%s: write failed: %s", path, strerror(err));
    }
    return DC_OK;
}

enum dc_status dc_metrics_row(FILE *f, const struct dc_epoch_report *r)
{
    fprintf(f, "%s,%d,%.6g,%.6f,%.6f,%.6f,%.6f,%.3f\n", r->stage, r->epoch, (double)r->lr, r->train_loss,
            r->train_accuracy, r->test_loss, r->test_accuracy, r->seconds);
    if (ferror(f) || fflush(f) != 0)
        return DC_ERROR(DC_ERR_IO, "metrics.csv: write failed: %s (the rows before it and the checkpoints are "
                        "intact)", strerror(errno));
    return DC_OK;
}
