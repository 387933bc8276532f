/* dcinfer: runs a .dcm model from its compressed form (dc/infer.h) and
 * reports what it costs: test accuracy, per layer the form chosen, its bytes
 * and time, latency per batch and images per second, and the resident weight
 * bytes against the file's.  Exit codes: 0 fine, 1 run-time error, 2 usage. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/backend.h"
#include "dc/atomic_file.h"
#include "dc/data.h"
#include "dc/infer.h"
#include "dc/log.h"
#include "dc/train.h"

static void dcinfer_usage(FILE *f)
{
    fputs("usage: dcinfer FILE.dcm --data DIR [--batch N] [--device auto|cpu|cuda]\n"
          "               [--format auto|dense|csr|codebook] [--threads N] [--repeats N] [--json FILE]\n"
          "\n"
          "Runs the model file from its compressed form: test accuracy, the form each\n"
          "fc and conv weight runs in, its bytes and time, latency and throughput.\n"
          "\n"
          "  --data DIR       folder with the dataset files (required)\n"
          "  --batch N        batch size for latency and for choosing formats (default 1)\n"
          "  --device D       auto (default: CUDA when a GPU answers), cpu or cuda\n"
          "  --format F       auto (default: the fastest plan timed at load, each weight's forms\n"
          "                   alone, then whole forward passes), or one form for every weight\n"
          "                   (codebook falls back to csr for an unquantized weight)\n"
          "  --threads N      CPU threads (default: all cores)\n"
          "  --repeats N      timed batches after warm-up (default 50)\n"
          "  --json FILE      also write the report as JSON\n"
          "  --verify         also run the file decoded to dense weights (as dceval does) on\n"
          "                   every test image and compare: exit 1 unless every prediction\n"
          "                   is the same and the logits agree within 1e-5 relative\n"
          "  --help           this text\n",
          f);
}

struct dcinfer_args {
    const char *path, *data, *device, *json;
    int batch, threads, repeats, format, verify;
};

static int dcinfer_number(const char *opt, const char *v, int lo, int *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > 65536) {
        fprintf(stderr, "dcinfer: %s %s: expected a whole number from %d to 65536\n", opt, v, lo);
        return 2;
    }
    *out = (int)n;
    return 0;
}

/* 0 on success, else the exit code */
static int dcinfer_parse(int argc, char **argv, struct dcinfer_args *a)
{
    *a = (struct dcinfer_args){NULL, NULL, "auto", NULL, 1, 0, 50, DC_INFER_AUTO, 0};
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            dcinfer_usage(stdout);
            exit(0);
        }
        if (!strcmp(s, "--verify")) {
            a->verify = 1;
            continue;
        }
        static const char *const valued[] = {"--data", "--device", "--batch", "--threads", "--repeats",
                                             "--format", "--json"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            known |= !strcmp(s, valued[k]);
        if (!known) {
            if (s[0] == '-' || a->path) {
                fprintf(stderr, "dcinfer: unexpected argument '%s' (see --help)\n", s);
                return 2;
            }
            a->path = s;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "dcinfer: %s needs a value (see --help)\n", s);
            return 2;
        }
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(s, "--data")) {
            a->data = v;
        } else if (!strcmp(s, "--json")) {
            a->json = v;
        } else if (!strcmp(s, "--device")) {
            if (strcmp(v, "auto") && strcmp(v, "cpu") && strcmp(v, "cuda")) {
                fprintf(stderr, "dcinfer: --device %s: expected auto, cpu or cuda\n", v);
                return 2;
            }
            a->device = v;
        } else if (!strcmp(s, "--format")) {
            a->format = strcmp(v, "auto") ? dc_spmat_format_parse(v) : DC_INFER_AUTO;
            if (a->format == -1 && strcmp(v, "auto")) {
                fprintf(stderr, "dcinfer: --format %s: expected auto, dense, csr or codebook\n", v);
                return 2;
            }
        } else if (!strcmp(s, "--batch")) {
            rc = dcinfer_number(s, v, 1, &a->batch);
        } else if (!strcmp(s, "--threads")) {
            rc = dcinfer_number(s, v, 0, &a->threads);
        } else {
            rc = dcinfer_number(s, v, 1, &a->repeats);
        }
        if (rc)
            return rc;
    }
    if (!a->path || !a->data) {
        fprintf(stderr, "dcinfer: %s\n", !a->path ? "no model file given" : "--data DIR is required");
        dcinfer_usage(stderr);
        return 2;
    }
    return 0;
}

