/* modelfile_load.c: the file side of the model format: atomic writing with a
 * decode-and-compare self-check, reading a file image, and filling a network
 * (built from the file's own description) with the decoded parameters. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/atomic_file.h"
#include "dc/modelfile.h"
#include "dc/quantize.h"

void dc_modelfile_stats_free(struct dc_modelfile_stats *s)
{
    free(s->s);
    memset(s, 0, sizeof *s);
}

void dc_modelfile_free(struct dc_modelfile *mf)
{
    for (int i = 0; mf->params && i < mf->nparams; i++) {
        free(mf->params[i].values);
        free(mf->params[i].mask);
        free(mf->params[i].assign);
        free(mf->params[i].pos);
        free(mf->params[i].codes);
        free(mf->params[i].kvalues);
    }
    free(mf->params);
    free(mf->net_text);
    dc_modelfile_stats_free(&mf->stats);
    memset(mf, 0, sizeof *mf);
}

static enum dc_status dc_modelfile_read_as(const char *path, int sparse, struct dc_modelfile *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return DC_ERROR(DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (len == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return DC_ERROR(DC_ERR_NOMEM, "%s: no memory to read %zu bytes", path, cap);
            }
            buf = nb;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    int err = ferror(f);
    fclose(f);
    enum dc_status st = err ? DC_ERROR(DC_ERR_IO, "%s: read error", path) : (sparse ? dc_modelfile_parse_sparse : dc_modelfile_parse)(buf, len, path, out);
    free(buf);
    return st;
}

enum dc_status dc_modelfile_read(const char *path, struct dc_modelfile *out)
{
    return dc_modelfile_read_as(path, 0, out);
}

enum dc_status dc_modelfile_read_sparse(const char *path, struct dc_modelfile *out)
{
    return dc_modelfile_read_as(path, 1, out);
}

/* The decoded file must equal the network bit for bit (pruned zeros may differ in sign). */
static enum dc_status self_check(const struct dc_modelfile *mf, struct dc_net *net, const char *path)
{
    enum dc_status st = DC_OK;
    for (int i = 0; st == DC_OK && i < mf->nparams; i++) {
        const struct dc_modelfile_param *mp = &mf->params[i];
        const struct dc_param *p = net->params[i];
        size_t n = dc_param_count(p);
        float *w = malloc(sizeof *w * (n ? n : 1));
        if (!w)
            return DC_ERROR(DC_ERR_NOMEM, "%s: no memory to check %s", path, p->name);
        st = net->be->ops.download(net->be, w, p->w.data, sizeof *w * n);
        for (size_t j = 0; st == DC_OK && j < n; j++)
            if (memcmp(&w[j], &mp->values[j], 4) != 0 && !(w[j] == 0.0f && mp->values[j] == 0.0f))
                st = DC_ERROR(DC_ERR_FORMAT, "%s: encoder self-check: %s[%zu] decodes to %.9g, network has %.9g",
                              path, p->name, j, (double)mp->values[j], (double)w[j]);
        free(w);
    }
    return st;
}

enum dc_status dc_modelfile_write(const char *path, struct dc_net *net, const struct dc_config *cfg,
                                  struct dc_modelfile_stats *stats)
{
    uint8_t *buf;
    size_t size;
    struct dc_modelfile mf;
    DC_TRY(dc_modelfile_encode(net, cfg, &buf, &size));
    enum dc_status st = dc_modelfile_parse(buf, size, path, &mf);
    if (st == DC_OK) {
        st = self_check(&mf, net, path);
        if (st == DC_OK)
            st = dc_file_write_atomic(path, buf, size);
        if (st == DC_OK && stats) {
            *stats = mf.stats;
            memset(&mf.stats, 0, sizeof mf.stats);
        }
        dc_modelfile_free(&mf);
    }
    free(buf);
    return st;
}

static enum dc_status apply_param(struct dc_backend *be, const struct dc_modelfile_param *mp, struct dc_param *p)
{
    size_t n = dc_param_count(p);
    DC_TRY(be->ops.upload(be, p->w.data, mp->values, sizeof(float) * n));
    if (mp->mask) {
        if (!p->mask)
            DC_TRY(be->ops.alloc(be, (void **)&p->mask, sizeof(float) * n));
        DC_TRY(be->ops.upload(be, p->mask, mp->mask, sizeof(float) * n));
    } else if (p->mask) {
        be->ops.release(be, p->mask);
        p->mask = NULL;
    }
    if (mp->assign)
        return dc_quantize_restore(be, p, mp->m, mp->codebook, mp->assign);
    dc_quantize_release(be, p);
    return DC_OK;
}

