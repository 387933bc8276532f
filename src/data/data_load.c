/* data_load.c: picks the reader for the configured data set, and frees what
 * the readers allocate.  The readers themselves live in data_mnist.c and
 * data_cifar.c; this is the one entry the trainer and tools call. */
#include <stdlib.h>
#include <string.h>

#include "dc/data.h"

enum dc_status dc_data_load(const struct dc_config *cfg, struct dc_data *out)
{
    switch (cfg->dataset) {
    case DC_DATASET_MNIST:
        return dc_mnist_load(cfg->data_dir, cfg->train_limit, cfg->test_limit, out);
    case DC_DATASET_CIFAR10:
        return dc_cifar10_load(cfg->data_dir, cfg->train_limit, cfg->test_limit, out);
    }
    memset(out, 0, sizeof *out);
    return DC_ERROR(DC_ERR_ARG, "unknown data set kind %d", (int)cfg->dataset);
}

void dc_data_free(struct dc_data *d)
{
    if (!d)
        return;
    free(d->train.images);
    free(d->train.labels);
    free(d->test.images);
    free(d->test.labels);
    memset(d, 0, sizeof *d);
}
