/* checkpoint.c: the full training state of a network (values, momentum,
 * pruning masks, quantization state) plus where the run stood.  Written to a
 * temporary file, fsync'd and renamed (dc/atomic_file.h), so a crash leaves
 * the previous checkpoint intact and a resume loses at most one checkpoint
 * interval.  Version 2 adds the stage's setup figure (accuracy right after
 * pruning or clustering) so a resumed stage reports what a whole one does;
 * version 1 files still load, without it.  Version 3 adds the run's stage
 * plan, so a resume whose options plan other stages (an --init run resumed
 * without --init would put training first) is refused instead of running the
 * wrong stage; versions 1-2 load with the plan unknown. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/atomic_file.h"
#include "dc/quantize.h"
#include "dc/train.h"

#define DC_CKPT_MAGIC "DCCKPT\0\1"
#define DC_CKPT_VERSION 3u
enum { DC_CKPT_V = 1, DC_CKPT_MASK = 2, DC_CKPT_QUANT = 4 };

/* Write `bytes` of backend memory through a host bounce buffer. */
static enum dc_status dc_ckpt_put_dev(struct dc_backend *be, struct dc_afile *af, const void *src, size_t bytes)
{
    void *host = malloc(bytes ? bytes : 1);
    if (!host)
        return DC_ERROR(DC_ERR_NOMEM, "%s: out of memory writing the checkpoint", af->path);
    enum dc_status s = be->ops.download(be, host, src, bytes);
    if (s == DC_OK)
        s = dc_afile_write(af, host, bytes);
    free(host);
    return s;
}

static enum dc_status dc_ckpt_write_param(struct dc_backend *be, struct dc_afile *af, const struct dc_param *p)
{
    uint32_t len = (uint32_t)strlen(p->name);
    uint64_t count = dc_param_count(p);
    uint32_t flags = (p->trainable ? DC_CKPT_V : 0) | (p->mask ? DC_CKPT_MASK : 0) |
                     (p->codebook ? DC_CKPT_QUANT : 0);
    uint32_t m = p->codebook ? (uint32_t)p->m : 0;
    DC_TRY(dc_afile_write(af, &len, 4));
    DC_TRY(dc_afile_write(af, p->name, len));
    DC_TRY(dc_afile_write(af, &count, 8));
    DC_TRY(dc_afile_write(af, &flags, 4));
    DC_TRY(dc_afile_write(af, &m, 4));
    DC_TRY(dc_ckpt_put_dev(be, af, p->w.data, count * 4));
    if (flags & DC_CKPT_V)
        DC_TRY(dc_ckpt_put_dev(be, af, p->v.data, count * 4));
    if (flags & DC_CKPT_MASK)
        DC_TRY(dc_ckpt_put_dev(be, af, p->mask, count * 4));
    if (flags & DC_CKPT_QUANT) {
        DC_TRY(dc_ckpt_put_dev(be, af, p->assign, count));
        DC_TRY(dc_ckpt_put_dev(be, af, p->codebook, m * 4));
        DC_TRY(dc_ckpt_put_dev(be, af, p->vcode, m * 4));
    }
    return DC_OK;
}

static enum dc_status dc_ckpt_write_all(struct dc_afile *af, struct dc_net *net, const struct dc_run_state *st)
{
    uint32_t version = DC_CKPT_VERSION, np = (uint32_t)net->nparams;
    int32_t si = st->stage_index, ep = st->epoch;
    DC_TRY(dc_afile_write(af, DC_CKPT_MAGIC, 8));
    DC_TRY(dc_afile_write(af, &version, 4));
    DC_TRY(dc_afile_write(af, &si, 4));
    DC_TRY(dc_afile_write(af, &ep, 4));
    DC_TRY(dc_afile_write(af, &st->seed, 8));
    DC_TRY(dc_afile_write(af, &st->stage_figure, 8));
    char plan[DC_RUN_PLAN_LEN] = {0}; /* fixed width, zero-padded: no stack bytes in the file */
    snprintf(plan, sizeof plan, "%s", st->plan);
    DC_TRY(dc_afile_write(af, plan, sizeof plan));
    DC_TRY(dc_afile_write(af, &np, 4));
    for (int i = 0; i < net->nparams; i++)
        DC_TRY(dc_ckpt_write_param(net->be, af, net->params[i]));
    return DC_OK;
}

