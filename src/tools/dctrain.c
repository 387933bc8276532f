/* dctrain: runs a whole job from one INI file: train, prune and retrain,
 * quantize and fine-tune, encode, and evaluate the decoded file.
 * Exit codes: 0 success, 1 run-time failure, 2 usage or config error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/backend.h"
#include "dc/atomic_file.h"
#include "dc/config.h"
#include "dc/job.h"
#include "dc/log.h"

static void dc_usage(FILE *f)
{
    fputs("usage: dctrain CONFIG.ini [options]\n"
          "\n"
          "Runs the stages CONFIG names: [train] epochs, [prune] rounds, [quantize], [encode].\n"
          "\n"
          "options:\n"
          "  --set SECTION.KEY=VALUE  override a config value (repeatable; a layer by name: fc1.prune=2)\n"
          "  --device auto|cpu|cuda   override [train] device\n"
          "  --out DIR                output folder (default runs/<config name>)\n"
          "  --resume FILE            continue from a checkpoint (DIR/checkpoint.bin)\n"
          "  --init FILE              start from the weights of a checkpoint, a .npz or a .safetensors\n"
          "                           file (PyTorch names, order or the config's [init] map;\n"
          "                           docs/interop.md) and skip training (unless --stages has it)\n"
          "  --sensitivity            prune one layer at a time over a range of sparsities and\n"
          "                           print test accuracy per layer (choose per-layer thresholds)\n"
          "  --stages LIST            run only these stages, in pipeline order: a comma list of\n"
          "                           train, prune (every round), quantize, encode, compress\n"
          "                           (= prune,quantize,encode) or all; e.g. --init W.npz --stages compress\n"
          "  --stop-after N           stop after the first N stages\n"
          "  --print-config           print the effective config (its [base] chain, the --set\n"
          "                           overrides and every default filled in) and exit\n"
          "  --quiet                  only warnings and errors\n"
          "  --help                   this text\n"
          "\n"
          "Writes DIR/summary.json, DIR/metrics.csv, DIR/checkpoint.bin, DIR/weights_<stage>.csv\n"
          "(for scripts/dcplot.py DIR) and the encoded model.\n",
          f);
}

/* "--stages LIST" into DC_JOB_RUN_* bits; 0 and one line on stderr when a name is unknown. */
static unsigned dc_parse_stages(const char *list)
{
    static const struct { const char *name; unsigned bits; } words[] = {
        {"train", DC_JOB_RUN_TRAIN},
        {"prune", DC_JOB_RUN_PRUNE},
        {"quantize", DC_JOB_RUN_QUANTIZE},
        {"encode", DC_JOB_RUN_ENCODE},
        {"compress", DC_JOB_RUN_PRUNE | DC_JOB_RUN_QUANTIZE | DC_JOB_RUN_ENCODE},
        {"all", DC_JOB_RUN_TRAIN | DC_JOB_RUN_PRUNE | DC_JOB_RUN_QUANTIZE | DC_JOB_RUN_ENCODE},
    };
    unsigned bits = 0;
    for (const char *p = list;; p++) {
        size_t n = strcspn(p, ",");
        size_t w = 0, nw = sizeof words / sizeof words[0];
        while (w < nw && !(strlen(words[w].name) == n && !strncmp(words[w].name, p, n)))
            w++;
        if (w == nw) {
            fprintf(stderr, "dctrain: --stages %s: unknown stage '%.*s'; use a comma list of train, prune, "
                    "quantize, encode, compress (= prune,quantize,encode) or all\n", list, (int)n, p);
            return 0;
        }
        bits |= words[w].bits;
        p += n;
        if (!*p)
            return bits;
    }
}

static int dc_need_value(int argc, char **argv, int i)
{
    if (i + 1 >= argc) {
        fprintf(stderr, "dctrain: %s needs a value (see --help)\n", argv[i]);
        return 0;
    }
    return 1;
}

/* --print-config: the config as the job would read it, on stdout. */
static int dc_print_config(const struct dc_job_opts *o)
{
    struct dc_config cfg;
    enum dc_status s = dc_config_load(o->config_path, o->sets, o->nsets, &cfg);
    char *text = NULL;
    if (s == DC_OK) {
        if (o->device)
            snprintf(cfg.device, sizeof cfg.device, "%s", o->device);
        s = dc_config_format(&cfg, &text);
        dc_config_free(&cfg);
    }
    if (s != DC_OK) {
        fprintf(stderr, "dctrain: %s\n", dc_error_msg());
        return s == DC_ERR_CONFIG || s == DC_ERR_ARG ? 2 : 1;
    }
    fputs(text, stdout);
    free(text);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* Parse the command line into o (sets has room for argc entries) and run. */
static int dc_dctrain(int argc, char **argv, const char **sets)
{
    struct dc_job_opts o = {0};
    int print_config = 0;
    o.sets = sets;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            dc_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--print-config")) {
            print_config = 1;
        } else if (!strcmp(a, "--sensitivity")) {
            o.sensitivity = 1;
        } else if (!strcmp(a, "--quiet")) {
            dc_log_set_level(DC_LOG_WARN);
        } else if (!strcmp(a, "--set") || !strcmp(a, "--device") || !strcmp(a, "--out") ||
                   !strcmp(a, "--resume") || !strcmp(a, "--init") || !strcmp(a, "--stop-after") ||
                   !strcmp(a, "--stages")) {
            if (!dc_need_value(argc, argv, i))
                return 2;
            const char *v = argv[++i];
            if (!strcmp(a, "--set")) {
                sets[o.nsets++] = v;
            } else if (!strcmp(a, "--device")) {
                if (strcmp(v, "auto") && strcmp(v, "cpu") && strcmp(v, "cuda")) {
                    fprintf(stderr, "dctrain: --device %s: expected auto, cpu or cuda\n", v);
                    return 2;
                }
                o.device = v;
            } else if (!strcmp(a, "--out")) {
                o.out_dir = v;
            } else if (!strcmp(a, "--resume")) {
                o.resume = v;
            } else if (!strcmp(a, "--init")) {
                o.init = v;
            } else if (!strcmp(a, "--stages")) {
                if (!(o.stages = dc_parse_stages(v)))
                    return 2;
            } else {
                char *end;
                long n = strtol(v, &end, 10);
                if (*end || n <= 0 || n > 1000) {
                    fprintf(stderr, "dctrain: --stop-after %s: expected a positive number\n", v);
                    return 2;
                }
                o.stop_after = (int)n;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "dctrain: unknown option %s (see --help)\n", a);
            return 2;
        } else if (!o.config_path) {
            o.config_path = a;
        } else {
            fprintf(stderr, "dctrain: more than one config file (%s and %s)\n", o.config_path, a);
            return 2;
        }
    }
    if (!o.config_path) {
        dc_usage(stderr);
        return 2;
    }
    if (print_config)
        return dc_print_config(&o);
    if (o.resume && o.init) {
        fprintf(stderr, "dctrain: --resume and --init cannot be used together\n");
        return 2;
    }
    enum dc_status s = dc_job_run(&o);
    if (s != DC_OK) {
        fprintf(stderr, "dctrain: %s\n", dc_error_msg());
        return s == DC_ERR_CONFIG || s == DC_ERR_ARG ? 2 : 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    dc_blas_fix_kernels(argv);
    dc_afile_ignore_sigxfsz(); /* a file past ulimit -f: a named error, not death by signal */
    const char **sets = calloc((size_t)argc, sizeof *sets);
    if (!sets)
        return 1;
    int rc = dc_dctrain(argc, argv, sets);
    free(sets);
    return rc;
}
