/* interop_map.c: between our parameters and PyTorch-style tensors: names
 * (batch norm's gamma/beta are PyTorch's weight/bias), shapes (conv
 * [out,in,kh,kw], fc [out,in], vectors [n]), export of a decoded model file
 * and import into a network, by name or else by order and shape. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/log.h"
#include "interop_internal.h"

static int dc_has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

void dc_interop_torch_name(const char *ours, char *out, size_t len)
{
    size_t n = strlen(ours);
    if (dc_has_suffix(ours, ".gamma"))
        snprintf(out, len, "%.*s.weight", (int)(n - 6), ours);
    else if (dc_has_suffix(ours, ".beta"))
        snprintf(out, len, "%.*s.bias", (int)(n - 5), ours);
    else
        snprintf(out, len, "%s", ours);
}

static int dc_torch_shape(int n, int c, int h, int w, int is_conv, int prunable, int64_t *shape)
{
    if (!is_conv && !prunable && c == 1 && h == 1 && w == 1) {
        shape[0] = n;
        return 1;
    }
    if (!is_conv && h == 1 && w == 1) {
        shape[0] = n, shape[1] = c;
        return 2;
    }
    shape[0] = n, shape[1] = c, shape[2] = h, shape[3] = w;
    return 4;
}

int dc_interop_torch_shape(const struct dc_param *p, int64_t *shape)
{
    return dc_torch_shape(p->w.n, p->w.c, p->w.h, p->w.w, p->is_conv, p->prunable, shape);
}

int dc_interop_torch_shape_mf(const struct dc_modelfile_param *p, int64_t *shape)
{
    return dc_torch_shape(p->n, p->c, p->h, p->w, p->is_conv, p->prunable, shape);
}

static const char *dc_shape_str(int ndim, const int64_t *shape, char *buf, size_t len)
{
    int k = snprintf(buf, len, "[");
    for (int i = 0; i < ndim && k < (int)len; i++)
        k += snprintf(buf + k, len - (size_t)k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < (int)len)
        snprintf(buf + k, len - (size_t)k, "]");
    return buf;
}

static const char *const dc_dataset_name[] = {"mnist", "cifar10"};

enum dc_status dc_interop_from_modelfile(const struct dc_modelfile *mf, struct dc_interop_set *out)
{
    memset(out, 0, sizeof *out);
    enum dc_status s = DC_OK;
    for (int i = 0; s == DC_OK && i < mf->nparams; i++) {
        const struct dc_modelfile_param *p = &mf->params[i];
        char name[DC_INTEROP_NAME_LEN], extra[DC_INTEROP_NAME_LEN + 16];
        int64_t shape[4];
        int nd = dc_interop_torch_shape_mf(p, shape);
        dc_interop_torch_name(p->name, name, sizeof name);
        s = dc_interop_add(out, name, DC_DTYPE_F32, nd, shape, p->values);
        if (s == DC_OK && p->mask) {
            snprintf(extra, sizeof extra, "%s.mask", name);
            s = dc_interop_add(out, extra, DC_DTYPE_F32, nd, shape, p->mask);
        }
        if (s == DC_OK && p->assign && p->m > 0) {
            int64_t m = p->m;
            snprintf(extra, sizeof extra, "%s.codebook", name);
            s = dc_interop_add(out, extra, DC_DTYPE_F32, 1, &m, p->codebook);
            snprintf(extra, sizeof extra, "%s.codes", name);
            if (s == DC_OK)
                s = dc_interop_add(out, extra, DC_DTYPE_U8, nd, shape, p->assign);
        }
    }
    if (s == DC_OK && mf->net_text && !(out->network = strdup(mf->net_text)))
        s = DC_ERROR(DC_ERR_NOMEM, "out of memory");
    if (s == DC_OK && (unsigned)mf->dataset < 2 && !(out->dataset = strdup(dc_dataset_name[mf->dataset])))
        s = DC_ERROR(DC_ERR_NOMEM, "out of memory");
    if (s != DC_OK)
        dc_interop_free(out);
    return s;
}

enum dc_status dc_interop_export(const char *model_path, const char *out_path)
{
    if (dc_interop_format_of(out_path) == DC_INTEROP_NONE)
        return DC_ERROR(DC_ERR_ARG, "%s: unknown output format (name it .npz or .safetensors)", out_path);
    struct dc_modelfile mf;
    DC_TRY(dc_modelfile_read(model_path, &mf));
    struct dc_interop_set set;
    enum dc_status s = dc_interop_from_modelfile(&mf, &set);
    dc_modelfile_free(&mf);
    if (s == DC_OK)
        s = dc_interop_write(out_path, &set);
    dc_interop_free(&set);
    return s;
}

/* Our export's extra tensors (X.mask, X.codebook, X.codes beside X), batch
 * norm's num_batches_tracked and "__" entries take no part in the pairing. */
