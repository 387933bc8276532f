/* dense_half.c: rounds a network's densely stored values (biases, batch-norm
 * parameters and statistics, unpruned unquantized weights) to half precision
 * so that [encode] dense_bits = 16 can store them in 2 bytes each and the file
 * still decodes bit for bit to the network that was evaluated.  The float <->
 * half conversions are written out with integer operations so the rounding is
 * exact and the same on every machine. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dc/half.h"
#include "dc/modelfile.h"

/* Round the low `shift` bits of m away, to nearest with ties to even. */
static uint32_t round_shift(uint32_t m, int shift)
{
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    return q + (rem > halfway || (rem == halfway && (q & 1)));
}

uint16_t dc_half_from_float(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t a = x & 0x7FFFFFFF;
    if (a > 0x7F800000) /* NaN: keep the top payload bits, force quiet so it cannot become infinity */
        return (uint16_t)(sign | 0x7E00 | ((a >> 13) & 0x3FF));
    if (a >= 0x477FF000) /* >= 65520 = 65504 + half an ulp: ties to even go up, to infinity */
        return (uint16_t)(sign | 0x7C00);
    if (a >= 0x38800000) /* normal half (>= 2^-14): rebias 127 -> 15, a carry may bump the exponent */
        return (uint16_t)(sign | round_shift(a - (112u << 23), 13));
    int e = (int)(a >> 23);
    if (e < 102) /* below 2^-25, half the smallest subnormal: rounds to zero (2^-25 itself ties to 0) */
        return sign;
    /* subnormal half: a multiple of 2^-24; the value is m * 2^(e - 150) */
    return (uint16_t)(sign | round_shift((a & 0x7FFFFF) | 0x800000, 126 - e));
}

float dc_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1F, m = h & 0x3FF, x;
    if (e == 31) {
        x = sign | 0x7F800000 | (m << 13);
    } else if (e == 0 && m == 0) {
        x = sign;
    } else if (e == 0) { /* subnormal: normalise, 2^-14 has float exponent 113 */
        e = 113;
        while (!(m & 0x400))
            m <<= 1, e--;
        x = sign | (e << 23) | ((m & 0x3FF) << 13);
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

int dc_half_exact(float f)
{
    float back = dc_half_to_float(dc_half_from_float(f));
    return memcmp(&back, &f, 4) == 0;
}

int dc_modelfile_stores_dense(const struct dc_param *p)
{
    return !(p->mask || p->assign);
}

/* n values at dev (backend memory) to the nearest halves, in place. */
static enum dc_status round_values(struct dc_backend *be, const struct dc_param *p, float *dev, size_t n,
                                   const char *key)
{
    float *v = malloc(sizeof *v * (n ? n : 1));
    if (!v)
        return DC_ERROR(DC_ERR_NOMEM, "%s: no memory to round %zu values to half precision", p->name, n);
    enum dc_status st = be->ops.download(be, v, dev, sizeof *v * n);
    for (size_t i = 0; st == DC_OK && i < n; i++) {
        float r = dc_half_to_float(dc_half_from_float(v[i]));
        if (!isfinite(r))
            st = DC_ERROR(DC_ERR_ARG, "%s: value %zu (%g) does not fit half precision (finite, |x| <= 65504); "
                          "encode with [encode] %s = 32", p->name, i, (double)v[i], key);
        v[i] = r;
    }
    if (st == DC_OK)
        st = be->ops.upload(be, dev, v, sizeof *v * n);
    free(v);
    return st;
}

enum dc_status dc_round_dense_half(struct dc_net *net)
{
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        if (dc_modelfile_stores_dense(p))
            DC_TRY(round_values(net->be, p, p->w.data, dc_param_count(p), "dense_bits"));
    }
    return DC_OK;
}

enum dc_status dc_round_codebook_half(struct dc_backend *be, struct dc_param *p)
{
    if (!p->codebook)
        return DC_OK;
    DC_TRY(round_values(be, p, p->codebook, (size_t)p->m, "codebook_bits"));
    return be->ops.codebook_gather(be, dc_param_count(p), p->assign, p->codebook, p->mask, p->w.data);
}

enum dc_status dc_round_codebooks_half(struct dc_net *net)
{
    for (int i = 0; i < net->nparams; i++)
        DC_TRY(dc_round_codebook_half(net->be, net->params[i]));
    return DC_OK;
}
