/* gpu_pair.h: what the GPU tests share (header-only, like check.h): the CPU
 * reference and the CUDA backend side by side (side 0 and side 1), buffers
 * holding the same contents on both sides, BOTH to run one call on each
 * side, backend creation that turns "no GPU" into the skip code, and the
 * seeded generator the tests draw their inputs from.  Include it in one
 * test program only (it defines static state, as check.h does). */
#ifndef DC_TEST_GPU_PAIR_H
#define DC_TEST_GPU_PAIR_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/backend.h"
#include "dc/rng.h"
#include "check.h"

static struct dc_backend *pair_be[2]; /* 0: CPU reference, 1: CUDA (pair_open) */
static struct dc_rng rng;             /* the test's inputs (pair_seed) */

static inline void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "out of host memory\n");
        exit(1);
    }
    return p;
}

/* Creates the CUDA backend with `opts` into *out.  Returns -1 when it exists,
 * else the test's exit code: test_gpu_skip's verdict when no GPU answers, 1
 * (with the reason) on any other failure. */
static inline int gpu_open(const char *test, const struct dc_backend_opts *opts, struct dc_backend **out)
{
    enum dc_status st = dc_backend_create("cuda", opts, out);
    if (st == DC_ERR_UNSUPPORTED)
        return test_gpu_skip(test, dc_error_msg());
    if (st != DC_OK) {
        fprintf(stderr, "%s: cannot create the CUDA backend: %s\n", test, dc_error_msg());
        return 1;
    }
    return -1;
}

/* Both sides with the same `opts`: -1 when both exist, else the exit code
 * as gpu_open says. */
static inline int pair_open(const char *test, const struct dc_backend_opts *opts)
{
    int verdict = gpu_open(test, opts, &pair_be[1]);
    if (verdict >= 0)
        return verdict;
    if (dc_backend_create("cpu", opts, &pair_be[0]) != DC_OK) {
        fprintf(stderr, "%s: cannot create the CPU backend: %s\n", test, dc_error_msg());
        return 1;
    }
    return -1;
}

static inline void pair_close(void)
{
    for (int s = 1; s >= 0; s--) {
        dc_backend_free(pair_be[s]);
        pair_be[s] = NULL;
    }
}

/* Seeds rng from DC_TEST_SEED, else from `fallback`; returns the seed. */
static inline uint64_t pair_seed(uint64_t fallback)
{
    const char *env = getenv("DC_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : fallback;
    dc_rng_seed(&rng, seed);
    return seed;
}

/* One buffer on each side with the same contents. */
struct buf {
    size_t bytes;
    void *p[2];
};

#define BE(s) (pair_be[s])
#define F(b, s) ((float *)(b).p[s])
#define I32(b, s) ((int32_t *)(b).p[s])
#define U8(b, s) ((uint8_t *)(b).p[s])
/* Run one op call on both sides; `s` names the side inside the call. */
#define BOTH(s, call)                  \
    for (int s = 0; s < 2; s++)        \
        CHECK_OK(call)

/* `bytes` from host on both sides (host NULL: contents undefined); never a
 * NULL pointer, even for 0 bytes. */
static inline struct buf buf_new(const void *host, size_t bytes)
{
    struct buf b = {bytes, {NULL, NULL}};
    for (int s = 0; s < 2; s++) {
        CHECK_OK(BE(s)->ops.alloc(BE(s), &b.p[s], bytes ? bytes : 4));
        if (host && b.p[s] && bytes)
            CHECK_OK(BE(s)->ops.upload(BE(s), b.p[s], host, bytes));
    }
    return b;
}

static inline void buf_free(struct buf *b)
{
    for (int s = 0; s < 2; s++)
        BE(s)->ops.release(BE(s), b->p[s]);
}

#define FREE_ALL(...)                                                           \
    do {                                                                        \
        struct buf *all_[] = {__VA_ARGS__};                                     \
        for (size_t i_ = 0; i_ < sizeof all_ / sizeof all_[0]; i_++)            \
            buf_free(all_[i_]);                                                 \
    } while (0)

/* n floats of U(lo, hi) from rng, on the host (the caller frees them). */
static inline float *rand_host(size_t n, float lo, float hi)
{
    float *h = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        h[i] = lo + (hi - lo) * dc_rng_uniform(&rng);
    return h;
}

static inline struct buf buf_rand(size_t n, float lo, float hi)
{
    float *h = rand_host(n, lo, hi);
    struct buf b = buf_new(h, n * sizeof(float));
    free(h);
    return b;
}

/* `bytes` filled with `byte` on both sides (0xff: NaN floats, -1 ints). */
static inline struct buf buf_poison(size_t bytes, int byte)
{
    void *h = xmalloc(bytes);
    memset(h, byte, bytes);
    struct buf b = buf_new(h, bytes);
    free(h);
    return b;
}

static inline struct buf buf_nan(size_t n) { return buf_poison(n * sizeof(float), 0xff); }

#endif
