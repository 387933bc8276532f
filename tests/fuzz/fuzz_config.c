/* fuzz_config.c: libFuzzer target for the INI reader and the typed config.
 * Input: INI text, optionally followed by a NUL byte and --set overrides, one
 * per line.  The text goes through dc_ini_parse, dc_config_parse_net, and
 * (as an in-memory file, with the overrides) dc_config_load, next to a fixed
 * base.ini that `[base] config = base.ini` builds on.  A config that loads is
 * printed with dc_config_format, and the printed text must load back and
 * print the same, overrides included (--set refuses a value that the INI
 * reader would cut as a comment): abort() otherwise, which libFuzzer reports. */
#define _GNU_SOURCE /* strsep */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/config.h"
#include "dc/ini.h"
#include "fuzz_util.h"

#define MAX_OVERRIDES 8

static struct dc_fuzz_file file, printed;
static char dir[512], config_path[600];

static const char base_text[] = "[data]\nset = mnist\ndir = data/mnist\n[train]\nepochs = 2\n"
                                "[conv]\nname = c1\nfilters = 4\nsize = 3\n[maxpool]\nsize = 2\n"
                                "[fire]\nsqueeze = 2\nexpand1x1 = 4\nexpand3x3 = 4\n[fc]\noutputs = 10\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    dc_fuzz_file_init(&file, "config.ini");
    dc_fuzz_file_init(&printed, "printed.ini");
    dc_fuzz_tmpdir(dir, sizeof dir);
    dc_fuzz_link(dir, "config.ini", &file);
    snprintf(config_path, sizeof config_path, "%s/config.ini", dir);
    char base[600];
    snprintf(base, sizeof base, "%s/base.ini", dir);
    FILE *f = fopen(base, "w");
    if (!f || fputs(base_text, f) == EOF || fclose(f) != 0) {
        perror(base);
        abort();
    }
    return 0;
}

/* The printed config loads back and prints the same (after line 1, the file name). */
static void check_printed(const struct dc_config *cfg)
{
    char *ta = NULL, *tb = NULL;
    if (dc_config_format(cfg, &ta) != DC_OK)
        abort();
    dc_fuzz_file_set(&printed, (const uint8_t *)ta, strlen(ta));
    struct dc_config *b = malloc(sizeof *b);
    enum dc_status st = dc_config_load(printed.path, NULL, 0, b);
    if (st == DC_OK) {
        if (dc_config_format(b, &tb) != DC_OK)
            abort();
        dc_config_free(b);
    }
    if (st != DC_OK || strcmp(strchr(ta, '\n'), strchr(tb, '\n')) != 0) {
        fprintf(stderr, "printed config does not load back the same:\n%s\n%s\n", ta,
                st == DC_OK ? tb : dc_error_msg());
        abort();
    }
    free(tb);
    free(ta);
    free(b);
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
    if (dc_config_load(config_path, ov, nov, cfg) == DC_OK) {
        check_printed(cfg);
        dc_config_free(cfg);
    }

    free(cfg);
    free(ovs);
    free(text);
    return 0;
}
