/* bench_kmeans: times the backends' 1-D k-means (the weight-sharing step of
 * trained quantization) on the real weights of a trained network, so it can
 * be set beside scikit-learn's KMeans on the same values
 * (bench/peer_sklearn_kmeans.py, driven by bench/kmeans_cpu.sh).
 *
 * It loads a dctrain checkpoint into the network its config describes, takes
 * every prunable weight tensor (only its surviving weights when the
 * checkpoint holds masks, or after --sparsity S magnitude pruning done here),
 * and for each k = 2^bits runs kmeans_1d from the same linear initial
 * centroids the quantize stage uses, on the CPU and, when one answers, on the
 * GPU.  Before anything is timed each result is checked: every assignment is
 * a nearest centroid, and the GPU agrees with the CPU.  Output: one JSON line
 * per (tensor, bits), after an "info" line; with --dump DIR it also writes
 * the surviving values and the initial centroids as raw little-endian float32
 * so the peer clusters exactly the same numbers from exactly the same start.
 *
 * Legend: x, mask, assign [n] (one weight tensor, flattened); centroids [M]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/backend.h"
#include "dc/log.h"
#include "dc/net.h"
#include "dc/quantize.h"
#include "dc/train.h"

#define BK_MAX_TENSORS 64
#define BK_MAX_BITS 8

struct bk_opts {
    const char *config, *checkpoint, *dump;
    const char *sets[64];
    int nsets;
    int bits[BK_MAX_BITS], nbits;
    int iters, repeat, warmup, threads;
    float sparsity; /* < 0: keep the checkpoint's masks (if any) */
    int want_cuda;
};

/* One weight tensor on the host. */
struct bk_tensor {
    char name[48];
    size_t n, kept;
    float *x;    /* [n] */
    float *mask; /* [n] or NULL: every weight kept */
};

/* What one backend produced for one (tensor, bits). */
struct bk_result {
    int ok;
    double ms_median, ms_min, inertia;
    float centroids[256];
};

static void bk_usage(void)
{
    fprintf(stderr,
            "usage: bench_kmeans CONFIG.ini CHECKPOINT [--bits 5,6,8] [--iters N] [--repeat N] [--warmup N]\n"
            "                    [--threads N] [--sparsity S] [--dump DIR] [--no-cuda] [--set k=v]...\n");
}

static int bk_parse_bits(const char *s, struct bk_opts *o)
{
    o->nbits = 0;
    for (const char *p = s; *p && o->nbits < BK_MAX_BITS;) {
        char *end;
        long b = strtol(p, &end, 10);
        if (end == p || b < 1 || b > 8)
            return -1;
        o->bits[o->nbits++] = (int)b;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return o->nbits > 0 ? 0 : -1;
}

static int bk_parse(int argc, char **argv, struct bk_opts *o)
{
    if (argc < 3)
        return -1;
    *o = (struct bk_opts){.config = argv[1], .checkpoint = argv[2], .iters = -1, .repeat = 7, .warmup = 1,
                          .sparsity = -1.0f, .want_cuda = 1, .nbits = 3, .bits = {5, 6, 8}};
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-cuda")) {
            o->want_cuda = 0;
            continue;
        }
        if (!v)
            return -1;
        i++;
        if (!strcmp(a, "--bits")) {
            if (bk_parse_bits(v, o))
                return -1;
        } else if (!strcmp(a, "--iters")) o->iters = atoi(v);
        else if (!strcmp(a, "--repeat")) o->repeat = atoi(v);
        else if (!strcmp(a, "--warmup")) o->warmup = atoi(v);
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--sparsity")) o->sparsity = (float)atof(v);
        else if (!strcmp(a, "--dump")) o->dump = v;
        else if (!strcmp(a, "--set") && o->nsets < 64) o->sets[o->nsets++] = v;
        else
            return -1;
    }
    return o->repeat >= 1 && o->warmup >= 0 && o->sparsity < 1.0f ? 0 : -1;
}

