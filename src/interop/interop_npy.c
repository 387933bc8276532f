/* interop_npy.c: one .npy array (NumPy's format: magic "\x93NUMPY", version,
 * a Python dict literal header {'descr', 'fortran_order', 'shape'}, then the
 * data in C order), parsed with a small strict reader and built for export.
 * Only little-endian float32/float64 and uint8 are accepted. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interop_internal.h"

struct dc_npy_cursor {
    const char *p, *end;
    const char *what;
};

static void dc_npy_ws(struct dc_npy_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* A quoted string ('x' or "x") into out. */
static enum dc_status dc_npy_string(struct dc_npy_cursor *c, char *out, size_t len, const char *field)
{
    dc_npy_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return DC_ERROR(DC_ERR_FORMAT, "%s: npy header: expected a quoted %s", c->what, field);
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (n + 1 >= len)
            return DC_ERROR(DC_ERR_FORMAT, "%s: npy header: %s too long", c->what, field);
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return DC_ERROR(DC_ERR_FORMAT, "%s: npy header: unterminated %s", c->what, field);
    c->p++;
    out[n] = '\0';
    return DC_OK;
}

static enum dc_status dc_npy_expect(struct dc_npy_cursor *c, char ch, const char *where)
{
    dc_npy_ws(c);
    if (c->p >= c->end || *c->p != ch)
        return DC_ERROR(DC_ERR_FORMAT, "%s: npy header: expected '%c' %s", c->what, ch, where);
    c->p++;
    return DC_OK;
}

/* (d0, d1, ...) with an optional trailing comma; () is a scalar. */
static enum dc_status dc_npy_shape(struct dc_npy_cursor *c, struct dc_interop_tensor *t)
{
    DC_TRY(dc_npy_expect(c, '(', "to open 'shape'"));
    t->ndim = 0;
    for (;;) {
        dc_npy_ws(c);
        if (c->p < c->end && *c->p == ')') {
            c->p++;
            return DC_OK;
        }
        if (c->p >= c->end || !isdigit((unsigned char)*c->p))
            return DC_ERROR(DC_ERR_FORMAT, "%s: npy header: 'shape' must be a tuple of non-negative integers",
                            c->what);
        uint64_t v = 0;
        while (c->p < c->end && isdigit((unsigned char)*c->p)) {
            v = v * 10 + (uint64_t)(*c->p++ - '0');
            if (v > DC_INTEROP_MAX_BYTES)
                return DC_ERROR(DC_ERR_FORMAT, "%s: npy header: dimension too large", c->what);
        }
        if (c->p < c->end && *c->p == 'L')
            c->p++;
        if (t->ndim >= DC_INTEROP_MAX_DIMS)
            return DC_ERROR(DC_ERR_FORMAT, "%s: npy header: more than %d dimensions", c->what,
                            DC_INTEROP_MAX_DIMS);
        t->shape[t->ndim++] = (int64_t)v;
        dc_npy_ws(c);
        if (c->p < c->end && *c->p == ',')
            c->p++;
        else if (c->p >= c->end || *c->p != ')')
            return DC_ERROR(DC_ERR_FORMAT, "%s: npy header: expected ',' or ')' in 'shape'", c->what);
    }
}

static enum dc_status dc_npy_descr(const char *d, const char *what, enum dc_interop_dtype *dt)
{
    if (!strcmp(d, "<f4"))
        *dt = DC_DTYPE_F32;
    else if (!strcmp(d, "<f8"))
        *dt = DC_DTYPE_F64;
    else if (!strcmp(d, "|u1") || !strcmp(d, "<u1"))
        *dt = DC_DTYPE_U8;
    else if (d[0] == '>')
        return DC_ERROR(DC_ERR_FORMAT,
                        "%s: big-endian dtype '%s': only little-endian float32 ('<f4') and float64 ('<f8') "
                        "are read (save a.astype('<f4'))",
                        what, d);
    else
        return DC_ERROR(DC_ERR_FORMAT,
                        "%s: dtype '%s' is not supported: float32 '<f4', float64 '<f8' or uint8 '|u1' "
                        "(save a.astype('float32'))",
                        what, d);
    return DC_OK;
}

