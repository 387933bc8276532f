/* ini.c: the INI reader behind the typed config.  It keeps the line of every
 * section and key so each later complaint can point at the place to fix, and
 * it rejects what darknet silently skipped (a line with no '=', a stray '['). */
#include "dc/ini.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DC_INI_MAX_BYTES (1 << 20) /* a config is a few KB; anything this big is the wrong file */

static char *ini_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static enum dc_status ini_syntax_error(const struct dc_ini *ini, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static enum dc_status ini_syntax_error(const struct dc_ini *ini, int line, const char *fmt, ...)
{
    char reason[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return DC_ERROR(DC_ERR_CONFIG, "%s:%d: %s", ini->origin, line, reason);
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

static char *trim(char *s)
{
    while (is_space(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* A comment starts with '#' or ';' at the start or after whitespace, so a
 * path such as "data/run#2" keeps its '#'. */
const char *dc_ini_comment_start(const char *s)
{
    for (const char *p = s; *p; p++)
        if ((*p == '#' || *p == ';') && (p == s || is_space(p[-1])))
            return p;
    return NULL;
}

static void cut_comment(char *s)
{
    const char *c = dc_ini_comment_start(s);
    if (c)
        s[c - s] = '\0';
}

static int is_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

const char *dc_ini_file(const struct dc_ini *ini, const char *file) { return file ? file : ini->origin; }

int dc_ini_find_section(const struct dc_ini *ini, const char *name)
{
    for (int i = 0; i < ini->nsections; i++)
        if (strcmp(ini->sections[i].name, name) == 0)
            return i;
    return -1;
}

const struct dc_ini_entry *dc_ini_find(const struct dc_ini_section *s, const char *key)
{
    for (int i = 0; i < s->nentries; i++)
        if (strcmp(s->entries[i].key, key) == 0)
            return &s->entries[i];
    return NULL;
}

enum dc_status dc_ini_add_section(struct dc_ini *ini, const char *name, int line, const char *source,
                                  int *index)
{
    if (ini->nsections == ini->cap) {
        int cap = ini->cap ? 2 * ini->cap : 16;
        struct dc_ini_section *s = realloc(ini->sections, (size_t)cap * sizeof *s);
        if (!s)
            return DC_ERROR(DC_ERR_NOMEM, "out of memory reading %s", ini->origin);
        ini->sections = s;
        ini->cap = cap;
    }
    struct dc_ini_section *s = &ini->sections[ini->nsections];
    memset(s, 0, sizeof *s);
    s->name = ini_strdup(name);
    s->source = source ? ini_strdup(source) : NULL;
    s->line = line;
    if (!s->name || (source && !s->source)) {
        free(s->name);
        free(s->source);
        return DC_ERROR(DC_ERR_NOMEM, "out of memory reading %s", ini->origin);
    }
    *index = ini->nsections++;
    return DC_OK;
}

enum dc_status dc_ini_set(struct dc_ini_section *s, const char *key, const char *value, int line,
                          const char *source)
{
    char *v = ini_strdup(value);
    char *src = source ? ini_strdup(source) : NULL;
    if (!v || (source && !src)) {
        free(v);
        free(src);
        return DC_ERROR(DC_ERR_NOMEM, "out of memory setting [%s] %s", s->name, key);
    }
    struct dc_ini_entry *e = (struct dc_ini_entry *)dc_ini_find(s, key);
    if (!e) {
        if (s->nentries == s->cap) {
            int cap = s->cap ? 2 * s->cap : 8;
            struct dc_ini_entry *n = realloc(s->entries, (size_t)cap * sizeof *n);
            if (!n) {
                free(v);
                free(src);
                return DC_ERROR(DC_ERR_NOMEM, "out of memory setting [%s] %s", s->name, key);
            }
            s->entries = n;
            s->cap = cap;
        }
        e = &s->entries[s->nentries];
        e->key = ini_strdup(key);
        if (!e->key) {
            free(v);
            free(src);
            return DC_ERROR(DC_ERR_NOMEM, "out of memory setting [%s] %s", s->name, key);
        }
        s->nentries++;
    } else {
        free(e->value);
        free(e->source);
        free(e->file);
    }
    e->file = NULL; /* the caller names a base config after the call */
    e->value = v;
    e->source = src;
    e->line = line;
    return DC_OK;
}

static enum dc_status parse_header(struct dc_ini *ini, char *s, int line, int *cur)
{
    char *close = strchr(s, ']');
    if (!close)
        return ini_syntax_error(ini, line, "unterminated '[': a section header reads [name]");
    *close = '\0';
    char *rest = trim(close + 1);
    if (*rest)
        return ini_syntax_error(ini, line, "text '%s' after the section header; put it on its own line",
                                rest);
    char *name = trim(s + 1);
    if (!*name)
        return ini_syntax_error(ini, line, "empty section name '[]'");
    if (!is_name(name))
        return ini_syntax_error(ini, line, "bad section name '[%s]': use letters, digits and '_'", name);
    return dc_ini_add_section(ini, name, line, NULL, cur);
}

static enum dc_status parse_pair(struct dc_ini *ini, char *s, int line, int cur)
{
    char *eq = strchr(s, '=');
    if (!eq)
        return ini_syntax_error(ini, line, "line '%s' has no '=': write key = value (comments start with # or ;)",
                                s);
    *eq = '\0';
    char *key = trim(s);
    char *value = trim(eq + 1);
    if (!*key)
        return ini_syntax_error(ini, line, "empty key before '='");
    if (!is_name(key))
        return ini_syntax_error(ini, line, "bad key '%s': use letters, digits and '_'", key);
    if (cur < 0)
        return ini_syntax_error(ini, line, "key '%s' is outside any section; put a [section] header above it",
                                key);
    struct dc_ini_section *sec = &ini->sections[cur];
    const struct dc_ini_entry *old = dc_ini_find(sec, key);
    if (old)
        return ini_syntax_error(ini, line, "[%s] %s: given twice in one section (first at line %d); keep one",
                                sec->name, key, old->line);
    return dc_ini_set(sec, key, value, line, NULL);
}

enum dc_status dc_ini_parse(const char *text, const char *origin, struct dc_ini *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->origin, sizeof out->origin, "%s", origin);
    char *buf = ini_strdup(text);
    if (!buf)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory reading %s", origin);
    char *p = buf;
    if ((unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF)
        p += 3; /* UTF-8 byte order mark, as some editors write */
    enum dc_status st = DC_OK;
    int cur = -1;
    for (int line = 1; st == DC_OK && p && *p; line++) {
        char *eol = strchr(p, '\n');
        if (eol)
            *eol = '\0';
        cut_comment(p);
        char *s = trim(p);
        if (*s == '[')
            st = parse_header(out, s, line, &cur);
        else if (*s)
            st = parse_pair(out, s, line, cur);
        p = eol ? eol + 1 : NULL;
    }
    free(buf);
    if (st != DC_OK)
        dc_ini_free(out);
    return st;
}

/* Whole file into a NUL-terminated buffer; *len gets the byte count. */
static enum dc_status read_text(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return DC_ERROR(DC_ERR_IO, "cannot open config %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    enum dc_status st = buf ? DC_OK : DC_ERROR(DC_ERR_NOMEM, "out of memory reading %s", path);
    while (st == DC_OK) {
        if (n + 1 == cap) {
            char *b = cap > DC_INI_MAX_BYTES ? NULL : realloc(buf, 2 * cap);
            if (!b) {
                st = cap > DC_INI_MAX_BYTES
                         ? DC_ERROR(DC_ERR_CONFIG, "%s: larger than %d bytes; is it really a config file?", path,
                                    DC_INI_MAX_BYTES)
                         : DC_ERROR(DC_ERR_NOMEM, "out of memory reading %s", path);
                break;
            }
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                st = DC_ERROR(DC_ERR_IO, "cannot read config %s: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (st != DC_OK) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return DC_OK;
}

enum dc_status dc_ini_load(const char *path, struct dc_ini *out)
{
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    DC_TRY(read_text(path, &text, &len));
    enum dc_status st;
    if (strlen(text) != len)
        st = DC_ERROR(DC_ERR_CONFIG, "%s: contains a NUL byte; is it really a config file?", path);
    else
        st = dc_ini_parse(text, path, out);
    free(text);
    return st;
}

void dc_ini_free(struct dc_ini *ini)
{
    for (int i = 0; i < ini->nsections; i++) {
        struct dc_ini_section *s = &ini->sections[i];
        for (int j = 0; j < s->nentries; j++) {
            free(s->entries[j].key);
            free(s->entries[j].value);
            free(s->entries[j].source);
            free(s->entries[j].file);
        }
        free(s->entries);
        free(s->name);
        free(s->source);
        free(s->file);
    }
    free(ini->sections);
    ini->sections = NULL;
    ini->nsections = ini->cap = 0;
}
