/* cuda_elementwise.cu: per-element kernels of the CUDA backend (ReLU,
 * dropout, channel concat/split for Fire modules, the fused masked SGD update,
 * the pruning mask).  Arithmetic uses the _rn intrinsics where the CPU
 * reference does a separate multiply and add, so the compiler cannot fuse
 * them and both backends round the same way.
 *
 * Legend: N batch, C channels (CA, CB the two halves), HW spatial size. */
#include "dc/rng.h"

#include "cuda_index.h"
#include "cuda_internal.h"

static __global__ void k_relu_fwd(size_t n, const float *x, float *y)
{
    DC_CUDA_FOR(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

extern "C" enum dc_status dc_cuda_relu_fwd(struct dc_backend *be, size_t n, const float *x, float *y)
{
    if (n == 0)
        return DC_OK;
    DC_CUDA_LAUNCH_N(k_relu_fwd, n, dc_cuda_ctx_of(be)->stream, n, x, y);
    return DC_OK;
}

static __global__ void k_relu_bwd(size_t n, const float *y, const float *dy, float *dx)
{
    DC_CUDA_FOR(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

extern "C" enum dc_status dc_cuda_relu_bwd(struct dc_backend *be, size_t n, const float *y, const float *dy,
                                           float *dx)
{
    if (n == 0)
        return DC_OK;
    DC_CUDA_LAUNCH_N(k_relu_bwd, n, dc_cuda_ctx_of(be)->stream, n, y, dy, dx);
    return DC_OK;
}

/* The same counter hash as the CPU, so masks agree bit for bit. */
static __global__ void k_dropout_fwd(size_t n, float p, float keep, uint64_t seed, const float *x,
                                     float *mask, float *y)
{
    DC_CUDA_FOR(i, n)
    {
        float m = dc_hash_uniform(seed, i) >= p ? keep : 0.0f;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}

extern "C" enum dc_status dc_cuda_dropout_fwd(struct dc_backend *be, size_t n, float p, uint64_t seed,
                                              const float *x, float *mask, float *y)
{
    if (!(p >= 0.0f && p < 1.0f))
        return DC_ERROR(DC_ERR_ARG, "dropout: probability %g is outside [0, 1)", (double)p);
    if (n == 0)
        return DC_OK;
    const float keep = 1.0f / (1.0f - p); /* on the host, as the CPU does */
    DC_CUDA_LAUNCH_N(k_dropout_fwd, n, dc_cuda_ctx_of(be)->stream, n, p, keep, seed, x, mask, y);
    return DC_OK;
}

/* One thread per element of the joined tensor [N,CA+CB,HW]; to_joined picks
 * the direction (concat writes it, split reads it).  I and D: 32-bit indices
 * with multiplicative division when the tensor allows (cuda_index.h). */
template <typename I, typename D>
static __global__ void k_concat_split(I total, I sa, I sb, D s, float *a, float *b, float *joined, int to_joined)
{
    DC_CUDA_FOR_T(I, i, total)
    {
        const I img = s.div(i), off = i - img * (I)s.d;
        float *part = off < sa ? a + img * sa + off : b + img * sb + (off - sa);
        if (to_joined)
            joined[i] = *part;
        else
            *part = joined[i];
    }
}

static enum dc_status concat_split(struct dc_backend *be, int n, int ca, int cb, int hw, float *a, float *b,
                                   float *joined, int to_joined)
{
    if (n <= 0 || hw <= 0 || ca < 0 || cb < 0)
        return DC_OK;
    size_t sa = (size_t)ca * hw, sb = (size_t)cb * hw, total = (size_t)n * (sa + sb);
    if (total == 0)
        return DC_OK;
    cudaStream_t stream = dc_cuda_ctx_of(be)->stream;
    const unsigned blocks = dc_cuda_blocks(total);
    if (dc_index_fits_32(total))
        k_concat_split<<<blocks, DC_CUDA_THREADS, 0, stream>>>((uint32_t)total, (uint32_t)sa, (uint32_t)sb,
                                                               dc_fastdiv_make((uint32_t)(sa + sb)), a, b,
                                                               joined, to_joined);
    else
        k_concat_split<<<blocks, DC_CUDA_THREADS, 0, stream>>>(total, sa, sb, dc_div64{sa + sb}, a, b, joined,
                                                               to_joined);
    DC_CUDA_LAUNCH_CHECK("k_concat_split");
    return DC_OK;
}

extern "C" enum dc_status dc_cuda_concat(struct dc_backend *be, int n, int ca, int cb, int hw,
                                         const float *a, const float *b, float *out)
{
    return concat_split(be, n, ca, cb, hw, (float *)a, (float *)b, out, 1);
}

extern "C" enum dc_status dc_cuda_split(struct dc_backend *be, int n, int ca, int cb, int hw,
                                        const float *in, float *a, float *b)
{
    return concat_split(be, n, ca, cb, hw, a, b, (float *)in, 0);
}

/* PyTorch's SGD, one pass over w, g, v (and the mask); the operation order
 * is the CPU reference's, without fused multiply-adds. */
static __global__ void k_sgd_update(size_t n, float *w, const float *g, float *v, const float *mask,
                                    float lr, float momentum, float wd, int nesterov)
{
    DC_CUDA_FOR(i, n)
    {
        dc_sgd_element(i, w, g, v, mask, lr, momentum, wd, nesterov);
    }
}

extern "C" enum dc_status dc_cuda_sgd_update(struct dc_backend *be, size_t n, float *w, const float *g,
                                             float *v, const float *mask, float lr, float momentum,
                                             float wd, int nesterov)
{
    if (!v && momentum != 0.0f)
        return DC_ERROR(DC_ERR_ARG, "sgd_update: momentum %g needs a velocity buffer", (double)momentum);
    if (n == 0)
        return DC_OK;
    DC_CUDA_LAUNCH_N(k_sgd_update, n, dc_cuda_ctx_of(be)->stream, n, w, g, v, mask, lr, momentum, wd, nesterov);
    return DC_OK;
}

static __global__ void k_threshold_mask(size_t n, const float *w, float threshold, float *mask)
{
    DC_CUDA_FOR(i, n) mask[i] = fabsf(w[i]) > threshold ? 1.0f : 0.0f;
}

extern "C" enum dc_status dc_cuda_threshold_mask(struct dc_backend *be, size_t n, const float *w,
                                                 float threshold, float *mask)
{
    if (n == 0)
        return DC_OK;
    DC_CUDA_LAUNCH_N(k_threshold_mask, n, dc_cuda_ctx_of(be)->stream, n, w, threshold, mask);
    return DC_OK;
}
