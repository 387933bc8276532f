/* test_quantize.c: trained quantization on a small two-layer net: weights
 * become codebook[assign] * mask with at most 2^bits values; the centroid
 * gradient equals the sum of its members' gradients and matches finite
 * differences of the loss; fine-tuning steps move centroids by SGD and keep
 * pruned weights at zero; per-layer bit overrides; CPU/CUDA agreement when a
 * GPU answers. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dc/config.h"
#include "dc/net.h"
#include "dc/prune.h"
#include "dc/quantize.h"
#include "dc/rng.h"

enum { NB = 4, IN = 6, CLASSES = 3 };

static const char net_text[] = "[fc]\nname = fc1\noutputs = 16\nactivation = relu\n"
                               "[fc]\nname = fc2\noutputs = 3\nbits = 3\n";

struct fixture {
    struct dc_config cfg;
    struct dc_net *net;
};

static int fixture_init(struct fixture *f, struct dc_backend *be)
{
    struct dc_rng rng;
    dc_rng_seed(&rng, 31);
    CHECK_OK(dc_config_parse_net(net_text, "test_quantize", &f->cfg));
    f->net = NULL;
    CHECK_OK(dc_net_create(be, &f->cfg, 1, 1, IN, CLASSES, NB, 5, &f->net));
    if (!f->net)
        return 0;
    float x[NB * IN];
    int32_t labels[NB];
    for (int i = 0; i < NB * IN; i++)
        x[i] = dc_rng_normal(&rng);
    for (int i = 0; i < NB; i++)
        labels[i] = (int32_t)dc_rng_below(&rng, CLASSES);
    CHECK_OK(be->ops.upload(be, f->net->act[0].data, x, sizeof x));
    CHECK_OK(be->ops.upload(be, f->net->labels, labels, sizeof labels));
    return 1;
}

static void fixture_free(struct fixture *f)
{
    dc_net_free(f->net);
    dc_config_free(&f->cfg);
}

/* Mean cross-entropy of the fixed batch; with backward, leaves gradients in the params. */
static double loss(struct dc_net *net, int backward)
{
    struct dc_pass pass = {.train = 0};
    double sum = 0, correct = 0;
    CHECK_OK(dc_net_stats_reset(net));
    CHECK_OK(dc_net_forward(net, NB, &pass));
    CHECK_OK(dc_net_loss(net, NB));
    if (backward)
        CHECK_OK(dc_net_backward(net, NB));
    CHECK_OK(dc_net_stats_read(net, &sum, &correct));
    return sum / NB;
}

struct host {
    size_t n;
    float w[IN * 16], g[IN * 16], mask[IN * 16], code[256];
    uint8_t a[IN * 16];
};

static void download(struct dc_backend *be, const struct dc_param *p, struct host *h)
{
    h->n = dc_param_count(p);
    CHECK_OK(be->ops.download(be, h->w, p->w.data, h->n * 4));
    CHECK_OK(be->ops.download(be, h->g, p->g.data, h->n * 4));
    for (size_t i = 0; i < h->n; i++)
        h->mask[i] = 1.0f;
    if (p->mask)
        CHECK_OK(be->ops.download(be, h->mask, p->mask, h->n * 4));
    if (p->codebook) {
        CHECK_OK(be->ops.download(be, h->a, p->assign, h->n));
        CHECK_OK(be->ops.download(be, h->code, p->codebook, (size_t)p->m * 4));
    }
}

static void check_shared(struct dc_backend *be, const struct dc_param *p, int bits)
{
    struct host h;
    download(be, p, &h);
    CHECK(p->m == 1 << bits);
    for (size_t i = 0; i < h.n; i++) {
        CHECK(h.a[i] < p->m);
        CHECK(h.w[i] == h.code[h.a[i]] * h.mask[i]);
        if (h.mask[i] == 0.0f)
            CHECK(h.w[i] == 0.0f && h.a[i] == 0);
    }
}

