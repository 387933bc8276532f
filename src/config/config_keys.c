/* config_keys.c: every key the config knows, per section, with its type,
 * default and allowed range.  This table is the single list of keys: parsing,
 * validation, defaults and the canonical net_text all read it. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "config/config_internal.h"

#define G(f) offsetof(struct dc_config, f)
#define L(f) offsetof(struct dc_layer_cfg, f)
#define NKEYS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Integers in [lo, INT_MAX] or [lo, hi] */
#define KINT(n, o, d, l, h) {.name = n, .kind = CFG_INT, .off = o, .dflt = d, .lo = l, .hi = h}
#define KINT_REQ(n, o, l) {.name = n, .kind = CFG_INT, .off = o, .required = 1, .lo = l, .hi = INT_MAX}
#define KINT_DERIVED(n, o, l) {.name = n, .kind = CFG_INT, .off = o, .lo = l, .hi = INT_MAX}
#define KBOOL(n, o, d) {.name = n, .kind = CFG_BOOL, .off = o, .dflt = d, .lo = 0, .hi = 1}
/* Floats in [lo, hi] with the ends opened as asked */
#define KFLT(n, o, d, l, lopen, h, hopen) \
    {.name = n, .kind = CFG_FLOAT, .off = o, .dflt = d, .lo = l, .lo_open = lopen, .hi = h, .hi_open = hopen}
#define KENUM(n, o, d, w) {.name = n, .kind = CFG_ENUM, .off = o, .dflt = d, .words = w}
#define KENUM_REQ(n, o, w) {.name = n, .kind = CFG_ENUM, .off = o, .required = 1, .words = w}
#define KSTR(n, o, cap, d, w) {.name = n, .kind = CFG_STR, .off = o, .len = cap, .dflt = d, .words = w}
#define KSTR_REQ(n, o, cap) {.name = n, .kind = CFG_STR, .off = o, .len = cap, .required = 1}

#define ANY_INT INT_MAX

static const char *const dataset_words[] = {"mnist", "cifar10", NULL};
static const char *const device_words[] = {"auto", "cpu", "cuda", NULL};
static const char *const graph_words[] = {"auto", "on", "off", NULL};
static const char *const schedule_words[] = {"const", "step", "cosine", "onecycle", NULL};
static const char *const method_words[] = {"std", "sparsity", NULL};
static const char *const init_words[] = {"linear", "density", "random", NULL};
static const char *const activation_words[] = {"linear", "relu", NULL};
static const char *const dense_bits_words[] = {"16", "32", NULL}; /* float16 or float32 */

static const struct cfg_key data_keys[] = {
    KENUM_REQ("set", G(dataset), dataset_words),
    KSTR_REQ("dir", G(data_dir), sizeof(((struct dc_config *)0)->data_dir)),
    KBOOL("augment", G(augment), "0"),
    KINT("crop_pad", G(crop_pad), "4", 0, 16),
    KBOOL("flip", G(flip), "1"),
    KINT("train_limit", G(train_limit), "0", 0, ANY_INT),
    KINT("test_limit", G(test_limit), "0", 0, ANY_INT),
};

static const struct cfg_key train_keys[] = {
    KSTR("device", G(device), sizeof(((struct dc_config *)0)->device), "auto", device_words),
    KINT("epochs", G(epochs), "10", 0, ANY_INT),
    KINT("batch", G(batch), "64", 1, ANY_INT),
    KFLT("lr", G(lr), "0.01", 0, 1, HUGE_VAL, 0),
    KFLT("momentum", G(momentum), "0.9", 0, 0, 1, 1),
    KFLT("weight_decay", G(weight_decay), "0", 0, 0, HUGE_VAL, 0),
    KBOOL("nesterov", G(nesterov), "0"),
    KFLT("clip_norm", G(clip_norm), "0", 0, 0, HUGE_VAL, 0),
    KENUM("schedule", G(schedule), "const", schedule_words),
    KINT("step_epochs", G(step_epochs), "10", 1, ANY_INT),
    KFLT("gamma", G(gamma), "0.1", 0, 1, HUGE_VAL, 0),
    KINT("warmup_epochs", G(warmup_epochs), "0", 0, ANY_INT),
    {.name = "seed", .kind = CFG_U64, .off = G(seed), .dflt = "1"},
    KINT("threads", G(threads), "0", 0, ANY_INT),
    KBOOL("tf32", G(tf32), "0"),
    KSTR("cuda_graph", G(cuda_graph), sizeof(((struct dc_config *)0)->cuda_graph), "auto", graph_words),
    KINT("checkpoint_every", G(checkpoint_every), "1", 1, ANY_INT),
    KFLT("label_smoothing", G(label_smoothing), "0", 0, 0, 1, 1),
};

