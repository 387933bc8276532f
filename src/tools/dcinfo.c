/* dcinfo: prints what a .dcm model file holds (header, network description,
 * per-layer compression table) without a backend, after checking every
 * length and CRC.  Exit codes: 0 fine, 1 damaged or unreadable file, 2 usage. */
#include <stdio.h>
#include <string.h>

#include "dc/modelfile.h"
#include "dc/report.h"

static void dcinfo_usage(FILE *f)
{
    fputs("usage: dcinfo FILE.dcm [--json] [--net]\n"
          "\n"
          "Checks a compressed model file and prints its header and per-layer table:\n"
          "weights, % kept, bits per weight and per index after quantization and after\n"
          "Huffman coding, bytes, and the rate against the float32 model.\n"
          "\n"
          "  --json   print the per-layer records as JSON instead of the table\n"
          "  --net    also print the network description stored in the file\n"
          "  --help   this text\n",
          f);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0, show_net = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            dcinfo_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--net")) {
            show_net = 1;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "dcinfo: unexpected argument '%s' (see --help)\n", argv[i]);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        dcinfo_usage(stderr);
        return 2;
    }
    struct dc_modelfile mf;
    if (dc_modelfile_read(path, &mf) != DC_OK) {
        fprintf(stderr, "dcinfo: %s\n", dc_error_msg());
        return 1;
    }
    if (json) {
        dc_report_json(stdout, &mf.stats);
        printf("\n");
    } else {
        printf("%s: deepcompress model, format version %u\n", path, mf.version);
        printf("dataset %s, input %dx%dx%d, %d classes, %d parameter tensors%s\n",
               mf.dataset == DC_DATASET_MNIST ? "mnist" : "cifar10", mf.in_c, mf.in_h, mf.in_w, mf.classes,
               mf.nparams, (mf.flags & 1) ? ", Huffman coding on" : "");
        if (show_net)
            printf("\nnetwork description:\n%s\n", mf.net_text);
        printf("\n");
        dc_report_print(stdout, &mf.stats);
    }
    dc_modelfile_free(&mf);
    return 0;
}
