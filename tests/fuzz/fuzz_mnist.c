/* fuzz_mnist.c: libFuzzer target for the MNIST IDX reader (raw and gzip).
 * Input: byte 0 = limits (train: bits 0-2, test: bits 3-5; 0 = all), bytes
 * 1-2 = little-endian length L of the image file, then L bytes of image file
 * and the rest as the label file (each may be gzip).  Both splits read the
 * same two in-memory files through symbolic links in a scratch folder. */
#include <string.h>

#include "dc/data.h"
#include "fuzz_util.h"

static struct dc_fuzz_file images, labels;
static char dir[512];

static volatile unsigned sink; /* keeps the reads of the loaded data */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    dc_fuzz_file_init(&images, "images");
    dc_fuzz_file_init(&labels, "labels");
    dc_fuzz_tmpdir(dir, sizeof dir);
    dc_fuzz_link(dir, "train-images-idx3-ubyte", &images);
    dc_fuzz_link(dir, "t10k-images-idx3-ubyte", &images);
    dc_fuzz_link(dir, "train-labels-idx1-ubyte", &labels);
    dc_fuzz_link(dir, "t10k-labels-idx1-ubyte", &labels);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int train_limit = data[0] & 7, test_limit = (data[0] >> 3) & 7;
    size_t split = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3, size -= 3;
    if (split > size)
        split = size;
    dc_fuzz_file_set(&images, data, split);
    dc_fuzz_file_set(&labels, data + split, size - split);
    struct dc_data d;
    if (dc_mnist_load(dir, train_limit, test_limit, &d) == DC_OK) {
        /* touch what a trainer would read */
        for (int i = 0; i < d.train.count; i++)
            sink += d.train.labels[i] + d.train.images[(size_t)i * 784 + 783];
        dc_data_free(&d);
    }
    return 0;
}
