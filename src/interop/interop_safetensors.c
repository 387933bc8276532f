/* interop_safetensors.c: the safetensors format (8-byte little-endian
 * header size N, N bytes of JSON {name: {"dtype", "shape", "data_offsets":
 * [begin, end]}, "__metadata__": {string: string}}, then the data, offsets
 * relative to its start).  JSON through libcjson; every offset is checked
 * against the data there is.  Built without libcjson, both directions fail
 * with a message saying so. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interop_internal.h"

#ifdef DC_HAVE_CJSON
#include <cjson/cJSON.h>

#include "dc/atomic_file.h"

static const char *const dc_st_dtypes[] = {"F32", "F64", "U8"}; /* enum dc_interop_dtype order */

/* A JSON number that is a whole value in [0, max]. */
static int dc_st_uint(const cJSON *j, uint64_t max, uint64_t *out)
{
    if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble > (double)max ||
        j->valuedouble != (double)(uint64_t)j->valuedouble)
        return 0;
    *out = (uint64_t)j->valuedouble;
    return 1;
}

static enum dc_status dc_st_tensor(const cJSON *e, const uint8_t *data, uint64_t dsize, const char *origin,
                                   struct dc_interop_set *out)
{
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return DC_ERROR(DC_ERR_FORMAT, "%s: tensor %s: header entry is not an object", origin, name);
    if (strlen(name) >= DC_INTEROP_NAME_LEN)
        return DC_ERROR(DC_ERR_FORMAT, "%s: tensor name longer than %d characters", origin, DC_INTEROP_NAME_LEN - 1);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return DC_ERROR(DC_ERR_FORMAT, "%s: tensor %s: needs \"dtype\" (a string), \"shape\" (an array) and "
                        "\"data_offsets\" ([begin, end])", origin, name);
    int d = -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(dt->valuestring, dc_st_dtypes[i]))
            d = i;
    if (d < 0)
        return DC_ERROR(DC_ERR_FORMAT, "%s: tensor %s: dtype %s is not supported (F32, F64 or U8; convert "
                        "with .float())", origin, name, dt->valuestring);
    int ndim = cJSON_GetArraySize(sh);
    if (ndim > DC_INTEROP_MAX_DIMS)
        return DC_ERROR(DC_ERR_FORMAT, "%s: tensor %s: %d dimensions, at most %d", origin, name, ndim,
                        DC_INTEROP_MAX_DIMS);
    int64_t shape[DC_INTEROP_MAX_DIMS];
    uint64_t count = 1, b, en, v;
    for (int i = 0; i < ndim; i++) {
        if (!dc_st_uint(cJSON_GetArrayItem(sh, i), DC_INTEROP_MAX_BYTES, &v))
            return DC_ERROR(DC_ERR_FORMAT, "%s: tensor %s: shape entry %d is not a non-negative integer", origin,
                            name, i);
        shape[i] = (int64_t)v;
        count *= v;
        if (count > DC_INTEROP_MAX_BYTES)
            return DC_ERROR(DC_ERR_FORMAT, "%s: tensor %s: too large", origin, name);
    }
    if (!dc_st_uint(cJSON_GetArrayItem(off, 0), UINT64_MAX >> 12, &b) ||
        !dc_st_uint(cJSON_GetArrayItem(off, 1), UINT64_MAX >> 12, &en) || b > en)
        return DC_ERROR(DC_ERR_FORMAT, "%s: tensor %s: data_offsets must be [begin, end] with begin <= end", origin,
                        name);
    if (en > dsize)
        return DC_ERROR(DC_ERR_FORMAT, "%s: truncated: tensor %s ends at data byte %llu, the file has %llu",
                        origin, name, (unsigned long long)en, (unsigned long long)dsize);
    uint64_t bytes = count * dc_interop_itemsize((enum dc_interop_dtype)d);
    if (en - b != bytes)
        return DC_ERROR(DC_ERR_FORMAT, "%s: tensor %s: data_offsets span %llu bytes, dtype and shape need %llu",
                        origin, name, (unsigned long long)(en - b), (unsigned long long)bytes);
    enum dc_status s = dc_interop_add(out, name, (enum dc_interop_dtype)d, ndim, shape, data + b);
    if (s != DC_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", dc_error_msg());
        s = DC_ERROR(s, "%s: %s", origin, msg);
    }
    return s;
}

