/* data_cifar.c: the CIFAR-10 reader for the official binary batches
 * (data_batch_1..5.bin, test_batch.bin: 10000 records of 1 label byte + 3072
 * pixel bytes, already in C,H,W order).  Record size and count are checked,
 * since the format has no header that could catch a short download. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/data.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_PER_FILE 10000
#define CIFAR_CLASSES 10
#define CIFAR_TRAIN_FILES 5

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

/* The batches sit in DIR itself or in DIR/cifar-10-batches-bin (as the
 * official tarball unpacks); base[len] receives the folder that has them. */
static enum dc_status find_batches(const char *dir, char *base, size_t len)
{
    const char *sep = (dir[0] && dir[strlen(dir) - 1] == '/') ? "" : "/";
    const char *sub[2] = {"", "cifar-10-batches-bin"};
    for (int i = 0; i < 2; i++) {
        char probe[1100];
        if ((size_t)snprintf(base, len, "%s%s%s", dir, i ? sep : "", sub[i]) >= len)
            return DC_ERROR(DC_ERR_ARG, "%s: data folder path too long", dir);
        snprintf(probe, sizeof probe, "%s/data_batch_1.bin", base);
        if (file_exists(probe))
            return DC_OK;
        snprintf(probe, sizeof probe, "%s/test_batch.bin", base);
        if (file_exists(probe))
            return DC_OK;
    }
    return DC_ERROR(DC_ERR_IO, "%s%sdata_batch_1.bin: not found (nor in %s%scifar-10-batches-bin/); run "
                    "scripts/fetch-data.sh cifar10 or set [data] dir (--set data.dir=PATH)",
                    dir, sep, dir, sep);
}

/* Check one batch file and append its first `want` records to out (which has
 * room for them).  Every label is checked, not just the ones kept. */
static enum dc_status read_batch(const char *base, const char *name, int want, struct dc_dataset *out)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", base, name);
    if (!file_exists(path) && errno == ENOENT)
        return DC_ERROR(DC_ERR_IO, "%s: not found; run scripts/fetch-data.sh cifar10 or set [data] dir "
                        "(--set data.dir=PATH)", path);
    uint8_t *raw = NULL;
    size_t n = 0;
    DC_TRY(dc_read_file_maybe_gz(path, &raw, &n));
    enum dc_status st = DC_OK;
    if (n % CIFAR_RECORD != 0)
        st = DC_ERROR(DC_ERR_FORMAT, "%s: size %zu bytes is not a multiple of the %d-byte record (1 label + "
                      "%d pixels): truncated or not a CIFAR-10 binary batch", path, n, CIFAR_RECORD,
                      CIFAR_PIXELS);
    else if (n / CIFAR_RECORD != CIFAR_PER_FILE)
        st = DC_ERROR(DC_ERR_FORMAT, "%s: holds %zu records, expected %d (%d bytes): truncated or not an "
                      "official CIFAR-10 batch", path, n / CIFAR_RECORD, CIFAR_PER_FILE,
                      CIFAR_PER_FILE * CIFAR_RECORD);
    for (size_t r = 0; st == DC_OK && r < CIFAR_PER_FILE; r++)
        if (raw[r * CIFAR_RECORD] >= CIFAR_CLASSES)
            st = DC_ERROR(DC_ERR_FORMAT, "%s: label %u of record %zu is out of range (expected 0..%d)", path,
                          raw[r * CIFAR_RECORD], r, CIFAR_CLASSES - 1);
    for (int r = 0; st == DC_OK && r < want; r++) {
        const uint8_t *rec = raw + (size_t)r * CIFAR_RECORD;
        out->labels[out->count] = rec[0];
        memcpy(out->images + (size_t)out->count * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
        out->count++;
    }
    free(raw);
    return st;
}

/* Read files in order until `limit` images (0 = all of them) are in. */
static enum dc_status load_split(const char *base, const char *const *names, int nfiles, int limit,
                                 struct dc_dataset *out)
{
    int total = nfiles * CIFAR_PER_FILE;
    if (limit > 0 && limit < total)
        total = limit;
    out->c = 3;
    out->h = out->w = CIFAR_SIDE;
    out->images = malloc((size_t)total * CIFAR_PIXELS);
    out->labels = malloc((size_t)total);
    if (!out->images || !out->labels)
        return DC_ERROR(DC_ERR_NOMEM, "cifar10: cannot allocate %d images", total);
    for (int i = 0; i < nfiles && out->count < total; i++) {
        int want = total - out->count;
        DC_TRY(read_batch(base, names[i], want < CIFAR_PER_FILE ? want : CIFAR_PER_FILE, out));
    }
    return DC_OK;
}

enum dc_status dc_cifar10_load(const char *dir, int train_limit, int test_limit, struct dc_data *out)
{
    static const char *const train_names[CIFAR_TRAIN_FILES] = {
        "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};
    static const char *const test_names[1] = {"test_batch.bin"};
    static const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, std[3] = {0.2470f, 0.2435f, 0.2616f};

    memset(out, 0, sizeof *out);
    if (train_limit < 0 || test_limit < 0)
        return DC_ERROR(DC_ERR_ARG, "cifar10: negative image limit (train %d, test %d); 0 means all",
                        train_limit, test_limit);
    char base[1024];
    DC_TRY(find_batches(dir, base, sizeof base));
    enum dc_status st = load_split(base, train_names, CIFAR_TRAIN_FILES, train_limit, &out->train);
    if (st == DC_OK)
        st = load_split(base, test_names, 1, test_limit, &out->test);
    if (st != DC_OK) {
        dc_data_free(out);
        return st;
    }
    out->classes = CIFAR_CLASSES;
    memcpy(out->mean, mean, sizeof mean);
    memcpy(out->std, std, sizeof std);
    return DC_OK;
}
