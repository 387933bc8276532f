/* config.c: dc_config_load and dc_config_parse_net.  Reads the INI, checks the
 * section list, writes the --set overrides into the INI (so an overridden value
 * goes through exactly the checks a file value does and its errors name the
 * override), then builds the typed config from the tables in config_keys.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

enum dc_status cfg_fail(const struct dc_ini *ini, const struct dc_ini_section *s,
                        const struct dc_ini_entry *e, const char *key, const char *fmt, ...)
{
    char reason[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (e && e->source)
        return DC_ERROR(DC_ERR_CONFIG, "--set %s: %s", e->source, reason);
    if (!e && s->source && key)
        return DC_ERROR(DC_ERR_CONFIG, "--set %s: [%s] %s: %s", s->source, s->name, key, reason);
    int line = e ? e->line : s->line;
    const char *file = dc_ini_file(ini, e ? e->file : s->file);
    if (key)
        return DC_ERROR(DC_ERR_CONFIG, "%s:%d: [%s] %s: %s", file, line, s->name, key, reason);
    return DC_ERROR(DC_ERR_CONFIG, "%s:%d: [%s]: %s", file, line, s->name, reason);
}

/* Every section is known; global sections (and [base], where allowed) appear at most once. */
static enum dc_status check_sections(const struct dc_ini *ini, int allow_global)
{
    for (int i = 0; i < ini->nsections; i++) {
        const struct dc_ini_section *s = &ini->sections[i];
        if (cfg_layer_type(s->name) >= 0)
            continue;
        int is_base = strcmp(s->name, "base") == 0;
        if (!is_base && !cfg_global_section(s->name))
            return cfg_fail(ini, s, NULL, NULL,
                            "unknown section; use base, data, train, prune, quantize, encode, distill, compress, "
                            "init, or a layer: conv, fc, maxpool, avgpool, relu, batchnorm, dropout, fire");
        if (!allow_global)
            return cfg_fail(ini, s, NULL, NULL, "not a layer section; a network description holds only layers");
        for (int j = 0; j < i; j++)
            if (strcmp(ini->sections[j].name, s->name) == 0)
                return cfg_fail(ini, s, NULL, NULL, "section repeated (first at line %d); merge the two",
                                ini->sections[j].line);
    }
    return DC_OK;
}

enum dc_status cfg_check_sections(const struct dc_ini *ini) { return check_sections(ini, 1); }

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* The section an override's target names: a global section (created when the
 * file has none, which switches that stage on) or a layer by name. */
static enum dc_status override_target(struct dc_ini *ini, const char *ov, const char *target, int *index)
{
    if (cfg_global_section(target)) {
        if ((*index = dc_ini_find_section(ini, target)) >= 0)
            return DC_OK;
        return dc_ini_add_section(ini, target, 0, ov, index);
    }
    char list[200];
    if ((*index = cfg_find_layer(ini, target, list, sizeof list)) >= 0)
        return DC_OK;
    return DC_ERROR(DC_ERR_CONFIG,
                    "--set %s: no section or layer named '%s'; use data, train, prune, quantize, encode, init "
                    "or a layer name (%s)",
                    ov, target, list);
}

