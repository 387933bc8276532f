/* bench_spmat: the layer-wise speed benchmark of Deep Compression (Han et al.
 * 2016, Appendix A, Table 8) for our compressed-inference kernels.  For the
 * fully connected layers of AlexNet and VGG-16 at the densities the paper's
 * pruning left, it builds one random pruned matrix, quantizes its kept
 * weights to 5 bits (32 shared values), and times y = x A^T at batch 1 and 64
 * with dense OpenBLAS (cblas_sgemv / cblas_sgemm called directly), the
 * backend's dense form (its gemm), our CSR form and our codebook form, all
 * holding exactly the same matrix.  bench/peer_torch_spmat.py times PyTorch
 * on the same matrices (--dump DIR), and bench/sparse_fc.sh puts both in one
 * table.
 *
 * Before anything is timed every method's output is checked against a
 * double-precision product computed here from the kept entries:
 * |ref - got| <= 1e-4 * (1 + |ref|), else it stops naming the first mismatch.
 * A time is one synchronised call; after a warm-up, a cell repeats the call
 * enough times for about 0.3 s (at least 5) and reports the median.
 *
 * Legend: M rows (outputs), K columns (inputs), N batch, E kept weights.
 * Matrices: A [M,K] row-major, x [N,K], y [N,M]. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef DC_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "dc/backend.h"
#include "dc/log.h"
#include "dc/rng.h"
#include "dc/infer.h"
#include "dc/spmat.h"

#include "spmat_bench.h"

/* AlexNet and VGG-16 fully connected layers at the paper's densities (Table 8);
 * 5 bits everywhere, FC8 included (the paper used 5 bits for all fc layers). */
const struct bs_layer bs_layers[] = {
    {"alexnet-fc6", 4096, 9216, 0.09f, 5},  {"alexnet-fc7", 4096, 4096, 0.09f, 5},
    {"alexnet-fc8", 1000, 4096, 0.25f, 5},  {"vgg16-fc6", 4096, 25088, 0.04f, 5},
    {"vgg16-fc7", 4096, 4096, 0.04f, 5},    {"vgg16-fc8", 1000, 4096, 0.23f, 5},
};
const int bs_nlayers = (int)(sizeof bs_layers / sizeof bs_layers[0]);

static void bs_usage(FILE *f)
{
    fputs("usage: bench_spmat [--threads N] [--device cpu|cuda] [--batch 1,64] [--layers a,b]\n"
          "                   [--seconds 0.3] [--flush | --chain] [--seed S] [--out FILE.tsv]\n"
          "                   [--dump DIR]\n"
          "\n"
          "Times y[N,M] = x[N,K] A^T for the fc layers of Han et al. 2016 Table 8 (AlexNet\n"
          "fc6-8, VGG-16 fc6-8) pruned to the paper's densities and quantized to 5 bits:\n"
          "dense OpenBLAS (direct cblas), our dense, csr and codebook forms.\n"
          "\n"
          "  --threads N   CPU threads for every method (default: all cores)\n"
          "  --device D    cpu (default) or cuda; cuda without a GPU prints 'no GPU' and exits 0\n"
          "  --batch L     comma-separated batch sizes (default 1,64)\n"
          "  --layers L    comma-separated layer names (default: all six)\n"
          "  --seconds S   timed time per cell, at least 5 calls (default 0.3)\n"
          "  --flush       write a 64 MiB buffer before each timed call (cold caches)\n"
          "  --chain       run each network's fc6, fc7, fc8 in turn, as a forward pass does,\n"
          "                timing each layer inside the sequence (--layers picks networks)\n"
          "  --out FILE    also write the results as TSV\n"
          "  --dump DIR    write DIR/<layer>.spm for bench/peer_torch_spmat.py\n",
          f);
}

static int bs_parse_batches(const char *s, struct bs_opts *o)
{
    o->nbatch = 0;
    for (const char *p = s; *p;) {
        char *end;
        long b = strtol(p, &end, 10);
        if (end == p || b < 1 || b > 4096 || (*end && *end != ',') || o->nbatch == BS_MAX_BATCHES)
            return -1;
        o->batches[o->nbatch++] = (int)b;
        p = *end ? end + 1 : end;
    }
    return o->nbatch > 0 ? 0 : -1;
}

