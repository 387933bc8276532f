/* config_internal.h: the key tables shared by the config files.  Each section
 * is a table of keys (type, field offset, default, range), so one routine
 * parses, checks and re-emits every key and no key can be forgotten by one of
 * those steps. */
#ifndef DC_CONFIG_INTERNAL_H
#define DC_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dc/config.h"
#include "dc/ini.h"

enum cfg_kind {
    CFG_INT,   /* int, range [lo, hi] */
    CFG_FLOAT, /* float, range with open/closed ends */
    CFG_BOOL,  /* int 0 or 1 */
    CFG_U64,   /* uint64_t */
    CFG_STR,   /* char[len]; `words` limits it to a list when set */
    CFG_ENUM,  /* stored as the int index of the word in `words` */
};

struct cfg_key {
    const char *name;
    enum cfg_kind kind;
    size_t off;               /* offset of the field in its struct */
    size_t len;               /* CFG_STR: capacity of the char array */
    const char *dflt;         /* default as text; NULL: required or derived (see `required`) */
    int required;             /* 1: must be given; 0 with dflt NULL: the caller derives it */
    double lo, hi;            /* allowed range */
    int lo_open, hi_open;     /* 1: that end is excluded */
    const char *const *words; /* CFG_ENUM, word-limited CFG_STR, and CFG_INT limited to
                                 these values (e.g. "16", "32"); NULL-terminated */
};

struct cfg_section {
    const char *name;
    const struct cfg_key *keys;
    int nkeys;
};

/* Global sections ([data], [train], ...) and layer sections ([conv], ...). */
extern const struct cfg_section cfg_global_sections[];
extern const int cfg_nglobal_sections;
const struct cfg_section *cfg_global_section(const char *name);
extern const struct cfg_section cfg_layer_sections[DC_LAYER_TYPE_COUNT]; /* indexed by type */
int cfg_layer_type(const char *section_name); /* enum dc_layer_type, or -1 */

/* "FILE:LINE: [section] key: reason", or "--set OVERRIDE: reason" when an
 * override set the value.  e may be NULL (a missing key: the section's line);
 * key may be NULL (a complaint about the whole section).  Returns DC_ERR_CONFIG. */
enum dc_status cfg_fail(const struct dc_ini *ini, const struct dc_ini_section *s,
                        const struct dc_ini_entry *e, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* Write every default of the table into base (derived and required keys untouched). */
void cfg_set_defaults(const struct cfg_section *sec, void *base);
/* Parse every entry of s into base; unknown keys, bad values and missing
 * required keys fail.  *given gets bit i set when key i was present. */
enum dc_status cfg_apply(const struct dc_ini *ini, const struct dc_ini_section *s,
                         const struct cfg_section *sec, void *base, uint64_t *given);
int cfg_key_index(const struct cfg_section *sec, const char *name);
/* The key's value in base as canonical text (parses back to the same value). */
void cfg_format(const struct cfg_key *k, const void *base, char *buf, size_t len);

/* Layers: the name a layer section gets without a `name` key ("conv2", "pool1"). */
void cfg_default_name(enum dc_layer_type t, int index, char *buf, size_t len);
/* Names of the layer sections of ini in order (explicit or default), for
 * overrides that address a layer by name.  names[i] is for section secs[i]. */
int cfg_layer_names(const struct dc_ini *ini, char (*names)[DC_NAME_LEN], int *secs, int max);
/* The section index of the layer named name, or -1; list[len] gets the layer
 * names "a, b, c" (cut with ", ..." when long) for a message. */
int cfg_find_layer(const struct dc_ini *ini, const char *name, char *list, size_t len);
/* Build cfg->layers from the layer sections of ini and check them (cfg_emit_net writes net_text). */
enum dc_status cfg_build_layers(const struct dc_ini *ini, struct dc_config *cfg);
/* cfg->net_text from cfg->layers (malloc'd). */
enum dc_status cfg_emit_net(struct dc_config *cfg);

/* Every section of one file is known; global sections and [base] appear at most once. */
enum dc_status cfg_check_sections(const struct dc_ini *ini);
/* Replace ini by its [base] chain merged with it (config_base.c); cfg->bases
 * gets the files read.  Without a [base] section ini stays as it is. */
enum dc_status cfg_resolve_base(struct dc_ini *ini, struct dc_config *cfg);

/* Overrides "section.key=value" / "layer.key=value" written into ini. */
enum dc_status cfg_apply_overrides(struct dc_ini *ini, const char *const *overrides, int n);

#endif
