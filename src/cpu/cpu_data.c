/* cpu_data.c: building a training batch from a dataset held as uint8 images:
 * gather by index, random crop from zero padding, random horizontal flip,
 * normalise.  The CUDA backend must draw the same augmentation, so the
 * recipe is fixed here:
 *
 *   for image i of the batch (0 <= i < n), with K = 2*pad + 1:
 *     u    = dc_hash_u32(seed, 2*i)
 *     dy   = (int)(u % K) - pad,  dx = (int)((u / K) % K) - pad   (0 when pad == 0)
 *     flip = flip enabled ? dc_hash_u32(seed, 2*i + 1) & 1 : 0
 *     out[i,c,y,x] = ((float)v / 255.0f - mean[c]) / std[c] in float, where
 *       xs = (flip ? W-1-x : x) + dx,  ys = y + dy,
 *       v  = images[idx[i],c,ys,xs] inside the image, else 0 (a black pixel).
 *
 * This is torchvision's RandomCrop(padding=pad) followed by
 * RandomHorizontalFlip and Normalize: the crop window's top-left corner in the
 * padded image is (pad + dy, pad + dx), and the flip mirrors the crop.
 *
 * Legend: images [*,C,H,W] uint8, out [N,C,H,W], idx and labels by row. */
#include "dc/rng.h"

#include "cpu/cpu_internal.h"

/* One image's crop offsets and flip, as described above. */
static void dc_batch_draw(const struct dc_batch_desc *d, int i, int *dy, int *dx, int *flip)
{
    *dy = *dx = 0;
    if (d->pad > 0) {
        uint32_t k = (uint32_t)(2 * d->pad + 1);
        uint32_t u = dc_hash_u32(d->seed, 2 * (uint64_t)i);
        *dy = (int)(u % k) - d->pad;
        *dx = (int)((u / k) % k) - d->pad;
    }
    *flip = d->flip ? (int)(dc_hash_u32(d->seed, 2 * (uint64_t)i + 1) & 1u) : 0;
}

enum dc_status dc_cpu_batch_images(struct dc_backend *be, const struct dc_batch_desc *d,
                                   const uint8_t *images, const int32_t *idx, float *out)
{
    if (d->c < 1 || d->c > 3 || d->h <= 0 || d->w <= 0 || d->n < 0 || d->pad < 0)
        return DC_ERROR(DC_ERR_ARG, "batch_images: bad shape n %d, [%d,%d,%d], pad %d", d->n, d->c,
                        d->h, d->w, d->pad);
    for (int c = 0; c < d->c; c++)
        if (!(d->std[c] > 0.0f))
            return DC_ERROR(DC_ERR_ARG, "batch_images: std[%d] = %g must be positive", c,
                            (double)d->std[c]);
    const size_t hw = (size_t)d->h * d->w, chw = (size_t)d->c * hw;
    DC_OMP_FOR(dc_cpu_ctx(be)->threads, (size_t)d->n * chw > DC_CPU_PAR_MIN)
    for (int i = 0; i < d->n; i++) {
        int dy, dx, flip;
        dc_batch_draw(d, i, &dy, &dx, &flip);
        const uint8_t *src = images + (size_t)idx[i] * chw;
        float *dst = out + (size_t)i * chw;
        for (int c = 0; c < d->c; c++) {
            const float mean = d->mean[c], std = d->std[c];
            for (int y = 0; y < d->h; y++) {
                const int ys = y + dy;
                float *row = dst + c * hw + (size_t)y * d->w;
                for (int x = 0; x < d->w; x++) {
                    const int xs = (flip ? d->w - 1 - x : x) + dx;
                    int v = 0;
                    if (ys >= 0 && ys < d->h && xs >= 0 && xs < d->w)
                        v = src[c * hw + (size_t)ys * d->w + xs];
                    row[x] = ((float)v / 255.0f - mean) / std;
                }
            }
        }
    }
    return DC_OK;
}

enum dc_status dc_cpu_batch_labels(struct dc_backend *be, int n, const uint8_t *labels,
                                   const int32_t *idx, int32_t *out)
{
    (void)be;
    for (int i = 0; i < n; i++)
        out[i] = labels[idx[i]];
    return DC_OK;
}
