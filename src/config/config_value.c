/* config_value.c: turns INI text into typed fields through the key tables of
 * config_keys.c, strictly: "6x4" is not an integer, "0.1abc" is not a number,
 * and a value outside its range names the range, so a typo never becomes a
 * silent default the way it did in darknet. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

/* "a, b or c" */
static void word_list(const char *const *words, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; words[i] && n < len; i++) {
        const char *sep = i == 0 ? "" : words[i + 1] ? ", " : " or ";
        n += (size_t)snprintf(buf + n, len - n, "%s%s", sep, words[i]);
    }
}

static int word_index(const char *const *words, const char *v)
{
    for (int i = 0; words[i]; i++)
        if (strcmp(words[i], v) == 0)
            return i;
    return -1;
}

static void range_text(const struct cfg_key *k, char *buf, size_t len)
{
    if (k->kind == CFG_INT && k->hi >= INT_MAX)
        snprintf(buf, len, "must be >= %.0f", k->lo);
    else if (k->kind == CFG_INT)
        snprintf(buf, len, "must be between %.0f and %.0f", k->lo, k->hi);
    else if (isinf(k->hi))
        snprintf(buf, len, "must be %s %g", k->lo_open ? ">" : ">=", k->lo);
    else
        snprintf(buf, len, "must be in %c%g, %g%c", k->lo_open ? '(' : '[', k->lo, k->hi, k->hi_open ? ')' : ']');
}

static int in_range(const struct cfg_key *k, double x)
{
    if (x < k->lo || (k->lo_open && x == k->lo))
        return 0;
    return x < k->hi || (!k->hi_open && x == k->hi);
}

/* An integer key with a word list takes only the listed values ("016" counts as "16"). */
static int int_listed(const struct cfg_key *k, long long x)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", x);
    return k->kind != CFG_INT || !k->words || word_index(k->words, text) >= 0;
}

/* Parse v into the field of k; on failure write the reason and return 0. */
static int parse_into(const struct cfg_key *k, const char *v, void *base, char *why, size_t len)
{
    char *field = (char *)base + k->off;
    char *end = NULL;
    char words[160];
    if (!*v && k->kind != CFG_STR) {
        snprintf(why, len, "no value after '='");
        return 0;
    }
    errno = 0;
    switch (k->kind) {
    case CFG_INT:
    case CFG_BOOL: {
        long long x = strtoll(v, &end, 10);
        if (*end || end == v) {
            if (k->kind == CFG_BOOL)
                snprintf(why, len, "must be 0 or 1 (got '%s')", v);
            else
                snprintf(why, len, "'%s' is not an integer", v);
            return 0;
        }
        if (errno == ERANGE || x < INT_MIN || x > INT_MAX || !in_range(k, (double)x) || !int_listed(k, x)) {
            char r[80] = "must be 0 or 1";
            if (k->kind == CFG_INT && k->words) {
                char list[60];
                word_list(k->words, list, sizeof list);
                snprintf(r, sizeof r, "must be %s", list);
            } else if (k->kind == CFG_INT) {
                range_text(k, r, sizeof r);
            }
            snprintf(why, len, "%s (got %s)", r, v);
            return 0;
        }
        *(int *)field = (int)x;
        return 1;
    }
    case CFG_FLOAT: {
        float x = (float)strtod(v, &end);
        if (*end || end == v) {
            snprintf(why, len, "'%s' is not a number", v);
            return 0;
        }
        /* range-check the stored float: 0.999999999 rounds to 1.0f */
        if (!isfinite(x) || !in_range(k, (double)x)) {
            char r[80];
            range_text(k, r, sizeof r);
            snprintf(why, len, "%s (got %s)", r, v);
            return 0;
        }
        *(float *)field = x;
        return 1;
    }
    case CFG_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (*end || end == v || v[0] == '-' || errno == ERANGE) {
            snprintf(why, len, "'%s' is not an integer in 0..%" PRIu64, v, UINT64_MAX);
            return 0;
        }
        *(uint64_t *)field = (uint64_t)x;
        return 1;
    }
    case CFG_STR:
    case CFG_ENUM:
        if (k->words && word_index(k->words, v) < 0) {
            word_list(k->words, words, sizeof words);
            snprintf(why, len, "unknown value '%s'; use %s", v, words);
            return 0;
        }
        if (k->kind == CFG_ENUM) {
            *(int *)field = word_index(k->words, v);
            return 1;
        }
        if (!*v) {
            snprintf(why, len, "no value after '='");
            return 0;
        }
        if (strlen(v) >= k->len) {
            snprintf(why, len, "'%s' is longer than %zu characters", v, k->len - 1);
            return 0;
        }
        memcpy(field, v, strlen(v) + 1);
        return 1;
    }
    snprintf(why, len, "internal: key kind %d", (int)k->kind);
    return 0;
}

void cfg_set_defaults(const struct cfg_section *sec, void *base)
{
    char why[256];
    for (int i = 0; i < sec->nkeys; i++) {
        if (!sec->keys[i].dflt)
            continue;
        int ok = parse_into(&sec->keys[i], sec->keys[i].dflt, base, why, sizeof why);
        assert(ok && "a default in config_keys.c fails its own key's check");
        (void)ok;
    }
}

static void key_list(const struct cfg_section *sec, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < sec->nkeys && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", sec->keys[i].name);
}

enum dc_status cfg_apply(const struct dc_ini *ini, const struct dc_ini_section *s,
                         const struct cfg_section *sec, void *base, uint64_t *given)
{
    char why[400];
    *given = 0;
    for (int j = 0; j < s->nentries; j++) {
        const struct dc_ini_entry *e = &s->entries[j];
        int i = cfg_key_index(sec, e->key);
        if (i < 0) {
            key_list(sec, why, sizeof why);
            return cfg_fail(ini, s, e, e->key, "unknown key; [%s] takes %s", s->name, why);
        }
        if (!parse_into(&sec->keys[i], e->value, base, why, sizeof why))
            return cfg_fail(ini, s, e, e->key, "%s", why);
        *given |= 1ull << i;
    }
    for (int i = 0; i < sec->nkeys; i++) {
        const struct cfg_key *k = &sec->keys[i];
        if (!k->required || (*given & (1ull << i)))
            continue;
        if (k->words)
            word_list(k->words, why, sizeof why);
        return cfg_fail(ini, s, NULL, k->name, "required key missing; add `%s = %s`", k->name,
                        k->words ? why : "...");
    }
    return DC_OK;
}

void cfg_format(const struct cfg_key *k, const void *base, char *buf, size_t len)
{
    const char *field = (const char *)base + k->off;
    switch (k->kind) {
    case CFG_INT:
    case CFG_BOOL:
        snprintf(buf, len, "%d", *(const int *)field);
        return;
    case CFG_FLOAT: {
        /* shortest text that reads back as the same float */
        float x = *(const float *)field;
        for (int prec = 6; prec <= 9; prec++) {
            snprintf(buf, len, "%.*g", prec, (double)x);
            if ((float)strtod(buf, NULL) == x)
                return;
        }
        return;
    }
    case CFG_U64:
        snprintf(buf, len, "%" PRIu64, *(const uint64_t *)field);
        return;
    case CFG_STR:
        snprintf(buf, len, "%s", field);
        return;
    case CFG_ENUM:
        snprintf(buf, len, "%s", k->words[*(const int *)field]);
        return;
    }
    buf[0] = '\0';
}
