/* cpu_bn.c: spatial batch normalisation on the CPU, with PyTorch semantics:
 * the batch is normalised with the biased variance, running_var is updated
 * with the unbiased one, running = (1-momentum)*running + momentum*batch.
 * Channel sums are accumulated in double, each channel on one thread in image
 * order, so results are deterministic and independent of the thread count;
 * channels go in blocks streamed image by image (see DC_BN_BLOCK); sums in
 * eight lanes per row break the chain of dependent double adds (one add every
 * 4 cycles), which made these loops as slow as the convolutions around them.
 *
 * Legend: x, y, dx [N,C,HW]; gamma, beta, running_*, save_* [C]. */
#include <math.h>
#include <string.h>

#include "cpu/cpu_internal.h"

static enum dc_status dc_bn_check(const struct dc_bn_desc *d, const char *op)
{
    if (d->n <= 0 || d->c <= 0 || d->hw <= 0 || !(d->eps > 0.0f))
        return DC_ERROR(DC_ERR_ARG, "%s: bad shape [%d,%d,%d] or eps %g", op, d->n, d->c, d->hw,
                        (double)d->eps);
    return DC_OK;
}

/* Partial sums per row in eight lanes (two vectors of four doubles), so the
 * double adds neither wait on each other nor run one at a time; lane j sums
 * elements j, j+8, j+16, ..., the tail goes to lane 0, and the lanes are
 * added in a fixed tree at the end.  GCC/Clang vector extensions: plain
 * SSE2 code on any x86-64, and the same per-lane arithmetic everywhere. */
typedef float dc_bn_v4f __attribute__((vector_size(16)));
typedef double dc_bn_v4d __attribute__((vector_size(32)));

static inline dc_bn_v4f dc_bn_load(const float *p)
{
    dc_bn_v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* (a macro: passing a 32-byte vector by value would depend on AVX being on) */
#define dc_bn_widen(v) __builtin_convertvector((v), dc_bn_v4d)

static double dc_bn_total(const dc_bn_v4d *lo, const dc_bn_v4d *hi, double tail)
{
    return (((*lo)[0] + tail + (*lo)[1]) + ((*lo)[2] + (*lo)[3])) +
           (((*hi)[0] + (*hi)[1]) + ((*hi)[2] + (*hi)[3]));
}

/* sum p[i] over one row, in double (also bias_grad's channel sums) */
double dc_cpu_sum_f64(const float *p, size_t n)
{
    dc_bn_v4d lo = {0}, hi = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        lo += dc_bn_widen(dc_bn_load(p + i));
        hi += dc_bn_widen(dc_bn_load(p + i + 4));
    }
    double tail = 0.0;
    for (; i < n; i++)
        tail += p[i];
    return dc_bn_total(&lo, &hi, tail);
}

/* sum (p[i] - mean)^2 over one row, in double */
static double dc_bn_sqdev(const float *p, size_t n, double mean)
{
    dc_bn_v4d lo = {0}, hi = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        dc_bn_v4d t0 = dc_bn_widen(dc_bn_load(p + i)) - mean, t1 = dc_bn_widen(dc_bn_load(p + i + 4)) - mean;
        lo += t0 * t0;
        hi += t1 * t1;
    }
    double tail = 0.0;
    for (; i < n; i++) {
        double t = p[i] - mean;
        tail += t * t;
    }
    return dc_bn_total(&lo, &hi, tail);
}

/* sum dy[i] and sum dy[i] * xhat[i] over one row, xhat = (x - mean) * invstd in float */
static void dc_bn_dsums(const float *x, const float *dy, size_t n, float mean, float invstd, double *sum_dy,
                        double *sum_dy_xhat)
{
    dc_bn_v4d a_lo = {0}, a_hi = {0}, b_lo = {0}, b_hi = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        dc_bn_v4d g0 = dc_bn_widen(dc_bn_load(dy + i)), g1 = dc_bn_widen(dc_bn_load(dy + i + 4));
        dc_bn_v4f h0 = (dc_bn_load(x + i) - mean) * invstd, h1 = (dc_bn_load(x + i + 4) - mean) * invstd;
        a_lo += g0;
        a_hi += g1;
        b_lo += g0 * dc_bn_widen(h0);
        b_hi += g1 * dc_bn_widen(h1);
    }
    double ta = 0.0, tb = 0.0;
    for (; i < n; i++) {
        ta += dy[i];
        tb += (double)dy[i] * ((x[i] - mean) * invstd);
    }
    *sum_dy += dc_bn_total(&a_lo, &a_hi, ta);
    *sum_dy_xhat += dc_bn_total(&b_lo, &b_hi, tb);
}

