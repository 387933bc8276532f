/* config_base.c: `[base] config = FILE`.  A config may build on another (a
 * compression config on the training config of the same network) and hold only
 * what differs: its global sections' keys replace the base's, a new global
 * section is added, and a layer section with `name = X` changes the base's
 * layer X key by key.  Without this every *_dc.ini repeated its network
 * section by section, and a change to one copy silently missed the other.
 * The merged INI keeps each line's file, so a later complaint still names the
 * file and line to fix. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config_internal.h"

/* The chain of configs being read, for the depth limit and the cycle check. */
struct base_chain {
    dev_t dev[DC_MAX_BASES + 1];
    ino_t ino[DC_MAX_BASES + 1];
    int n; /* 1 + bases read so far; a slot is 0/0 when stat failed */
};

/* Record file on every section and entry that still lacks one, so they keep
 * pointing at the base once the merged INI takes the including file's name. */
static enum dc_status mark_file(struct dc_ini *ini)
{
    for (int i = 0; i < ini->nsections; i++) {
        struct dc_ini_section *s = &ini->sections[i];
        if (!s->file && !(s->file = strdup(ini->origin)))
            return DC_ERROR(DC_ERR_NOMEM, "out of memory reading %s", ini->origin);
        for (int j = 0; j < s->nentries; j++)
            if (!s->entries[j].file && !(s->entries[j].file = strdup(ini->origin)))
                return DC_ERROR(DC_ERR_NOMEM, "out of memory reading %s", ini->origin);
    }
    return DC_OK;
}

/* Copy every entry of from into to, replacing keys to already has; the copies
 * keep from's lines and files. */
static enum dc_status merge_entries(const struct dc_ini *from_ini, const struct dc_ini_section *from,
                                    struct dc_ini_section *to)
{
    for (int j = 0; j < from->nentries; j++) {
        const struct dc_ini_entry *e = &from->entries[j];
        DC_TRY(dc_ini_set(to, e->key, e->value, e->line, NULL));
        struct dc_ini_entry *t = (struct dc_ini_entry *)dc_ini_find(to, e->key);
        if (!(t->file = strdup(dc_ini_file(from_ini, e->file))))
            return DC_ERROR(DC_ERR_NOMEM, "out of memory reading %s", from_ini->origin);
    }
    return DC_OK;
}

static enum dc_status merge_global(const struct dc_ini *child, const struct dc_ini_section *s, struct dc_ini *base)
{
    int at = dc_ini_find_section(base, s->name);
    if (at < 0) {
        DC_TRY(dc_ini_add_section(base, s->name, s->line, NULL, &at));
        if (!(base->sections[at].file = strdup(dc_ini_file(child, s->file))))
            return DC_ERROR(DC_ERR_NOMEM, "out of memory reading %s", child->origin);
    }
    return merge_entries(child, s, &base->sections[at]);
}

/* A layer section of the child changes the base's layer of the same name. */
static enum dc_status merge_layer(const struct dc_ini *child, const struct dc_ini_section *s, struct dc_ini *base)
{
    char list[200];
    const struct dc_ini_entry *name = dc_ini_find(s, "name");
    int at = cfg_find_layer(base, name ? name->value : "", list, sizeof list);
    if (!name)
        return cfg_fail(child, s, NULL, NULL,
                        "a config with [base] changes the base's layers by name and cannot add layers; give "
                        "name = the layer to change (%s's layers: %s)",
                        base->origin, list);
    if (at < 0)
        return cfg_fail(child, s, name, "name",
                        "%s has no layer '%s'; a config with [base] changes the base's layers and cannot add "
                        "layers (%s's layers: %s)",
                        base->origin, name->value, base->origin, list);
    struct dc_ini_section *t = &base->sections[at];
    if (strcmp(t->name, s->name) != 0)
        return cfg_fail(child, s, name, "name", "%s's layer '%s' is a [%s] (%s:%d), not a [%s]", base->origin,
                        name->value, t->name, dc_ini_file(base, t->file), t->line, s->name);
    return merge_entries(child, s, t);
}