/* What the run measured, for the text and JSON reports. */
struct dcinfer_result {
    struct dc_eval ev;
    double load_s;            /* seconds to load the plan (the timing of forms included) */
    double batch_s;           /* median seconds per batch */
    double *layer_s;          /* [nlayers] median seconds per layer */
    int differ;               /* --verify: predictions that differ from the dense decoded model */
    double max_rel;           /* --verify: largest logit difference relative to its row's largest logit */
};

static int dcinfer_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median batch latency and per-layer times over `repeats` runs of the first n test images. */
static enum dc_status dcinfer_time(struct dc_infer *inf, const struct dcinfer_args *a, struct dc_device_data *dd,
                                   struct dcinfer_result *res)
{
    struct dc_net *net = inf->net;
    struct dc_backend *be = net->be;
    int n = a->batch, L = net->nlayers, reps = a->repeats;
    DC_TRY(dc_load_test_batch(net, dd, 0, n < dd->test_count ? n : dd->test_count));
    double *all = malloc(sizeof(double) * (size_t)reps * (L + 1));
    if (!all)
        return DC_ERROR(DC_ERR_NOMEM, "no memory for %d timings", reps);
    enum dc_status st = DC_OK;
    for (int w = 0; st == DC_OK && w < 3; w++)
        st = dc_infer_forward(inf, n, NULL);
    if (st == DC_OK)
        st = be->ops.sync(be);
    for (int r = 0; st == DC_OK && r < reps; r++) {
        double t0 = dc_time_now();
        st = dc_infer_forward(inf, n, NULL);
        if (st == DC_OK)
            st = be->ops.sync(be);
        all[r] = dc_time_now() - t0;
    }
    for (int r = 0; st == DC_OK && r < reps; r++)
        st = dc_infer_forward(inf, n, all + reps + (size_t)r * L);
    if (st == DC_OK) {
        qsort(all, (size_t)reps, sizeof(double), dcinfer_cmp);
        res->batch_s = all[reps / 2];
        double *col = malloc(sizeof(double) * (size_t)reps);
        for (int i = 0; col && i < L; i++) {
            for (int r = 0; r < reps; r++)
                col[r] = all[reps + (size_t)r * L + i];
            qsort(col, (size_t)reps, sizeof(double), dcinfer_cmp);
            res->layer_s[i] = col[reps / 2];
        }
        if (!col)
            st = DC_ERROR(DC_ERR_NOMEM, "no memory for %d timings", reps);
        free(col);
    }
    free(all);
    return st;
}

/* Both networks see the same normalised test images; every logit row is
 * compared relative to its largest magnitude. */
