/* cuda_data.cu: building training batches on the GPU from a dataset that
 * lives there as uint8, so a step copies nothing from the host.  The
 * augmentation recipe is the CPU reference's (src/cpu/cpu_data.c) bit for
 * bit: image i draws u = dc_hash_u32(seed, 2i) for the crop offsets
 * dy = u % K - pad, dx = (u / K) % K - pad (K = 2 pad + 1) and
 * dc_hash_u32(seed, 2i + 1) & 1 for the flip; pixels outside the image are
 * black; out = ((float)v / 255 - mean[c]) / std[c] in float, each step
 * rounded separately.
 *
 * Legend: images [*,C,H,W] uint8, out [N,C,H,W], idx and labels by row. */
#include "dc/rng.h"

#include "cuda_internal.h"

struct batch_params {
    int c, h, w, n, pad, flip;
    uint64_t seed;
    float mean[3], std[3];
};

/* One thread per output pixel; the two hashes per pixel are cheaper than a
 * second pass that would store them. */
static __global__ void k_batch_images(struct batch_params p, const uint8_t *images, const int32_t *idx,
                                      float *out)
{
    const size_t hw = (size_t)p.h * p.w, chw = (size_t)p.c * hw, total = (size_t)p.n * chw;
    DC_CUDA_FOR(o, total)
    {
        const int i = (int)(o / chw);
        const int c = (int)(o / hw % (size_t)p.c);
        const int y = (int)(o % hw / (size_t)p.w), x = (int)(o % (size_t)p.w);
        int dy = 0, dx = 0, flip = 0;
        if (p.pad > 0) {
            uint32_t k = (uint32_t)(2 * p.pad + 1);
            uint32_t u = dc_hash_u32(p.seed, 2 * (uint64_t)i);
            dy = (int)(u % k) - p.pad;
            dx = (int)((u / k) % k) - p.pad;
        }
        if (p.flip)
            flip = (int)(dc_hash_u32(p.seed, 2 * (uint64_t)i + 1) & 1u);
        const int ys = y + dy, xs = (flip ? p.w - 1 - x : x) + dx;
        int v = 0;
        if (ys >= 0 && ys < p.h && xs >= 0 && xs < p.w)
            v = images[(size_t)idx[i] * chw + (size_t)c * hw + (size_t)ys * p.w + xs];
        out[o] = __fdiv_rn(__fsub_rn(__fdiv_rn((float)v, 255.0f), p.mean[c]), p.std[c]);
    }
}

extern "C" enum dc_status dc_cuda_batch_images(struct dc_backend *be, const struct dc_batch_desc *d,
                                               const uint8_t *images, const int32_t *idx, float *out)
{
    if (d->c < 1 || d->c > 3 || d->h <= 0 || d->w <= 0 || d->n < 0 || d->pad < 0)
        return DC_ERROR(DC_ERR_ARG, "batch_images: bad shape n %d, [%d,%d,%d], pad %d", d->n, d->c, d->h,
                        d->w, d->pad);
    for (int c = 0; c < d->c; c++)
        if (!(d->std[c] > 0.0f))
            return DC_ERROR(DC_ERR_ARG, "batch_images: std[%d] = %g must be positive", c, (double)d->std[c]);
    struct batch_params p = {d->c, d->h, d->w, d->n, d->pad, d->flip, d->seed, {0, 0, 0}, {1, 1, 1}};
    for (int c = 0; c < d->c; c++) {
        p.mean[c] = d->mean[c];
        p.std[c] = d->std[c];
    }
    size_t total = (size_t)d->n * d->c * d->h * d->w;
    if (total == 0)
        return DC_OK;
    DC_CUDA_LAUNCH_N(k_batch_images, total, dc_cuda_ctx_of(be)->stream, p, images, idx, out);
    return DC_OK;
}

static __global__ void k_batch_labels(int n, const uint8_t *labels, const int32_t *idx, int32_t *out)
{
    DC_CUDA_FOR(i, (size_t)n) out[i] = labels[idx[i]];
}

extern "C" enum dc_status dc_cuda_batch_labels(struct dc_backend *be, int n, const uint8_t *labels,
                                               const int32_t *idx, int32_t *out)
{
    if (n <= 0)
        return DC_OK;
    DC_CUDA_LAUNCH_N(k_batch_labels, (size_t)n, dc_cuda_ctx_of(be)->stream, n, labels, idx, out);
    return DC_OK;
}