static int bs_parse(int argc, char **argv, struct bs_opts *o)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (struct bs_opts){.threads = ncpu > 0 ? (int)ncpu : 1, .device = "cpu", .nbatch = 2, .batches = {1, 64},
                          .seconds = 0.3, .seed = 2016};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--flush")) {
            o->flush = 1;
            continue;
        }
        if (!strcmp(a, "--chain")) {
            o->chain = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bench_spmat: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--device")) o->device = v;
        else if (!strcmp(a, "--batch")) {
            if (bs_parse_batches(v, o)) {
                fprintf(stderr, "bench_spmat: --batch %s: want sizes 1..4096 separated by commas\n", v);
                return -1;
            }
        } else if (!strcmp(a, "--layers")) o->layers = v;
        else if (!strcmp(a, "--seconds")) o->seconds = atof(v);
        else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--dump")) o->dump = v;
        else {
            fprintf(stderr, "bench_spmat: unknown option %s\n", a);
            return -1;
        }
    }
    if (o->flush && o->chain) {
        fprintf(stderr, "bench_spmat: --flush and --chain exclude each other\n");
        return -1;
    }
    if (o->threads < 1 || o->seconds <= 0.0 || (strcmp(o->device, "cpu") && strcmp(o->device, "cuda"))) {
        fprintf(stderr, "bench_spmat: want --threads >= 1, --seconds > 0 and --device cpu or cuda\n");
        return -1;
    }
    return 0;
}