enum dc_status dc_modelfile_apply(const struct dc_modelfile *mf, struct dc_net *net, const char *origin)
{
    if (mf->in_c != net->in_c || mf->in_h != net->in_h || mf->in_w != net->in_w || mf->classes != net->classes)
        return DC_ERROR(DC_ERR_FORMAT, "%s: input %dx%dx%d with %d classes, the network has %dx%dx%d with %d",
                        origin, mf->in_c, mf->in_h, mf->in_w, mf->classes, net->in_c, net->in_h, net->in_w,
                        net->classes);
    for (int i = 0; i < mf->nparams; i++) {
        struct dc_param *p;
        DC_TRY(dc_modelfile_match(mf, net, origin, i, &p));
        DC_TRY(apply_param(net->be, &mf->params[i], p));
    }
    return DC_OK;
}

enum dc_status dc_modelfile_match(const struct dc_modelfile *mf, struct dc_net *net, const char *origin, int i,
                                  struct dc_param **out)
{
    const struct dc_modelfile_param *mp = &mf->params[i];
    struct dc_param *p = *out = NULL;
    if (mf->nparams != net->nparams)
        return DC_ERROR(DC_ERR_FORMAT, "%s: %d sections for a network of %d parameters", origin, mf->nparams,
                        net->nparams);
    if (!(p = dc_net_find_param(net, mp->name)))
        return DC_ERROR(DC_ERR_FORMAT, "%s: section %d (%s) matches no parameter of the network", origin, i + 1,
                        mp->name);
    if (p->w.n != mp->n || p->w.c != mp->c || p->w.h != mp->h || p->w.w != mp->w)
        return DC_ERROR(DC_ERR_FORMAT, "%s: section %d (%s) has shape %dx%dx%dx%d, the network %dx%dx%dx%d", origin,
                        i + 1, mp->name, mp->n, mp->c, mp->h, mp->w, p->w.n, p->w.c, p->w.h, p->w.w);
    *out = p;
    return DC_OK;
}

static const struct dc_modelfile_param *find_section(const struct dc_modelfile *mf, const char *name)
{
    for (int i = 0; i < mf->nparams; i++)
        if (strcmp(mf->params[i].name, name) == 0)
            return &mf->params[i];
    return NULL;
}

/* The description decides how much memory the network takes; before building
 * it, every weighted layer's width must agree with the section the file
 * actually holds for it, so an edited description cannot ask for gigabytes. */
enum dc_status dc_modelfile_check_net(const struct dc_modelfile *mf, const struct dc_config *cfg, const char *origin)
{
    for (int i = 0; i < cfg->nlayers; i++) {
        const struct dc_layer_cfg *l = &cfg->layers[i];
        const char *part[3] = {"weight", NULL, NULL};
        int width[3] = {l->type == DC_LAYER_FC ? l->outputs : l->filters, 0, 0};
        if (l->type == DC_LAYER_FIRE) {
            part[0] = "squeeze.weight", part[1] = "expand1.weight", part[2] = "expand3.weight";
            width[0] = l->squeeze, width[1] = l->expand1, width[2] = l->expand3;
        } else if (l->type != DC_LAYER_FC && l->type != DC_LAYER_CONV) {
            continue;
        }
        for (int j = 0; j < 3 && part[j]; j++) {
            char name[80];
            snprintf(name, sizeof name, "%s.%s", l->name, part[j]);
            const struct dc_modelfile_param *mp = find_section(mf, name);
            if (!mp || mp->n != width[j])
                return DC_ERROR(DC_ERR_FORMAT, "%s: layer %s: the description gives %d outputs but section %s %s",
                                origin, l->name, width[j], name, mp ? "holds another number" : "is missing");
        }
    }
    return DC_OK;
}

enum dc_status dc_modelfile_load(const char *path, struct dc_backend *be, int max_batch, struct dc_net **net,
                                 struct dc_config *cfg, struct dc_modelfile_stats *stats)
{
    struct dc_modelfile mf;
    *net = NULL;
    DC_TRY(dc_modelfile_read(path, &mf));
    memset(cfg, 0, sizeof *cfg);
    enum dc_status st = dc_config_parse_net(mf.net_text, path, cfg);
    if (st == DC_OK) {
        cfg->dataset = mf.dataset;
        st = dc_modelfile_check_net(&mf, cfg, path);
    }
    if (st == DC_OK) {
        st = dc_net_create(be, cfg, mf.in_c, mf.in_h, mf.in_w, mf.classes, max_batch, 0, net);
    }
    if (st == DC_OK)
        st = dc_modelfile_apply(&mf, *net, path);
    if (st == DC_OK && stats) {
        *stats = mf.stats;
        memset(&mf.stats, 0, sizeof mf.stats);
    }
    if (st != DC_OK) {
        if (*net)
            dc_net_free(*net);
        *net = NULL;
        dc_config_free(cfg);
    }
    dc_modelfile_free(&mf);
    return st;
}