/* The header dict: each of the three keys exactly once, nothing else. */
static enum dc_status dc_npy_dict(struct dc_npy_cursor *c, struct dc_interop_tensor *t)
{
    int have_descr = 0, have_order = 0, have_shape = 0;
    DC_TRY(dc_npy_expect(c, '{', "at the start of the header"));
    for (;;) {
        dc_npy_ws(c);
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            break;
        }
        char key[32], val[32];
        DC_TRY(dc_npy_string(c, key, sizeof key, "key"));
        DC_TRY(dc_npy_expect(c, ':', "after a key"));
        dc_npy_ws(c);
        if (!strcmp(key, "descr") && !have_descr) {
            DC_TRY(dc_npy_string(c, val, sizeof val, "'descr'"));
            DC_TRY(dc_npy_descr(val, c->what, &t->dtype));
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order") && !have_order) {
            size_t left = (size_t)(c->end - c->p);
            if (left >= 5 && !memcmp(c->p, "False", 5)) {
                c->p += 5;
            } else if (left >= 4 && !memcmp(c->p, "True", 4)) {
                return DC_ERROR(DC_ERR_FORMAT,
                                "%s: fortran_order is True: save a C-ordered array (np.ascontiguousarray)",
                                c->what);
            } else {
                return DC_ERROR(DC_ERR_FORMAT, "%s: npy header: 'fortran_order' must be True or False",
                                c->what);
            }
            have_order = 1;
        } else if (!strcmp(key, "shape") && !have_shape) {
            DC_TRY(dc_npy_shape(c, t));
            have_shape = 1;
        } else {
            return DC_ERROR(DC_ERR_FORMAT, "%s: npy header: unexpected or repeated key '%s'", c->what, key);
        }
        dc_npy_ws(c);
        if (c->p < c->end && *c->p == ',')
            c->p++;
        else if (c->p >= c->end || *c->p != '}')
            return DC_ERROR(DC_ERR_FORMAT, "%s: npy header: expected ',' or '}' after '%s'", c->what, key);
    }
    if (!have_descr || !have_order || !have_shape)
        return DC_ERROR(DC_ERR_FORMAT, "%s: npy header: missing '%s'", c->what,
                        !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    return DC_OK;
}

enum dc_status dc_npy_parse(const uint8_t *buf, size_t size, const char *what, struct dc_interop_tensor *t)
{
    t->data = NULL;
    if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return DC_ERROR(DC_ERR_FORMAT, "%s: not a .npy array (%s)", what,
                        size < 10 ? "truncated before the header" : "no \\x93NUMPY magic");
    int major = buf[6];
    size_t hlen, start;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        start = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12)
            return DC_ERROR(DC_ERR_FORMAT, "%s: truncated in the npy header", what);
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        start = 12;
    } else {
        return DC_ERROR(DC_ERR_FORMAT, "%s: npy version %d.%d is not supported (1.0 to 3.0)", what, major, buf[7]);
    }
    if (hlen > size - start)
        return DC_ERROR(DC_ERR_FORMAT, "%s: truncated: npy header of %zu bytes, %zu left", what, hlen,
                        size - start);
    struct dc_npy_cursor c = {(const char *)buf + start, (const char *)buf + start + hlen, what};
    DC_TRY(dc_npy_dict(&c, t));
    dc_npy_ws(&c);
    if (c.p != c.end)
        return DC_ERROR(DC_ERR_FORMAT, "%s: npy header: bytes after the dict", what);
    uint64_t count = 1;
    for (int i = 0; i < t->ndim; i++) {
        count *= (uint64_t)t->shape[i];
        if (count > DC_INTEROP_MAX_BYTES)
            return DC_ERROR(DC_ERR_FORMAT, "%s: array too large", what);
    }
    uint64_t bytes = count * dc_interop_itemsize(t->dtype), have = size - start - hlen;
    if (have != bytes)
        return DC_ERROR(DC_ERR_FORMAT, "%s: %s: shape needs %llu data bytes, %llu there", what,
                        have < bytes ? "truncated" : "trailing bytes", (unsigned long long)bytes,
                        (unsigned long long)have);
    t->data = malloc(bytes ? bytes : 1);
    if (!t->data)
        return DC_ERROR(DC_ERR_NOMEM, "%s: out of memory", what);
    memcpy(t->data, buf + start + hlen, bytes);
    return DC_OK;
}

enum dc_status dc_npy_build(const struct dc_interop_tensor *t, uint8_t **buf, size_t *size)
{
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     t->dtype == DC_DTYPE_F32 ? "<f4" : t->dtype == DC_DTYPE_F64 ? "<f8" : "|u1");
    for (int i = 0; i < t->ndim; i++)
        n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%lld%s", (long long)t->shape[i],
                      t->ndim == 1 || i + 1 < t->ndim ? ", " : "");
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "), }");
    size_t hlen = (size_t)n + 1; /* the final '\n' */
    size_t pad = (64 - (10 + hlen) % 64) % 64;
    hlen += pad;
    size_t bytes = dc_interop_count(t) * dc_interop_itemsize(t->dtype);
    uint8_t *b = malloc(10 + hlen + bytes);
    if (!b)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory for array %s", t->name);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)(hlen & 0xff), b[9] = (uint8_t)(hlen >> 8);
    memcpy(b + 10, hdr, (size_t)n);
    memset(b + 10 + n, ' ', pad);
    b[10 + hlen - 1] = '\n';
    memcpy(b + 10 + hlen, t->data, bytes);
    *buf = b;
    *size = 10 + hlen + bytes;
    return DC_OK;
}
