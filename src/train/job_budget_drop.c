/* job_budget_drop.c: budget mode with [compress] max_accuracy_drop = P: no
 * byte target, but a validation loss to stay within.  Each prune round aims
 * at fewer bytes than the last; a round that loses more than P validation
 * points is undone (the network from budget_prev.bin), and the rounds after
 * it step down from the last round kept by half the step that failed.  A
 * kept round keeps its step, so the aim that failed is tried again one
 * round later, on a network retrained once more: 0.1 points is 5 of 5,000
 * validation images, and one unlucky round (LeNet-300-100, prune-2: 0.12
 * points) otherwise capped the whole run at 30x where a retried one went on. */
#include <math.h>
#include <stdio.h>

#include "dc/log.h"
#include "job_budget.h"

/* The file with every layer at the grid's top sparsity (drop mode's floor). */
enum dc_status dc_budget_least(struct dc_job *job, struct dc_budget *b)
{
    float top[DC_NET_MAX_PARAMS];
    for (int g = 0; g < b->nl; g++)
        top[g] = dc_budget_grid[DC_BUDGET_NG - 1];
    struct dc_budget_saved sv;
    enum dc_status s = dc_budget_save(job->net, &sv);
    if (s == DC_OK)
        s = dc_budget_bytes(job, b, top, &sv, &b->least);
    dc_budget_saved_free(&sv);
    return s;
}

long long dc_budget_round_aim(const struct dc_budget *b, int r, int rounds)
{
    double lo = log((double)(b->fail ? b->fail : b->least)), hi = log((double)b->good);
    if (hi - lo < 0.01)
        return 0;
    if (b->fail)
        return (long long)exp(0.5 * (lo + hi));
    double f = 1.0 - pow(1.0 - (double)r / (double)rounds, 3.0);
    double aim = log((double)b->dense) + f * (log((double)b->least) - log((double)b->dense));
    return (long long)exp(aim < hi ? aim : hi - 0.01);
}

void dc_budget_kept(struct dc_budget *b)
{
    if (b->fail) /* the bound moves down with the round: the same step next */
        b->fail = (long long)exp(log((double)b->fail) + log((double)b->aim) - log((double)b->good));
    if (b->fail && b->fail < b->least)
        b->fail = b->least;
    b->good = b->aim;
}

void dc_budget_failed(struct dc_budget *b)
{
    b->fail = b->aim;
}

static void dc_budget_prev_path(const struct dc_job *job, char *path, size_t len)
{
    snprintf(path, len, "%s/budget_prev.bin", job->out_dir);
}

/* Drop mode, before prune round r: keep the network as it is (the last
 * good round's) in budget_prev.bin, then raise the sparsities to the round's
 * aim.  Run again after a kill before the round's pruning, it starts from the
 * same choice. */
enum dc_status dc_budget_raise(struct dc_job *job, struct dc_budget *b, int r)
{
    char path[600];
    long long bytes = 0, first = 0;
    if (b->round == r) /* a kill after this round's raise, before its pruning */
        for (int g = 0; g < b->nl; g++)
            b->ly[g].sp = b->prev[g];
    for (int g = 0; g < b->nl; g++)
        b->prev[g] = b->ly[g].sp;
    b->round = r;
    long long aim = dc_budget_round_aim(b, r, job->cfg.prune_rounds);
    if (aim == 0) {
        dc_info("budget: prune-%d: %s: no raise", r,
                b->fail ? "the step left after the rounds undone is under 1%"
                        : "the last round kept is within 1% of the least file (every layer at the top sparsity)");
        b->aim = 0;
        return dc_budget_write_csv(job, b);
    }
    dc_budget_prev_path(job, path, sizeof path);
    DC_TRY(dc_job_save(job, path, job->stage_index, -1));
    b->aim = aim;
    DC_TRY(dc_budget_fit(job, b, &first, &bytes));
    char when[48];
    snprintf(when, sizeof when, "for prune-%d", r);
    dc_budget_print(job, b, when, bytes);
    return dc_budget_write_csv(job, b);
}

int dc_job_budget_exact(const struct dc_job *job)
{
    return job->budget && job->budget->drop;
}

enum dc_status dc_job_budget_check(struct dc_job *job, int r, int *undone)
{
    struct dc_budget *b = job->budget;
    *undone = 0;
    if (!b || !b->drop || b->round != r || b->aim == 0) /* aim 0: this round raised nothing */
        return DC_OK;
    struct dc_eval ev;
    DC_TRY(dc_evaluate(job->net, &job->vd, &ev));
    double lost = 100.0 * (b->base - ev.accuracy), limit = job->cfg.max_accuracy_drop;
    if (b->undone != r && lost <= limit) {
        dc_info("budget: prune-%d: validation accuracy %.2f%%, %.2f points lost (at most %.2f): kept", r,
                100 * ev.accuracy, lost, limit);
        dc_budget_kept(b);
        return dc_budget_write_csv(job, b);
    }
    char path[600];
    struct dc_run_state st;
    dc_budget_prev_path(job, path, sizeof path);
    DC_TRY(dc_checkpoint_load(path, job->net, &st));
    for (int g = 0; g < b->nl; g++)
        b->ly[g].sp = b->prev[g];
    b->undone = r;
    dc_budget_failed(b);
    dc_budget_apply(job, b);
    dc_info("budget: prune-%d lost %.2f validation points (at most %.2f): undone, back to the round before", r,
            lost, limit);
    *undone = 1;
    return dc_budget_write_csv(job, b);
}
