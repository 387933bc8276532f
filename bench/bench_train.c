/* bench_train: times training epochs of a config's network (the steps only,
 * no evaluation) and prints one JSON line, for the scripts in bench/ that set
 * it side by side with the PyTorch peer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/backend.h"
#include "dc/data.h"
#include "dc/log.h"
#include "dc/net.h"
#include "dc/train.h"

struct dc_bench_acc {
    double best, total;
    int n;
};

static enum dc_status dc_bench_epoch(void *user, const struct dc_epoch_report *r)
{
    struct dc_bench_acc *a = user;
    if (a->n == 0 || r->train_seconds < a->best)
        a->best = r->train_seconds;
    a->total += r->train_seconds;
    a->n++;
    return DC_OK;
}

int main(int argc, char **argv)
{
    dc_blas_fix_kernels(argv);
    if (argc < 2) {
        fprintf(stderr, "usage: bench_train CONFIG.ini [--set k=v]... [--epochs N] [--device cpu|cuda|auto]\n");
        return 2;
    }
    const char *sets[64];
    int nsets = 0, epochs = 1;
    const char *device = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--set") && i + 1 < argc && nsets < 64)
            sets[nsets++] = argv[++i];
        else if (!strcmp(argv[i], "--epochs") && i + 1 < argc)
            epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc)
            device = argv[++i];
        else {
            fprintf(stderr, "bench_train: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    dc_log_set_level(DC_LOG_WARN);
    struct dc_config cfg;
    struct dc_backend *be = NULL;
    struct dc_data data;
    struct dc_device_data dd;
    struct dc_net *net = NULL;
    struct dc_bench_acc acc = {0};
    enum dc_status s = dc_config_load(argv[1], sets, nsets, &cfg);
    if (s == DC_OK) {
        struct dc_backend_opts bo = {.threads = cfg.threads, .tf32 = cfg.tf32};
        s = dc_backend_create(device ? device : cfg.device, &bo, &be);
    }
    if (s == DC_OK)
        s = dc_data_load(&cfg, &data);
    if (s == DC_OK)
        s = dc_device_data_init(be, &data, &dd);
    if (s == DC_OK)
        s = dc_net_create(be, &cfg, data.train.c, data.train.h, data.train.w, data.classes, cfg.batch, cfg.seed, &net);
    if (s == DC_OK) {
        struct dc_phase ph = {.stage = "bench", .epochs = epochs, .lr = cfg.lr, .schedule = DC_LR_CONST};
        s = dc_train_phase(net, &dd, &cfg, &ph, 0, dc_bench_epoch, &acc, NULL);
    }
    if (s != DC_OK) {
        fprintf(stderr, "bench_train: %s\n", dc_error_msg());
        return 1;
    }
    printf("{\"impl\": \"deepcompress\", \"config\": \"%s\", \"device\": \"%s\", \"batch\": %d, \"images\": %d, "
           "\"epochs\": %d, \"epoch_seconds_best\": %.4f, \"epoch_seconds_mean\": %.4f, \"images_per_second\": %.1f}\n",
           argv[1], be->description, cfg.batch, dd.train_count, acc.n, acc.best, acc.total / acc.n,
           dd.train_count / acc.best);
    dc_net_free(net);
    dc_device_data_free(&dd);
    dc_data_free(&data);
    dc_backend_free(be);
    dc_config_free(&cfg);
    return 0;
}
