/* fuzz_interop.c: libFuzzer target for the weight containers dctrain --init
 * reads: NumPy .npz (libzip, then our .npy header parser) and .safetensors
 * (8-byte length, JSON header through libcjson, raw data).  Byte 0 of the
 * input picks the container (bit 0: 0 npz, 1 safetensors), the rest is the
 * file.  A file that reads is applied to a small fixed network (conv 2x3x3
 * with batch norm, global average pool, fc 10), by name or by order and
 * shape, so the pairing and shape checks run too; the values it sets are
 * never used.  With DC_FUZZ_SEEDS=DIR set, the harness writes seed files of
 * that network's weights in both containers into DIR and exits. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/backend.h"
#include "dc/config.h"
#include "dc/interop.h"
#include "dc/log.h"
#include "dc/net.h"
#include "fuzz_util.h"

static const char *const net_text = "[conv]\nfilters = 2\nsize = 3\nbatch_normalize = 1\nactivation = relu\n"
                                    "[avgpool]\nsize = 0\n[fc]\noutputs = 10\n";

static struct dc_fuzz_file file;
static struct dc_backend *be;
static struct dc_net *net;
static struct dc_config cfg;
static char paths[2][1100];

/* The network's parameters under their PyTorch names and shapes. */
static void write_seeds(const char *dir)
{
    struct dc_interop_set set = {0};
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        char name[DC_INTEROP_NAME_LEN];
        int64_t shape[DC_INTEROP_MAX_DIMS];
        dc_interop_torch_name(p->name, name, sizeof name);
        int nd = dc_interop_torch_shape(p, shape);
        size_t n = dc_param_count(p);
        float *v = malloc(n * sizeof *v);
        if (!v || be->ops.download(be, v, p->w.data, n * sizeof *v) != DC_OK ||
            dc_interop_add(&set, name, DC_DTYPE_F32, nd, shape, v) != DC_OK)
            exit(1);
        free(v);
    }
    const char *names[2] = {"weights.npz", "weights.safetensors"};
    for (int k = 0; k < 2; k++) { /* the container, then the seed: mode byte k and the file */
        char path[1100], seed[1100];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        snprintf(seed, sizeof seed, "%s/%s.seed", dir, names[k]);
        if (dc_interop_write(path, &set) != DC_OK) {
            fprintf(stderr, "%s\n", dc_error_msg());
            exit(1);
        }
        FILE *in = fopen(path, "rb"), *out = fopen(seed, "wb");
        if (!in || !out || fputc(k, out) == EOF)
            exit(1);
        int c;
        while ((c = fgetc(in)) != EOF)
            if (fputc(c, out) == EOF)
                exit(1);
        if (fclose(in) != 0 || fclose(out) != 0 || remove(path) != 0)
            exit(1);
    }
    dc_interop_free(&set);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    dc_log_set_level(DC_LOG_ERROR); /* the pairing table is printed on every applied file */
    struct dc_backend_opts opts = {.threads = 1};
    if (dc_backend_create("cpu", &opts, &be) != DC_OK || dc_config_parse_net(net_text, "fuzz-net", &cfg) != DC_OK ||
        dc_net_create(be, &cfg, 1, 28, 28, 10, 1, 1, &net) != DC_OK) {
        fprintf(stderr, "fuzz_interop: %s\n", dc_error_msg());
        abort();
    }
    const char *seeds = getenv("DC_FUZZ_SEEDS");
    if (seeds) {
        write_seeds(seeds);
        exit(0);
    }
    /* the readers choose the container by the file name: two links to one memfd */
    dc_fuzz_file_init(&file, "weights");
    char dir[1024];
    dc_fuzz_tmpdir(dir, sizeof dir);
    dc_fuzz_link(dir, "w.npz", &file);
    dc_fuzz_link(dir, "w.safetensors", &file);
    snprintf(paths[0], sizeof paths[0], "%s/w.npz", dir);
    snprintf(paths[1], sizeof paths[1], "%s/w.safetensors", dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    dc_fuzz_file_set(&file, data + 1, size - 1);
    struct dc_interop_set set = {0};
    if (dc_interop_read(paths[data[0] & 1], &set) == DC_OK)
        (void)dc_interop_apply(&set, net, "fuzz", NULL);
    dc_interop_free(&set);
    return 0;
}
