/* config_net.c: the layer sections of a config.  Builds cfg->layers in file
 * order with default names ("conv2", "pool1"), checks what can be checked
 * without shapes (those belong to the network), and writes the canonical
 * net_text that model files carry, which parses back to the same layers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

/* Default-name stems; both pools share "pool" and one counter. */
static const char *const name_stem[DC_LAYER_TYPE_COUNT] = {
    [DC_LAYER_CONV] = "conv", [DC_LAYER_FC] = "fc",     [DC_LAYER_MAXPOOL] = "pool",
    [DC_LAYER_AVGPOOL] = "pool", [DC_LAYER_RELU] = "relu", [DC_LAYER_BN] = "bn",
    [DC_LAYER_DROPOUT] = "dropout", [DC_LAYER_FIRE] = "fire",
};

static int counter_slot(enum dc_layer_type t) { return t == DC_LAYER_AVGPOOL ? DC_LAYER_MAXPOOL : (int)t; }

void cfg_default_name(enum dc_layer_type t, int index, char *buf, size_t len)
{
    snprintf(buf, len, "%s%d", name_stem[t], index);
}

int cfg_layer_names(const struct dc_ini *ini, char (*names)[DC_NAME_LEN], int *secs, int max)
{
    int counts[DC_LAYER_TYPE_COUNT] = {0};
    int n = 0;
    for (int i = 0; i < ini->nsections && n < max; i++) {
        int t = cfg_layer_type(ini->sections[i].name);
        if (t < 0)
            continue;
        int index = ++counts[counter_slot((enum dc_layer_type)t)];
        const struct dc_ini_entry *e = dc_ini_find(&ini->sections[i], "name");
        if (e)
            snprintf(names[n], DC_NAME_LEN, "%.*s", DC_NAME_LEN - 1, e->value);
        else
            cfg_default_name((enum dc_layer_type)t, index, names[n], DC_NAME_LEN);
        secs[n++] = i;
    }
    return n;
}

int cfg_find_layer(const struct dc_ini *ini, const char *name, char *list, size_t len)
{
    char names[DC_MAX_LAYERS][DC_NAME_LEN];
    int secs[DC_MAX_LAYERS];
    int n = cfg_layer_names(ini, names, secs, DC_MAX_LAYERS);
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; i < n && used + 40 < len; i++)
        used += (size_t)snprintf(list + used, len - used, "%s%s", i ? ", " : "", names[i]);
    if (n > 0 && used + 40 >= len)
        snprintf(list + used, len - used, ", ...");
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return secs[i];
    return -1;
}

static int given(const struct cfg_section *sec, uint64_t mask, const char *key)
{
    int i = cfg_key_index(sec, key);
    return i >= 0 && (mask & (1ull << i));
}

/* Names are used as "NAME.key" in overrides and as "NAME.relu" inside the
 * network, so no dots; and they must not shadow a global section. */
