/* fuzz_config.c: libFuzzer target for the INI reader and the typed config.
 * Input: INI text, optionally followed by a NUL byte and --set overrides, one
 * per line.  The text goes through dc_ini_parse, dc_config_parse_net, and
 * (as an in-memory file, with the overrides) dc_config_load. */
#define _GNU_SOURCE /* strsep */
#include <stdlib.h>
#include <string.h>

#include "dc/config.h"
#include "dc/ini.h"
#include "fuzz_util.h"

#define MAX_OVERRIDES 8

static struct dc_fuzz_file file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    dc_fuzz_file_init(&file, "config.ini");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    char *text = malloc(tlen + 1), *ovs = NULL;
    memcpy(text, data, tlen);
    text[tlen] = '\0';

    const char *ov[MAX_OVERRIDES];
    int nov = 0;
    if (nul) {
        size_t olen = size - tlen - 1;
        ovs = malloc(olen + 1);
        memcpy(ovs, nul + 1, olen);
        ovs[olen] = '\0';
        for (char *p = ovs, *line; nov < MAX_OVERRIDES && (line = strsep(&p, "\n")) != NULL;)
            if (*line)
                ov[nov++] = line;
    }

    struct dc_ini ini;
    if (dc_ini_parse(text, "fuzz.ini", &ini) == DC_OK)
        dc_ini_free(&ini);

    struct dc_config *cfg = malloc(sizeof *cfg);
    if (dc_config_parse_net(text, "fuzz.ini", cfg) == DC_OK)
        dc_config_free(cfg);

    /* the whole input as a file: a NUL inside must be refused, not truncate the text */
    dc_fuzz_file_set(&file, (const uint8_t *)text, tlen);
    if (dc_config_load(file.path, ov, nov, cfg) == DC_OK)
        dc_config_free(cfg);

    free(cfg);
    free(ovs);
    free(text);
    return 0;
}