static void test_gradient(struct dc_backend *be)
{
    struct fixture f;
    if (!fixture_init(&f, be))
        return;
    struct dc_param *w1 = dc_net_find_param(f.net, "fc1.weight"), *w2 = dc_net_find_param(f.net, "fc2.weight");
    CHECK(dc_quantize_bits(&f.cfg, w1) == 5 && dc_quantize_bits(&f.cfg, w2) == 3); /* fc default, override */
    float t;
    CHECK_OK(dc_prune_threshold(be, w1, DC_PRUNE_SPARSITY, 0.5f, &t));
    CHECK_OK(dc_prune_apply(be, w1, t, NULL));
    CHECK_OK(dc_quantize_param(be, w1, 2, DC_INIT_LINEAR, 20, 1));
    CHECK_OK(dc_quantize_param(be, w2, dc_quantize_bits(&f.cfg, w2), DC_INIT_DENSITY, 20, 1));
    check_shared(be, w1, 2);
    check_shared(be, w2, 3);

    /* centroid gradient = sum of member gradients (masked members excluded) */
    loss(f.net, 1);
    struct host h0;
    download(be, w1, &h0);
    double want[4] = {0};
    for (size_t i = 0; i < h0.n; i++)
        if (h0.mask[i] != 0.0f)
            want[h0.a[i]] += h0.g[i];
    const float lr = 0.1f;
    CHECK_OK(dc_quantize_step(be, w1, lr, 0.0f));
    float dcode[4];
    struct host h1;
    CHECK_OK(be->ops.download(be, dcode, w1->dcode, sizeof dcode));
    download(be, w1, &h1);
    for (int j = 0; j < 4; j++) {
        CHECK(fabs(dcode[j] - want[j]) <= 1e-5 * (1 + fabs(want[j])));
        CHECK(fabsf(h1.code[j] - (h0.code[j] - lr * dcode[j])) <= 1e-6f);
    }
    check_shared(be, w1, 2);

    /* finite differences of the loss in each centroid, from the current point */
    loss(f.net, 1);
    CHECK_OK(be->ops.codebook_grad(be, h1.n, w1->assign, w1->g.data, w1->mask, 4, w1->dcode));
    CHECK_OK(be->ops.download(be, dcode, w1->dcode, sizeof dcode));
    for (int j = 0; j < 4; j++) {
        const float eps = 1e-3f; /* smallest step whose float rounding stays below the tolerance */
        double lp, lm;
        float code[4];
        memcpy(code, h1.code, sizeof code);
        code[j] = h1.code[j] + eps;
        CHECK_OK(be->ops.upload(be, w1->codebook, code, sizeof code));
        CHECK_OK(be->ops.codebook_gather(be, h1.n, w1->assign, w1->codebook, w1->mask, w1->w.data));
        lp = loss(f.net, 0);
        code[j] = h1.code[j] - eps;
        CHECK_OK(be->ops.upload(be, w1->codebook, code, sizeof code));
        CHECK_OK(be->ops.codebook_gather(be, h1.n, w1->assign, w1->codebook, w1->mask, w1->w.data));
        lm = loss(f.net, 0);
        double fd = (lp - lm) / (2.0 * eps);
        if (!(fabs(fd - dcode[j]) <= 1e-3 + 1e-2 * fabs(fd)))
            fprintf(stderr, "centroid %d: finite difference %.6f, centroid gradient %.6f\n", j, fd, (double)dcode[j]);
        CHECK(fabs(fd - dcode[j]) <= 1e-3 + 1e-2 * fabs(fd));
    }
    CHECK_OK(be->ops.upload(be, w1->codebook, h1.code, sizeof h1.code[0] * 4));
    CHECK_OK(be->ops.codebook_gather(be, h1.n, w1->assign, w1->codebook, w1->mask, w1->w.data));

    /* fine-tuning through the net's optimiser lowers the loss, pruned weights stay zero */
    double before = loss(f.net, 0);
    for (int s = 0; s < 30; s++) {
        loss(f.net, 1);
        CHECK_OK(dc_net_update(f.net, 0.05f, 0.9f, 0.0f, 0));
    }
    CHECK(loss(f.net, 0) < before);
    check_shared(be, w1, 2);
    check_shared(be, w2, 3);
    dc_quantize_release(be, w1);
    CHECK(!w1->assign && !w1->codebook && !w1->dcode && !w1->vcode && w1->m == 0);
    CHECK(dc_quantize_step(be, w1, 0.1f, 0.0f) == DC_ERR_ARG);
    CHECK(dc_quantize_param(be, w1, 9, DC_INIT_LINEAR, 1, 0) == DC_ERR_ARG);
    fixture_free(&f);
}

