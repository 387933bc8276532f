/* test_half.c: the float <-> half conversions behind [encode] dense_bits = 16
 * and dc_round_dense_half.  Every one of the 65536 half patterns widens to the
 * value its fields say and narrows back to itself; every halfway point between
 * neighbouring halves rounds to the even one (subnormals and the overflow edge
 * included), checked against a rounding reference written with doubles; and a
 * network value beyond half's range is refused naming its parameter. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "dc/config.h"
#include "dc/half.h"
#include "dc/modelfile.h"
#include "dc/net.h"
#include "dc/prune.h"
#include "dc/rng.h"

static struct dc_rng rng;

/* The value a half's fields stand for, straight from the IEEE definition. */
static double half_value(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 31 ? (m ? NAN : INFINITY) : e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* Nearest half by arithmetic in double: scale by the half ulp of f's binade,
 * round ties to even with nearbyint, scale back; past 65504 is infinity. */
static float ref_round(float f)
{
    double a = fabs((double)f), r;
    if (isnan(f))
        return f;
    int e;
    frexp(a, &e); /* a = m * 2^e, 0.5 <= m < 1 */
    int ulp = a < 0x1p-14 ? -24 : e - 1 - 10;
    r = isinf(a) ? a : ldexp(nearbyint(ldexp(a, -ulp)), ulp);
    if (r > 65504.0)
        r = INFINITY;
    return (float)copysign(r, (double)f);
}

static int same(float a, float b) { return memcmp(&a, &b, 4) == 0; }

static void test_all_halves(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = dc_half_to_float((uint16_t)h);
        double want = half_value((uint16_t)h);
        uint16_t back = dc_half_from_float(f);
        if (isnan(want)) {
            bad += !isnan(f) || (back & 0x7C00) != 0x7C00 || !(back & 0x3FF) || (back ^ h) & 0x8000;
            continue;
        }
        bad += (double)f != want || !signbit(f) != !signbit(want) || back != h || !dc_half_exact(f);
        if (bad == 1 && ((double)f != want || back != h))
            fprintf(stderr, "half 0x%04x: widened %.9g (want %.9g), narrowed back 0x%04x\n", h, (double)f, want,
                    back);
    }
    CHECK(bad == 0);
}

/* Halfway between h and h + 1 goes to whichever is even; one float ulp either side goes to the nearer. */
static void test_halfway(void)
{
    int bad = 0;
    for (uint16_t h = 0; h <= 0x7BFF; h++) {
        float lo = dc_half_to_float(h), mid = h == 0x7BFF ? 65520.0f : (lo + dc_half_to_float(h + 1)) / 2;
        uint16_t even = (h & 1) ? h + 1 : h;
        for (int s = 0; s < 2; s++) {
            float m = s ? -mid : mid;
            uint16_t sg = s ? 0x8000 : 0;
            bad += dc_half_from_float(m) != (uint16_t)(even | sg);
            bad += dc_half_from_float(nextafterf(m, 0.0f)) != (uint16_t)(h | sg);
            bad += dc_half_from_float(nextafterf(m, s ? -INFINITY : INFINITY)) != (uint16_t)((h + 1) | sg);
            bad += !same(dc_half_to_float(dc_half_from_float(m)), ref_round(m));
        }
    }
    CHECK(bad == 0);
}

/* Fresh random floats, mostly near half's range, against the reference. */
static void test_random(void)
{
    int bad = 0;
    for (int i = 0; i < 1000000; i++) {
        uint32_t x = (uint32_t)dc_rng_next(&rng);
        if (i & 1) /* exponents 96..147: deep subnormal to past overflow */
            x = (x & 0x807FFFFF) | (96u + (uint32_t)dc_rng_below(&rng, 52)) << 23;
        float f;
        memcpy(&f, &x, 4);
        float got = dc_half_to_float(dc_half_from_float(f)), want = ref_round(f);
        if (isnan(f) ? !isnan(got) : !same(got, want)) {
            if (!bad)
                fprintf(stderr, "%.9g (0x%08x) rounds to %.9g, reference %.9g\n", (double)f, x, (double)got,
                        (double)want);
            bad++;
        }
    }
    CHECK(bad == 0);
}

