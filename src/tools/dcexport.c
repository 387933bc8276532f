/* dcexport: writes a .dcm model's decoded dense weights, with its masks,
 * codebooks and cluster codes, to a .npz or .safetensors file under
 * PyTorch-style names (docs/interop.md), so other tools can load them.
 * Exit codes: 0 success, 1 run-time failure, 2 usage error. */
#include <stdio.h>
#include <string.h>

#include "dc/atomic_file.h"
#include "dc/interop.h"

static void dc_usage(FILE *f)
{
    fputs("usage: dcexport MODEL.dcm OUT.npz|OUT.safetensors\n"
          "\n"
          "Writes MODEL's decoded weights under PyTorch names (conv1.weight, fc1.bias,\n"
          "conv1.bn.weight for gamma, ...), plus NAME.mask, NAME.codebook and NAME.codes\n"
          "for pruned and quantized weights, and the network description (npz: the uint8\n"
          "array __network__; safetensors: __metadata__ \"network\").  See docs/interop.md.\n",
          f);
}

int main(int argc, char **argv)
{
    dc_afile_ignore_sigxfsz(); /* an output past ulimit -f: a named error, not death by signal */
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        dc_usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "dcexport: unknown option %s (see --help)\n", argv[i]);
            return 2;
        }
    if (argc != 3) {
        fprintf(stderr, "dcexport: expected MODEL.dcm and OUT.npz|OUT.safetensors, got %d argument%s (see --help)\n",
                argc - 1, argc == 2 ? "" : "s");
        return 2;
    }
    if (dc_interop_format_of(argv[2]) == DC_INTEROP_NONE) {
        fprintf(stderr, "dcexport: %s: unknown output format (name it .npz or .safetensors)\n", argv[2]);
        return 2;
    }
    enum dc_status s = dc_interop_export(argv[1], argv[2]);
    if (s != DC_OK) {
        fprintf(stderr, "dcexport: %s\n", dc_error_msg());
        return s == DC_ERR_ARG ? 2 : 1;
    }
    return 0;
}
