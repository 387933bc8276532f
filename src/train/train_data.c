/* train_data.c: the dataset uploaded once to the backend as uint8, so every
 * batch is gathered and augmented where the network runs (no per-step copy). */
#include <stdlib.h>
#include <string.h>

#include "dc/train.h"

static enum dc_status dc_upload_bytes(struct dc_backend *be, void **dst, const void *src, size_t bytes)
{
    DC_TRY(be->ops.alloc(be, dst, bytes ? bytes : 1));
    return bytes ? be->ops.upload(be, *dst, src, bytes) : DC_OK;
}

enum dc_status dc_device_data_init(struct dc_backend *be, const struct dc_data *d, struct dc_device_data *out)
{
    memset(out, 0, sizeof *out);
    out->be = be;
    out->train_count = d->train.count;
    out->test_count = d->test.count;
    out->c = d->train.c;
    out->h = d->train.h;
    out->w = d->train.w;
    memcpy(out->mean, d->mean, sizeof out->mean);
    memcpy(out->std, d->std, sizeof out->std);
    size_t img = (size_t)out->c * out->h * out->w;
    enum dc_status s;
    int32_t *iota = malloc(sizeof(int32_t) * (size_t)(d->test.count > d->train.count ? d->test.count : d->train.count));
    if (!iota)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory for dataset indices");
    for (int i = 0; i < d->test.count || i < d->train.count; i++)
        iota[i] = i;
    if ((s = dc_upload_bytes(be, (void **)&out->train_images, d->train.images, img * (size_t)d->train.count)) ||
        (s = dc_upload_bytes(be, (void **)&out->train_labels, d->train.labels, (size_t)d->train.count)) ||
        (s = dc_upload_bytes(be, (void **)&out->test_images, d->test.images, img * (size_t)d->test.count)) ||
        (s = dc_upload_bytes(be, (void **)&out->test_labels, d->test.labels, (size_t)d->test.count)) ||
        (s = dc_upload_bytes(be, (void **)&out->perm, iota, sizeof(int32_t) * (size_t)d->train.count)) ||
        (s = dc_upload_bytes(be, (void **)&out->test_idx, iota, sizeof(int32_t) * (size_t)d->test.count))) {
        free(iota);
        dc_device_data_free(out);
        return s;
    }
    free(iota);
    return DC_OK;
}

void dc_device_data_free(struct dc_device_data *dd)
{
    struct dc_backend *be = dd->be;
    if (!be)
        return;
    void *bufs[] = {dd->train_images, dd->train_labels, dd->test_images, dd->test_labels, dd->perm, dd->test_idx};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i])
            be->ops.release(be, bufs[i]);
    memset(dd, 0, sizeof *dd);
}
