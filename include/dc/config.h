/* config.h: the typed configuration of a whole job, built from an INI file
 * (see ini.h) plus --set overrides.  Every field is validated here, so the
 * rest of the program trusts it.  Errors read "FILE:LINE: [section] key: reason". */
#ifndef DC_CONFIG_H
#define DC_CONFIG_H

#include <stdint.h>

#include "dc/status.h"

#define DC_MAX_LAYERS 96
#define DC_NAME_LEN 32
#define DC_MAX_BASES 4 /* [base] config = FILE: how deep configs may build on configs */

enum dc_dataset_kind { DC_DATASET_MNIST, DC_DATASET_CIFAR10 };

enum dc_layer_type {
    DC_LAYER_CONV,     /* [conv]      filters, size, stride, pad, batch_normalize, activation */
    DC_LAYER_FC,       /* [fc]        outputs, activation */
    DC_LAYER_MAXPOOL,  /* [maxpool]   size, stride, pad */
    DC_LAYER_AVGPOOL,  /* [avgpool]   size, stride, pad; size = 0 means global */
    DC_LAYER_RELU,     /* [relu] */
    DC_LAYER_BN,       /* [batchnorm] */
    DC_LAYER_DROPOUT,  /* [dropout]   probability */
    DC_LAYER_FIRE,     /* [fire]      squeeze, expand1x1, expand3x3 */
    DC_LAYER_TYPE_COUNT
};

enum dc_lr_schedule { DC_LR_CONST, DC_LR_STEP, DC_LR_COSINE, DC_LR_ONECYCLE };
enum dc_prune_method { DC_PRUNE_STD, DC_PRUNE_SPARSITY };
enum dc_kmeans_init { DC_INIT_LINEAR, DC_INIT_DENSITY, DC_INIT_RANDOM };

struct dc_layer_cfg {
    enum dc_layer_type type;
    char name[DC_NAME_LEN]; /* key `name`, default "<type><index>" e.g. "conv1", "fc3" */
    int line;               /* line of the section header, for messages */
    int base;               /* file of that line: 0 = the config, k = its bases[k - 1] */
    int filters;            /* conv: output channels */
    int outputs;            /* fc: output features */
    int size, stride, pad;  /* conv and pooling; conv pad default size/2 */
    int batch_normalize;    /* conv: 1 = conv (no bias) then batchnorm */
    int relu;               /* conv, fc: key activation = relu | linear (default linear) */
    float probability;      /* dropout */
    int squeeze, expand1, expand3; /* fire */
    float prune;            /* per-layer prune override: quality (std) or sparsity; < 0 = none */
    int bits;               /* per-layer quantization bits override; 0 = none */
};

struct dc_config {
    char path[512];                    /* the INI file */
    char bases[DC_MAX_BASES][512];     /* [base] config = FILE: the configs it builds on, nearest first */
    int nbases;

    /* [data] */
    enum dc_dataset_kind dataset;      /* set = mnist | cifar10 */
    char data_dir[512];                /* dir, required */
    int augment;                       /* random crop and flip; default 0 */
    int crop_pad;                      /* augment: crop from this much zero padding; default 4 */
    int flip;                          /* augment: random horizontal flips; default 1 (0 for digits) */
    int train_limit, test_limit;       /* use only the first N images; 0 = all */

    /* [train] */
    char device[16];                   /* auto | cpu | cuda */
    int epochs;                        /* 0 allowed (compress a loaded model) */
    int batch;
    float lr, momentum, weight_decay;
    int nesterov;
    float clip_norm;                   /* scale the gradients down to this global L2 norm
                                          (all trainable parameters together); 0 = off */
    enum dc_lr_schedule schedule;      /* const | step | cosine | onecycle */
    int step_epochs;                   /* step: decay every N epochs */
    float gamma;                       /* step: multiplier */
    int warmup_epochs;                 /* linear warm-up from lr/10 */
    uint64_t seed;
    int threads;                       /* CPU threads, 0 = all */
    int tf32;                          /* CUDA TF32 math */
    char cuda_graph[8];                /* auto | on | off: replay each training step as a CUDA
                                          graph (auto = on where the backend has graphs) */
    int checkpoint_every;              /* epochs between checkpoints, default 1 */
    float label_smoothing;             /* 0..1: targets (1 - e) onehot + e / classes in every
                                          training phase; 0 (default) = the labels alone */