static int bk_cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Magnitude pruning on the host as the prune stage does it: drop the
 * round(s * n) smallest |w| (mask = |w| > the k-th smallest). */
static enum dc_status bk_host_prune(struct bk_tensor *t, float s)
{
    size_t k = (size_t)llround((double)s * (double)t->n);
    float *a = malloc(sizeof *a * t->n);
    if (!t->mask)
        t->mask = malloc(sizeof *t->mask * t->n);
    if (!a || !t->mask) {
        free(a);
        return DC_ERROR(DC_ERR_NOMEM, "%s: no memory to prune %zu weights", t->name, t->n);
    }
    for (size_t i = 0; i < t->n; i++)
        a[i] = fabsf(t->x[i]);
    qsort(a, t->n, sizeof *a, bk_cmp_float);
    float thr = k ? a[k - 1] : -1.0f;
    for (size_t i = 0; i < t->n; i++)
        t->mask[i] = fabsf(t->x[i]) > thr ? 1.0f : 0.0f;
    free(a);
    return DC_OK;
}

/* The prunable weight tensors of the checkpoint, copied to the host. */
static enum dc_status bk_load_tensors(const struct bk_opts *o, const struct dc_config *cfg, struct bk_tensor *ts,
                                      int *nts)
{
    struct dc_backend_opts bo = {.threads = 1};
    struct dc_backend *be = NULL;
    struct dc_net *net = NULL;
    struct dc_run_state st;
    int c = cfg->dataset == DC_DATASET_CIFAR10 ? 3 : 1, hw = cfg->dataset == DC_DATASET_CIFAR10 ? 32 : 28;
    enum dc_status s = dc_backend_create("cpu", &bo, &be);
    if (s == DC_OK)
        s = dc_net_create(be, cfg, c, hw, hw, 10, 1, cfg->seed, &net);
    if (s == DC_OK)
        s = dc_checkpoint_load(o->checkpoint, net, &st);
    *nts = 0;
    for (int i = 0; s == DC_OK && net && i < net->nparams && *nts < BK_MAX_TENSORS; i++) {
        const struct dc_param *p = net->params[i];
        if (!p->prunable)
            continue;
        struct bk_tensor *t = &ts[(*nts)++];
        snprintf(t->name, sizeof t->name, "%s", p->name);
        t->n = dc_param_count(p);
        t->x = malloc(sizeof(float) * t->n);
        t->mask = p->mask ? malloc(sizeof(float) * t->n) : NULL;
        if (!t->x || (p->mask && !t->mask))
            s = DC_ERROR(DC_ERR_NOMEM, "%s: no memory for %zu weights", p->name, t->n);
        if (s == DC_OK)
            s = be->ops.download(be, t->x, p->w.data, sizeof(float) * t->n);
        if (s == DC_OK && p->mask)
            s = be->ops.download(be, t->mask, p->mask, sizeof(float) * t->n);
        if (s == DC_OK && o->sparsity >= 0.0f)
            s = bk_host_prune(t, o->sparsity);
        t->kept = 0;
        for (size_t j = 0; s == DC_OK && j < t->n; j++)
            t->kept += !t->mask || t->mask[j] != 0.0f;
    }
    if (net)
        dc_net_free(net);
    if (be)
        dc_backend_free(be);
    return s;
}

static enum dc_status bk_write_f32(const char *path, const float *v, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return DC_ERROR(DC_ERR_IO, "%s: cannot create (does the --dump folder exist?)", path);
    size_t w = fwrite(v, sizeof *v, n, f);
    if (fclose(f) != 0 || w != n)
        return DC_ERROR(DC_ERR_IO, "%s: write failed", path);
    return DC_OK;
}

/* The surviving values of t, in index order (what the peer clusters). */
static enum dc_status bk_dump_values(const char *dir, const struct bk_tensor *t)
{
    float *v = malloc(sizeof *v * (t->kept ? t->kept : 1));
    if (!v)
        return DC_ERROR(DC_ERR_NOMEM, "%s: no memory", t->name);
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!t->mask || t->mask[i] != 0.0f)
            v[k++] = t->x[i];
    char path[1024];
    enum dc_status s = snprintf(path, sizeof path, "%s/%s.f32", dir, t->name) < (int)sizeof path
                           ? bk_write_f32(path, v, k)
                           : DC_ERROR(DC_ERR_ARG, "--dump %s: folder name too long", dir);
    free(v);
    return s;
}

