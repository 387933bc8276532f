/* config_print.c: the whole effective config as INI text (dctrain
 * --print-config): every key of every stage the config switches on, with the
 * defaults filled in, after its [base] chain and the --set overrides, then the
 * network.  A config built on a base is only a list of differences, so this is
 * how a user sees what will run; the text loads back to the same config. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
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
    char *t = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&t, &len); /* grows as needed: no size to estimate */
    if (!f)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory writing the config of %s", cfg->path);
    fprintf(f, "# %s", cfg->path);
    for (int k = 0; k < cfg->nbases; k++)
        fprintf(f, "%s%s", k ? ", " : ", built on ", cfg->bases[k]);
    fputc('\n', f);
    for (int g = 0; g < cfg_nglobal_sections; g++) {
        const struct cfg_section *sec = &cfg_global_sections[g];
        if (!section_on(cfg, sec->name))
            continue;
        fprintf(f, "\n[%s]\n", sec->name);
        for (int k = 0; k < sec->nkeys; k++) {
            char v[sizeof cfg->init_map];
            cfg_format(&sec->keys[k], cfg, v, sizeof v);
            fprintf(f, "%s = %s\n", sec->keys[k].name, v);
        }
    }
    fprintf(f, "\n%s", cfg->net_text ? cfg->net_text : "");
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(t);
        return DC_ERROR(DC_ERR_NOMEM, "out of memory writing the config of %s", cfg->path);
    }
    *text = t;
    return DC_OK;
}