static char *dc_st_meta(const cJSON *meta, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

enum dc_status dc_safetensors_parse(const uint8_t *buf, size_t size, const char *origin,
                                    struct dc_interop_set *out)
{
    memset(out, 0, sizeof *out);
    if (size < 8)
        return DC_ERROR(DC_ERR_FORMAT, "%s: truncated: %zu bytes, the header size alone takes 8", origin, size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | buf[i];
    if (n > size - 8)
        return DC_ERROR(DC_ERR_FORMAT, "%s: JSON header size %llu is beyond the file (%zu bytes after the size "
                        "field): truncated or not a safetensors file", origin, (unsigned long long)n, size - 8);
    if (n < 2 || buf[8] != '{')
        return DC_ERROR(DC_ERR_FORMAT, "%s: not a safetensors file (the header is not a JSON object)", origin);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)buf + 8, (size_t)n, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        size_t at = end ? (size_t)(end - (const char *)buf - 8) : 0;
        cJSON_Delete(root);
        return DC_ERROR(DC_ERR_FORMAT, "%s: bad JSON header (near byte %zu of %llu)", origin, at,
                        (unsigned long long)n);
    }
    for (const char *p = end; p < (const char *)buf + 8 + n; p++)
        if (*p != ' ') {
            cJSON_Delete(root);
            return DC_ERROR(DC_ERR_FORMAT, "%s: bad JSON header: bytes after the object", origin);
        }
    enum dc_status s = DC_OK;
    const cJSON *e;
    cJSON_ArrayForEach(e, root)
    {
        if (s != DC_OK)
            break;
        if (!strcmp(e->string, "__metadata__")) {
            if (!cJSON_IsObject(e)) {
                s = DC_ERROR(DC_ERR_FORMAT, "%s: __metadata__ is not an object", origin);
            } else {
                out->network = dc_st_meta(e, "network");
                out->dataset = dc_st_meta(e, "dataset");
            }
            continue;
        }
        s = dc_st_tensor(e, buf + 8 + n, size - 8 - n, origin, out);
    }
    cJSON_Delete(root);
    if (s == DC_OK && out->n == 0)
        s = DC_ERROR(DC_ERR_FORMAT, "%s: the file holds no tensors", origin);
    if (s != DC_OK)
        dc_interop_free(out);
    return s;
}

enum dc_status dc_safetensors_read(const char *path, struct dc_interop_set *out)
{
    uint8_t *buf;
    size_t size;
    memset(out, 0, sizeof *out);
    DC_TRY(dc_interop_slurp(path, &buf, &size));
    enum dc_status s = dc_safetensors_parse(buf, size, path, out);
    free(buf);
    return s;
}

enum dc_status dc_safetensors_write(const char *path, const struct dc_interop_set *set)
{
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    int ok = root && meta && cJSON_AddItemToObject(root, "__metadata__", meta);
    if (!ok)
        cJSON_Delete(meta);
    ok = ok && cJSON_AddStringToObject(meta, "format", "pt") && cJSON_AddStringToObject(meta, "producer", "dcexport");
    if (ok && set->network)
        ok = cJSON_AddStringToObject(meta, "network", set->network) != NULL;
    if (ok && set->dataset)
        ok = cJSON_AddStringToObject(meta, "dataset", set->dataset) != NULL;
    uint64_t off = 0;
    for (int i = 0; ok && i < set->n; i++) {
        const struct dc_interop_tensor *t = &set->t[i];
        uint64_t bytes = dc_interop_count(t) * dc_interop_itemsize(t->dtype);
        cJSON *e = cJSON_AddObjectToObject(root, t->name), *sh = cJSON_CreateArray();
        double offs[2] = {(double)off, (double)(off + bytes)};
        ok = e && sh && cJSON_AddStringToObject(e, "dtype", dc_st_dtypes[t->dtype]) && cJSON_AddItemToObject(e, "shape", sh);
        for (int k = 0; ok && k < t->ndim; k++)
            ok = cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[k]));
        ok = ok && cJSON_AddItemToObject(e, "data_offsets", cJSON_CreateDoubleArray(offs, 2));
        off += bytes;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json)
        return DC_ERROR(DC_ERR_NOMEM, "%s: out of memory building the JSON header", path);
    size_t jlen = strlen(json), hlen = (jlen + 7) / 8 * 8; /* pad with spaces: data 8-byte aligned */
    size_t size = 8 + hlen + (size_t)off;
    uint8_t *buf = malloc(size);
    if (!buf) {
        free(json);
        return DC_ERROR(DC_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, json, jlen);
    memset(buf + 8 + jlen, ' ', hlen - jlen);
    free(json);
    uint8_t *d = buf + 8 + hlen;
    for (int i = 0; i < set->n; i++) {
        size_t bytes = dc_interop_count(&set->t[i]) * dc_interop_itemsize(set->t[i].dtype);
        memcpy(d, set->t[i].data, bytes);
        d += bytes;
    }
    enum dc_status s = dc_file_write_atomic(path, buf, size);
    free(buf);
    return s;
}

#else /* no libcjson */

enum dc_status dc_safetensors_parse(const uint8_t *buf, size_t size, const char *origin, struct dc_interop_set *out)
{
    (void)buf, (void)size;
    memset(out, 0, sizeof *out);
    return DC_ERROR(DC_ERR_UNSUPPORTED,
                    "%s: .safetensors support was built without libcjson (install libcjson-dev and rebuild)", origin);
}

enum dc_status dc_safetensors_read(const char *path, struct dc_interop_set *out)
{
    return dc_safetensors_parse(NULL, 0, path, out);
}

enum dc_status dc_safetensors_write(const char *path, const struct dc_interop_set *set)
{
    (void)set;
    return DC_ERROR(DC_ERR_UNSUPPORTED,
                    "%s: .safetensors support was built without libcjson (install libcjson-dev and rebuild)", path);
}
#endif
