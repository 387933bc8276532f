/* data.h: MNIST (IDX, raw or gzip) and CIFAR-10 (official binary batches)
 * readers.  Images stay uint8 [count,C,H,W]; batches are built by the backend
 * op batch_images (gather, crop, flip, normalise), so the same bytes can live
 * on the GPU for a whole run. */
#ifndef DC_DATA_H
#define DC_DATA_H

#include <stdint.h>

#include "dc/config.h"
#include "dc/status.h"

struct dc_dataset {
    int count;           /* images */
    int c, h, w;         /* per-image shape */
    uint8_t *images;     /* host [count,C,H,W] */
    uint8_t *labels;     /* host [count], each < classes */
};

struct dc_data {
    struct dc_dataset train, test;
    int classes;
    float mean[3], std[3]; /* per-channel normalisation, in units of x/255 */
};

/* Read the files of cfg->dataset from cfg->data_dir (honours train_limit and
 * test_limit).  MNIST looks for train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
 * t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz].  CIFAR-10 looks for
 * data_batch_1..5.bin and test_batch.bin in the directory or in its
 * cifar-10-batches-bin/ subdirectory.  Errors name the file and what is wrong
 * (missing, truncated, wrong magic, wrong count, label out of range). */
enum dc_status dc_data_load(const struct dc_config *cfg, struct dc_data *out);
void dc_data_free(struct dc_data *d);

/* Lower-level readers (limit 0 = all). */
enum dc_status dc_mnist_load(const char *dir, int train_limit, int test_limit, struct dc_data *out);
enum dc_status dc_cifar10_load(const char *dir, int train_limit, int test_limit, struct dc_data *out);
/* Read a whole file, transparently gunzipping when it starts with the gzip magic. */
enum dc_status dc_read_file_maybe_gz(const char *path, uint8_t **data, size_t *size);

#endif
