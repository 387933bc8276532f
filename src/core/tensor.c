/* tensor.c: allocation and host transfer of float32 tensors on a backend. */
#include "dc/tensor.h"

#include <string.h>

enum dc_status dc_tensor_alloc(struct dc_backend *be, struct dc_tensor *t, int n, int c, int h, int w)
{
    memset(t, 0, sizeof *t);
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
        return DC_ERROR(DC_ERR_ARG, "tensor shape [%d,%d,%d,%d] has a non-positive dimension", n, c, h, w);
    t->n = n;
    t->c = c;
    t->h = h;
    t->w = w;
    size_t count = dc_tensor_count(t);
    DC_TRY(be->ops.alloc(be, (void **)&t->data, count * sizeof(float)));
    enum dc_status s = be->ops.fill(be, t->data, 0.0f, count);
    if (s != DC_OK) {
        be->ops.release(be, t->data);
        t->data = NULL;
    }
    return s;
}

void dc_tensor_free(struct dc_backend *be, struct dc_tensor *t)
{
    if (t->data)
        be->ops.release(be, t->data);
    memset(t, 0, sizeof *t);
}

enum dc_status dc_tensor_upload(struct dc_backend *be, struct dc_tensor *t, const float *host)
{
    return be->ops.upload(be, t->data, host, dc_tensor_count(t) * sizeof(float));
}

enum dc_status dc_tensor_download(struct dc_backend *be, const struct dc_tensor *t, float *host)
{
    return be->ops.download(be, host, t->data, dc_tensor_count(t) * sizeof(float));
}
