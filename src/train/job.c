/* job.c: runs the stages a config names, in order, each resumable from the
 * checkpoint written after every epoch; keeps summary.json and metrics.csv
 * current so an interrupted run still leaves its figures. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dc/interop.h"
#include "dc/killpoint.h"
#include "dc/log.h"
#include "job_internal.h"

static const char *const dc_dataset_names[] = {"mnist", "cifar10"};

/* A kind of stage --stages asks for must be one the config can run. */
static enum dc_status dc_job_plan_check(const struct dc_job *job)
{
    const struct dc_config *c = &job->cfg;
    unsigned want = job->opts->stages;
    if ((want & DC_JOB_RUN_TRAIN) && c->epochs <= 0)
        return DC_ERROR(DC_ERR_ARG, "--stages train: %s has [train] epochs = 0", c->path);
    static const struct { unsigned bit; const char *name; } need[] = {
        {DC_JOB_RUN_PRUNE, "prune"}, {DC_JOB_RUN_QUANTIZE, "quantize"}, {DC_JOB_RUN_ENCODE, "encode"}};
    int has[] = {c->has_prune, c->has_quantize, c->has_encode};
    for (int i = 0; i < 3; i++)
        if ((want & need[i].bit) && !has[i])
            return DC_ERROR(DC_ERR_ARG, "--stages %s: %s has no [%s] section (add one, or --set %s.KEY=VALUE)",
                            need[i].name, c->path, need[i].name, need[i].name);
    if (dc_job_budget_mode(c)) {
        if (c->target_bytes > 0 && c->max_accuracy_drop > 0.0f)
            return DC_ERROR(DC_ERR_CONFIG,
                            "%s: [compress] target_bytes and max_accuracy_drop: choose one budget, bytes or points",
                            c->path);
        if (!c->has_prune || c->prune_method != DC_PRUNE_SPARSITY || !c->has_quantize || !c->has_encode)
            return DC_ERROR(DC_ERR_CONFIG,
                            "%s: [compress] target_bytes and max_accuracy_drop need [prune] method = sparsity, "
                            "[quantize] and [encode] sections (they choose the sparsities and measure the encoded file)",
                            c->path);
        if (want && (!(want & DC_JOB_RUN_PRUNE) || !(want & DC_JOB_RUN_ENCODE)))
            return DC_ERROR(DC_ERR_ARG, "--stages: [compress] target_bytes and max_accuracy_drop need the prune and "
                                        "encode stages");
    }
    if (want && !(want & DC_JOB_RUN_TRAIN) && !job->opts->init && !job->opts->resume)
        dc_warn("--stages without train and without --init: compressing the untrained initial weights");
    return DC_OK;
}

static void dc_job_plan_names(struct dc_job *job)
{
    size_t o = 0, len = sizeof job->plan_names;
    job->plan_names[0] = '\0';
    for (int i = 0; i < job->nstages && o < len; i++)
        o += (size_t)snprintf(job->plan_names + o, len - o, "%s%s", i ? "," : "", job->stages[i].name);
}

enum dc_status dc_job_plan(struct dc_job *job, int imported)
{
    const struct dc_config *c = &job->cfg;
    unsigned want = job->opts->stages;
    DC_TRY(dc_job_plan_check(job));
    /* no --stages: an imported model skips training */
    int train = want ? (want & DC_JOB_RUN_TRAIN) != 0 : !imported;
    int prune = c->has_prune && (!want || (want & DC_JOB_RUN_PRUNE));
    job->nstages = 0;
    if (c->epochs > 0 && train)
        job->stages[job->nstages++] = (struct dc_stage){DC_STAGE_TRAIN, "train", 0};
    if (prune && dc_job_budget_mode(c))
        job->stages[job->nstages++] = (struct dc_stage){DC_STAGE_BUDGET, "budget", 0};
    for (int r = 1; prune && r <= c->prune_rounds && job->nstages < DC_JOB_MAX_STAGES - 2; r++) {
        struct dc_stage st = {DC_STAGE_PRUNE, "", r};
        snprintf(st.name, sizeof st.name, "prune-%d", r);
        job->stages[job->nstages++] = st;
    }
    if (c->has_quantize && (!want || (want & DC_JOB_RUN_QUANTIZE)))
        job->stages[job->nstages++] = (struct dc_stage){DC_STAGE_QUANTIZE, "quantize", 0};
    if (c->has_encode && (!want || (want & DC_JOB_RUN_ENCODE)))
        job->stages[job->nstages++] = (struct dc_stage){DC_STAGE_ENCODE, "encode", 0};
    dc_job_plan_names(job);
    return DC_OK;
}

