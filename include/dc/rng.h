/* rng.h: seeded random numbers. A stateful xoshiro-style generator for host
 * work (init, shuffles), and a stateless counter hash that CPU and GPU both
 * evaluate, so dropout masks and augmentation agree bit for bit across
 * backends and across a resume. */
#ifndef DC_RNG_H
#define DC_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dc_rng {
    uint64_t s[4];
};

void dc_rng_seed(struct dc_rng *r, uint64_t seed);
uint64_t dc_rng_next(struct dc_rng *r);
/* Uniform in [0, 1). */
float dc_rng_uniform(struct dc_rng *r);
/* Standard normal (Box-Muller). */
float dc_rng_normal(struct dc_rng *r);
/* Uniform integer in [0, n). */
uint32_t dc_rng_below(struct dc_rng *r, uint32_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void dc_rng_shuffle(struct dc_rng *r, int32_t *idx, int n);

/* Stateless hash of (seed, counter). One definition, compiled for host and
 * device alike, so both backends draw the same numbers. */
#ifdef __CUDACC__
#define DC_HOSTDEV __host__ __device__
#else
#define DC_HOSTDEV
#endif
static inline DC_HOSTDEV uint32_t dc_hash_u32(uint64_t seed, uint64_t counter)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (counter + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (uint32_t)(z >> 32);
}
/* Uniform in [0, 1) from the hash (24 bits, exact in float). */
static inline DC_HOSTDEV float dc_hash_uniform(uint64_t seed, uint64_t counter)
{
    return (float)(dc_hash_u32(seed, counter) >> 8) * (1.0f / 16777216.0f);
}

#ifdef __cplusplus
}
#endif
#endif