static int dc_ignored(const struct dc_interop_set *set, const char *name)
{
    static const char *const extras[] = {".mask", ".codebook", ".codes"};
    if (!strncmp(name, "__", 2) || dc_has_suffix(name, ".num_batches_tracked") ||
        !strcmp(name, "num_batches_tracked"))
        return 1;
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(name), e = strlen(extras[k]);
        if (n <= e || strcmp(name + n - e, extras[k]))
            continue;
        for (int i = 0; i < set->n; i++)
            if (strlen(set->t[i].name) == n - e && !strncmp(set->t[i].name, name, n - e))
                return 1;
    }
    return 0;
}

/* Check and upload tensor t into p. */
static enum dc_status dc_interop_fill(const struct dc_interop_tensor *t, struct dc_net *net, struct dc_param *p,
                                      const char *origin)
{
    int64_t want[4];
    int nd = dc_interop_torch_shape(p, want);
    char a[160], b[160];
    if (t->ndim != nd || memcmp(t->shape, want, (size_t)nd * sizeof want[0]) != 0)
        return DC_ERROR(DC_ERR_FORMAT, "%s: tensor %s has shape %s, parameter %s expects %s", origin, t->name,
                        dc_shape_str(t->ndim, t->shape, a, sizeof a), p->name, dc_shape_str(nd, want, b, sizeof b));
    if (t->dtype == DC_DTYPE_U8)
        return DC_ERROR(DC_ERR_FORMAT, "%s: tensor %s has dtype uint8, parameter %s expects float32 or float64",
                        origin, t->name, p->name);
    size_t count = dc_param_count(p);
    float *host = malloc(count * sizeof *host);
    if (!host)
        return DC_ERROR(DC_ERR_NOMEM, "%s: out of memory for %s", origin, p->name);
    for (size_t i = 0; i < count; i++) {
        host[i] = t->dtype == DC_DTYPE_F32 ? ((const float *)t->data)[i] : (float)((const double *)t->data)[i];
        if (!isfinite(host[i])) {
            free(host);
            return DC_ERROR(DC_ERR_FORMAT, "%s: tensor %s holds a value that is not a finite float32 at index %zu",
                            origin, t->name, i);
        }
    }
    enum dc_status s = dc_tensor_upload(net->be, &p->w, host);
    free(host);
    return s;
}

/* Pairing by order must agree with every tensor that has one of our names. */
static enum dc_status dc_interop_check_order(const struct dc_interop_set *set, struct dc_net *net, const int *pair,
                                             const char *origin)
{
    for (int j = 0; j < net->nparams; j++) {
        const char *tn = set->t[pair[j]].name;
        for (int k = 0; k < net->nparams; k++) {
            char name[DC_INTEROP_NAME_LEN];
            dc_interop_torch_name(net->params[k]->name, name, sizeof name);
            if (k != j && (!strcmp(tn, name) || !strcmp(tn, net->params[k]->name)))
                return DC_ERROR(DC_ERR_FORMAT, "%s: by order, tensor %s would fill parameter %s, but its name is "
                                "that of parameter %s: names and order disagree (rename or reorder the tensors)",
                                origin, tn, net->params[j]->name, net->params[k]->name);
        }
    }
    return DC_OK;
}