static enum dc_status dc_mkdirs(const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return DC_ERROR(DC_ERR_IO, "%s: cannot create folder: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return DC_ERROR(DC_ERR_IO, "%s: cannot create folder: %s", buf, strerror(errno));
    return DC_OK;
}

static enum dc_status dc_job_on_epoch(void *user, const struct dc_epoch_report *r)
{
    struct dc_job *job = user;
    DC_TRY(dc_metrics_row(job->metrics, r));
    dc_killpoint("epoch");
    int every = job->cfg.checkpoint_every > 0 ? job->cfg.checkpoint_every : 1;
    if (r->epoch % every == 0 || r->epoch == r->epochs)
        DC_TRY(dc_job_checkpoint(job, job->stage_index, r->epoch));
    return DC_OK;
}

enum dc_status dc_job_phase(struct dc_job *job, const struct dc_phase *ph, int start_epoch, struct dc_eval *last)
{
    DC_TRY(dc_train_phase(job->net, &job->dd, &job->cfg, ph, start_epoch, dc_job_on_epoch, job, last));
    /* no epoch ran (none asked, or resumed at the end): the record still needs figures */
    return start_epoch >= ph->epochs && last ? dc_evaluate(job->net, &job->dd, last) : DC_OK;
}

enum dc_status dc_job_csv_create(const struct dc_job *job, const char *name, const char *header, char *path,
                                 size_t len, FILE **f)
{
    snprintf(path, len, "%s/%s", job->out_dir, name);
    if (!(*f = fopen(path, "w")))
        return DC_ERROR(DC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    fprintf(*f, "%s\n", header);
    return DC_OK;
}

enum dc_status dc_job_csv_close(FILE *f, const char *path, enum dc_status s)
{
    int bad = ferror(f) != 0, err = errno; /* the rows went out unchecked: one check for all */
    if (fclose(f) != 0 && !bad)
        bad = 1, err = errno;
    if (s == DC_OK && bad)
        s = DC_ERROR(DC_ERR_IO, "%s: write failed: %s", path, strerror(err));
    return s;
}

enum dc_status dc_job_save(struct dc_job *job, const char *path, int stage_index, int epoch)
{
    struct dc_run_state st = {.stage_index = stage_index, .epoch = epoch, .seed = job->cfg.seed,
                              .stage_figure = epoch < 0 ? -1 : job->stage_figure};
    snprintf(st.plan, sizeof st.plan, "%s", job->plan_names);
    return dc_checkpoint_save(path, job->net, &st);
}

enum dc_status dc_job_checkpoint(struct dc_job *job, int stage_index, int epoch)
{
    return dc_job_save(job, job->ckpt_path, stage_index, epoch);
}

static enum dc_status dc_job_stage_train(struct dc_job *job, int start_epoch, char *rec, size_t len)
{
    struct dc_phase ph = {.stage = "train", .epochs = job->cfg.epochs, .lr = job->cfg.lr,
                          .schedule = job->cfg.schedule};
    struct dc_eval ev = {0};
    double t0 = dc_time_now();
    DC_TRY(dc_job_phase(job, &ph, start_epoch, &ev));
    snprintf(rec, len,
             "{\"stage\": \"train\", \"epochs\": %d, \"seconds\": %.3f, \"test_accuracy\": %.6f, "
             "\"test_loss\": %.6f}",
             job->cfg.epochs, dc_time_now() - t0, ev.accuracy, ev.loss);
    return DC_OK;
}

/* One stage into its summary record, then the weights figure, the summary and
 * the checkpoint after it. */
static enum dc_status dc_job_run_stage(struct dc_job *job, int i, int e0, char *rec, size_t len)
{
    const struct dc_stage *st = &job->stages[i];
    job->stage_index = i;
    if (e0 < 0)
        job->stage_figure = -1;
    dc_killpoint("stage");
    dc_info("== stage %d/%d: %s%s", i + 1, job->nstages, st->name, e0 >= 0 ? " (resumed)" : "");
    switch (st->kind) {
    case DC_STAGE_TRAIN: DC_TRY(dc_job_stage_train(job, e0 > 0 ? e0 : 0, rec, len)); break;
    case DC_STAGE_BUDGET: DC_TRY(dc_job_stage_budget(job, rec, len)); break;
    case DC_STAGE_PRUNE: DC_TRY(dc_job_stage_prune(job, st, e0, rec, len)); break;
    case DC_STAGE_QUANTIZE: DC_TRY(dc_job_stage_quantize(job, e0, rec, len)); break;
    case DC_STAGE_ENCODE: DC_TRY(dc_job_stage_encode(job, rec, len)); break;
    }
    DC_TRY(dc_job_weights_stage(job, st));
    DC_TRY(dc_summary_add_stage(&job->summary, rec));
    DC_TRY(dc_summary_write(&job->summary));
    return dc_job_checkpoint(job, i + 1, -1);
}

static enum dc_status dc_job_run_stages(struct dc_job *job, int first, int start_epoch)
{
    int last = job->opts->stop_after > 0 && job->opts->stop_after < job->nstages ? job->opts->stop_after
                                                                                  : job->nstages;
    DC_TRY(dc_job_weights_begin(job, first, start_epoch));
    DC_TRY(dc_summary_write(&job->summary)); /* current from the start, with a resumed run's records */
    /* The encode record holds a row of about 400 bytes per tensor: a fixed
     * 16 KB ran out at about 40 tensors (a squeezed VGG with batch norm) and
     * failed the run after its model file was written. */
    size_t len = 16384 + 1024 * (size_t)job->net->nparams;
    char *rec = malloc(len);
    if (!rec)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory for the stage record");
    enum dc_status s = DC_OK;
    for (int i = first; s == DC_OK && i < last; i++)
        /* e0 < 0: the stage has not started (its setup, e.g. pruning, still to do) */
        s = dc_job_run_stage(job, i, i == first ? start_epoch : -1, rec, len);
    free(rec);
    return s;
}

/* What the command line changed, for summary.json: a figure must be traceable
 * to the config and the --set values it ran with. */
static enum dc_status dc_job_summary_command(struct dc_job *job)
{
    const struct dc_job_opts *o = job->opts;
    struct dc_summary *sm = &job->summary;
    size_t cap = 1, at = 0;
    for (int i = 0; i < o->nsets; i++)
        cap += 6 * strlen(o->sets[i]) + 8; /* a character escapes to at most 6; quotes, ", " */
    if (!(sm->overrides = malloc(cap)))
        return DC_ERROR(DC_ERR_NOMEM, "out of memory for the summary");
    sm->overrides[0] = '\0';
    for (int i = 0; i < o->nsets; i++) {
        char buf[1100];
        at += (size_t)snprintf(sm->overrides + at, cap - at, "%s%s", i ? ", " : "",
                               dc_json_str(buf, sizeof buf, o->sets[i]));
    }
    if (o->init)
        dc_json_str(sm->init, sizeof sm->init, o->init);
    return DC_OK;
}

static enum dc_status dc_job_setup(struct dc_job *job)
{
    const struct dc_job_opts *o = job->opts;
    DC_TRY(dc_config_load(o->config_path, o->sets, o->nsets, &job->cfg));
    struct dc_config *c = &job->cfg;
    if (o->out_dir) {
        snprintf(job->out_dir, sizeof job->out_dir, "%s", o->out_dir);
    } else {
        const char *base = strrchr(o->config_path, '/');
        base = base ? base + 1 : o->config_path;
        snprintf(job->out_dir, sizeof job->out_dir, "runs/%.*s", (int)strcspn(base, "."), base);
    }
    DC_TRY(dc_mkdirs(job->out_dir));
    snprintf(job->ckpt_path, sizeof job->ckpt_path, "%s/checkpoint.bin", job->out_dir);
    struct dc_backend_opts bo = {.threads = c->threads, .tf32 = c->tf32};
    DC_TRY(dc_backend_create(o->device ? o->device : c->device, &bo, &job->be));
    dc_info("device: %s", job->be->description);
    double t0 = dc_time_now();
    DC_TRY(dc_data_load(c, &job->data));
    if (dc_job_budget_mode(c)) {
        DC_TRY(dc_job_budget_data(job));
        dc_info("data: %s from %s: %d train, %d validation (held out for the budget), %d test images (%.1fs)",
                dc_dataset_names[c->dataset], c->data_dir, job->data.train.count, job->vd.test_count,
                job->data.test.count, dc_time_now() - t0);
    } else {
        dc_info("data: %s from %s: %d train, %d test images (%.1fs)", dc_dataset_names[c->dataset], c->data_dir,
                job->data.train.count, job->data.test.count, dc_time_now() - t0);
    }
    DC_TRY(dc_device_data_init(job->be, &job->data, &job->dd));
    const struct dc_dataset *tr = &job->data.train;
    DC_TRY(dc_net_create(job->be, c, tr->c, tr->h, tr->w, job->data.classes, c->batch, c->seed, &job->net));
    struct dc_summary *sm = &job->summary;
    snprintf(sm->out_dir, sizeof sm->out_dir, "%s", job->out_dir);
    snprintf(sm->config, sizeof sm->config, "%s", o->config_path);
    const char *base = strrchr(o->config_path, '/');
    base = base ? base + 1 : o->config_path;
    snprintf(sm->model, sizeof sm->model, "%.*s", (int)strcspn(base, "."), base);
    DC_TRY(dc_job_summary_command(job));
    snprintf(sm->dataset, sizeof sm->dataset, "%s", dc_dataset_names[c->dataset]);
    snprintf(sm->device, sizeof sm->device, "%s", job->be->description);
    sm->params = dc_net_param_count(job->net);
    dc_info("model: %s, %zu parameters, %d layers", sm->model, sm->params, job->net->nlayers);
    if (c->init_map[0] && !o->init)
        dc_warn("%s: [init] map is set but there is no --init FILE: the map is not used", o->config_path);
    return dc_job_plan(job, o->init != NULL);
}

static void dc_job_teardown(struct dc_job *job)
{
    if (job->metrics)
        fclose(job->metrics);
    dc_summary_free(&job->summary);
    if (job->net)
        dc_net_free(job->net);
    if (job->teacher)
        dc_net_free(job->teacher);
    dc_device_data_free(&job->dd);
    dc_device_data_free(&job->vd);
    dc_job_budget_free(job);
    dc_data_free(&job->data);
    if (job->be)
        dc_backend_free(job->be);
    dc_config_free(&job->cfg);
}

enum dc_status dc_job_run(const struct dc_job_opts *opts)
{
    struct dc_job *job = calloc(1, sizeof *job);
    if (!job)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory");
    job->opts = opts;
    enum dc_status s = dc_job_setup(job);
    int first = 0, start_epoch = -1;
    if (s == DC_OK && opts->resume)
        s = dc_job_resume(job, &first, &start_epoch);
    else if (s == DC_OK && opts->init) {
        struct dc_run_state st;
        if (dc_interop_format_of(opts->init) != DC_INTEROP_NONE) /* .npz or .safetensors */
            s = dc_interop_load(opts->init, job->net, job->cfg.init_map);
        else
            s = dc_checkpoint_load(opts->init, job->net, &st);
        if (s == DC_OK)
            dc_info("initial weights from %s", opts->init);
    }
    for (int i = 0; s == DC_OK && opts->resume && i < first; i++) {
        if (job->stages[i].kind == DC_STAGE_BUDGET) /* its choice, for the stages after it */
            s = dc_job_budget_load(job);
    }
    if (s == DC_OK)
        s = dc_metrics_open(job->out_dir, opts->resume != NULL, &job->metrics);
    if (s == DC_OK && opts->sensitivity)
        s = dc_job_sensitivity(job);
    else if (s == DC_OK) {
        s = dc_job_run_stages(job, first, start_epoch);
        if (s == DC_OK)
            dc_info("done: %s/summary.json", job->out_dir);
    }
    dc_job_teardown(job);
    free(job);
    return s;
}
