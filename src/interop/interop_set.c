/* interop_set.c: the container-independent part of interop: a list of named
 * arrays, the choice of container by file name, and whole-file reading. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interop_internal.h"

static int dc_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

enum dc_interop_format dc_interop_format_of(const char *path)
{
    if (dc_ends_with(path, ".npz"))
        return DC_INTEROP_NPZ;
    if (dc_ends_with(path, ".safetensors"))
        return DC_INTEROP_SAFETENSORS;
    return DC_INTEROP_NONE;
}

size_t dc_interop_itemsize(enum dc_interop_dtype dt)
{
    return dt == DC_DTYPE_F64 ? 8 : dt == DC_DTYPE_F32 ? 4 : 1;
}

const char *dc_interop_dtype_name(enum dc_interop_dtype dt)
{
    return dt == DC_DTYPE_F64 ? "float64" : dt == DC_DTYPE_F32 ? "float32" : "uint8";
}

size_t dc_interop_count(const struct dc_interop_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

int dc_interop_find(const struct dc_interop_set *set, const char *name)
{
    for (int i = 0; i < set->n; i++)
        if (!strcmp(set->t[i].name, name))
            return i;
    return -1;
}

enum dc_status dc_interop_add(struct dc_interop_set *set, const char *name, enum dc_interop_dtype dt, int ndim,
                              const int64_t *shape, const void *data)
{
    if (strlen(name) >= DC_INTEROP_NAME_LEN || ndim < 0 || ndim > DC_INTEROP_MAX_DIMS)
        return DC_ERROR(DC_ERR_ARG, "tensor %.60s: name too long or too many dimensions", name);
    if (dc_interop_find(set, name) >= 0)
        return DC_ERROR(DC_ERR_FORMAT, "tensor %s appears twice", name);
    if (set->n == set->cap) {
        int cap = set->cap ? 2 * set->cap : 16;
        struct dc_interop_tensor *t = realloc(set->t, (size_t)cap * sizeof *t);
        if (!t)
            return DC_ERROR(DC_ERR_NOMEM, "out of memory for tensor %s", name);
        set->t = t, set->cap = cap;
    }
    struct dc_interop_tensor *t = &set->t[set->n];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    size_t bytes = dc_interop_count(t) * dc_interop_itemsize(dt);
    t->data = malloc(bytes ? bytes : 1);
    if (!t->data)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory for tensor %s", name);
    if (bytes)
        memcpy(t->data, data, bytes);
    set->n++;
    return DC_OK;
}

void dc_interop_free(struct dc_interop_set *set)
{
    for (int i = 0; i < set->n; i++)
        free(set->t[i].data);
    free(set->t);
    free(set->network);
    free(set->dataset);
    memset(set, 0, sizeof *set);
}

enum dc_status dc_interop_read(const char *path, struct dc_interop_set *out)
{
    memset(out, 0, sizeof *out);
    switch (dc_interop_format_of(path)) {
    case DC_INTEROP_NPZ:
        return dc_npz_read(path, out);
    case DC_INTEROP_SAFETENSORS:
        return dc_safetensors_read(path, out);
    default:
        return DC_ERROR(DC_ERR_ARG, "%s: unknown weights format (expected a .npz or .safetensors file)", path);
    }
}

enum dc_status dc_interop_write(const char *path, const struct dc_interop_set *set)
{
    switch (dc_interop_format_of(path)) {
    case DC_INTEROP_NPZ:
        return dc_npz_write(path, set);
    case DC_INTEROP_SAFETENSORS:
        return dc_safetensors_write(path, set);
    default:
        return DC_ERROR(DC_ERR_ARG, "%s: unknown output format (name it .npz or .safetensors)", path);
    }
}

enum dc_status dc_interop_slurp(const char *path, uint8_t **buf, size_t *size)
{
    *buf = NULL, *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return DC_ERROR(DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    enum dc_status s = DC_OK;
    long len = -1;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        s = DC_ERROR(DC_ERR_IO, "%s: cannot read (is it a regular file?)", path);
    else if ((uint64_t)len > DC_INTEROP_MAX_BYTES)
        s = DC_ERROR(DC_ERR_FORMAT, "%s: too large (%ld bytes)", path, len);
    uint8_t *b = s == DC_OK ? malloc((size_t)len + 1) : NULL;
    if (s == DC_OK && !b)
        s = DC_ERROR(DC_ERR_NOMEM, "%s: out of memory", path);
    if (s == DC_OK && fread(b, 1, (size_t)len, f) != (size_t)len)
        s = DC_ERROR(DC_ERR_IO, "%s: read failed (is it a regular file?)", path);
    fclose(f);
    if (s != DC_OK) {
        free(b);
        return s;
    }
    *buf = b, *size = (size_t)len;
    return DC_OK;
}