static enum dc_status dcinfer_verify(struct dc_net *net, const char *path, struct dc_device_data *dd,
                                     int *differ, double *max_rel)
{
    struct dc_backend *be = net->be;
    struct dc_net *ref = NULL;
    struct dc_config cfg;
    DC_TRY(dc_modelfile_load(path, be, net->max_batch, &ref, &cfg, NULL));
    int k = net->classes, mb = net->max_batch;
    float *lr = malloc(sizeof(float) * (size_t)mb * k), *lg = malloc(sizeof(float) * (size_t)mb * k);
    enum dc_status st = lr && lg ? DC_OK : DC_ERROR(DC_ERR_NOMEM, "no memory to compare logits");
    struct dc_pass pass = {.train = 0};
    *differ = 0, *max_rel = 0.0;
    for (int off = 0; st == DC_OK && off < dd->test_count; off += mb) {
        int n = dd->test_count - off < mb ? dd->test_count - off : mb;
        st = dc_load_test_batch(ref, dd, off, n);
        if (st == DC_OK)
            st = dc_load_test_batch(net, dd, off, n);
        if (st == DC_OK)
            st = dc_net_forward(ref, n, &pass);
        if (st == DC_OK)
            st = dc_net_forward(net, n, &pass);
        if (st == DC_OK)
            st = be->ops.download(be, lr, dc_net_output(ref)->data, sizeof(float) * n * k);
        if (st == DC_OK)
            st = be->ops.download(be, lg, dc_net_output(net)->data, sizeof(float) * n * k);
        for (int i = 0; st == DC_OK && i < n; i++) {
            const float *r = lr + (size_t)i * k, *g = lg + (size_t)i * k;
            int ar = 0, ag = 0;
            float scale = 0.0f;
            for (int j = 0; j < k; j++) {
                ar = r[j] > r[ar] ? j : ar, ag = g[j] > g[ag] ? j : ag;
                scale = fabsf(r[j]) > scale ? fabsf(r[j]) : scale;
            }
            for (int j = 0; j < k; j++) {
                double rel = fabs((double)r[j] - g[j]) / (scale > 0 ? scale : 1.0f);
                *max_rel = rel > *max_rel ? rel : *max_rel;
            }
            *differ += ar != ag;
        }
    }
    free(lr), free(lg);
    dc_net_free(ref);
    dc_config_free(&cfg);
    return st;
}

static void dcinfer_print(const struct dc_infer *inf, const struct dcinfer_args *a, const struct dcinfer_result *res,
                          const char *device)
{
    const struct dc_net *net = inf->net;
    printf("%s on %s, batch %d (plan loaded in %.0f ms)\n", a->path, device, a->batch, 1e3 * res->load_s);
    printf("test accuracy %.2f%% (%d images, error %.2f%%)\n", 100.0 * res->ev.accuracy, res->ev.count,
           100.0 * (1.0 - res->ev.accuracy));
    printf("\n%-22s %11s %7s %-9s %10s %10s %9s %9s %9s\n", "weight", "shape", "kept", "format", "bytes",
           "file B", "dense us", "csr us", "cb us");
    for (int i = 0; i < inf->nweights; i++) {
        const struct dc_infer_weight *w = &inf->w[i];
        char shape[32], cand[DC_FORMAT_COUNT][16];
        snprintf(shape, sizeof shape, "%dx%d", w->rows, w->cols);
        for (int f = 0; f < DC_FORMAT_COUNT; f++)
            snprintf(cand[f], sizeof cand[f], w->cand_us[f] < 0 ? "-" : "%.1f", w->cand_us[f]);
        printf("%-22s %11s %6.2f%% %-9s %10zu %10llu %9s %9s %9s%s\n", w->name, shape,
               100.0 * (double)w->nnz / ((double)w->rows * w->cols), dc_spmat_format_name(w->format), w->bytes,
               (unsigned long long)w->file_bytes, cand[0], cand[1], cand[2], w->folded_bn ? "  (+bn folded)" : "");
    }
    if (inf->plan_us >= 0)
        printf("plan timed at load, whole forward of batch %d: %.1f us (every weight dense %.1f, csr %.1f, "
               "codebook %.1f)\n", inf->batch, inf->plan_us, inf->uniform_us[DC_FORMAT_DENSE],
               inf->uniform_us[DC_FORMAT_CSR], inf->uniform_us[DC_FORMAT_CODEBOOK]);
    printf("\n%-28s %12s %8s\n", "layer", "us/batch", "share");
    double sum = 0.0;
    for (int i = 0; i < net->nlayers; i++)
        sum += res->layer_s[i];
    for (int i = 0; i < net->nlayers; i++)
        printf("%-28s %12.1f %7.1f%%\n", net->layers[i]->name, 1e6 * res->layer_s[i],
               sum > 0 ? 100.0 * res->layer_s[i] / sum : 0.0);
    printf("\nlatency %.1f us per batch of %d (median of %d), %.0f images/s\n", 1e6 * res->batch_s, a->batch,
           a->repeats, a->batch / res->batch_s);
    printf("resident: %zu B of weights + %zu B of other parameters = %zu B; file %llu B\n", inf->weight_bytes,
           inf->other_bytes, inf->weight_bytes + inf->other_bytes, (unsigned long long)inf->file_bytes);
    if (a->verify)
        printf("verify: %d of %d predictions differ from the dense decoded model; logits within %.2g relative "
               "(bound 1e-5)\n", res->differ, res->ev.count, res->max_rel);
    if (inf->folded)
        printf("batch norm folded into %d layer%s\n", inf->folded, inf->folded == 1 ? "" : "s");
}

