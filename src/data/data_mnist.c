/* data_mnist.c: the MNIST reader.  The official release is four IDX files
 * (big-endian header, then bytes), usually gzip-compressed; we accept either
 * form and check every header field against the file's real length, because
 * a half-downloaded file otherwise trains on garbage without a word. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/data.h"

#define MNIST_SIDE 28
#define MNIST_PIXELS (MNIST_SIDE * MNIST_SIDE)
#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define MNIST_CLASSES 10

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Find DIR/NAME, else DIR/NAME.gz; path[len] receives the one found. */
static enum dc_status find_idx(const char *dir, const char *name, char *path, size_t len)
{
    const char *sep = (dir[0] && dir[strlen(dir) - 1] == '/') ? "" : "/";
    const char *suffix[2] = {"", ".gz"};
    for (int i = 0; i < 2; i++) {
        if ((size_t)snprintf(path, len, "%s%s%s%s", dir, sep, name, suffix[i]) >= len)
            return DC_ERROR(DC_ERR_ARG, "%s: data folder path too long", dir);
        FILE *f = fopen(path, "rb");
        if (f) {
            fclose(f);
            return DC_OK;
        }
        if (errno != ENOENT)
            return DC_ERROR(DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    return DC_ERROR(DC_ERR_IO, "%s%s%s[.gz]: not found; run scripts/fetch-data.sh mnist or set [data] dir "
                    "(--set data.dir=PATH)", dir, sep, name);
}

/* Read one IDX file and check its magic, shape and exact length.  On success
 * *buf holds the payload (header removed) and *count the item count. */
static enum dc_status read_idx(const char *dir, const char *name, int images, uint8_t **buf,
                               uint32_t *count, char *path, size_t path_len)
{
    DC_TRY(find_idx(dir, name, path, path_len));
    uint8_t *raw = NULL;
    size_t n = 0;
    DC_TRY(dc_read_file_maybe_gz(path, &raw, &n));
    const size_t header = images ? 16 : 8;
    const uint32_t magic = images ? IDX_IMAGES_MAGIC : IDX_LABELS_MAGIC;
    const char *what = images ? "image" : "label";
    enum dc_status st = DC_OK;
    if (n < header) {
        st = DC_ERROR(DC_ERR_FORMAT, "%s: truncated: %zu bytes, shorter than the %zu-byte IDX %s header",
                      path, n, header, what);
    } else if (be32(raw) != magic) {
        st = DC_ERROR(DC_ERR_FORMAT, "%s: wrong magic 0x%08x (expected 0x%08x for an IDX %s file)", path,
                      be32(raw), magic, what);
    } else if (images && (be32(raw + 8) != MNIST_SIDE || be32(raw + 12) != MNIST_SIDE)) {
        st = DC_ERROR(DC_ERR_FORMAT, "%s: images are %ux%u, expected %dx%d", path, be32(raw + 8),
                      be32(raw + 12), MNIST_SIDE, MNIST_SIDE);
    }
    if (st != DC_OK) {
        free(raw);
        return st;
    }
    *count = be32(raw + 4);
    const uint64_t want = header + (uint64_t)*count * (images ? MNIST_PIXELS : 1);
    if ((uint64_t)n != want) {
        free(raw);
        if (images)
            return DC_ERROR(DC_ERR_FORMAT, "%s: %s: header says %u images of %dx%d (%llu bytes) but the "
                            "file has %zu bytes", path, n < want ? "truncated" : "trailing bytes", *count,
                            MNIST_SIDE, MNIST_SIDE, (unsigned long long)want, n);
        return DC_ERROR(DC_ERR_FORMAT, "%s: %s: header says %u labels (%llu bytes) but the file has %zu bytes",
                        path, n < want ? "truncated" : "trailing bytes", *count, (unsigned long long)want, n);
    }
    /* Drop the header in place; shrinking realloc keeps the old block if it fails. */
    memmove(raw, raw + header, n - header);
    uint8_t *shrunk = realloc(raw, n - header > 0 ? n - header : 1);
    *buf = shrunk ? shrunk : raw;
    return DC_OK;
}

/* One split: images and labels that must agree, the first `limit` kept. */
static enum dc_status load_split(const char *dir, const char *images_name, const char *labels_name,
                                 int limit, struct dc_dataset *out)
{
    char ipath[1024], lpath[1024];
    uint32_t ni, nl;
    DC_TRY(read_idx(dir, images_name, 1, &out->images, &ni, ipath, sizeof ipath));
    DC_TRY(read_idx(dir, labels_name, 0, &out->labels, &nl, lpath, sizeof lpath));
    if (ni != nl)
        return DC_ERROR(DC_ERR_FORMAT, "%s has %u images but %s has %u labels; the two files must come from "
                        "the same release", ipath, ni, lpath, nl);
    if (ni > (uint32_t)INT32_MAX)
        return DC_ERROR(DC_ERR_FORMAT, "%s: %u images is more than this reader handles", ipath, ni);
    for (uint32_t i = 0; i < nl; i++)
        if (out->labels[i] >= MNIST_CLASSES)
            return DC_ERROR(DC_ERR_FORMAT, "%s: label %u at index %u is out of range (expected 0..%d)", lpath,
                            out->labels[i], i, MNIST_CLASSES - 1);
    out->count = (limit > 0 && (uint32_t)limit < ni) ? limit : (int)ni;
    out->c = 1;
    out->h = out->w = MNIST_SIDE;
    return DC_OK;
}

enum dc_status dc_mnist_load(const char *dir, int train_limit, int test_limit, struct dc_data *out)
{
    memset(out, 0, sizeof *out);
    if (train_limit < 0 || test_limit < 0)
        return DC_ERROR(DC_ERR_ARG, "mnist: negative image limit (train %d, test %d); 0 means all",
                        train_limit, test_limit);
    enum dc_status st =
        load_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", train_limit, &out->train);
    if (st == DC_OK)
        st = load_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", test_limit, &out->test);
    if (st != DC_OK) {
        dc_data_free(out);
        return st;
    }
    out->classes = MNIST_CLASSES;
    for (int c = 0; c < 3; c++) {
        out->mean[c] = 0.1307f; /* the usual MNIST statistics, over the training set */
        out->std[c] = 0.3081f;
    }
    return DC_OK;
}
