/* fuzz_checkpoint.c: libFuzzer target for the checkpoint reader.  A
 * checkpoint loads into a network, so a small fixed one (conv 2x3x3, global
 * average pool, fc 10 on MNIST-shaped input) is built once; the input is the
 * checkpoint file.  After a load that succeeds, one quantized fine-tuning
 * step runs on each quantized parameter (what a resumed run does next), and
 * the masks and quantization state are dropped again so runs stay
 * independent.
 * With DC_FUZZ_SEEDS=DIR set, the harness writes seed checkpoints of its
 * network (plain, pruned, pruned + quantized) into DIR and exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/backend.h"
#include "dc/net.h"
#include "dc/quantize.h"
#include "dc/train.h"
#include "fuzz_util.h"

static const char *const net_text = "[conv]\nfilters = 2\nsize = 3\nactivation = relu\n"
                                    "[avgpool]\nsize = 0\n[fc]\noutputs = 10\n";

static struct dc_fuzz_file file;
static struct dc_backend *be;
static struct dc_net *net;
static struct dc_config cfg;

static void drop_state(void)
{
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        dc_quantize_release(be, p);
        if (p->mask)
            be->ops.release(be, p->mask);
        p->mask = NULL;
    }
}

static void write_seeds(const char *dir)
{
    char path[1024];
    struct dc_run_state st = {.stage_index = 1, .epoch = 2, .seed = 42};
    snprintf(path, sizeof path, "%s/plain.ckpt", dir);
    if (dc_checkpoint_save(path, net, &st) != DC_OK)
        exit(1);
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        if (!p->prunable)
            continue;
        size_t n = dc_param_count(p);
        float *m = malloc(n * sizeof *m);
        for (size_t j = 0; j < n; j++)
            m[j] = (float)(j % 3 != 0);
        if (be->ops.alloc(be, (void **)&p->mask, n * sizeof *m) != DC_OK ||
            be->ops.upload(be, p->mask, m, n * sizeof *m) != DC_OK)
            exit(1);
        free(m);
    }
    snprintf(path, sizeof path, "%s/pruned.ckpt", dir);
    if (dc_checkpoint_save(path, net, &st) != DC_OK)
        exit(1);
    for (int i = 0; i < net->nparams; i++)
        if (net->params[i]->prunable &&
            dc_quantize_param(be, net->params[i], 2, DC_INIT_LINEAR, 3, 7) != DC_OK)
            exit(1);
    snprintf(path, sizeof path, "%s/quantized.ckpt", dir);
    if (dc_checkpoint_save(path, net, &st) != DC_OK)
        exit(1);
    exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    struct dc_backend_opts opts = {.threads = 1};
    if (dc_backend_create("cpu", &opts, &be) != DC_OK || dc_config_parse_net(net_text, "fuzz-net", &cfg) != DC_OK ||
        dc_net_create(be, &cfg, 1, 28, 28, 10, 1, 1, &net) != DC_OK) {
        fprintf(stderr, "fuzz_checkpoint: cannot build the network: %s\n", dc_error_msg());
        abort();
    }
    const char *seeds = getenv("DC_FUZZ_SEEDS");
    if (seeds)
        write_seeds(seeds);
    dc_fuzz_file_init(&file, "checkpoint");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dc_fuzz_file_set(&file, data, size);
    struct dc_run_state st;
    if (dc_checkpoint_load(file.path, net, &st) == DC_OK)
        for (int i = 0; i < net->nparams; i++)
            if (net->params[i]->codebook)
                dc_quantize_step(be, net->params[i], 0.01f, 0.9f);
    drop_state();
    return 0;
}
