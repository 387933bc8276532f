/* interop_npz.c: NumPy's .npz, a ZIP archive of NAME.npy entries (stored
 * by numpy.savez, deflated by savez_compressed), through libzip, which
 * checks the archive structure and each entry's CRC.  Built without libzip,
 * both directions fail with a message saying so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interop_internal.h"

#ifdef DC_HAVE_LIBZIP
#include <zip.h>

/* Entry i of the archive into t (name without ".npy"). */
static enum dc_status dc_npz_entry(zip_t *z, zip_uint64_t i, const char *path, struct dc_interop_tensor *t)
{
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(z, i, 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE))
        return DC_ERROR(DC_ERR_FORMAT, "%s: entry %llu: %s", path, (unsigned long long)i, zip_strerror(z));
    size_t nlen = strlen(st.name);
    if (nlen < 5 || strcmp(st.name + nlen - 4, ".npy") != 0 || nlen - 4 >= sizeof t->name)
        return DC_ERROR(DC_ERR_FORMAT, "%s: entry '%s' is not a NAME.npy array (or its name is too long)", path,
                        st.name);
    memcpy(t->name, st.name, nlen - 4);
    t->name[nlen - 4] = '\0';
    if (st.size > DC_INTEROP_MAX_BYTES)
        return DC_ERROR(DC_ERR_FORMAT, "%s: entry %s is too large (%llu bytes)", path, st.name,
                        (unsigned long long)st.size);
    uint8_t *buf = malloc(st.size ? st.size : 1);
    if (!buf)
        return DC_ERROR(DC_ERR_NOMEM, "%s: out of memory for entry %s", path, st.name);
    enum dc_status s = DC_OK;
    zip_file_t *f = zip_fopen_index(z, i, 0);
    if (!f) {
        s = DC_ERROR(DC_ERR_FORMAT, "%s: entry %s: %s", path, st.name, zip_strerror(z));
    } else {
        zip_int64_t got = zip_fread(f, buf, st.size);
        char one;
        if (got < 0)
            s = DC_ERROR(DC_ERR_FORMAT, "%s: entry %s: %s", path, st.name, zip_file_strerror(f));
        else if ((zip_uint64_t)got != st.size || zip_fread(f, &one, 1) != 0)
            s = DC_ERROR(DC_ERR_FORMAT, "%s: entry %s: truncated (%lld of %llu bytes)", path, st.name,
                         (long long)got, (unsigned long long)st.size);
        zip_fclose(f);
    }
    if (s == DC_OK) {
        char what[1200];
        snprintf(what, sizeof what, "%s: entry %s", path, st.name);
        s = dc_npy_parse(buf, st.size, what, t);
    }
    free(buf);
    return s;
}

/* A 1-D uint8 array as a NUL-terminated string (the __network__ entry). */
static char *dc_npz_text(const struct dc_interop_tensor *t)
{
    if (t->dtype != DC_DTYPE_U8 || t->ndim > 1)
        return NULL;
    size_t n = dc_interop_count(t);
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, t->data, n);
        s[n] = '\0';
    }
    return s;
}

enum dc_status dc_npz_read(const char *path, struct dc_interop_set *out)
{
    memset(out, 0, sizeof *out);
    int err = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!z) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        enum dc_status s =
            err == ZIP_ER_NOENT || err == ZIP_ER_OPEN || err == ZIP_ER_READ
                ? DC_ERROR(DC_ERR_IO, "%s: cannot open: %s", path, zip_error_strerror(&ze))
                : DC_ERROR(DC_ERR_FORMAT, "%s: not a readable .npz: %s (truncated, or not a ZIP archive)", path,
                           zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return s;
    }
    enum dc_status s = DC_OK;
    zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; s == DC_OK && i < n; i++) {
        struct dc_interop_tensor t;
        memset(&t, 0, sizeof t);
        s = dc_npz_entry(z, (zip_uint64_t)i, path, &t);
        if (s == DC_OK && (!strcmp(t.name, "__network__") || !strcmp(t.name, "__dataset__"))) {
            char **dst = t.name[2] == 'n' ? &out->network : &out->dataset;
            free(*dst);
            *dst = dc_npz_text(&t);
        } else if (s == DC_OK) {
            s = dc_interop_add(out, t.name, t.dtype, t.ndim, t.shape, t.data);
            if (s != DC_OK) {
                char msg[512];
                snprintf(msg, sizeof msg, "%s", dc_error_msg());
                s = DC_ERROR(s, "%s: %s", path, msg);
            }
        }
        free(t.data);
    }
    zip_discard(z);
    if (s == DC_OK && out->n == 0)
        s = DC_ERROR(DC_ERR_FORMAT, "%s: the archive holds no arrays", path);
    if (s != DC_OK)
        dc_interop_free(out);
    return s;
}

static enum dc_status dc_npz_add(zip_t *z, const struct dc_interop_tensor *t, const char *path)
{
    uint8_t *buf;
    size_t size;
    DC_TRY(dc_npy_build(t, &buf, &size));
    char name[DC_INTEROP_NAME_LEN + 8];
    snprintf(name, sizeof name, "%s.npy", t->name);
    zip_source_t *src = zip_source_buffer(z, buf, size, 1); /* libzip frees buf */
    if (!src) {
        free(buf);
        return DC_ERROR(DC_ERR_NOMEM, "%s: %s", path, zip_strerror(z));
    }
    zip_int64_t idx = zip_file_add(z, name, src, ZIP_FL_ENC_UTF_8);
    if (idx < 0) {
        zip_source_free(src);
        return DC_ERROR(DC_ERR_IO, "%s: cannot add %s: %s", path, name, zip_strerror(z));
    }
    zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_STORE, 0);
    return DC_OK;
}

static enum dc_status dc_npz_add_text(zip_t *z, const char *name, const char *text, const char *path)
{
    struct dc_interop_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.dtype = DC_DTYPE_U8;
    t.ndim = 1;
    t.shape[0] = (int64_t)strlen(text);
    t.data = (void *)text;
    return dc_npz_add(z, &t, path);
}

enum dc_status dc_npz_write(const char *path, const struct dc_interop_set *set)
{
    int err = 0;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    if (!z) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        enum dc_status s = DC_ERROR(DC_ERR_IO, "%s: cannot create: %s", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return s;
    }
    enum dc_status s = DC_OK;
    for (int i = 0; s == DC_OK && i < set->n; i++)
        s = dc_npz_add(z, &set->t[i], path);
    if (s == DC_OK && set->network)
        s = dc_npz_add_text(z, "__network__", set->network, path);
    if (s == DC_OK && set->dataset)
        s = dc_npz_add_text(z, "__dataset__", set->dataset, path);
    if (s != DC_OK) {
        zip_discard(z);
        return s;
    }
    if (zip_close(z) != 0) { /* libzip writes a temporary file and renames it */
        s = DC_ERROR(DC_ERR_IO, "%s: write failed: %s; the earlier %s, if any, is intact", path, zip_strerror(z),
                     path);
        zip_discard(z);
    }
    return s;
}

#else /* no libzip */

enum dc_status dc_npz_read(const char *path, struct dc_interop_set *out)
{
    memset(out, 0, sizeof *out);
    return DC_ERROR(DC_ERR_UNSUPPORTED, "%s: .npz support was built without libzip (install libzip-dev and rebuild)",
                    path);
}

enum dc_status dc_npz_write(const char *path, const struct dc_interop_set *set)
{
    (void)set;
    return DC_ERROR(DC_ERR_UNSUPPORTED, "%s: .npz support was built without libzip (install libzip-dev and rebuild)",
                    path);
}
#endif