/* pair[j] = the tensor of set that fills parameter j; *how says by what rule. */
static enum dc_status dc_interop_pair(const struct dc_interop_set *set, struct dc_net *net, const char *origin,
                                      int *pair, const char **how)
{
    int *cand = calloc((size_t)set->n + 1, sizeof *cand);
    char *used = calloc((size_t)set->n + 1, 1);
    enum dc_status s = DC_OK;
    if (!cand || !used)
        s = DC_ERROR(DC_ERR_NOMEM, "out of memory");
    int ncand = 0, by_name = 1, first_missing = -1;
    for (int i = 0; s == DC_OK && i < set->n; i++)
        if (!dc_ignored(set, set->t[i].name))
            cand[ncand++] = i;
    for (int j = 0; s == DC_OK && j < net->nparams; j++) {
        char tn[DC_INTEROP_NAME_LEN];
        dc_interop_torch_name(net->params[j]->name, tn, sizeof tn);
        int k = dc_interop_find(set, tn);
        if (k < 0)
            k = dc_interop_find(set, net->params[j]->name);
        if (k < 0 || dc_ignored(set, set->t[k].name)) {
            by_name = 0;
            if (first_missing < 0)
                first_missing = j;
        } else {
            pair[j] = k;
            used[k] = 1;
        }
    }
    *how = "by name";
    if (s == DC_OK && by_name) {
        for (int c = 0; c < ncand && s == DC_OK; c++)
            if (!used[cand[c]])
                s = DC_ERROR(DC_ERR_FORMAT, "%s: tensor %s matches no parameter of the network (names: see "
                             "dcinfo --json or docs/interop.md; [init] map can drop it)", origin,
                             set->t[cand[c]].name);
    } else if (s == DC_OK) {
        if (ncand != net->nparams) {
            char tn[DC_INTEROP_NAME_LEN];
            dc_interop_torch_name(net->params[first_missing]->name, tn, sizeof tn);
            s = DC_ERROR(DC_ERR_FORMAT, "%s: missing tensor %s: no tensor has that name, and %d tensors cannot pair "
                         "by order with the network's %d parameters (name them in [init] map)", origin, tn, ncand,
                         net->nparams);
        } else {
            *how = "by order";
            for (int j = 0; j < net->nparams; j++)
                pair[j] = cand[j];
            s = dc_interop_check_order(set, net, pair, origin);
        }
    }
    free(cand), free(used);
    return s;
}

/* The table people check an import by: file tensor, its shape, our parameter. */
static void dc_interop_print_pairing(const struct dc_interop_set *file, const struct dc_interop_set *view,
                                     const struct dc_net *net, const int *pair, const char *how, const char *origin)
{
    int renamed = 0, same = 1;
    for (int i = 0; i < file->n; i++)
        renamed |= strcmp(file->t[i].name, view->t[i].name) != 0;
    for (int j = 0; j < net->nparams; j++) {
        char tn[DC_INTEROP_NAME_LEN];
        dc_interop_torch_name(net->params[j]->name, tn, sizeof tn);
        same &= !strcmp(file->t[pair[j]].name, tn) || !strcmp(file->t[pair[j]].name, net->params[j]->name);
    }
    if (same) {
        dc_info("%s: %d tensors paired with the network's parameters by name", origin, net->nparams);
        return;
    }
    if (!strcmp(how, "by order"))
        dc_info("%s: tensor names differ from the network's; paired by order%s:", origin,
                renamed ? " after [init] map" : "");
    else
        dc_info("%s: paired by name after [init] map:", origin);
    for (int j = 0; j < net->nparams; j++) {
        const struct dc_interop_tensor *t = &file->t[pair[j]];
        char a[160];
        dc_info("  %-32s %-18s -> %s", t->name, dc_shape_str(t->ndim, t->shape, a, sizeof a), net->params[j]->name);
    }
    for (int i = 0; i < file->n; i++)
        if (!strncmp(view->t[i].name, "__dropped", 9))
            dc_info("  %-32s %-18s    dropped by [init] map", file->t[i].name, "");
}

enum dc_status dc_interop_apply(const struct dc_interop_set *set, struct dc_net *net, const char *origin,
                                const char *map)
{
    int *pair = calloc((size_t)net->nparams + 1, sizeof *pair);
    struct dc_interop_set view = *set;
    if (map && *map)
        view.t = set->n ? malloc((size_t)set->n * sizeof *view.t) : NULL;
    enum dc_status s = pair && (view.t || !set->n) ? DC_OK : DC_ERROR(DC_ERR_NOMEM, "out of memory");
    if (s == DC_OK && view.t != set->t) {
        /* the view shares the data and differs only in names */
        memcpy(view.t, set->t, (size_t)set->n * sizeof *view.t);
        s = dc_interop_rename(&view, set, net, map, origin);
    }
    const char *how = "";
    if (s == DC_OK)
        s = dc_interop_pair(&view, net, origin, pair, &how);
    if (s == DC_OK)
        dc_interop_print_pairing(set, &view, net, pair, how, origin);
    for (int j = 0; s == DC_OK && j < net->nparams; j++)
        s = dc_interop_fill(&set->t[pair[j]], net, net->params[j], origin);
    if (view.t != set->t)
        free(view.t);
    free(pair);
    return s;
}

enum dc_status dc_interop_load(const char *path, struct dc_net *net, const char *map)
{
    struct dc_interop_set set;
    DC_TRY(dc_interop_read(path, &set));
    enum dc_status s = dc_interop_apply(&set, net, path, map);
    dc_interop_free(&set);
    return s;
}
