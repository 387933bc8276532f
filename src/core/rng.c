/* rng.c: xoshiro256** seeded through splitmix64; a plain, reproducible
 * generator for initialisation and shuffles (not for cryptography). */
#include "dc/rng.h"

#include <math.h>

static uint64_t dc_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void dc_rng_seed(struct dc_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = dc_splitmix(&seed);
}

static inline uint64_t dc_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t dc_rng_next(struct dc_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = dc_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = dc_rotl(s[3], 45);
    return result;
}

float dc_rng_uniform(struct dc_rng *r) { return (float)(dc_rng_next(r) >> 40) * (1.0f / 16777216.0f); }

float dc_rng_normal(struct dc_rng *r)
{
    float u1 = dc_rng_uniform(r), u2 = dc_rng_uniform(r);
    if (u1 < 1e-12f)
        u1 = 1e-12f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}

uint32_t dc_rng_below(struct dc_rng *r, uint32_t n)
{
    /* multiply-shift keeps the bias below 2^-32, enough for shuffles */
    return (uint32_t)(((dc_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

void dc_rng_shuffle(struct dc_rng *r, int32_t *idx, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)dc_rng_below(r, (uint32_t)(i + 1));
        int32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