static void test_named_cases(void)
{
    const struct {
        float in, out;
    } cases[] = {
        {1.0f + 0x1p-11f, 1.0f},                 /* tie, 1 is even */
        {1.0f + 3 * 0x1p-11f, 1.0f + 0x1p-9f},   /* tie, rounds up to even */
        {2049.0f, 2048.0f}, {2051.0f, 2052.0f},  /* ulp 2 above 2048 */
        {65519.996f, 65504.0f}, {65504.0f, 65504.0f}, {65520.0f, INFINITY}, {-1e6f, -INFINITY},
        {0x1p-25f, 0.0f},                        /* tie with zero */
        {0x1.000002p-25f, 0x1p-24f},             /* just above the tie: smallest subnormal */
        {3 * 0x1p-25f, 0x1p-23f},                /* tie between 1 and 2 subnormal ulps: 2 */
        {1023.5f * 0x1p-24f, 0x1p-14f},          /* largest subnormal + half ulp: the smallest normal */
        {1e-30f, 0.0f}, {-1e-30f, -0.0f}, {0x1p-149f, 0.0f},
        {0.1f, 0.0999755859375f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float got = dc_half_to_float(dc_half_from_float(cases[i].in));
        if (!same(got, cases[i].out)) {
            fprintf(stderr, "case %zu: %a rounds to %a, want %a\n", i, (double)cases[i].in, (double)got,
                    (double)cases[i].out);
            dc_test_failures++;
        }
    }
    CHECK(!dc_half_exact(0.1f) && !dc_half_exact(65505.0f) && !dc_half_exact(0x1p-26f));
    CHECK(dc_half_exact(-0.0f) && dc_half_exact(0x1p-24f) && dc_half_exact(65504.0f));
}

/* dc_round_dense_half rounds dense parameters (bias, unpruned weight), leaves
 * a pruned weight alone, and refuses a value beyond 65504 naming it. */
static void test_round_net(void)
{
    struct dc_backend *be = NULL;
    struct dc_backend_opts opts = {0};
    struct dc_config cfg;
    struct dc_net *net = NULL;
    CHECK_OK(dc_backend_create("cpu", &opts, &be));
    CHECK_OK(dc_config_parse_net("[fc]\nname = a\noutputs = 6\n[fc]\nname = b\noutputs = 10\n", "test_half", &cfg));
    if (be)
        CHECK_OK(dc_net_create(be, &cfg, 1, 2, 2, 10, 1, 5, &net));
    if (!net)
        goto done;
    struct dc_param *aw = dc_net_find_param(net, "a.weight"), *bw = dc_net_find_param(net, "b.weight");
    struct dc_param *bb = dc_net_find_param(net, "b.bias");
    float t, w[60], b[10], w0[60], aw0[24], aw1[24];
    CHECK_OK(dc_prune_threshold(be, bw, DC_PRUNE_SPARSITY, 0.5f, &t));
    CHECK_OK(dc_prune_apply(be, bw, t, NULL));
    for (int i = 0; i < 10; i++)
        b[i] = 100.0f * dc_rng_normal(&rng);
    CHECK_OK(be->ops.upload(be, bb->w.data, b, sizeof b));
    CHECK_OK(be->ops.download(be, w0, bw->w.data, sizeof w0));
    CHECK_OK(be->ops.download(be, aw0, aw->w.data, sizeof aw0));
    CHECK_OK(dc_round_dense_half(net));
    float b1[10];
    CHECK_OK(be->ops.download(be, b1, bb->w.data, sizeof b1));
    CHECK_OK(be->ops.download(be, w, bw->w.data, sizeof w));
    CHECK_OK(be->ops.download(be, aw1, aw->w.data, sizeof aw1));
    CHECK(memcmp(w, w0, sizeof w) == 0); /* pruned weights are coded, not rounded */
    for (int i = 0; i < 10; i++)
        CHECK(same(b1[i], ref_round(b[i])) && dc_half_exact(b1[i]));
    int changed = 0;
    for (int i = 0; i < 24; i++) {
        CHECK(same(aw1[i], ref_round(aw0[i])));
        changed += !same(aw1[i], aw0[i]);
    }
    CHECK(changed > 0); /* random weights are rarely halves already: the test can fail */
    b[3] = 65520.0f;
    CHECK_OK(be->ops.upload(be, bb->w.data, b, sizeof b));
    CHECK(dc_round_dense_half(net) == DC_ERR_ARG);
    CHECK(strstr(dc_error_msg(), "b.bias: value 3 (65520)") != NULL);
    dc_net_free(net);
done:
    dc_config_free(&cfg);
    dc_backend_free(be);
}

int main(void)
{
    dc_rng_seed(&rng, 77);
    test_all_halves();
    test_halfway();
    test_random();
    test_named_cases();
    test_round_net();
    return test_finish("test_half");
}
