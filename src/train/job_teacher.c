/* job_teacher.c: the teacher of [distill].  It is the network as it enters
 * the first compression stage of the plan (the trained dense model in a
 * whole pipeline, the imported one after --init), saved beside the
 * checkpoint as teacher.bin when that stage starts, so a run resumed in any
 * later stage distils from the same teacher it began with. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "dc/log.h"
#include "job_internal.h"

/* 1 when no compression stage of the plan comes before the running one. */
static int dc_job_first_compression(const struct dc_job *job)
{
    for (int i = 0; i < job->stage_index; i++)
        if (job->stages[i].kind == DC_STAGE_PRUNE || job->stages[i].kind == DC_STAGE_QUANTIZE)
            return 0;
    return 1;
}

enum dc_status dc_job_teacher(struct dc_job *job, int fresh, struct dc_net **out)
{
    *out = NULL;
    if (!job->cfg.has_distill)
        return DC_OK;
    if (job->teacher) {
        *out = job->teacher;
        return DC_OK;
    }
    char path[700];
    snprintf(path, sizeof path, "%s/teacher.bin", job->out_dir);
    if (fresh && dc_job_first_compression(job)) {
        DC_TRY(dc_job_save(job, path, job->stage_index, -1));
    } else {
        struct stat sb;
        if (stat(path, &sb) != 0)
            return DC_ERROR(DC_ERR_IO, "%s: the [distill] teacher, saved when the first compression stage began, "
                            "cannot be read (%s); rerun from that stage, or drop [distill]", path,
                            strerror(errno));
    }
    const struct dc_dataset *tr = &job->data.train;
    struct dc_net *t = NULL;
    DC_TRY(dc_net_create(job->be, &job->cfg, tr->c, tr->h, tr->w, job->data.classes, job->cfg.batch, job->cfg.seed,
                         &t));
    struct dc_run_state st;
    struct dc_eval ev;
    enum dc_status s = dc_checkpoint_load(path, t, &st);
    if (s == DC_OK)
        s = dc_evaluate(t, &job->dd, &ev);
    if (s != DC_OK) {
        dc_net_free(t);
        return s;
    }
    dc_info("distill: teacher %s (test accuracy %.2f%%), alpha %g, temperature %g", path, 100 * ev.accuracy,
            (double)job->cfg.distill_alpha, (double)job->cfg.distill_temperature);
    job->teacher = *out = t;
    return DC_OK;
}
