/* config_print.c: the whole effective config as INI text (dctrain
 * --print-config): every key of every stage the config switches on, with the
 * defaults filled in, after its [base] chain and the --set overrides, then the
 * network.  A config built on a base is only a list of differences, so this is
 * how a user sees what will run; the text loads back to the same config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

/* A global section is written when its stage is on ([data] and [train]
 * always; [init] when it holds a map). */
static int section_on(const struct dc_config *cfg, const char *name)
{
    if (!strcmp(name, "prune"))
        return cfg->has_prune;
    if (!strcmp(name, "quantize"))
        return cfg->has_quantize;
    if (!strcmp(name, "encode"))
        return cfg->has_encode;
    if (!strcmp(name, "distill"))
        return cfg->has_distill;
    if (!strcmp(name, "compress"))
        return cfg->has_compress;
    if (!strcmp(name, "init"))
        return cfg->init_map[0] != '\0';
    return 1;
}

enum dc_status dc_config_format(const struct dc_config *cfg, char **text)
{
    size_t cap = 1024 + (cfg->net_text ? strlen(cfg->net_text) : 0) + sizeof cfg->init_map +
                 sizeof cfg->data_dir + sizeof cfg->encode_file + (size_t)DC_MAX_BASES * sizeof cfg->bases[0];
    for (int g = 0; g < cfg_nglobal_sections; g++)
        cap += 16 + (size_t)cfg_global_sections[g].nkeys * 64;
    char *t = malloc(cap);
    if (!t)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory writing the config of %s", cfg->path);
    size_t n = (size_t)snprintf(t, cap, "# %s", cfg->path);
    for (int k = 0; k < cfg->nbases; k++)
        n += (size_t)snprintf(t + n, cap - n, "%s%s", k ? ", " : ", built on ", cfg->bases[k]);
    n += (size_t)snprintf(t + n, cap - n, "\n");
    for (int g = 0; g < cfg_nglobal_sections; g++) {
        const struct cfg_section *sec = &cfg_global_sections[g];
        if (!section_on(cfg, sec->name))
            continue;
        n += (size_t)snprintf(t + n, cap - n, "\n[%s]\n", sec->name);
        for (int k = 0; k < sec->nkeys; k++) {
            char v[sizeof cfg->init_map];
            cfg_format(&sec->keys[k], cfg, v, sizeof v);
            n += (size_t)snprintf(t + n, cap - n, "%s = %s\n", sec->keys[k].name, v);
        }
    }
    n += (size_t)snprintf(t + n, cap - n, "\n%s", cfg->net_text ? cfg->net_text : "");
    *text = t;
    return DC_OK;
}