/* Check that every kept weight sits at a nearest final centroid (masked-out
 * ones at 0), and return the inertia (sum of squared distances, in double). */
static enum dc_status bk_check(const struct bk_tensor *t, const float *c, int m, const uint8_t *assign,
                               const char *who, double *inertia)
{
    double sum = 0.0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->mask && t->mask[i] == 0.0f) {
            if (assign[i] != 0)
                return DC_ERROR(DC_ERR_ARG, "%s: %s weight %zu is pruned but assigned %d", who, t->name, i, assign[i]);
            continue;
        }
        if (assign[i] >= m)
            return DC_ERROR(DC_ERR_ARG, "%s: %s weight %zu assigned %d of %d", who, t->name, i, assign[i], m);
        float d = fabsf(t->x[i] - c[assign[i]]);
        for (int j = 0; j < m; j++)
            if (fabsf(t->x[i] - c[j]) < d)
                return DC_ERROR(DC_ERR_ARG, "%s: %s weight %zu (%g) assigned centroid %d (%g) but %d (%g) is nearer",
                                who, t->name, i, (double)t->x[i], assign[i], (double)c[assign[i]], j, (double)c[j]);
        sum += (double)d * (double)d;
    }
    *inertia = sum;
    return DC_OK;
}

static int bk_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Device buffers for one tensor on one backend. */
struct bk_dev {
    struct dc_backend *be;
    float *x, *mask, *c;
    uint8_t *assign;
    size_t n;
};

/* One kmeans_1d from the initial centroids c0 with `iters` iterations;
 * returns its wall time (synchronised) and leaves the result in d->c, d->assign. */
static enum dc_status bk_run_once(struct bk_dev *d, const float *c0, int m, int iters, double *seconds)
{
    struct dc_backend *be = d->be;
    DC_TRY(be->ops.upload(be, d->c, c0, sizeof(float) * (size_t)m));
    DC_TRY(be->ops.sync(be));
    double t0 = dc_time_now();
    DC_TRY(be->ops.kmeans_1d(be, d->n, d->x, d->mask, d->c, m, iters, d->assign));
    DC_TRY(be->ops.sync(be));
    *seconds = dc_time_now() - t0;
    return DC_OK;
}

static enum dc_status bk_dev_open(struct dc_backend *be, const struct bk_tensor *t, struct bk_dev *d)
{
    *d = (struct bk_dev){.be = be, .n = t->n};
    DC_TRY(be->ops.alloc(be, (void **)&d->x, sizeof(float) * t->n));
    DC_TRY(be->ops.alloc(be, (void **)&d->c, sizeof(float) * 256));
    DC_TRY(be->ops.alloc(be, (void **)&d->assign, t->n));
    DC_TRY(be->ops.upload(be, d->x, t->x, sizeof(float) * t->n));
    if (t->mask) {
        DC_TRY(be->ops.alloc(be, (void **)&d->mask, sizeof(float) * t->n));
        DC_TRY(be->ops.upload(be, d->mask, t->mask, sizeof(float) * t->n));
    }
    return DC_OK;
}

static void bk_dev_close(struct bk_dev *d)
{
    void *bufs[] = {d->x, d->mask, d->c, d->assign};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i])
            d->be->ops.release(d->be, bufs[i]);
}

