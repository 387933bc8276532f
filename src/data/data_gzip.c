/* data_gzip.c: read a whole data file into memory, inflating it when it is
 * gzip-compressed, so the readers accept the official MNIST .gz files and
 * their uncompressed copies alike.  Damage is reported with the path and
 * what zlib found (truncated stream, bad block, wrong checksum). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dc/data.h"

/* Read the file's raw bytes. */
static enum dc_status read_raw(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return DC_ERROR(DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return DC_ERROR(DC_ERR_IO, "%s: cannot determine the file size: %s", path, strerror(errno));
    }
    uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
    if (!buf) {
        fclose(f);
        return DC_ERROR(DC_ERR_NOMEM, "%s: cannot allocate %ld bytes to read it", path, len);
    }
    size_t got = fread(buf, 1, (size_t)len, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || got != (size_t)len) {
        free(buf);
        return DC_ERROR(DC_ERR_IO, "%s: read %zu of %ld bytes%s%s", path, got, len,
                        failed ? ": " : "", failed ? strerror(errno) : "");
    }
    *data = buf;
    *size = (size_t)len;
    return DC_OK;
}

/* Largest inflated file we accept: the biggest real one (MNIST training
 * images) is 47 MB, so more is a damaged file or a decompression bomb. */
#define DC_GZIP_MAX_BYTES ((size_t)1 << 28)
/* deflate's best case is about 1032:1; a trailer claiming more is damage */
#define DC_GZIP_MAX_RATIO 1032

/* The gzip trailer stores the uncompressed size mod 2^32: a good first guess
 * for the output buffer, so one inflate pass rarely needs to grow it.  It is
 * trusted only as far as the compressed size can justify. */
static size_t initial_capacity(const uint8_t *in, size_t n)
{
    size_t guess = 4 * n;
    if (n >= 18) {
        const uint8_t *t = in + n - 4;
        size_t isize = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
        if (isize >= n / 2 && isize / DC_GZIP_MAX_RATIO <= n)
            guess = isize;
    }
    if (guess > DC_GZIP_MAX_BYTES)
        guess = DC_GZIP_MAX_BYTES;
    return guess < 65536 ? 65536 : guess;
}

/* Inflate every gzip member of in[n] into a growing buffer. */
static enum dc_status inflate_all(const char *path, const uint8_t *in, size_t n, uint8_t **data,
                                  size_t *size)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return DC_ERROR(DC_ERR_NOMEM, "%s: cannot start zlib's inflate", path);
    size_t cap = initial_capacity(in, n), len = 0;
    uint8_t *out = malloc(cap);
    enum dc_status st = DC_OK;
    if (!out)
        st = DC_ERROR(DC_ERR_NOMEM, "%s: cannot allocate %zu bytes to inflate it", path, cap);
    zs.next_in = (Bytef *)in;
    size_t in_left = n;
    while (st == DC_OK) {
        if (len == cap) {
            if (cap >= DC_GZIP_MAX_BYTES) {
                st = DC_ERROR(DC_ERR_FORMAT, "%s: inflates to more than %zu MiB, more than any data file "
                              "this reader takes; damaged or not a data file", path, DC_GZIP_MAX_BYTES >> 20);
                break;
            }
            size_t want = cap * 2 > DC_GZIP_MAX_BYTES ? DC_GZIP_MAX_BYTES : cap * 2;
            uint8_t *grown = realloc(out, want);
            if (!grown) {
                st = DC_ERROR(DC_ERR_NOMEM, "%s: cannot grow the inflate buffer to %zu bytes", path, want);
                break;
            }
            out = grown;
            cap = want;
        }
        /* zlib counts in uInt; feed and drain in chunks it can hold. */
        uInt in_chunk = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
        uInt out_chunk = cap - len > (1u << 30) ? (1u << 30) : (uInt)(cap - len);
        zs.avail_in = in_chunk;
        zs.next_out = out + len;
        zs.avail_out = out_chunk;
        int rc = inflate(&zs, Z_NO_FLUSH);
        in_left -= in_chunk - zs.avail_in;
        len += out_chunk - zs.avail_out;
        if (rc == Z_STREAM_END) {
            if (in_left == 0)
                break;
            /* Another gzip member may follow (gzip allows concatenation); anything else is junk. */
            if (in_left >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b) {
                inflateReset(&zs);
                continue;
            }
            st = DC_ERROR(DC_ERR_FORMAT,
                          "%s: corrupt gzip file: %zu unexpected bytes after the compressed data; "
                          "download it again", path, in_left);
        } else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) {
            st = DC_ERROR(DC_ERR_FORMAT, "%s: corrupt gzip data (%s), found at compressed byte %zu of %zu; "
                          "download it again", path, zs.msg ? zs.msg : "bad data", n - in_left, n);
        } else if (rc == Z_MEM_ERROR) {
            st = DC_ERROR(DC_ERR_NOMEM, "%s: zlib ran out of memory while inflating", path);
        } else if (rc == Z_BUF_ERROR && in_left == 0 && zs.avail_out > 0) {
            st = DC_ERROR(DC_ERR_FORMAT, "%s: truncated gzip file: the compressed data stops after "
                          "%zu bytes (%zu bytes inflated); download it again", path, n, len);
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            st = DC_ERROR(DC_ERR_FORMAT, "%s: inflate failed (zlib error %d)", path, rc);
        }
    }
    inflateEnd(&zs);
    if (st != DC_OK) {
        free(out);
        return st;
    }
    *data = out;
    *size = len;
    return DC_OK;
}

enum dc_status dc_read_file_maybe_gz(const char *path, uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    uint8_t *raw = NULL;
    size_t n = 0;
    DC_TRY(read_raw(path, &raw, &n));
    if (n < 2 || raw[0] != 0x1f || raw[1] != 0x8b) {
        *data = raw;
        *size = n;
        return DC_OK;
    }
    enum dc_status st = inflate_all(path, raw, n, data, size);
    free(raw);
    return st;
}