/* 1 when name is in the comma-separated list (or there is no list). */
static int bs_selected(const char *list, const char *name)
{
    if (!list)
        return 1;
    size_t n = strlen(name);
    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

void bs_mat_free(struct bs_mat *w)
{
    free(w->pos);
    free(w->codes);
    free(w->values);
    free(w->dense);
    *w = (struct bs_mat){0};
}

/* A random [M,K] matrix: each weight kept with probability `density`, kept
 * values gaussian, then quantized to 2^bits linear centroids between their
 * min and max (nearest centroid), so every form holds the same numbers. */
enum dc_status bs_mat_make(const struct bs_layer *l, uint64_t seed, struct bs_mat *w)
{
    size_t mk = (size_t)l->m * (size_t)l->k, cap = (size_t)((double)mk * l->density * 1.1) + 1024;
    struct dc_rng rng;
    *w = (struct bs_mat){.m = l->m, .k = l->k, .ncode = 1 << l->bits};
    w->pos = malloc(sizeof *w->pos * cap);
    float *raw = malloc(sizeof *raw * cap);
    w->dense = calloc(mk, sizeof *w->dense);
    if (!w->pos || !raw || !w->dense) {
        free(raw);
        return DC_ERROR(DC_ERR_NOMEM, "%s: no memory for a %dx%d matrix", l->name, l->m, l->k);
    }
    dc_rng_seed(&rng, seed);
    float lo = INFINITY, hi = -INFINITY, sd = 1.0f / sqrtf((float)l->k * l->density);
    for (size_t i = 0; i < mk; i++) {
        if (dc_rng_uniform(&rng) >= l->density)
            continue;
        if ((size_t)w->nnz == cap) {
            free(raw);
            return DC_ERROR(DC_ERR_ARG, "%s: more kept weights than expected", l->name);
        }
        float v = sd * dc_rng_normal(&rng);
        raw[w->nnz] = v;
        w->pos[w->nnz++] = (uint32_t)i;
        lo = fminf(lo, v);
        hi = fmaxf(hi, v);
    }
    w->codes = malloc((size_t)w->nnz);
    w->values = malloc(sizeof *w->values * (size_t)w->nnz);
    if (!w->codes || !w->values) {
        free(raw);
        return DC_ERROR(DC_ERR_NOMEM, "%s: no memory", l->name);
    }
    float step = (hi - lo) / (float)(w->ncode - 1);
    for (int j = 0; j < w->ncode; j++) {
        w->codebook[j] = lo + step * (float)j;
        if (w->codebook[j] == 0.0f) /* a kept weight stays nonzero in every form */
            w->codebook[j] = 1e-3f * step;
    }
    for (int64_t e = 0; e < w->nnz; e++) {
        long c = lroundf((raw[e] - lo) / step);
        int code = (int)(c < 0 ? 0 : c >= w->ncode ? w->ncode - 1 : c);
        w->codes[e] = (uint8_t)code;
        w->values[e] = w->codebook[code];
        w->dense[w->pos[e]] = w->values[e];
    }
    free(raw);
    return DC_OK;
}

/* y_ref[N,M] = x[N,K] A^T in double, from the kept entries only. */
void bs_reference(const struct bs_mat *w, int n, const float *x, double *ref)
{
    memset(ref, 0, sizeof *ref * (size_t)n * (size_t)w->m);
    for (int64_t e = 0; e < w->nnz; e++) {
        int r = (int)(w->pos[e] / (uint32_t)w->k), c = (int)(w->pos[e] % (uint32_t)w->k);
        double v = w->values[e];
        for (int i = 0; i < n; i++)
            ref[(size_t)i * w->m + r] += v * x[(size_t)i * w->k + c];
    }
}

int bs_check(const char *layer, const char *method, int n, int m, const double *ref, const float *got)
{
    for (size_t i = 0; i < (size_t)n * (size_t)m; i++)
        if (!(fabs(ref[i] - got[i]) <= 1e-4 * (1.0 + fabs(ref[i])))) {
            fprintf(stderr, "bench_spmat: %s %s batch %d: y[%zu][%zu] = %.7g but the reference is %.7g\n", layer,
                    method, n, i / (size_t)m, i % (size_t)m, (double)got[i], ref[i]);
            return -1;
        }
    return 0;
}

/* For --dump: magic "DCSPMAT1", u32 version 1, i32 M, i32 K, i32 NX, i64 E,
 * then u32 pos[E], f32 values[E], f32 x[NX,K], f32 y_ref[NX,M] (little-endian). */
static enum dc_status bs_dump(const char *dir, const char *name, const struct bs_mat *w, int nx, const float *x,
                              const double *ref)
{
    char path[1024];
    if (snprintf(path, sizeof path, "%s/%s.spm", dir, name) >= (int)sizeof path)
        return DC_ERROR(DC_ERR_ARG, "--dump %s: folder name too long", dir);
    FILE *f = fopen(path, "wb");
    if (!f)
        return DC_ERROR(DC_ERR_IO, "%s: cannot create (does the --dump folder exist?)", path);
    uint32_t version = 1;
    int32_t hdr[3] = {w->m, w->k, nx};
    int ok = fwrite("DCSPMAT1", 1, 8, f) == 8 && fwrite(&version, 4, 1, f) == 1 && fwrite(hdr, 4, 3, f) == 3 &&
             fwrite(&w->nnz, 8, 1, f) == 1 && fwrite(w->pos, 4, (size_t)w->nnz, f) == (size_t)w->nnz &&
             fwrite(w->values, 4, (size_t)w->nnz, f) == (size_t)w->nnz &&
             fwrite(x, 4, (size_t)nx * w->k, f) == (size_t)nx * w->k;
    for (size_t i = 0; ok && i < (size_t)nx * w->m; i++) {
        float v = (float)ref[i];
        ok = fwrite(&v, 4, 1, f) == 1;
    }
    if (fclose(f) != 0 || !ok)
        return DC_ERROR(DC_ERR_IO, "%s: write failed (disk full?)", path);
    return DC_OK;
}

/* Direct OpenBLAS with the same thread count as the backend; the backend
 * leaves OpenBLAS at one thread and threads around it (cpu_gemm.c), so the
 * count goes back to 1 after the call. */
static void bs_blas(const struct bs_mat *w, const float *a, int n, const float *x, float *y, int threads)
{
#ifdef DC_HAVE_OPENBLAS
    openblas_set_num_threads(threads);
    if (n == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, w->m, w->k, 1.0f, a, w->k, x, 1, 0.0f, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, w->m, w->k, 1.0f, x, w->k, a, w->k, 0.0f, y,
                    w->m);
    openblas_set_num_threads(1);
#else
    (void)w, (void)a, (void)n, (void)x, (void)y, (void)threads;
#endif
}

enum dc_status bs_call(struct dc_backend *be, const struct bs_mat *w, const struct bs_method *me, int n,
                              const float *x, float *y)
{
    if (!me->a) {
        bs_blas(w, me->dense, n, x, y, be->opts.threads);
        return DC_OK;
    }
    DC_TRY(be->ops.spmat_fc(be, me->a, n, x, y));
    return be->ops.sync(be);
}

int bs_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bs_median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, bs_cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* The methods take turns in BS_ROUNDS blocks each, so that a slow spell of
 * this shared machine falls on all of them alike (one after the other, a cell
 * moved by up to 30% between runs); each block starts with an untimed call
 * that brings its own arrays back into the caches the others used. */
#define BS_ROUNDS 5

/* Warm up each of me [nm], then the median seconds per call of each over
 * enough calls for o->seconds (>= 5), the methods taking turns. */
static enum dc_status bs_time(struct dc_backend *be, const struct bs_mat *w, const struct bs_method *me, int nm,
                              int n, const float *x, float *y, const struct bs_opts *o, volatile char *flush,
                              double *median, int *repeat)
{
    double *t[BS_METHODS + 1] = {0};
    int done[BS_METHODS + 1] = {0};
    enum dc_status s = DC_OK;
    for (int i = 0; s == DC_OK && i < nm; i++) {
        double t0 = dc_time_now();
        s = bs_call(be, w, &me[i], n, x, y);
        if (s == DC_OK)
            s = bs_call(be, w, &me[i], n, x, y);
        double once = fmax((dc_time_now() - t0) / 2.0, 1e-7);
        repeat[i] = (int)fmin(BS_MAX_REPEAT, fmax(BS_MIN_REPEAT, ceil(o->seconds / once)));
        if (s == DC_OK && !(t[i] = malloc(sizeof *t[i] * (size_t)repeat[i])))
            s = DC_ERROR(DC_ERR_NOMEM, "no memory");
    }
    for (int r = 0; s == DC_OK && r < BS_ROUNDS; r++)
        for (int i = 0; s == DC_OK && i < nm; i++) {
            int upto = (int)((int64_t)repeat[i] * (r + 1) / BS_ROUNDS);
            if (done[i] < upto)
                s = bs_call(be, w, &me[i], n, x, y);
            for (; s == DC_OK && done[i] < upto; done[i]++) {
                if (flush)
                    for (size_t j = 0; j < BS_FLUSH_BYTES; j += 64)
                        flush[j]++;
                double a = dc_time_now();
                s = bs_call(be, w, &me[i], n, x, y);
                t[i][done[i]] = dc_time_now() - a;
            }
        }
    for (int i = 0; i < nm; i++) {
        if (s == DC_OK)
            median[i] = bs_median(t[i], repeat[i]);
        free(t[i]);
    }
    return s;
}

/* y = x A^T through me at batch n (y first all NaN, so every output must be
 * written), compared with ref; hy [n*M] is host room for the result. */
enum dc_status bs_verify(struct dc_backend *be, const struct bs_layer *l, const struct bs_mat *w,
                         const struct bs_method *me, int n, const float *x, float *y, const double *ref, float *hy)
{
    DC_TRY(be->ops.fill(be, y, NAN, (size_t)n * l->m));
    DC_TRY(bs_call(be, w, me, n, x, y));
    DC_TRY(be->ops.download(be, hy, y, sizeof(float) * (size_t)n * l->m));
    if (bs_check(l->name, me->name, n, l->m, ref, hy))
        return DC_ERROR(DC_ERR_ARG, "%s: %s result differs from the reference (above)", l->name, me->name);
    return DC_OK;
}

/* w as the model file would give it: float values, or (coded) codes and codebook */
static struct dc_spmat_src bs_mat_src(const struct bs_mat *w, int coded)
{
    return coded ? (struct dc_spmat_src){.rows = w->m, .cols = w->k, .nnz = w->nnz, .pos = w->pos, .codes = w->codes,
                                         .codebook = w->codebook, .m = w->ncode}
                 : (struct dc_spmat_src){.rows = w->m, .cols = w->k, .nnz = w->nnz, .pos = w->pos, .values = w->values};
}

/* The methods for w: direct OpenBLAS on the CPU, then the dense, csr and
 * codebook forms on be; *n counts those made, also when one fails. */
enum dc_status bs_methods_make(struct dc_backend *be, const struct bs_mat *w, int maxn, struct bs_method *me, int *n)
{
    *n = 0;
#ifdef DC_HAVE_OPENBLAS
    if (be->kind == DC_DEVICE_CPU)
        me[(*n)++] = (struct bs_method){.name = "openblas", .dense = w->dense,
                                        .bytes = sizeof(float) * (size_t)w->m * w->k};
#endif
    const struct dc_spmat_src vsrc = bs_mat_src(w, 0), csrc = bs_mat_src(w, 1);
    const enum dc_spmat_format fmts[3] = {DC_FORMAT_DENSE, DC_FORMAT_CSR, DC_FORMAT_CODEBOOK};
    for (int f = 0; f < 3; f++) {
        struct bs_method *m = &me[*n];
        m->name = dc_spmat_format_name(fmts[f]);
        DC_TRY(dc_spmat_create(be, fmts[f], fmts[f] == DC_FORMAT_CODEBOOK ? &csrc : &vsrc, maxn, &m->a));
        m->bytes = dc_spmat_bytes(m->a);
        (*n)++;
    }
    return DC_OK;
}

/* Everything for one layer: build the forms, check them all, time them all. */
static enum dc_status bs_layer_run(struct dc_backend *be, const struct bs_layer *l, const struct bs_opts *o,
                                   volatile char *flush, FILE *tsv)
{
    int maxn = 1;
    for (int b = 0; b < o->nbatch; b++)
        maxn = o->batches[b] > maxn ? o->batches[b] : maxn;
    struct bs_mat w;
    struct bs_method me[BS_METHODS + 1] = {{0}}; /* the forms, then the plan's pick */
    int nme = 0;
    float *hx = malloc(sizeof *hx * (size_t)maxn * l->k), *hy = malloc(sizeof *hy * (size_t)maxn * l->m);
    double *ref = malloc(sizeof *ref * (size_t)maxn * l->m);
    float *dx = NULL, *dy = NULL;
    enum dc_status s = hx && hy && ref ? bs_mat_make(l, o->seed, &w) : DC_ERROR(DC_ERR_NOMEM, "no memory");
    if (s != DC_OK)
        goto done;
    struct dc_rng rng;
    dc_rng_seed(&rng, o->seed + 1);
    for (size_t i = 0; i < (size_t)maxn * l->k; i++) {
        float v = dc_rng_normal(&rng);
        hx[i] = v != 0.0f ? v : 0.5f; /* never time on zeros */
    }
    bs_reference(&w, maxn, hx, ref);
    if (o->dump && (s = bs_dump(o->dump, l->name, &w, maxn, hx, ref)) != DC_OK)
        goto done;
    if (s == DC_OK)
        s = bs_methods_make(be, &w, maxn, me, &nme);
    const struct dc_spmat_src csrc = bs_mat_src(&w, 1); /* the plan's own choice, below */
    if (s == DC_OK)
        s = be->ops.alloc(be, (void **)&dx, sizeof(float) * (size_t)maxn * l->k);
    if (s == DC_OK)
        s = be->ops.alloc(be, (void **)&dy, sizeof(float) * (size_t)maxn * l->m);
    if (s == DC_OK)
        s = be->ops.upload(be, dx, hx, sizeof(float) * (size_t)maxn * l->k);
    for (int b = 0; s == DC_OK && b < o->nbatch; b++) {
        int n = o->batches[b]; /* the first n rows of x, and of ref */
        /* the inference plan's own choice at this batch (dc_infer_pick, as dcinfer loads a
         * layer), checked and timed with the forms: it should match the fastest */
        struct bs_method *pick = &me[nme];
        double cand[DC_FORMAT_COUNT], sec[BS_METHODS + 1];
        int reps[BS_METHODS + 1];
        char name[32];
        *pick = (struct bs_method){0};
        if (s == DC_OK)
            s = dc_infer_pick(be, &csrc, NULL, DC_INFER_AUTO, n, maxn, NULL, NULL, &pick->a, cand);
        if (s == DC_OK) {
            snprintf(name, sizeof name, "auto:%s", dc_spmat_format_name(pick->a->format));
            pick->name = name, pick->bytes = dc_spmat_bytes(pick->a);
        }
        for (int i = 0; s == DC_OK && i <= nme; i++) /* check every method before any timing */
            s = bs_verify(be, l, &w, &me[i], n, dx, dy, ref, hy);
        if (s == DC_OK)
            s = bs_time(be, &w, me, nme + 1, n, dx, dy, o, flush, sec, reps);
        for (int i = 0; s == DC_OK && i <= nme; i++) {
            printf("%-12s density %.2f batch %3d %-13s %10.2f us/sample %8.2f GB/s %12zu bytes %6.2fx vs %s  "
                   "(%d calls)\n",
                   l->name, (double)l->density, n, me[i].name, 1e6 * sec[i] / n, 1e-9 * (double)me[i].bytes / sec[i],
                   me[i].bytes, sec[0] / sec[i], me[0].name, reps[i]);
            fflush(stdout);
            if (tsv && i < nme)
                fprintf(tsv, "%s\t%s\t%d\t%d\t%.4f\t%lld\t%d\t%s\t%d\t%s\t%.4f\t%.4f\t%zu\t%.4f\t%d\n", be->name,
                        l->name, l->m, l->k, (double)l->density, (long long)w.nnz, l->bits, o->flush ? "cold" : "hot",
                        n, me[i].name, 1e6 * sec[i] / n, 1e-9 * (double)me[i].bytes / sec[i], me[i].bytes,
                        sec[0] / sec[i], o->threads);
        }
        if (pick->a)
            dc_spmat_free(be, pick->a);
        pick->a = NULL;
    }
done:
    if (s != DC_OK)
        fprintf(stderr, "bench_spmat: %s: %s (%s)\n", l->name, dc_error_msg(), dc_error_where());
    for (int i = 0; i < nme; i++)
        if (me[i].a)
            dc_spmat_free(be, me[i].a);
    if (dx)
        be->ops.release(be, dx);
    if (dy)
        be->ops.release(be, dy);
    bs_mat_free(&w);
    free(hx);
    free(hy);
    free(ref);
    return s;
}

int main(int argc, char **argv)
{
    dc_blas_fix_kernels(argv);
    struct bs_opts o;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            bs_usage(stdout);
            return 0;
        }
    if (bs_parse(argc, argv, &o)) {
        bs_usage(stderr);
        return 2;
    }
    struct dc_backend_opts bo = {.threads = o.threads};
    struct dc_backend *be = NULL;
    enum dc_status s = dc_backend_create(o.device, &bo, &be);
    if (s != DC_OK && !strcmp(o.device, "cuda")) {
        printf("cuda: no GPU (%s)\n", dc_error_msg());
        return 0;
    }
    if (s != DC_OK) {
        fprintf(stderr, "bench_spmat: cannot create the %s backend: %s\n", o.device, dc_error_msg());
        return 1;
    }
    FILE *tsv = o.out ? fopen(o.out, "w") : NULL;
    if (o.out && !tsv) {
        fprintf(stderr, "bench_spmat: cannot create %s\n", o.out);
        dc_backend_free(be);
        return 1;
    }
    if (tsv)
        fputs("device\tlayer\tM\tK\tdensity\tnnz\tbits\tcache\tbatch\tmethod\tus_per_sample\tGBps\tbytes\t"
              "speedup_vs_first\tthreads\n",
              tsv);
    char *flush = o.flush ? calloc(BS_FLUSH_BYTES, 1) : NULL;
    printf("# bench_spmat: %s; %s caches; speed-up vs the first method of each cell\n", be->description,
           o.chain ? "shared (layers in turn)" : o.flush ? "cold" : "hot");
    int ran = 0;
    if (o.chain) {
        s = bs_chain_run(be, &o, tsv);
        ran = 1;
    }
    for (int i = 0; s == DC_OK && !o.chain && i < bs_nlayers; i++)
        if (bs_selected(o.layers, bs_layers[i].name)) {
            ran++;
            s = bs_layer_run(be, &bs_layers[i], &o, flush, tsv);
        }
    if (s == DC_OK && !ran) {
        fprintf(stderr, "bench_spmat: --layers %s names none of alexnet-fc6..8, vgg16-fc6..8\n", o.layers);
        s = DC_ERR_ARG;
    }
    free(flush);
    if (tsv && fclose(tsv) != 0) {
        fprintf(stderr, "bench_spmat: writing %s failed\n", o.out);
        s = DC_ERR_IO;
    }
    dc_backend_free(be);
    return s == DC_OK ? 0 : 1;
}