static const struct cfg_key distill_keys[] = {
    KFLT("alpha", G(distill_alpha), "0.5", 0, 1, 1, 0),
    KFLT("temperature", G(distill_temperature), "4", 0, 1, 100, 0),
};

static const struct cfg_key prune_keys[] = {
    KENUM("method", G(prune_method), "std", method_words),
    KFLT("quality_conv", G(quality_conv), "1.0", 0, 0, HUGE_VAL, 0),
    KFLT("quality_fc", G(quality_fc), "1.0", 0, 0, HUGE_VAL, 0),
    KFLT("sparsity_conv", G(sparsity_conv), "0.0", 0, 0, 1, 1),
    KFLT("sparsity_fc", G(sparsity_fc), "0.0", 0, 0, 1, 1),
    /* at most 60: a job holds 64 stages (train, the rounds, quantize, encode) */
    KINT("rounds", G(prune_rounds), "3", 1, 60),
    KINT("retrain_epochs", G(retrain_epochs), "2", 0, ANY_INT),
    /* -1: as retrain_epochs; the last round's network is the one quantized */
    KINT("final_epochs", G(final_epochs), "-1", -1, ANY_INT),
    KFLT("retrain_lr", G(retrain_lr), "0.001", 0, 1, HUGE_VAL, 0),
    /* batches of training images (bn_recal.c); acts only on networks with batch norm */
    KINT("bn_recalibrate", G(bn_recal_batches), "16", 0, 100000),
};

static const struct cfg_key quantize_keys[] = {
    KINT("bits_conv", G(bits_conv), "8", 1, 8),
    KINT("bits_fc", G(bits_fc), "5", 1, 8),
    KINT("bits_bias", G(bits_bias), "0", 0, 8),
    KENUM("init", G(kmeans_init), "linear", init_words),
    KINT("iterations", G(kmeans_iters), "30", 1, ANY_INT),
    KINT("finetune_epochs", G(finetune_epochs), "1", 0, ANY_INT),
    KFLT("finetune_lr", G(finetune_lr), "0.001", 0, 1, HUGE_VAL, 0),
};

static const struct cfg_key encode_keys[] = {
    KINT("index_bits_conv", G(index_bits_conv), "8", 1, 16),
    KINT("index_bits_fc", G(index_bits_fc), "5", 1, 16),
    KBOOL("huffman", G(huffman), "1"),
    /* an int limited to a list: half or single precision, nothing in between */
    {.name = "dense_bits", .kind = CFG_INT, .off = G(dense_bits), .dflt = "32", .lo = 16, .hi = 32,
     .words = dense_bits_words},
    {.name = "codebook_bits", .kind = CFG_INT, .off = G(codebook_bits), .dflt = "32", .lo = 16, .hi = 32,
     .words = dense_bits_words},
    KSTR("file", G(encode_file), sizeof(((struct dc_config *)0)->encode_file), "model.dcm", NULL),
};

/* [compress]: budget mode (job_budget*.c) */
static const struct cfg_key compress_keys[] = {
    KINT("target_bytes", G(target_bytes), "0", 0, ANY_INT),
    KFLT("max_accuracy_drop", G(max_accuracy_drop), "0", 0, 0, 100, 0),
    KINT("validation", G(validation), "5000", 1, ANY_INT),
};

/* [init]: how dctrain --init pairs a foreign file's tensors with ours */
static const struct cfg_key init_keys[] = {
    /* no default text: empty (the config is zeroed) means no map */
    KSTR("map", G(init_map), sizeof(((struct dc_config *)0)->init_map), NULL, NULL),
};

const struct cfg_section cfg_global_sections[] = {
    {"data", data_keys, NKEYS(data_keys)},
    {"train", train_keys, NKEYS(train_keys)},
    {"prune", prune_keys, NKEYS(prune_keys)},
    {"quantize", quantize_keys, NKEYS(quantize_keys)},
    {"encode", encode_keys, NKEYS(encode_keys)},
    {"distill", distill_keys, NKEYS(distill_keys)},
    {"compress", compress_keys, NKEYS(compress_keys)},
    {"init", init_keys, NKEYS(init_keys)},
};
const int cfg_nglobal_sections = NKEYS(cfg_global_sections);