/* Run the loop over channels on several threads only when the tensor is big. */
#define DC_BN_PAR(d) ((size_t)(d)->n * (d)->c * (d)->hw > DC_CPU_PAR_MIN)

/* Channels are taken in blocks of at most DC_BN_BLOCK, one block per loop
 * iteration (and so per thread): inside a block every pass runs image by
 * image over the block's channels, which are adjacent in memory, so a pass
 * is one long stream per image instead of a short row every C*HW floats
 * (a 4x4 map is one cache line, which no prefetcher follows).  Each channel
 * still sums its rows in image order, so the block size changes no result. */
enum { DC_BN_BLOCK = DC_CPU_CHANNEL_BLOCK };

int dc_cpu_channel_block(int c, int threads)
{
    int per = (c + threads - 1) / threads;
    return per < DC_CPU_CHANNEL_BLOCK ? per : DC_CPU_CHANNEL_BLOCK;
}

/* The tensors of a training forward or a backward; mean and invstd are
 * written by the forward and read by the backward. */
struct dc_bn_io {
    const float *x, *dy, *gamma, *beta;
    float *running_mean, *running_var, *y, *mean, *invstd;
    float *dx, *dgamma, *dbeta;
};

/* fn over the channel blocks, one block per loop iteration. */
static void dc_bn_blocks(struct dc_backend *be, const struct dc_bn_desc *d, const struct dc_bn_io *io,
                         void (*fn)(const struct dc_bn_desc *d, int c0, int nc, const struct dc_bn_io *io))
{
    const int threads = dc_cpu_ctx(be)->threads, bs = dc_cpu_channel_block(d->c, threads);
    const int blocks = (d->c + bs - 1) / bs;
    DC_OMP_FOR(threads, DC_BN_PAR(d))
    for (int b = 0; b < blocks; b++) {
        const int c0 = b * bs, nc = d->c - c0 < bs ? d->c - c0 : bs;
        fn(d, c0, nc, io);
    }
}

/* Statistics, scale and shift for channels [c0, c0+nc) (nc <= DC_BN_BLOCK). */
static void dc_bn_block_fwd(const struct dc_bn_desc *d, int c0, int nc, const struct dc_bn_io *io)
{
    const float *x = io->x, *gamma = io->gamma, *beta = io->beta;
    float *running_mean = io->running_mean, *running_var = io->running_var, *y = io->y;
    float *save_mean = io->mean, *save_invstd = io->invstd;
    const size_t hw = (size_t)d->hw, chw = (size_t)d->c * hw;
    const double count = (double)d->n * (double)d->hw;
    double sum[DC_BN_BLOCK] = {0}, sq[DC_BN_BLOCK] = {0}, mean[DC_BN_BLOCK];
    float scale[DC_BN_BLOCK], shift[DC_BN_BLOCK];
    for (int n = 0; n < d->n; n++)
        for (int j = 0; j < nc; j++)
            sum[j] += dc_cpu_sum_f64(x + n * chw + (c0 + j) * hw, hw);
    for (int j = 0; j < nc; j++)
        mean[j] = sum[j] / count;
    for (int n = 0; n < d->n; n++)
        for (int j = 0; j < nc; j++)
            sq[j] += dc_bn_sqdev(x + n * chw + (c0 + j) * hw, hw, mean[j]);
    for (int j = 0; j < nc; j++) {
        const int c = c0 + j;
        double var = sq[j] / count;
        float invstd = (float)(1.0 / sqrt(var + d->eps));
        scale[j] = gamma[c] * invstd;
        shift[j] = beta[c] - (float)mean[j] * scale[j];
        double unbiased = count > 1.0 ? sq[j] / (count - 1.0) : var;
        running_mean[c] = (1.0f - d->momentum) * running_mean[c] + d->momentum * (float)mean[j];
        running_var[c] = (1.0f - d->momentum) * running_var[c] + d->momentum * (float)unbiased;
        save_mean[c] = (float)mean[j];
        save_invstd[c] = invstd;
    }
    for (int n = 0; n < d->n; n++)
        for (int j = 0; j < nc; j++) {
            const float *xp = x + n * chw + (c0 + j) * hw;
            float *yp = y + n * chw + (c0 + j) * hw;
            const float sc = scale[j], sh = shift[j];
            for (size_t i = 0; i < hw; i++)
                yp[i] = xp[i] * sc + sh;
        }
}

