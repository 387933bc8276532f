/* fuzz_modelfile.c: libFuzzer target for the .dcm reader and loaders
 * (header, sections, Huffman and gap decoders, network building, compressed
 * inference).  Byte 0 of the input is a mode, the rest is the file:
 *   bit 0: recompute the header CRC and every section CRC first (layout in
 *          docs/model-format.md), so mutations reach the fields behind them;
 *   bits 1-2: the executable form dc_infer_load gives every weight (0 dense,
 *          1 csr, 2 codebook, 3 dense too; never timed, so runs stay fast).
 * A file that dc_modelfile_parse accepts is also loaded with
 * dc_modelfile_load and dc_infer_load on the CPU backend (from an in-memory
 * file) and one image of zeros is run through the compressed network. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdlib.h>
#include <string.h>

#include "dc/backend.h"
#include "dc/crc32.h"
#include "dc/infer.h"
#include "dc/modelfile.h"
#include "dc/net.h"
#include "fuzz_util.h"

static struct dc_fuzz_file file;
static struct dc_backend *be;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* the network builder refuses descriptions that need more (below -malloc_limit_mb) */
    setenv("DC_MEMORY_LIMIT_MB", "512", 0);
    struct dc_backend_opts opts = {.threads = 1};
    if (dc_backend_create("cpu", &opts, &be) != DC_OK)
        abort();
    dc_fuzz_file_init(&file, "model.dcm");
    return 0;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

/* Header: CRC of bytes 0..44+L-1 at 44+L.  Section: u32 B, body, CRC of the B + 4 bytes. */
static void fix_crcs(uint8_t *b, size_t n)
{
    if (n < 44)
        return;
    uint64_t off = 44 + (uint64_t)get32(b + 40);
    if (off + 4 > n)
        return;
    put32(b + off, dc_crc32(0, b, (size_t)off));
    off += 4;
    while (off + 4 <= n) {
        uint64_t blen = get32(b + off);
        if (off + 4 + blen + 4 > n)
            return;
        put32(b + off + 4 + blen, dc_crc32(0, b + off, (size_t)blen + 4));
        off += blen + 8;
    }
}

static void load_all(int format)
{
    struct dc_net *net;
    struct dc_config cfg;
    if (dc_modelfile_load(file.path, be, 2, &net, &cfg, NULL) == DC_OK) {
        dc_net_free(net);
        dc_config_free(&cfg);
    }
    struct dc_infer_opts opts = {.format = format, .batch = 1, .max_batch = 2};
    struct dc_infer *inf;
    if (dc_infer_load(file.path, be, &opts, &inf) == DC_OK) {
        struct dc_tensor *in = &inf->net->act[0];
        size_t count = (size_t)in->c * in->h * in->w;
        float *zeros = calloc(count, sizeof *zeros);
        if (zeros && be->ops.upload(be, in->data, zeros, count * sizeof *zeros) == DC_OK)
            dc_infer_forward(inf, 1, NULL);
        free(zeros);
        dc_infer_free(inf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0];
    uint8_t *buf = malloc(size - 1 ? size - 1 : 1);
    memcpy(buf, data + 1, size - 1);
    size--;
    if (mode & 1)
        fix_crcs(buf, size);
    struct dc_modelfile mf;
    int ok = dc_modelfile_parse(buf, size, "fuzz.dcm", &mf) == DC_OK;
    if (ok)
        dc_modelfile_free(&mf);
    if (dc_modelfile_parse_sparse(buf, size, "fuzz.dcm", &mf) == DC_OK)
        dc_modelfile_free(&mf);
    if (ok) {
        int format = (mode >> 1) & 3;
        dc_fuzz_file_set(&file, buf, size);
        load_all(format == 3 ? DC_FORMAT_DENSE : format);
    }
    free(buf);
    return 0;
}