/* Layer keys.  `name` and the derived keys (conv pad, pool stride) have no
 * default text: config_net.c fills them from other keys. */
#define KNAME {.name = "name", .kind = CFG_STR, .off = L(name), .len = DC_NAME_LEN}
#define KACT KENUM("activation", L(relu), "linear", activation_words)
/* prune: quality factor or sparsity, -1 = the section default; checked in config_net.c */
#define KPRUNE KFLT("prune", L(prune), "-1", -1, 0, HUGE_VAL, 0)
#define KBITS KINT("bits", L(bits), "0", 0, 8)

static const struct cfg_key conv_keys[] = {
    KNAME, KINT_REQ("filters", L(filters), 1), KINT_REQ("size", L(size), 1), KINT("stride", L(stride), "1", 1, ANY_INT),
    KINT_DERIVED("pad", L(pad), 0), KBOOL("batch_normalize", L(batch_normalize), "0"), KACT, KPRUNE, KBITS,
};
static const struct cfg_key fc_keys[] = {KNAME, KINT_REQ("outputs", L(outputs), 1), KACT, KPRUNE, KBITS};
static const struct cfg_key maxpool_keys[] = {
    KNAME, KINT_REQ("size", L(size), 1), KINT_DERIVED("stride", L(stride), 1), KINT("pad", L(pad), "0", 0, ANY_INT),
};
/* size 0 = global; a global pool takes stride 0 and pad 0 (checked in config_net.c) */
static const struct cfg_key avgpool_keys[] = {
    KNAME, KINT("size", L(size), "0", 0, ANY_INT), KINT_DERIVED("stride", L(stride), 0),
    KINT("pad", L(pad), "0", 0, ANY_INT),
};
static const struct cfg_key plain_keys[] = {KNAME};
static const struct cfg_key dropout_keys[] = {KNAME, KFLT("probability", L(probability), "0.5", 0, 0, 1, 1)};
static const struct cfg_key fire_keys[] = {
    KNAME, KINT_REQ("squeeze", L(squeeze), 1), KINT_REQ("expand1x1", L(expand1), 1),
    KINT_REQ("expand3x3", L(expand3), 1), KPRUNE, KBITS,
};

const struct cfg_section cfg_layer_sections[DC_LAYER_TYPE_COUNT] = {
    [DC_LAYER_CONV] = {"conv", conv_keys, NKEYS(conv_keys)},
    [DC_LAYER_FC] = {"fc", fc_keys, NKEYS(fc_keys)},
    [DC_LAYER_MAXPOOL] = {"maxpool", maxpool_keys, NKEYS(maxpool_keys)},
    [DC_LAYER_AVGPOOL] = {"avgpool", avgpool_keys, NKEYS(avgpool_keys)},
    [DC_LAYER_RELU] = {"relu", plain_keys, NKEYS(plain_keys)},
    [DC_LAYER_BN] = {"batchnorm", plain_keys, NKEYS(plain_keys)},
    [DC_LAYER_DROPOUT] = {"dropout", dropout_keys, NKEYS(dropout_keys)},
    [DC_LAYER_FIRE] = {"fire", fire_keys, NKEYS(fire_keys)},
};

const struct cfg_section *cfg_global_section(const char *name)
{
    for (int i = 0; i < cfg_nglobal_sections; i++)
        if (strcmp(cfg_global_sections[i].name, name) == 0)
            return &cfg_global_sections[i];
    return NULL;
}

int cfg_layer_type(const char *section_name)
{
    for (int t = 0; t < DC_LAYER_TYPE_COUNT; t++)
        if (strcmp(cfg_layer_sections[t].name, section_name) == 0)
            return t;
    return -1;
}

const char *dc_layer_type_name(enum dc_layer_type t)
{
    if ((int)t < 0 || t >= DC_LAYER_TYPE_COUNT)
        return "?";
    return cfg_layer_sections[t].name;
}

int cfg_key_index(const struct cfg_section *sec, const char *name)
{
    for (int i = 0; i < sec->nkeys; i++)
        if (strcmp(sec->keys[i].name, name) == 0)
            return i;
    return -1;
}
