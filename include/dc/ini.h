/* ini.h: a small INI reader that keeps line numbers, so the typed config
 * (config.h) can say "FILE:LINE: [section] key: reason" for every mistake.
 *
 * Syntax: `[name]` opens a section; `key = value` inside it; `#` or `;` starts a
 * comment at the beginning of a line or after whitespace; blank lines are
 * ignored.  Section and key names are letters, digits and '_'.  Sections may
 * repeat (a network has many [conv]); a key may appear once per section.
 * Which sections may repeat is the typed config's business, not the reader's. */
#ifndef DC_INI_H
#define DC_INI_H

#include "dc/status.h"

struct dc_ini_entry {
    char *key, *value;
    int line;     /* line in the text; 0 when an override set it */
    char *source; /* NULL: from the text; else the override that set it ("train.lr=0.1") */
    char *file;   /* NULL: the text of dc_ini.origin; else the base config the line is in */
};

struct dc_ini_section {
    char *name;
    int line;     /* line of the `[name]` header; 0 when an override created it */
    char *source; /* NULL: from the text; else the override that created it */
    char *file;   /* NULL: the text of dc_ini.origin; else the base config the header is in */
    struct dc_ini_entry *entries;
    int nentries, cap;
};

struct dc_ini {
    char origin[512]; /* file name (or other origin) used in messages */
    struct dc_ini_section *sections;
    int nsections, cap;
};

/* Parse NUL-terminated text.  Syntax errors are DC_ERR_CONFIG "ORIGIN:LINE: reason". */
enum dc_status dc_ini_parse(const char *text, const char *origin, struct dc_ini *out);
/* Read and parse a file; an unreadable file is DC_ERR_IO naming the path and the reason. */
enum dc_status dc_ini_load(const char *path, struct dc_ini *out);
void dc_ini_free(struct dc_ini *ini);

/* The file a section or entry came from: its own `file`, else the ini's origin. */
const char *dc_ini_file(const struct dc_ini *ini, const char *file);

/* The index of the first section called name, or -1. */
int dc_ini_find_section(const struct dc_ini *ini, const char *name);
/* The entry for key in s, or NULL. */
const struct dc_ini_entry *dc_ini_find(const struct dc_ini_section *s, const char *key);
/* Append an empty section; *index receives its position. */
enum dc_status dc_ini_add_section(struct dc_ini *ini, const char *name, int line, const char *source,
                                  int *index);
/* Where a comment starts in a line or value ('#' or ';' at the start or after
 * whitespace), or NULL: such a value cannot be written to an INI file. */
const char *dc_ini_comment_start(const char *s);
/* Set key in s, replacing an existing value (overrides use this). */
enum dc_status dc_ini_set(struct dc_ini_section *s, const char *key, const char *value, int line,
                          const char *source);

#endif