/* Check, warm up, then time `repeat` runs; median and minimum in ms. */
static enum dc_status bk_measure(struct bk_dev *d, const struct bk_tensor *t, const float *c0, int m,
                                 const struct bk_opts *o, struct bk_result *r)
{
    uint8_t *assign = malloc(t->n);
    double *ms = malloc(sizeof *ms * (size_t)o->repeat), sec;
    enum dc_status s = assign && ms ? DC_OK : DC_ERROR(DC_ERR_NOMEM, "no memory");
    if (s == DC_OK)
        s = bk_run_once(d, c0, m, o->iters, &sec);
    if (s == DC_OK)
        s = d->be->ops.download(d->be, r->centroids, d->c, sizeof(float) * (size_t)m);
    if (s == DC_OK)
        s = d->be->ops.download(d->be, assign, d->assign, t->n);
    if (s == DC_OK)
        s = bk_check(t, r->centroids, m, assign, d->be->name, &r->inertia);
    for (int i = 1; s == DC_OK && i < o->warmup; i++)
        s = bk_run_once(d, c0, m, o->iters, &sec);
    for (int i = 0; s == DC_OK && i < o->repeat; i++) {
        s = bk_run_once(d, c0, m, o->iters, &sec);
        ms[i] = 1e3 * sec;
    }
    if (s == DC_OK) {
        qsort(ms, (size_t)o->repeat, sizeof *ms, bk_cmp_double);
        r->ms_median = o->repeat % 2 ? ms[o->repeat / 2] : 0.5 * (ms[o->repeat / 2 - 1] + ms[o->repeat / 2]);
        r->ms_min = ms[0];
        r->ok = 1;
    }
    free(assign);
    free(ms);
    return s;
}

/* Lloyd iterations the CPU actually ran before no assignment changed: the
 * least t whose result equals the full run's (binary search; a converged run
 * gives the same answer for every t beyond it). */