/* The base's path: relative to the directory of the config that names it. */
static enum dc_status base_path(const struct dc_ini *ini, const struct dc_ini_section *s,
                                const struct dc_ini_entry *e, char *out, size_t cap)
{
    if (!e->value[0])
        return cfg_fail(ini, s, e, "config", "empty; give the path of the config this one builds on");
    const char *slash = strrchr(ini->origin, '/');
    int dir = e->value[0] == '/' || !slash ? 0 : (int)(slash - ini->origin + 1);
    if ((size_t)snprintf(out, cap, "%.*s%s", dir, ini->origin, e->value) >= cap)
        return cfg_fail(ini, s, e, "config", "the path is longer than %zu characters", cap - 1);
    return DC_OK;
}

static enum dc_status resolve(struct dc_ini *ini, struct dc_config *cfg, struct base_chain *chain);

/* Load the base named by [base] section b of ini, resolved through its own
 * bases; *base gets it. */
static enum dc_status load_base(const struct dc_ini *ini, const struct dc_ini_section *b, struct dc_config *cfg,
                                struct base_chain *chain, struct dc_ini *base)
{
    for (int j = 0; j < b->nentries; j++)
        if (strcmp(b->entries[j].key, "config") != 0)
            return cfg_fail(ini, b, &b->entries[j], b->entries[j].key,
                            "unknown key; [base] takes one key, config = the path of the config this one builds on");
    const struct dc_ini_entry *e = dc_ini_find(b, "config");
    if (!e)
        return cfg_fail(ini, b, NULL, "config", "missing; give the path of the config this one builds on");
    if (cfg->nbases == DC_MAX_BASES)
        return cfg_fail(ini, b, e, "config", "configs build on configs more than %d deep; merge some of them",
                        DC_MAX_BASES);
    char path[sizeof cfg->bases[0]];
    DC_TRY(base_path(ini, b, e, path, sizeof path));
    struct stat sb;
    if (stat(path, &sb) == 0) {
        for (int i = 0; i < chain->n; i++)
            if (chain->dev[i] == sb.st_dev && chain->ino[i] == sb.st_ino)
                return cfg_fail(ini, b, e, "config", "%s is already in the chain of bases (a config cannot build on itself)",
                                path);
        chain->dev[chain->n] = sb.st_dev;
        chain->ino[chain->n] = sb.st_ino;
    }
    chain->n++;
    snprintf(cfg->bases[cfg->nbases++], sizeof cfg->bases[0], "%s", path);
    enum dc_status st = dc_ini_load(path, base);
    if (st != DC_OK) {
        char msg[700];
        snprintf(msg, sizeof msg, "%s", dc_error_msg());
        return DC_ERROR(st, "%s:%d: [base] config: %s", dc_ini_file(ini, e->file), e->line, msg);
    }
    st = cfg_check_sections(base);
    if (st == DC_OK)
        st = resolve(base, cfg, chain);
    if (st != DC_OK)
        dc_ini_free(base);
    return st;
}

static enum dc_status resolve(struct dc_ini *ini, struct dc_config *cfg, struct base_chain *chain)
{
    int at = dc_ini_find_section(ini, "base");
    if (at < 0)
        return DC_OK;
    struct dc_ini base;
    DC_TRY(load_base(ini, &ini->sections[at], cfg, chain, &base));
    enum dc_status st = mark_file(&base);
    for (int i = 0; i < ini->nsections && st == DC_OK; i++) {
        const struct dc_ini_section *s = &ini->sections[i];
        if (i == at)
            continue;
        st = cfg_layer_type(s->name) >= 0 ? merge_layer(ini, s, &base) : merge_global(ini, s, &base);
    }
    if (st != DC_OK) {
        dc_ini_free(&base);
        return st;
    }
    memcpy(base.origin, ini->origin, sizeof base.origin);
    dc_ini_free(ini);
    *ini = base;
    return DC_OK;
}

enum dc_status cfg_resolve_base(struct dc_ini *ini, struct dc_config *cfg)
{
    struct base_chain chain;
    memset(&chain, 0, sizeof chain);
    struct stat sb;
    if (stat(ini->origin, &sb) == 0) {
        chain.dev[0] = sb.st_dev;
        chain.ino[0] = sb.st_ino;
    }
    chain.n = 1;
    return resolve(ini, cfg, &chain);
}