static enum dc_status check_name(const struct dc_ini *ini, const struct dc_ini_section *s,
                                 const struct dc_config *cfg, const struct dc_layer_cfg *l)
{
    const struct dc_ini_entry *e = dc_ini_find(s, "name");
    const char *n = l->name;
    int ok = (n[0] >= 'a' && n[0] <= 'z') || (n[0] >= 'A' && n[0] <= 'Z');
    for (const char *p = n; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
             *p == '-';
    if (!ok)
        return cfg_fail(ini, s, e, "name", "'%s' is not a layer name: start with a letter, then letters, digits, '_' or '-'",
                        n);
    if (cfg_global_section(n))
        return cfg_fail(ini, s, e, "name", "'%s' is a section name; choose another layer name", n);
    for (int i = 0; i < cfg->nlayers; i++) {
        const struct dc_layer_cfg *o = &cfg->layers[i];
        if (strcmp(o->name, n) != 0)
            continue;
        /* "line 4" in the same file, "base.ini:4" when a [base] config holds the other one */
        const char *ofile = dc_config_layer_file(cfg, o), *sfile = dc_ini_file(ini, s->file);
        char where[600];
        if (strcmp(ofile, sfile) == 0)
            snprintf(where, sizeof where, "line %d", o->line);
        else
            snprintf(where, sizeof where, "%s:%d", ofile, o->line);
        return cfg_fail(ini, s, e, "name", "'%s'%s is already the name of the [%s] at %s; choose another", n,
                        e ? "" : " (this layer's default name)", dc_layer_type_name(o->type), where);
    }
    return DC_OK;
}

/* Fill derived keys and check the relations between keys of one layer. */
static enum dc_status check_layer(const struct dc_ini *ini, const struct dc_ini_section *s,
                                  const struct dc_config *cfg, struct dc_layer_cfg *l, uint64_t mask)
{
    const struct cfg_section *sec = &cfg_layer_sections[l->type];
    switch (l->type) {
    case DC_LAYER_CONV:
        if (!given(sec, mask, "pad"))
            l->pad = l->size / 2;
        if (l->pad >= l->size)
            return cfg_fail(ini, s, dc_ini_find(s, "pad"), "pad", "must be smaller than size (%d)", l->size);
        break;
    case DC_LAYER_MAXPOOL:
    case DC_LAYER_AVGPOOL:
        if (!given(sec, mask, "stride"))
            l->stride = l->size;
        if (l->size == 0 && (l->stride != 0 || l->pad != 0)) {
            const char *key = l->stride != 0 ? "stride" : "pad";
            return cfg_fail(ini, s, dc_ini_find(s, key), key, "a global pool (size = 0) takes no %s; remove it",
                            key);
        }
        if (l->size > 0 && l->stride < 1)
            return cfg_fail(ini, s, dc_ini_find(s, "stride"), "stride", "must be >= 1 (got %d)", l->stride);
        if (l->size > 0 && l->pad >= l->size)
            return cfg_fail(ini, s, dc_ini_find(s, "pad"), "pad", "must be smaller than size (%d)", l->size);
        break;
    default:
        break;
    }
    if (given(sec, mask, "prune") && l->prune != -1.0f) {
        const struct dc_ini_entry *e = dc_ini_find(s, "prune");
        if (l->prune < 0)
            return cfg_fail(ini, s, e, "prune", "must be >= 0, or -1 for the [prune] default (got %s)", e->value);
        if (cfg->prune_method == DC_PRUNE_SPARSITY && l->prune >= 1)
            return cfg_fail(ini, s, e, "prune", "is a sparsity under [prune] method = sparsity and must be in [0, 1) (got %s)",
                            e->value);
    }
    return DC_OK;
}

enum dc_status cfg_build_layers(const struct dc_ini *ini, struct dc_config *cfg)
{
    int counts[DC_LAYER_TYPE_COUNT] = {0};
    cfg->nlayers = 0;
    for (int i = 0; i < ini->nsections; i++) {
        const struct dc_ini_section *s = &ini->sections[i];
        int t = cfg_layer_type(s->name);
        if (t < 0)
            continue; /* global sections are the caller's */
        if (cfg->nlayers == DC_MAX_LAYERS)
            return cfg_fail(ini, s, NULL, NULL, "too many layers (at most %d)", DC_MAX_LAYERS);
        struct dc_layer_cfg *l = &cfg->layers[cfg->nlayers];
        memset(l, 0, sizeof *l);
        l->type = (enum dc_layer_type)t;
        l->line = s->line;
        l->base = 0;
        for (int k = 0; s->file && k < cfg->nbases; k++)
            if (strcmp(s->file, cfg->bases[k]) == 0)
                l->base = k + 1;
        cfg_default_name(l->type, ++counts[counter_slot(l->type)], l->name, sizeof l->name);
        const struct cfg_section *sec = &cfg_layer_sections[t];
        cfg_set_defaults(sec, l);
        uint64_t mask = 0;
        DC_TRY(cfg_apply(ini, s, sec, l, &mask));
        DC_TRY(check_layer(ini, s, cfg, l, mask));
        DC_TRY(check_name(ini, s, cfg, l));
        cfg->nlayers++;
    }
    if (cfg->nlayers == 0)
        return DC_ERROR(DC_ERR_CONFIG,
                        "%s: no layer sections; describe the network with [conv], [fc], [maxpool], [avgpool], "
                        "[relu], [batchnorm], [dropout] or [fire] sections",
                        ini->origin);
    return DC_OK;
}

/* Only what differs from the defaults is written (model files carry this
 * text, and on a small compressed model every byte counts); parsing it back
 * applies the same defaults, so the layers come back identical. */
enum dc_status cfg_emit_net(struct dc_config *cfg)
{
    size_t cap = 256, n = 0;
    for (int i = 0; i < cfg->nlayers; i++)
        cap += 32 + (size_t)cfg_layer_sections[cfg->layers[i].type].nkeys * (DC_NAME_LEN + 64);
    char *text = malloc(cap);
    if (!text)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory writing the network description");
    text[0] = '\0';
    int counts[DC_LAYER_TYPE_COUNT] = {0};
    for (int i = 0; i < cfg->nlayers; i++) {
        const struct dc_layer_cfg *l = &cfg->layers[i];
        const struct cfg_section *sec = &cfg_layer_sections[l->type];
        struct dc_layer_cfg d;
        memset(&d, 0, sizeof d);
        cfg_set_defaults(sec, &d);
        cfg_default_name(l->type, ++counts[counter_slot(l->type)], d.name, sizeof d.name);
        n += (size_t)snprintf(text + n, cap - n, "[%s]\n", sec->name);
        for (int k = 0; k < sec->nkeys; k++) {
            char v[DC_NAME_LEN + 32], dv[DC_NAME_LEN + 32];
            cfg_format(&sec->keys[k], l, v, sizeof v);
            cfg_format(&sec->keys[k], &d, dv, sizeof dv);
            int is_name = strcmp(sec->keys[k].name, "name") == 0;
            if ((sec->keys[k].dflt || is_name) && strcmp(v, dv) == 0)
                continue;
            n += (size_t)snprintf(text + n, cap - n, "%s=%s\n", sec->keys[k].name, v);
        }
    }
    free(cfg->net_text);
    cfg->net_text = text;
    return DC_OK;
}