enum dc_status dc_checkpoint_save(const char *path, struct dc_net *net, const struct dc_run_state *st)
{
    struct dc_afile af;
    DC_TRY(dc_afile_open(&af, path));
    enum dc_status s = dc_ckpt_write_all(&af, net, st);
    if (s != DC_OK) {
        dc_afile_abort(&af);
        return s;
    }
    return dc_afile_commit(&af);
}

struct dc_ckpt_reader {
    FILE *f;
    const char *path;
    const char *param; /* for messages */
};

static enum dc_status dc_ckpt_get(struct dc_ckpt_reader *r, void *p, size_t bytes, const char *field)
{
    if (fread(p, 1, bytes, r->f) != bytes)
        return DC_ERROR(DC_ERR_FORMAT, "%s: truncated checkpoint at %s%s%s (re-run without --resume)", r->path,
                        r->param ? r->param : "", r->param ? " " : "", field);
    return DC_OK;
}

static enum dc_status dc_ckpt_get_dev(struct dc_ckpt_reader *r, struct dc_backend *be, void **dst,
                                      size_t bytes, const char *field)
{
    if (!*dst)
        DC_TRY(be->ops.alloc(be, dst, bytes ? bytes : 1));
    void *host = malloc(bytes ? bytes : 1);
    if (!host)
        return DC_ERROR(DC_ERR_NOMEM, "%s: out of memory reading the checkpoint", r->path);
    enum dc_status s = dc_ckpt_get(r, host, bytes, field);
    if (s == DC_OK)
        s = be->ops.upload(be, *dst, host, bytes);
    free(host);
    return s;
}

/* Cluster indices, each checked against the codebook size before the
 * backend sees them (a damaged index would read past the codebook). */
static enum dc_status dc_ckpt_get_assign(struct dc_ckpt_reader *r, struct dc_backend *be, struct dc_param *p,
                                         size_t count, uint32_t m)
{
    if (!p->assign)
        DC_TRY(be->ops.alloc(be, (void **)&p->assign, count ? count : 1));
    uint8_t *host = malloc(count ? count : 1);
    if (!host)
        return DC_ERROR(DC_ERR_NOMEM, "%s: out of memory reading the checkpoint", r->path);
    enum dc_status s = dc_ckpt_get(r, host, count, "cluster indices");
    for (size_t i = 0; s == DC_OK && i < count; i++)
        if (host[i] >= m)
            s = DC_ERROR(DC_ERR_FORMAT, "%s: parameter %s: cluster index %u at %zu is beyond the %u-entry codebook "
                         "(damaged checkpoint; re-run without --resume)", r->path, p->name, host[i], i, m);
    if (s == DC_OK)
        s = be->ops.upload(be, p->assign, host, count);
    free(host);
    return s;
}