/* The report is built in memory and written with dc_file_write_atomic, so a
 * full disk or a file-size limit leaves the earlier report (or none), never a
 * truncated one, and the error says why. */
static enum dc_status dcinfer_json(const struct dc_infer *inf, const struct dcinfer_args *a,
                                   const struct dcinfer_result *res, const char *device)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return DC_ERROR(DC_ERR_NOMEM, "%s: out of memory for the report", a->json);
    fprintf(f, "{\n  \"model\": \"%s\",\n  \"device\": \"%s\",\n  \"batch\": %d,\n  \"format\": \"%s\",\n", a->path,
            device, a->batch, a->format == DC_INFER_AUTO ? "auto" : dc_spmat_format_name(a->format));
    fprintf(f, "  \"load_ms\": %.1f,\n", 1e3 * res->load_s);
    fprintf(f, "  \"test_accuracy\": %.6f,\n  \"test_images\": %d,\n  \"latency_us\": %.3f,\n", res->ev.accuracy,
            res->ev.count, 1e6 * res->batch_s);
    fprintf(f, "  \"images_per_s\": %.1f,\n  \"weight_bytes\": %zu,\n  \"other_bytes\": %zu,\n", a->batch / res->batch_s,
            inf->weight_bytes, inf->other_bytes);
    fprintf(f, "  \"file_bytes\": %llu,\n", (unsigned long long)inf->file_bytes);
    if (inf->plan_us >= 0)
        fprintf(f, "  \"load_race_us\": {\"plan\": %.3f, \"dense\": %.3f, \"csr\": %.3f, \"codebook\": %.3f},\n",
                inf->plan_us, inf->uniform_us[DC_FORMAT_DENSE], inf->uniform_us[DC_FORMAT_CSR],
                inf->uniform_us[DC_FORMAT_CODEBOOK]);
    if (a->verify)
        fprintf(f, "  \"verify_differ\": %d,\n  \"verify_max_rel\": %.3g,\n", res->differ, res->max_rel);
    fprintf(f, "  \"weights\": [\n");
    for (int i = 0; i < inf->nweights; i++) {
        const struct dc_infer_weight *w = &inf->w[i];
        fprintf(f, "    {\"name\": \"%s\", \"rows\": %d, \"cols\": %d, \"kept\": %lld, \"format\": \"%s\", "
                "\"bytes\": %zu, \"file_bytes\": %llu, \"candidate_us\": {", w->name, w->rows, w->cols,
                (long long)w->nnz, dc_spmat_format_name(w->format), w->bytes, (unsigned long long)w->file_bytes);
        for (int k = 0, first = 1; k < DC_FORMAT_COUNT; k++)
            if (w->cand_us[k] >= 0) {
                fprintf(f, "%s\"%s\": %.3f", first ? "" : ", ", dc_spmat_format_name(k), w->cand_us[k]);
                first = 0;
            }
        fprintf(f, "}}%s\n", i + 1 < inf->nweights ? "," : "");
    }
    fprintf(f, "  ],\n  \"layers\": [\n");
    for (int i = 0; i < inf->net->nlayers; i++)
        fprintf(f, "    {\"name\": \"%s\", \"us\": %.3f}%s\n", inf->net->layers[i]->name, 1e6 * res->layer_s[i],
                i + 1 < inf->net->nlayers ? "," : "");
    fprintf(f, "  ]\n}\n");
    enum dc_status st = fclose(f) == 0 ? dc_file_write_atomic(a->json, text, len)
                                       : DC_ERROR(DC_ERR_NOMEM, "%s: out of memory for the report", a->json);
    free(text);
    return st;
}

