/* fuzz_cifar.c: libFuzzer target for the CIFAR-10 batch reader.  A batch is
 * exactly 10000 records of 3073 bytes, far beyond what a fuzzer mutates, so
 * byte 0 chooses: bit 0 clear = the rest of the input is the batch file as is
 * (size checks, gzip); bit 0 set = the rest is repeated to a full batch
 * (label checks, copying).  Bits 1-4: train limit 1..16; bits 5-7: test limit
 * (0 = all).  Every batch name links to the same in-memory file. */
#include <stdlib.h>
#include <string.h>

#include "dc/data.h"
#include "fuzz_util.h"

#define CIFAR_BATCH_BYTES (10000u * 3073u)

static struct dc_fuzz_file batch;
static char dir[512];
static uint8_t *full;

static volatile unsigned sink; /* keeps the reads of the loaded data */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static const char *names[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                   "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    dc_fuzz_file_init(&batch, "batch");
    dc_fuzz_tmpdir(dir, sizeof dir);
    for (int i = 0; i < 6; i++)
        dc_fuzz_link(dir, names[i], &batch);
    full = malloc(CIFAR_BATCH_BYTES);
    return full ? 0 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0];
    data++, size--;
    if ((mode & 1) && size > 0) {
        /* doubling copies: a 1-byte input is 25 copies, not 30 million */
        size_t have = size < CIFAR_BATCH_BYTES ? size : CIFAR_BATCH_BYTES;
        memcpy(full, data, have);
        for (size_t n; have < CIFAR_BATCH_BYTES; have += n) {
            n = CIFAR_BATCH_BYTES - have < have ? CIFAR_BATCH_BYTES - have : have;
            memcpy(full + have, full, n);
        }
        dc_fuzz_file_set(&batch, full, CIFAR_BATCH_BYTES);
    } else {
        dc_fuzz_file_set(&batch, data, size);
    }
    struct dc_data d;
    if (dc_cifar10_load(dir, 1 + ((mode >> 1) & 15), (mode >> 5) & 7, &d) == DC_OK) {
        for (int i = 0; i < d.train.count; i++)
            sink += d.train.labels[i] + d.train.images[(size_t)i * 3072 + 3071];
        dc_data_free(&d);
    }
    return 0;
}
