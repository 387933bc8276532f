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

#include "cuda_index.h"
#include "cuda_internal.h"

/* What a launch needs beyond the pointers, passed by value.  Every field is
 * read by name (the channel's mean and std are picked with selects, not an
 * index), so the struct stays in the parameter bank and registers instead of
 * being copied to local memory. */
struct batch_params {
    int c, h, w, pad, flip;
    uint32_t k; /* 2 pad + 1 */
    uint64_t seed;
    float mean0, mean1, mean2, std0, std1, std2;
};

/* One thread per output pixel; the two hashes per pixel are cheaper than a
 * second pass that would store them.  I and D: 32-bit indices with
 * multiplicative division when the batch allows (cuda_index.h). */
template <typename I, typename D>
static __global__ void k_batch_images(I total, D dw, D dh, D dc, const struct batch_params p,
                                      const uint8_t *images, const int32_t *idx, float *out)
{
    const size_t hw = (size_t)p.h * p.w, chw = (size_t)p.c * hw;
    DC_CUDA_FOR_T(I, o, total)
    {
        const I row = dw.div(o), plane = dh.div(row), img = dc.div(plane);
        const int x = (int)(o - row * (I)p.w), y = (int)(row - plane * (I)p.h), c = (int)(plane - img * (I)p.c);
        const int i = (int)img;
        int dy = 0, dx = 0, flip = 0;
        if (p.pad > 0) {
            uint32_t u = dc_hash_u32(p.seed, 2 * (uint64_t)i);
            dy = (int)(u % p.k) - p.pad;
            dx = (int)((u / p.k) % p.k) - p.pad;
        }
        if (p.flip)
            flip = (int)(dc_hash_u32(p.seed, 2 * (uint64_t)i + 1) & 1u);
        const int ys = y + dy, xs = (flip ? p.w - 1 - x : x) + dx;
        int v = 0;
        if (ys >= 0 && ys < p.h && xs >= 0 && xs < p.w)
            v = images[(size_t)idx[i] * chw + (size_t)c * hw + (size_t)ys * p.w + xs];
        const float mean = c == 0 ? p.mean0 : c == 1 ? p.mean1 : p.mean2;
        const float sd = c == 0 ? p.std0 : c == 1 ? p.std1 : p.std2;
        out[o] = __fdiv_rn(__fsub_rn(__fdiv_rn((float)v, 255.0f), mean), sd);
    }
}

extern "C" enum dc_status dc_cuda_batch_images(struct dc_backend *be, const struct dc_batch_desc *d,
                                               const uint8_t *images, const int32_t *idx, float *out)
{
    if (d->c < 1 || d->c > 3 || d->h <= 0 || d->w <= 0 || d->n < 0 || d->pad < 0)
        return DC_ERROR(DC_ERR_ARG, "batch_images: bad shape n %d, [%d,%d,%d], pad %d", d->n, d->c, d->h,
                        d->w, d->pad);
    float mean[3] = {0, 0, 0}, sd[3] = {1, 1, 1};
    for (int c = 0; c < d->c; c++) {
        if (!(d->std[c] > 0.0f))
            return DC_ERROR(DC_ERR_ARG, "batch_images: std[%d] = %g must be positive", c, (double)d->std[c]);
        mean[c] = d->mean[c];
        sd[c] = d->std[c];
    }
    const struct batch_params p = {d->c,    d->h,    d->w,    d->pad, d->flip, (uint32_t)(2 * d->pad + 1),
                                   d->seed, mean[0], mean[1], mean[2], sd[0],  sd[1],
                                   sd[2]};
    size_t total = (size_t)d->n * d->c * d->h * d->w;
    if (total == 0)
        return DC_OK;
    cudaStream_t stream = dc_cuda_ctx_of(be)->stream;
    const unsigned blocks = dc_cuda_blocks(total);
    if (dc_index_fits_32(total))
        k_batch_images<<<blocks, DC_CUDA_THREADS, 0, stream>>>(
            (uint32_t)total, dc_fastdiv_make((uint32_t)d->w), dc_fastdiv_make((uint32_t)d->h),
            dc_fastdiv_make((uint32_t)d->c), p, images, idx, out);
    else
        k_batch_images<<<blocks, DC_CUDA_THREADS, 0, stream>>>(total, dc_div64{(size_t)d->w},
                                                               dc_div64{(size_t)d->h}, dc_div64{(size_t)d->c}, p,
                                                               images, idx, out);
    DC_CUDA_LAUNCH_CHECK("k_batch_images");
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