static enum dc_status dcinfer_run(const struct dcinfer_args *a, struct dc_backend *be)
{
    struct dc_infer *inf;
    struct dc_infer_opts o = {a->format, a->batch, a->batch > 256 ? a->batch : 256};
    double t0 = dc_time_now();
    DC_TRY(dc_infer_load(a->path, be, &o, &inf));
    double load_s = dc_time_now() - t0;
    struct dc_net *net = inf->net;
    struct dc_config *cfg = &inf->cfg;
    struct dc_data data;
    struct dc_device_data dd;
    struct dcinfer_result res = {.load_s = load_s};
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", a->data);
    cfg->train_limit = 1; /* only the test split is used */
    enum dc_status st = dc_data_load(cfg, &data);
    if (st != DC_OK) {
        dc_infer_free(inf);
        return st;
    }
    if (data.test.c != net->in_c || data.test.h != net->in_h || data.test.w != net->in_w ||
        data.classes != net->classes)
        st = DC_ERROR(DC_ERR_ARG, "%s: the data in %s is %dx%dx%d with %d classes, the model expects %dx%dx%d with %d",
                      a->path, a->data, data.test.c, data.test.h, data.test.w, data.classes, net->in_c, net->in_h,
                      net->in_w, net->classes);
    res.layer_s = calloc((size_t)net->nlayers + 1, sizeof(double));
    if (st == DC_OK && !res.layer_s)
        st = DC_ERROR(DC_ERR_NOMEM, "no memory for the report");
    if (st == DC_OK)
        st = dc_device_data_init(be, &data, &dd);
    if (st == DC_OK) {
        st = dc_evaluate(net, &dd, &res.ev);
        if (st == DC_OK && a->verify)
            st = dcinfer_verify(net, a->path, &dd, &res.differ, &res.max_rel);
        if (st == DC_OK)
            st = dcinfer_time(inf, a, &dd, &res);
        dc_device_data_free(&dd);
    }
    if (st == DC_OK)
        dcinfer_print(inf, a, &res, be->description);
    if (st == DC_OK && a->json)
        st = dcinfer_json(inf, a, &res, be->description);
    if (st == DC_OK && a->verify && (res.differ || !(res.max_rel <= 1e-5)))
        st = DC_ERROR(DC_ERR_FORMAT, "%s: the compressed run differs from the dense decoded model (%d predictions, "
                      "logits %.3g relative)", a->path, res.differ, res.max_rel);
    free(res.layer_s);
    dc_data_free(&data);
    dc_infer_free(inf);
    return st;
}

int main(int argc, char **argv)
{
    dc_blas_fix_kernels(argv);
    dc_afile_ignore_sigxfsz(); /* --json past ulimit -f: a named error, not death by signal */
    struct dcinfer_args a;
    int rc = dcinfer_parse(argc, argv, &a);
    if (rc)
        return rc;
    struct dc_backend *be = NULL;
    struct dc_backend_opts opts = {a.threads, 0, 0}; /* no TF32: the decoded floats as they are */
    if (dc_backend_create(a.device, &opts, &be) != DC_OK) {
        fprintf(stderr, "dcinfer: %s\n", dc_error_msg());
        return 1;
    }
    enum dc_status st = dcinfer_run(&a, be);
    if (st != DC_OK)
        fprintf(stderr, "dcinfer: %s\n", dc_error_msg());
    dc_backend_free(be);
    return st == DC_OK ? 0 : 1;
}
