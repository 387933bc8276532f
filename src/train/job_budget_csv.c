/* job_budget_csv.c: DIR/budget.csv, the budget stage's scan (a row per layer
 * and grid sparsity), its choice and the drop mode's round state, written
 * after every change so that a resumed run reads back the same choice. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/log.h"
#include "job_budget.h"

enum dc_status dc_budget_write_csv(struct dc_job *job, const struct dc_budget *b)
{
    char path[600];
    FILE *f;
    DC_TRY(dc_job_csv_create(job, "budget.csv", "layer,sparsity,validation_accuracy,bytes", path, sizeof path,
                             &f));
    for (int g = 0; g < b->nl; g++)
        for (int j = 0; j < DC_BUDGET_NG; j++)
            fprintf(f, "%s,%.4f,%.6f,%lld\n", job->cfg.layers[b->ly[g].cfg].name, (double)dc_budget_grid[j],
                    b->ly[g].acc[j], b->ly[g].bytes[j]);
    for (int g = 0; g < b->nl; g++)
        fprintf(f, "# choice,%s,%.9f\n", job->cfg.layers[b->ly[g].cfg].name, (double)b->ly[g].sp);
    fprintf(f, "# aim,%lld,offset,%lld\n", b->aim, b->off);
    fprintf(f, "# drop,%d,base,%.9f,dense,%lld,least,%lld,good,%lld,fail,%lld,round,%d,undone,%d\n", b->drop,
            b->base, b->dense, b->least, b->good, b->fail, b->round, b->undone);
    for (int g = 0; g < b->nl; g++)
        fprintf(f, "# prev,%s,%.9f\n", job->cfg.layers[b->ly[g].cfg].name, (double)b->prev[g]);
    return dc_job_csv_close(f, path, DC_OK);
}

/* One row of budget.csv into b (layers in file order, grid rows in order). */
static enum dc_status dc_budget_row(struct dc_job *job, struct dc_budget *b, const char *line, const char *path,
                                    int ln)
{
    char name[DC_NAME_LEN + 1];
    float sp;
    double acc;
    long long bytes;
    int cfg = -1;
    if (sscanf(line, "%32[^,],%f,%lf,%lld", name, &sp, &acc, &bytes) == 4)
        for (int k = 0; k < job->cfg.nlayers; k++)
            if (strcmp(job->cfg.layers[k].name, name) == 0)
                cfg = k;
    if (cfg < 0)
        return DC_ERROR(DC_ERR_FORMAT, "%s:%d: not a row of a layer of this network", path, ln);
    int g = -1;
    for (int k = 0; k < b->nl; k++)
        if (b->ly[k].cfg == cfg)
            g = k;
    int j = 0;
    while (j < DC_BUDGET_NG && dc_budget_grid[j] < sp - 1e-4f)
        j++;
    if (g < 0 || j == DC_BUDGET_NG || dc_budget_grid[j] > sp + 1e-4f)
        return DC_ERROR(DC_ERR_FORMAT, "%s:%d: layer %s or sparsity %.4f is not one the budget stage scans", path,
                        ln, name, (double)sp);
    b->ly[g].acc[j] = acc;
    b->ly[g].bytes[j] = bytes;
    return DC_OK;
}

/* "# choice,LAYER,SPARSITY" or "# prev,LAYER,SPARSITY" of budget.csv into b. */
static enum dc_status dc_budget_choice_row(struct dc_job *job, struct dc_budget *b, const char *line,
                                           const char *path, int ln)
{
    char name[DC_NAME_LEN + 1], kind[8];
    float sp;
    if (sscanf(line, "# %7[a-z],%32[^,],%f", kind, name, &sp) == 3 && sp >= 0.0f && sp < 1.0f)
        for (int g = 0; g < b->nl; g++)
            if (strcmp(job->cfg.layers[b->ly[g].cfg].name, name) == 0) {
                if (strcmp(kind, "prev") == 0)
                    b->prev[g] = sp;
                else
                    b->ly[g].sp = sp;
                return DC_OK;
            }
    return DC_ERROR(DC_ERR_FORMAT, "%s:%d: not a choice of a layer of this network with a sparsity in [0, 1)",
                    path, ln);
}

enum dc_status dc_job_budget_load(struct dc_job *job)
{
    char path[600], line[256];
    snprintf(path, sizeof path, "%s/budget.csv", job->out_dir);
    dc_job_budget_free(job);
    struct dc_budget *b = job->budget = calloc(1, sizeof *b);
    if (!b)
        return DC_ERROR(DC_ERR_NOMEM, "budget: out of memory");
    dc_budget_layers(job->net, b);
    FILE *f = fopen(path, "r");
    if (!f)
        return DC_ERROR(DC_ERR_IO, "%s: cannot read (%s): the budget stage's choice is needed to resume; "
                        "start the run again", path, strerror(errno));
    enum dc_status s = DC_OK;
    int rows = 0, aim_seen = 0, choices = 0, state_seen = 0;
    for (int ln = 1; s == DC_OK && fgets(line, sizeof line, f); ln++) {
        if (ln == 1)
            continue; /* header */
        if (strncmp(line, "# choice,", 9) == 0)
            s = dc_budget_choice_row(job, b, line, path, ln), choices++;
        else if (strncmp(line, "# prev,", 7) == 0)
            s = dc_budget_choice_row(job, b, line, path, ln);
        else if (strncmp(line, "# drop,", 7) == 0)
            state_seen = sscanf(line, "# drop,%d,base,%lf,dense,%lld,least,%lld,good,%lld,fail,%lld,round,%d,undone,%d",
                                &b->drop, &b->base, &b->dense, &b->least, &b->good, &b->fail, &b->round,
                                &b->undone) == 8;
        else if (line[0] == '#')
            aim_seen = sscanf(line, "# aim,%lld,offset,%lld", &b->aim, &b->off) == 2;
        else
            s = dc_budget_row(job, b, line, path, ln), rows++;
    }
    fclose(f);
    if (s == DC_OK && (rows != b->nl * DC_BUDGET_NG || choices != b->nl || !aim_seen || !state_seen))
        s = DC_ERROR(DC_ERR_FORMAT,
                     "%s: %d rows, %d choices and %s aim line, expected %d, %d and one; start the run again", path,
                     rows, choices, aim_seen ? "an" : "no", b->nl * DC_BUDGET_NG, b->nl);
    if (s == DC_OK)
        dc_budget_apply(job, b);
    if (s == DC_OK)
        dc_info("budget: per-layer sparsities from %s", path);
    return s;
}