static enum dc_status bk_iters_run(struct bk_dev *d, const float *c0, int m, int iters, const float *final,
                                   int *out)
{
    int lo = 0, hi = iters; /* the answer lies in [lo, hi] */
    float c[256];
    double sec;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        DC_TRY(bk_run_once(d, c0, m, mid, &sec));
        DC_TRY(d->be->ops.download(d->be, c, d->c, sizeof(float) * (size_t)m));
        if (memcmp(c, final, sizeof(float) * (size_t)m) == 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *out = lo;
    return DC_OK;
}

static void bk_print_result(const char *key, const struct bk_result *r, const struct bk_result *ref, int m)
{
    if (!r || !r->ok) {
        printf(", \"%s\": null", key);
        return;
    }
    printf(", \"%s\": {\"ms_median\": %.4f, \"ms_min\": %.4f, \"inertia\": %.10g", key, r->ms_median, r->ms_min,
           r->inertia);
    if (ref && ref->ok) {
        double diff = 0.0;
        for (int j = 0; j < m; j++)
            diff = fmax(diff, fabs((double)r->centroids[j] - (double)ref->centroids[j]));
        printf(", \"max_centroid_diff_vs_cpu\": %.3g", diff);
    }
    printf("}");
}

/* Everything for one tensor: both backends, every bit width. */
static enum dc_status bk_tensor_run(const struct bk_opts *o, const struct bk_tensor *t, struct dc_backend *cpu,
                                    struct dc_backend *gpu)
{
    struct bk_dev dc = {0}, dg = {0};
    enum dc_status s = bk_dev_open(cpu, t, &dc);
    if (s == DC_OK && gpu)
        s = bk_dev_open(gpu, t, &dg);
    if (s == DC_OK && o->dump)
        s = bk_dump_values(o->dump, t);
    for (int b = 0; s == DC_OK && b < o->nbits; b++) {
        int m = 1 << o->bits[b], iters_run = -1;
        float c0[256];
        struct bk_result rc = {0}, rg = {0};
        char path[1024];
        s = dc_kmeans_init_centroids(t->x, t->mask, t->n, m, DC_INIT_LINEAR, 0, c0);
        if (s == DC_OK && o->dump)
            s = snprintf(path, sizeof path, "%s/%s.b%d.init.f32", o->dump, t->name, o->bits[b]) < (int)sizeof path
                    ? bk_write_f32(path, c0, (size_t)m)
                    : DC_ERROR(DC_ERR_ARG, "--dump %s: folder name too long", o->dump);
        if (s == DC_OK)
            s = bk_measure(&dc, t, c0, m, o, &rc);
        if (s == DC_OK)
            s = bk_iters_run(&dc, c0, m, o->iters, rc.centroids, &iters_run);
        if (s == DC_OK && gpu)
            s = bk_measure(&dg, t, c0, m, o, &rg);
        if (s != DC_OK)
            break;
        printf("{\"kind\": \"kmeans\", \"param\": \"%s\", \"count\": %zu, \"kept\": %zu, \"bits\": %d, \"k\": %d, "
               "\"iters\": %d, \"iters_run\": %d",
               t->name, t->n, t->kept, o->bits[b], m, o->iters, iters_run);
        if (o->dump)
            printf(", \"values_file\": \"%s/%s.f32\", \"init_file\": \"%s\"", o->dump, t->name, path);
        bk_print_result("cpu", &rc, NULL, m);
        bk_print_result("cuda", gpu ? &rg : NULL, &rc, m);
        printf("}\n");
        fflush(stdout);
    }
    if (dc.be)
        bk_dev_close(&dc);
    if (dg.be)
        bk_dev_close(&dg);
    return s;
}

/* The CUDA backend when this build has one and a GPU answers, else NULL
 * after one line saying why. */
static struct dc_backend *bk_open_cuda(const struct bk_opts *o, char *why, size_t len)
{
    struct dc_backend *gpu = NULL;
    struct dc_backend_opts bo = {.threads = o->threads};
    if (!o->want_cuda)
        snprintf(why, len, "not asked (--no-cuda)");
    else if (!dc_cuda_compiled())
        snprintf(why, len, "no GPU (this build has no CUDA backend)");
    else if (dc_backend_create("cuda", &bo, &gpu) != DC_OK)
        snprintf(why, len, "no GPU (%s)", dc_error_msg());
    if (!gpu)
        fprintf(stderr, "cuda: %s\n", why);
    return gpu;
}

int main(int argc, char **argv)
{
    dc_blas_fix_kernels(argv);
    struct bk_opts o;
    if (bk_parse(argc, argv, &o)) {
        bk_usage();
        return 2;
    }
    dc_log_set_level(DC_LOG_WARN);
    struct dc_config cfg;
    if (dc_config_load(o.config, o.sets, o.nsets, &cfg) != DC_OK) {
        fprintf(stderr, "bench_kmeans: %s\n", dc_error_msg());
        return 2;
    }
    if (o.iters < 0)
        o.iters = cfg.kmeans_iters;
    static struct bk_tensor ts[BK_MAX_TENSORS];
    int nts = 0;
    struct dc_backend *cpu = NULL, *gpu = NULL;
    struct dc_backend_opts bo = {.threads = o.threads};
    enum dc_status s = bk_load_tensors(&o, &cfg, ts, &nts);
    if (s == DC_OK)
        s = dc_backend_create("cpu", &bo, &cpu);
    if (s == DC_OK) {
        char why[600] = "";
        gpu = bk_open_cuda(&o, why, sizeof why);
        printf("{\"kind\": \"info\", \"config\": \"%s\", \"checkpoint\": \"%s\", \"cpu\": \"%s\", \"cuda\": \"%s\", "
               "\"threads\": %d, \"iters\": %d, \"repeat\": %d, \"warmup\": %d, \"init\": \"linear\"}\n",
               o.config, o.checkpoint, cpu->description, gpu ? gpu->description : why, o.threads, o.iters, o.repeat,
               o.warmup);
    }
    for (int i = 0; s == DC_OK && i < nts; i++)
        s = bk_tensor_run(&o, &ts[i], cpu, gpu);
    if (s != DC_OK)
        fprintf(stderr, "bench_kmeans: %s\n", dc_error_msg());
    for (int i = 0; i < nts; i++) {
        free(ts[i].x);
        free(ts[i].mask);
    }
    if (gpu)
        dc_backend_free(gpu);
    if (cpu)
        dc_backend_free(cpu);
    dc_config_free(&cfg);
    return s == DC_OK ? 0 : 1;
}
