/* tensor.h: a float32 NCHW buffer living in one backend's memory. */
#ifndef DC_TENSOR_H
#define DC_TENSOR_H

#include <stddef.h>

#include "dc/backend.h"

struct dc_tensor {
    float *data;      /* backend memory, n*c*h*w floats */
    int n, c, h, w;
};

static inline size_t dc_tensor_count(const struct dc_tensor *t)
{
    return (size_t)t->n * (size_t)t->c * (size_t)t->h * (size_t)t->w;
}

/* Allocate and zero-fill. */
enum dc_status dc_tensor_alloc(struct dc_backend *be, struct dc_tensor *t, int n, int c, int h, int w);
void dc_tensor_free(struct dc_backend *be, struct dc_tensor *t);
enum dc_status dc_tensor_upload(struct dc_backend *be, struct dc_tensor *t, const float *host);
enum dc_status dc_tensor_download(struct dc_backend *be, const struct dc_tensor *t, float *host);

#endif