    /* [distill] (has_distill = section present): the network as it enters the
       first compression stage teaches every retraining and fine-tuning phase */
    int has_distill;
    float distill_alpha;               /* weight of the teacher's soft targets, 0..1 */
    float distill_temperature;         /* softmax temperature of both, > 0 */

    /* [prune] (has_prune = section present) */
    int has_prune;
    enum dc_prune_method prune_method;
    float quality_conv, quality_fc;    /* std method */
    float sparsity_conv, sparsity_fc;  /* sparsity method, 0..1 */
    int prune_rounds;                  /* iterative rounds with rising threshold */
    int retrain_epochs;                /* per round */
    int final_epochs;                  /* the last round's, -1 = retrain_epochs */
    float retrain_lr;
    int bn_recal_batches;              /* training batches that re-estimate batch-norm statistics
                                          after pruning or clustering; 0 = none */

    /* [quantize] */
    int has_quantize;
    int bits_conv, bits_fc;            /* 1..8, defaults 8 and 5 */
    int bits_bias;                     /* 0..8: biases and batch-norm scales and shifts share a
                                          codebook of this many bits (0, the default: kept dense) */
    enum dc_kmeans_init kmeans_init;
    int kmeans_iters;
    int finetune_epochs;
    float finetune_lr;

    /* [encode] */
    int has_encode;
    int index_bits_conv, index_bits_fc; /* 1..16, defaults 8 and 5 */
    int huffman;                        /* default 1 */
    int dense_bits;                     /* 32 or 16: width of dense values (biases, batch-norm);
                                           16 rounds them to half precision before encoding */
    int codebook_bits;                  /* 32 or 16: width of codebook entries; 16 rounds them to
                                           half precision before encoding */
    char encode_file[256];              /* default "model.dcm", relative to --out */

    /* [compress] (has_compress = section present): budget mode.  With
       target_bytes > 0 a "budget" stage before the prune rounds chooses each
       layer's sparsity from a sensitivity scan on `validation` images held out
       from the end of the training set (never trained on), so the file fits */
    int has_compress;
    int target_bytes;                   /* the encoded file's size limit; 0 = off */
    float max_accuracy_drop;            /* or: validation points the prune rounds may lose; 0 = off */
    int validation;                     /* held-out training images, default 5000 */

    /* [init] (used with dctrain --init FILE.npz|.safetensors) */
    char init_map[2048];                /* "file_name:our_name, ...": renames tensors before
                                           pairing; ":-" drops one; "" = none (docs/interop.md) */

    /* the network: one entry per layer section, in file order */
    int nlayers;
    struct dc_layer_cfg layers[DC_MAX_LAYERS];

    /* the layer sections as written (for the model file's network description) */
    char *net_text;                     /* owned, NUL-terminated INI text of layer sections */
};

/* The whole effective config as INI text that loads back to the same config
 * (dctrain --print-config): every key of every stage that is on, defaults
 * included, then the network.  *text is malloc'd. */
enum dc_status dc_config_format(const struct dc_config *cfg, char **text);

/* The file a layer's section header is in: path or one of the bases (for messages). */
const char *dc_config_layer_file(const struct dc_config *cfg, const struct dc_layer_cfg *l);

/* Parse FILE, apply the overrides ("section.key=value"; "layer.key" addresses a
 * layer section by its name, e.g. "fc1.prune=2.0"), validate.  On error the
 * last-error message holds "FILE:LINE: [section] key: reason" and the status is
 * DC_ERR_CONFIG (or DC_ERR_IO when the file cannot be read). */
enum dc_status dc_config_load(const char *path, const char *const *overrides, int noverrides,
                              struct dc_config *out);
/* Parse a network description only (layer sections), as stored in model files. */
enum dc_status dc_config_parse_net(const char *text, const char *origin, struct dc_config *out);
void dc_config_free(struct dc_config *cfg);

const char *dc_layer_type_name(enum dc_layer_type t); /* section name, e.g. "conv" */

#endif