enum dc_status cfg_apply_overrides(struct dc_ini *ini, const char *const *overrides, int n)
{
    for (int i = 0; i < n; i++) {
        const char *ov = overrides[i];
        char buf[1024];
        if (strlen(ov) >= sizeof buf)
            return DC_ERROR(DC_ERR_CONFIG, "--set %.60s...: longer than %zu characters", ov, sizeof buf - 1);
        memcpy(buf, ov, strlen(ov) + 1);
        char *eq = strchr(buf, '=');
        char *dot = strchr(buf, '.');
        if (!eq || !dot || dot > eq)
            return DC_ERROR(DC_ERR_CONFIG,
                            "--set %s: expected section.key=value (e.g. train.lr=0.05) or layer.key=value "
                            "(e.g. fc1.prune=1.5)",
                            ov);
        *dot = *eq = '\0';
        char *target = trim(buf), *key = trim(dot + 1), *value = trim(eq + 1);
        if (!*target || !*key)
            return DC_ERROR(DC_ERR_CONFIG, "--set %s: expected section.key=value with both names non-empty", ov);
        if (dc_ini_comment_start(value))
            return DC_ERROR(DC_ERR_CONFIG,
                            "--set %s: a value cannot hold '#' or ';' at its start or after a space (a config "
                            "file reads the rest as a comment, so --print-config could not give it back)",
                            ov);
        int index = -1;
        DC_TRY(override_target(ini, ov, target, &index));
        DC_TRY(dc_ini_set(&ini->sections[index], key, value, 0, ov));
    }
    return DC_OK;
}

static enum dc_status build_globals(const struct dc_ini *ini, struct dc_config *cfg)
{
    for (int g = 0; g < cfg_nglobal_sections; g++)
        cfg_set_defaults(&cfg_global_sections[g], cfg);
    int has_data = 0;
    for (int i = 0; i < ini->nsections; i++) {
        const struct dc_ini_section *s = &ini->sections[i];
        const struct cfg_section *g = cfg_global_section(s->name);
        if (!g)
            continue;
        uint64_t given = 0;
        DC_TRY(cfg_apply(ini, s, g, cfg, &given));
        has_data |= strcmp(g->name, "data") == 0;
        cfg->has_prune |= strcmp(g->name, "prune") == 0;
        cfg->has_quantize |= strcmp(g->name, "quantize") == 0;
        cfg->has_encode |= strcmp(g->name, "encode") == 0;
        cfg->has_distill |= strcmp(g->name, "distill") == 0;
        cfg->has_compress |= strcmp(g->name, "compress") == 0;
    }
    if (!has_data)
        return DC_ERROR(DC_ERR_CONFIG, "%s: no [data] section; add one with set = mnist|cifar10 and dir = PATH",
                        ini->origin);
    return DC_OK;
}

/* The common tail of both entry points: layers and net_text when all went
 * well so far, then the INI is freed either way. */
static enum dc_status finish_layers(struct dc_ini *ini, struct dc_config *out, enum dc_status st)
{
    if (st == DC_OK)
        st = cfg_build_layers(ini, out);
    if (st == DC_OK)
        st = cfg_emit_net(out);
    dc_ini_free(ini);
    if (st != DC_OK)
        dc_config_free(out);
    return st;
}

enum dc_status dc_config_load(const char *path, const char *const *overrides, int noverrides,
                              struct dc_config *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    struct dc_ini ini;
    DC_TRY(dc_ini_load(path, &ini));
    enum dc_status st = check_sections(&ini, 1);
    if (st == DC_OK)
        st = cfg_resolve_base(&ini, out);
    if (st == DC_OK)
        st = cfg_apply_overrides(&ini, overrides, noverrides);
    if (st == DC_OK)
        st = build_globals(&ini, out);
    return finish_layers(&ini, out, st);
}

enum dc_status dc_config_parse_net(const char *text, const char *origin, struct dc_config *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", origin);
    for (int g = 0; g < cfg_nglobal_sections; g++)
        cfg_set_defaults(&cfg_global_sections[g], out);
    struct dc_ini ini;
    DC_TRY(dc_ini_parse(text, origin, &ini));
    return finish_layers(&ini, out, check_sections(&ini, 0));
}

const char *dc_config_layer_file(const struct dc_config *cfg, const struct dc_layer_cfg *l)
{
    if (l->base > 0 && l->base <= cfg->nbases)
        return cfg->bases[l->base - 1];
    return cfg->path[0] ? cfg->path : "network";
}

void dc_config_free(struct dc_config *cfg)
{
    free(cfg->net_text);
    cfg->net_text = NULL;
}
