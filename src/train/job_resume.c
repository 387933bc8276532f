/* job_resume.c: `dctrain --resume`: loads the checkpoint into the job's
 * network, and brings the files a run keeps current back to the moment the
 * checkpoint was written, so a run killed anywhere and resumed leaves the
 * same summary.json, stages.jsonl and metrics.csv rows as one never stopped:
 * the stage records come from stages.jsonl, and metrics.csv loses the rows of
 * epochs after the checkpoint (they are trained again and written again). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/atomic_file.h"
#include "dc/log.h"
#include "job_internal.h"

/* metrics.csv rows (epochs) a run has written once it stands at
 * (stage_index, epoch): every epoch of the stages before, and `epoch` of it. */
static long dc_rows_before(const struct dc_job *job, int stage_index, int epoch)
{
    const struct dc_config *c = &job->cfg;
    long rows = epoch > 0 ? epoch : 0;
    for (int i = 0; i < stage_index && i < job->nstages; i++)
        switch (job->stages[i].kind) {
        case DC_STAGE_TRAIN: rows += c->epochs; break;
        case DC_STAGE_PRUNE: rows += dc_job_retrain_epochs(c, job->stages[i].round); break;
        case DC_STAGE_QUANTIZE: rows += c->finetune_epochs; break;
        case DC_STAGE_BUDGET:
        case DC_STAGE_ENCODE: break;
        }
    return rows;
}

/* Keep the header and the first `rows` rows of DIR/metrics.csv. */
static enum dc_status dc_metrics_trim(const char *out_dir, long rows)
{
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.csv", out_dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? DC_OK : DC_ERROR(DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *text = NULL;
    size_t cap = 0, len = 0, n;
    char chunk[8192];
    long lines = 0, keep = rows + 1; /* + the header */
    int more = 0;                     /* rows beyond `keep` exist */
    enum dc_status s = DC_OK;
    while (s == DC_OK && !more && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        size_t take = 0;
        while (take < n && lines < keep)
            lines += chunk[take++] == '\n';
        more = take < n;
        if (len + take > cap) {
            char *t = realloc(text, cap = 2 * (len + take));
            if (!t) {
                s = DC_ERROR(DC_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            text = t;
        }
        memcpy(text + len, chunk, take);
        len += take;
    }
    if (s == DC_OK && ferror(f))
        s = DC_ERROR(DC_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    fclose(f);
    if (s == DC_OK && more) {
        dc_info("resume: %s: dropping the rows of epochs after the checkpoint", path);
        s = dc_file_write_atomic(path, text, len);
    }
    free(text);
    return s;
}

enum dc_status dc_job_resume(struct dc_job *job, int *first, int *start_epoch)
{
    const char *path = job->opts->resume;
    struct dc_run_state st;
    DC_TRY(dc_checkpoint_load(path, job->net, &st));
    if (st.plan[0] && strcmp(st.plan, job->plan_names) != 0 && !job->opts->stages) {
        /* --resume carries no --init, but the run may have started with one,
         * which skips training: plan as that run did */
        DC_TRY(dc_job_plan(job, 1));
        if (strcmp(st.plan, job->plan_names) == 0)
            dc_info("resume: the run was started without training (--init); so is this one");
        else
            DC_TRY(dc_job_plan(job, 0)); /* back to this command's plan, for the message */
    }
    if (st.plan[0] && strcmp(st.plan, job->plan_names) != 0)
        return DC_ERROR(DC_ERR_ARG,
                        "%s: written by a run of the stages %s, but this command plans %s; resume with the "
                        "first run's --stages",
                        path, st.plan, job->plan_names[0] ? job->plan_names : "none");
    if (st.stage_index < 0 || st.stage_index > job->nstages)
        return DC_ERROR(DC_ERR_FORMAT, "%s: stage %d is not in this config's %d stages", path, st.stage_index,
                        job->nstages);
    *first = st.stage_index;
    *start_epoch = st.epoch;
    job->stage_figure = st.stage_figure;
    dc_info("resuming %s at stage %d, after epoch %d", path, *first + 1, *start_epoch);
    DC_TRY(dc_summary_restore(&job->summary, *first));
    return dc_metrics_trim(job->out_dir, dc_rows_before(job, st.stage_index, st.epoch));
}