/* The same weights quantized on the CPU and on the GPU give the same codebook and assignment. */
static void test_parity(struct dc_backend *cpu, struct dc_backend *gpu)
{
    struct fixture a, b;
    if (!fixture_init(&a, cpu) || !fixture_init(&b, gpu))
        return;
    struct dc_param *pa = dc_net_find_param(a.net, "fc1.weight"), *pb = dc_net_find_param(b.net, "fc1.weight");
    struct host ha, hb;
    download(cpu, pa, &ha);
    CHECK_OK(gpu->ops.upload(gpu, pb->w.data, ha.w, ha.n * 4));
    CHECK_OK(dc_quantize_param(cpu, pa, 5, DC_INIT_LINEAR, 30, 1));
    CHECK_OK(dc_quantize_param(gpu, pb, 5, DC_INIT_LINEAR, 30, 1));
    download(cpu, pa, &ha);
    download(gpu, pb, &hb);
    check_close("cpu/gpu codebook", ha.code, hb.code, 32, 1e-6f, 1e-5f);
    CHECK(memcmp(ha.a, hb.a, ha.n) == 0);
    fixture_free(&a);
    fixture_free(&b);
}

/* Pruning leaves a gap around zero where linear initialisation puts
 * centroids; after quantization every cluster must still have members. */
static void test_no_empty_clusters(struct dc_backend *be)
{
    enum { N = 4000, BITS = 5 };
    struct dc_param p;
    memset(&p, 0, sizeof p);
    CHECK_OK(dc_param_init(be, &p, "gap.weight", 1, 1, 1, N, 1));
    static float w[N], mask[N];
    static uint8_t a[N];
    struct dc_rng rng;
    dc_rng_seed(&rng, 77);
    for (int i = 0; i < N; i++) {
        float v = dc_rng_normal(&rng) * 0.1f + (i % 2 ? 0.5f : -0.5f);
        mask[i] = i % 3 ? 1.0f : 0.0f;
        w[i] = v * mask[i];
    }
    CHECK_OK(be->ops.upload(be, p.w.data, w, sizeof w));
    CHECK_OK(be->ops.alloc(be, (void **)&p.mask, sizeof mask));
    CHECK_OK(be->ops.upload(be, p.mask, mask, sizeof mask));
    CHECK_OK(dc_quantize_param(be, &p, BITS, DC_INIT_LINEAR, 30, 1));
    CHECK_OK(be->ops.download(be, a, p.assign, N));
    int count[1 << BITS] = {0};
    for (int i = 0; i < N; i++)
        if (mask[i] != 0.0f)
            count[a[i]]++;
    for (int j = 0; j < (1 << BITS); j++)
        if (count[j] == 0) {
            fprintf(stderr, "cluster %d of %d is empty after quantization\n", j, 1 << BITS);
            dc_test_failures++;
            break;
        }
    dc_param_free(be, &p);
}

int main(void)
{
    struct dc_backend *cpu = NULL, *gpu = NULL;
    struct dc_backend_opts opts = {0};
    CHECK_OK(dc_backend_create("cpu", &opts, &cpu));
    if (!cpu)
        return test_finish("test_quantize");
    test_gradient(cpu);
    test_no_empty_clusters(cpu);
    if (dc_backend_create("cuda", &opts, &gpu) == DC_OK) {
        test_gradient(gpu);
        test_parity(cpu, gpu);
        dc_backend_free(gpu);
    } else {
        printf("test_quantize: no CUDA backend (%s); CPU only\n", dc_error_msg());
    }
    dc_backend_free(cpu);
    return test_finish("test_quantize");
}