enum dc_status dc_cpu_bn_fwd_train(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                                   const float *gamma, const float *beta, float *running_mean,
                                   float *running_var, float *y, float *save_mean, float *save_invstd)
{
    DC_TRY(dc_bn_check(d, "bn_fwd_train"));
    const struct dc_bn_io io = {.x = x, .gamma = gamma, .beta = beta, .running_mean = running_mean,
                                .running_var = running_var, .y = y, .mean = save_mean, .invstd = save_invstd};
    dc_bn_blocks(be, d, &io, dc_bn_block_fwd);
    return DC_OK;
}

enum dc_status dc_cpu_bn_fwd_infer(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                                   const float *gamma, const float *beta, const float *running_mean,
                                   const float *running_var, float *y)
{
    DC_TRY(dc_bn_check(d, "bn_fwd_infer"));
    const size_t hw = (size_t)d->hw, chw = (size_t)d->c * hw;
    DC_OMP_FOR(dc_cpu_ctx(be)->threads, DC_BN_PAR(d))
    for (int c = 0; c < d->c; c++) {
        float scale = gamma[c] / sqrtf(running_var[c] + d->eps);
        float shift = beta[c] - running_mean[c] * scale;
        for (int n = 0; n < d->n; n++) {
            const float *xp = x + n * chw + c * hw;
            float *yp = y + n * chw + c * hw;
            for (size_t i = 0; i < hw; i++)
                yp[i] = xp[i] * scale + shift;
        }
    }
    return DC_OK;
}

/* With xhat = (x - mean) * invstd and m = N*HW:
 *   dbeta = sum dy, dgamma = sum dy * xhat,
 *   dx = gamma * invstd / m * (m * dy - dbeta - xhat * dgamma).
 * For channels [c0, c0+nc) (nc <= DC_BN_BLOCK), streamed image by image. */
static void dc_bn_block_bwd(const struct dc_bn_desc *d, int c0, int nc, const struct dc_bn_io *io)
{
    const float *x = io->x, *dy = io->dy, *gamma = io->gamma, *save_mean = io->mean, *save_invstd = io->invstd;
    float *dx = io->dx, *dgamma = io->dgamma, *dbeta = io->dbeta;
    const size_t hw = (size_t)d->hw, chw = (size_t)d->c * hw;
    const double count = (double)d->n * (double)d->hw;
    double sum_dy[DC_BN_BLOCK] = {0}, sum_dy_xhat[DC_BN_BLOCK] = {0};
    float k[DC_BN_BLOCK], mean_dy[DC_BN_BLOCK], mean_dy_xhat[DC_BN_BLOCK];
    for (int n = 0; n < d->n; n++)
        for (int j = 0; j < nc; j++) {
            const size_t at = n * chw + (c0 + j) * hw;
            dc_bn_dsums(x + at, dy + at, hw, save_mean[c0 + j], save_invstd[c0 + j], &sum_dy[j],
                        &sum_dy_xhat[j]);
        }
    for (int j = 0; j < nc; j++) {
        const int c = c0 + j;
        dbeta[c] = (float)sum_dy[j];
        dgamma[c] = (float)sum_dy_xhat[j];
        k[j] = gamma[c] * save_invstd[c];
        mean_dy[j] = (float)(sum_dy[j] / count);
        mean_dy_xhat[j] = (float)(sum_dy_xhat[j] / count);
    }
    for (int n = 0; n < d->n; n++)
        for (int j = 0; j < nc; j++) {
            const size_t at = n * chw + (c0 + j) * hw;
            const float *xp = x + at, *dyp = dy + at;
            float *dxp = dx + at;
            const float mean = save_mean[c0 + j], invstd = save_invstd[c0 + j], kj = k[j];
            const float mdy = mean_dy[j], mdyx = mean_dy_xhat[j];
            for (size_t i = 0; i < hw; i++) {
                float xhat = (xp[i] - mean) * invstd;
                dxp[i] = kj * (dyp[i] - mdy - xhat * mdyx);
            }
        }
}

enum dc_status dc_cpu_bn_bwd(struct dc_backend *be, const struct dc_bn_desc *d, const float *x,
                             const float *dy, const float *gamma, const float *save_mean,
                             const float *save_invstd, float *dx, float *dgamma, float *dbeta)
{
    DC_TRY(dc_bn_check(d, "bn_bwd"));
    /* the saved statistics are only read here */
    const struct dc_bn_io io = {.x = x, .dy = dy, .gamma = gamma, .mean = (float *)save_mean,
                                .invstd = (float *)save_invstd, .dx = dx, .dgamma = dgamma, .dbeta = dbeta};
    dc_bn_blocks(be, d, &io, dc_bn_block_bwd);
    return DC_OK;
}