static enum dc_status dc_ckpt_read_param(struct dc_ckpt_reader *r, struct dc_backend *be, struct dc_param *p)
{
    uint32_t len, flags, m;
    uint64_t count;
    char name[64];
    r->param = p->name;
    DC_TRY(dc_ckpt_get(r, &len, 4, "name length"));
    if (len >= sizeof name)
        return DC_ERROR(DC_ERR_FORMAT, "%s: parameter name of %u bytes where %s was expected", r->path, len, p->name);
    DC_TRY(dc_ckpt_get(r, name, len, "name"));
    name[len] = '\0';
    if (strcmp(name, p->name) != 0)
        return DC_ERROR(DC_ERR_FORMAT, "%s: holds parameter '%s' where the network has '%s' (checkpoint of another config?)",
                        r->path, name, p->name);
    DC_TRY(dc_ckpt_get(r, &count, 8, "count"));
    DC_TRY(dc_ckpt_get(r, &flags, 4, "flags"));
    DC_TRY(dc_ckpt_get(r, &m, 4, "codebook size"));
    if (count != dc_param_count(p) || ((flags & DC_CKPT_V) != 0) != (p->trainable != 0))
        return DC_ERROR(DC_ERR_FORMAT, "%s: parameter %s has %llu values%s but the network has %zu%s (checkpoint of another config?)",
                        r->path, p->name, (unsigned long long)count, flags & DC_CKPT_V ? " with momentum" : "",
                        dc_param_count(p), p->trainable ? " with momentum" : "");
    if (flags & ~(uint32_t)(DC_CKPT_V | DC_CKPT_MASK | DC_CKPT_QUANT))
        return DC_ERROR(DC_ERR_FORMAT, "%s: parameter %s: flags 0x%x has unknown bits (damaged checkpoint; re-run without --resume)",
                        r->path, p->name, flags);
    if ((flags & DC_CKPT_QUANT) ? (m < 1 || m > 256) : m != 0)
        return DC_ERROR(DC_ERR_FORMAT, "%s: parameter %s: codebook size %u (1..256 when quantized, else 0; damaged checkpoint; "
                        "re-run without --resume)", r->path, p->name, m);
    DC_TRY(dc_ckpt_get_dev(r, be, (void **)&p->w.data, count * 4, "values"));
    if (flags & DC_CKPT_V)
        DC_TRY(dc_ckpt_get_dev(r, be, (void **)&p->v.data, count * 4, "momentum"));
    if (flags & DC_CKPT_MASK)
        DC_TRY(dc_ckpt_get_dev(r, be, (void **)&p->mask, count * 4, "mask"));
    else if (p->mask) { /* loaded into a pruned network (budget mode undoing a round): unpruned again */
        be->ops.release(be, p->mask);
        p->mask = NULL;
    }
    if (!(flags & DC_CKPT_QUANT) && p->codebook)
        dc_quantize_release(be, p);
    if (flags & DC_CKPT_QUANT) {
        if (p->codebook && p->m != (int)m)
            dc_quantize_release(be, p);
        p->m = (int)m;
        DC_TRY(dc_ckpt_get_assign(r, be, p, count, m));
        DC_TRY(dc_ckpt_get_dev(r, be, (void **)&p->codebook, m * 4, "codebook"));
        DC_TRY(dc_ckpt_get_dev(r, be, (void **)&p->vcode, m * 4, "codebook momentum"));
        if (!p->dcode)
            DC_TRY(be->ops.alloc(be, (void **)&p->dcode, m * 4));
    }
    r->param = NULL;
    return DC_OK;
}

enum dc_status dc_checkpoint_load(const char *path, struct dc_net *net, struct dc_run_state *st)
{
    struct dc_ckpt_reader r = {.f = fopen(path, "rb"), .path = path};
    if (!r.f)
        return DC_ERROR(DC_ERR_IO, "%s: cannot open checkpoint: %s", path, strerror(errno));
    char magic[8];
    uint32_t version = 0, np = 0;
    int32_t si = 0, ep = 0;
    enum dc_status s = dc_ckpt_get(&r, magic, 8, "magic");
    if (s == DC_OK && memcmp(magic, DC_CKPT_MAGIC, 8) != 0)
        s = DC_ERROR(DC_ERR_FORMAT, "%s: not a dctrain checkpoint (wrong magic)", path);
    if (s == DC_OK) s = dc_ckpt_get(&r, &version, 4, "version");
    if (s == DC_OK && (version < 1 || version > DC_CKPT_VERSION))
        s = DC_ERROR(DC_ERR_FORMAT, "%s: checkpoint version %u, this build reads 1 to %u (a newer dctrain wrote it?)",
                     path, version, DC_CKPT_VERSION);
    if (s == DC_OK) s = dc_ckpt_get(&r, &si, 4, "stage");
    if (s == DC_OK) s = dc_ckpt_get(&r, &ep, 4, "epoch");
    if (s == DC_OK) s = dc_ckpt_get(&r, &st->seed, 8, "seed");
    st->stage_figure = -1;
    if (s == DC_OK && version >= 2) s = dc_ckpt_get(&r, &st->stage_figure, 8, "stage figure");
    st->plan[0] = '\0';
    if (s == DC_OK && version >= 3) s = dc_ckpt_get(&r, st->plan, sizeof st->plan, "stage plan");
    st->plan[sizeof st->plan - 1] = '\0';
    if (s == DC_OK) s = dc_ckpt_get(&r, &np, 4, "parameter count");
    if (s == DC_OK && np != (uint32_t)net->nparams)
        s = DC_ERROR(DC_ERR_FORMAT, "%s: holds %u parameters, the network has %d (checkpoint of another config?)",
                     path, np, net->nparams);
    for (int i = 0; s == DC_OK && i < net->nparams; i++)
        s = dc_ckpt_read_param(&r, net->be, net->params[i]);
    fclose(r.f);
    st->stage_index = si;
    st->epoch = ep;
    return s;
}
