/* dceval: evaluates a .dcm model file on a dataset's test split.  The file
 * names its own network, dataset kind and input shape; only the data folder
 * comes from the command line.  Exit codes: 0 fine, 1 run-time error, 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/backend.h"
#include "dc/data.h"
#include "dc/modelfile.h"
#include "dc/train.h"

static void dceval_usage(FILE *f)
{
    fputs("usage: dceval FILE.dcm --data DIR [--device auto|cpu|cuda] [--batch N] [--threads N]\n"
          "\n"
          "Decodes the model file and prints its accuracy on the test split of the\n"
          "dataset the file was trained on (MNIST or CIFAR-10 files in DIR).\n"
          "\n"
          "  --data DIR       folder with the dataset files (required)\n"
          "  --device D       auto (default: CUDA when a GPU answers), cpu or cuda\n"
          "  --batch N        evaluation batch size (default 500)\n"
          "  --threads N      CPU threads (default: all cores)\n"
          "  --help           this text\n",
          f);
}

struct dceval_args {
    const char *path, *data, *device;
    int batch, threads;
};

/* 0 on success, else the exit code */
static int dceval_parse(int argc, char **argv, struct dceval_args *a)
{
    *a = (struct dceval_args){NULL, NULL, "auto", 500, 0};
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            dceval_usage(stdout);
            exit(0);
        }
        if (!strcmp(s, "--data") || !strcmp(s, "--device") || !strcmp(s, "--batch") || !strcmp(s, "--threads")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "dceval: %s needs a value (see --help)\n", s);
                return 2;
            }
            const char *v = argv[++i];
            char *end;
            long n = strtol(v, &end, 10);
            if (!strcmp(s, "--data")) {
                a->data = v;
            } else if (!strcmp(s, "--device")) {
                if (strcmp(v, "auto") && strcmp(v, "cpu") && strcmp(v, "cuda")) {
                    fprintf(stderr, "dceval: --device %s: expected auto, cpu or cuda\n", v);
                    return 2;
                }
                a->device = v;
            } else if (*end || n < (!strcmp(s, "--batch") ? 1 : 0) || n > 65536) {
                fprintf(stderr, "dceval: %s %s: expected a whole number%s\n", s, v,
                        !strcmp(s, "--batch") ? " from 1 to 65536" : " from 0 to 65536");
                return 2;
            } else if (!strcmp(s, "--batch")) {
                a->batch = (int)n;
            } else {
                a->threads = (int)n;
            }
        } else if (s[0] == '-' || a->path) {
            fprintf(stderr, "dceval: unexpected argument '%s' (see --help)\n", s);
            return 2;
        } else {
            a->path = s;
        }
    }
    if (!a->path || !a->data) {
        fprintf(stderr, "dceval: %s\n", !a->path ? "no model file given" : "--data DIR is required");
        dceval_usage(stderr);
        return 2;
    }
    return 0;
}

static enum dc_status dceval_run(const struct dceval_args *a, struct dc_backend *be, struct dc_eval *ev)
{
    struct dc_net *net = NULL;
    struct dc_config *cfg = calloc(1, sizeof *cfg);
    struct dc_data data;
    struct dc_device_data dd;
    if (!cfg)
        return DC_ERROR(DC_ERR_NOMEM, "no memory for a config");
    enum dc_status st = dc_modelfile_load(a->path, be, a->batch, &net, cfg, NULL);
    if (st == DC_OK) {
        snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", a->data);
        cfg->train_limit = 1; /* only the test split is used */
        st = dc_data_load(cfg, &data);
        if (st == DC_OK) {
            if (data.test.c != net->in_c || data.test.h != net->in_h || data.test.w != net->in_w ||
                data.classes != net->classes)
                st = DC_ERROR(DC_ERR_ARG, "%s: the data in %s is %dx%dx%d with %d classes, the model expects "
                              "%dx%dx%d with %d", a->path, a->data, data.test.c, data.test.h, data.test.w,
                              data.classes, net->in_c, net->in_h, net->in_w, net->classes);
            if (st == DC_OK)
                st = dc_device_data_init(be, &data, &dd);
            if (st == DC_OK) {
                st = dc_evaluate(net, &dd, ev);
                dc_device_data_free(&dd);
            }
            dc_data_free(&data);
        }
        dc_net_free(net);
    }
    dc_config_free(cfg);
    free(cfg);
    return st;
}

int main(int argc, char **argv)
{
    dc_blas_fix_kernels(argv);
    struct dceval_args a;
    int rc = dceval_parse(argc, argv, &a);
    if (rc)
        return rc;
    struct dc_backend *be = NULL;
    struct dc_backend_opts opts = {a.threads, 0, 0}; /* no TF32: evaluate the decoded floats as they are */
    if (dc_backend_create(a.device, &opts, &be) != DC_OK) {
        fprintf(stderr, "dceval: %s\n", dc_error_msg());
        return 1;
    }
    struct dc_eval ev;
    enum dc_status st = dceval_run(&a, be, &ev);
    if (st == DC_OK)
        printf("%s: test accuracy %.2f%% (%d images, error %.2f%%), mean loss %.4f, on %s\n", a.path,
               100.0 * ev.accuracy, ev.count, 100.0 * (1.0 - ev.accuracy), ev.loss, be->description);
    else
        fprintf(stderr, "dceval: %s\n", dc_error_msg());
    dc_backend_free(be);
    return st == DC_OK ? 0 : 1;
}
