/* cuda_index.h: index arithmetic for the elementwise kernels that split a
 * flat index into tensor coordinates (bias_add, concat/split, the batch
 * builder).  A 64-bit division costs a long emulated sequence per element on
 * the GPU; when every index of a launch fits in 31 bits the kernels divide by
 * multiplying instead (Granlund and Montgomery's round-up method, as
 * PyTorch's IntDivider does), otherwise they fall back to plain 64-bit
 * division.  Both dividers give exact quotients, so the results do not
 * depend on which one ran.  Only .cu files include this header. */
#ifndef DC_CUDA_INDEX_H
#define DC_CUDA_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define DC_FASTDIV_MAX 0x7fffffffu /* largest dividend and divisor of struct dc_fastdiv */

/* Exact n / d for 1 <= d <= DC_FASTDIV_MAX and 0 <= n <= DC_FASTDIV_MAX:
 * s = ceil(log2 d), m = floor(2^32 (2^s - d) / d) + 1, q = (umulhi(n, m) + n) >> s
 * (the sum fits 32 bits because umulhi(n, m) <= n < 2^31). */
struct dc_fastdiv {
    uint32_t d, m, s;
#ifdef __CUDACC__
    __host__ __device__ uint32_t div(uint32_t n) const
    {
#ifdef __CUDA_ARCH__
        return (__umulhi(n, m) + n) >> s;
#else
        return (uint32_t)(((uint64_t)n * m >> 32) + n) >> s;
#endif
    }
#endif
};

static inline struct dc_fastdiv dc_fastdiv_make(uint32_t d)
{
    uint32_t s = 0;
    while (s < 31 && ((uint32_t)1 << s) < d)
        s++;
    uint64_t m = (((uint64_t)1 << 32) * (((uint64_t)1 << s) - d)) / d + 1;
    struct dc_fastdiv f = {d, (uint32_t)m, s};
    return f;
}

#ifdef __CUDACC__
/* The fallback: the same interface over 64-bit indices. */
struct dc_div64 {
    size_t d;
    __device__ size_t div(size_t n) const { return n / d; }
};

/* The divider kind (struct dc_fastdiv with uint32_t indices or struct
 * dc_div64 with size_t) a launch over `total` indices whose divisors are
 * all <= total may use. */
static inline int dc_index_fits_32(size_t total) { return total <= DC_FASTDIV_MAX; }

/* Grid-stride loop over [0, n) in the index type I; with I = uint32_t the
 * caller guarantees n <= DC_FASTDIV_MAX, so i + stride cannot wrap. */
#define DC_CUDA_FOR_T(I, i, n)                                                       \
    for (I i = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; i < (n);              \
         i += (I)gridDim.x * (I)blockDim.x)
#endif

#endif
