/* modelfile.h: the compressed model file (.dcm), byte layout in
 * docs/model-format.md.  Self-describing: it carries the network description,
 * the dataset kind and input shape, then one CRC-checked section per
 * parameter: dense float32 (or half), or pruned/quantized weights as a gap-coded
 * position stream, a cluster-index stream (each fixed-width or canonical
 * Huffman) and a float32 codebook.  Decoded values are bit-exact. */
#ifndef DC_MODELFILE_H
#define DC_MODELFILE_H

#include <stddef.h>
#include <stdint.h>

#include "dc/config.h"
#include "dc/net.h"

#define DC_MODELFILE_MAGIC "DCMODEL"  /* 8 bytes with its NUL */
#define DC_MODELFILE_VERSION 1
#define DC_MODELFILE_MAX_TEXT (1u << 20)

/* DENSE16: dense values as IEEE half ([encode] dense_bits = 16) */
enum dc_section_kind {
    DC_SECTION_DENSE = 0, DC_SECTION_CODED = 1, DC_SECTION_DENSE16 = 2,
    DC_SECTION_CODED16 = 3 /* coded, its codebook in half precision ([encode] codebook_bits = 16) */
};
enum dc_stream_coding { DC_CODING_FIXED = 0, DC_CODING_HUFFMAN = 1 };

/* What one section costs, as the reader counted it (the report's source). */
struct dc_section_stats {
    char name[48];
    int kind, trainable, prunable, is_conv;
    uint64_t count;              /* weights in the tensor */
    uint64_t kept;               /* weights stored (count for dense and unpruned) */
    uint64_t entries;            /* position entries, fillers included (0: no position stream) */
    int bits;                    /* cluster index width, 0 = float32 (or half, kind DENSE16) values */
    int index_bits;              /* gap width, 0 = positions implied (all weights stored) */
    int value_coding, index_coding;           /* enum dc_stream_coding */
    uint64_t value_stream_bits, index_stream_bits; /* coded bits before byte padding */
    /* bytes: every byte of the section falls in exactly one of the first five */
    uint64_t value_bytes;        /* value stream, or float32 / half values */
    uint64_t index_bytes;        /* position stream */
    uint64_t codebook_bytes;     /* float32 codebook */
    uint64_t table_bytes;        /* Huffman code-length tables */
    uint64_t overhead_bytes;     /* length, CRC, name, kind, shape, counts, stream headers */
    uint64_t total_bytes;
};

struct dc_modelfile_stats {
    int nsections;
    struct dc_section_stats *s;  /* [nsections], owned */
    uint64_t header_bytes;       /* header incl. network description and its CRC */
    uint64_t file_bytes;         /* whole file */
    uint64_t dense_bytes;        /* 4 bytes per trainable value (weights, biases, bn gamma/beta) */
};
void dc_modelfile_stats_free(struct dc_modelfile_stats *s);

/* One decoded parameter (host memory). */
struct dc_modelfile_param {
    char name[48];
    int n, c, h, w;
    int kind, trainable, prunable, is_conv;
    float *values;               /* [count] dense values, 0 where pruned; owned */
    float *mask;                 /* [count] 1 kept / 0 pruned, NULL when every weight is stored */
    uint8_t *assign;             /* [count] cluster index (0 where pruned), NULL unless quantized */
    float codebook[256];
    int m;                       /* codebook entries, 0 unless quantized */
    /* coded sections read with dc_modelfile_read_sparse (values, mask and
     * assign are NULL then): the kept weights in position order */
    uint32_t kept;
    uint32_t *pos;               /* [kept] flat positions, increasing; owned */
    uint8_t *codes;              /* [kept] cluster indices when quantized, else NULL; owned */
    float *kvalues;              /* [kept] float32 values when not quantized, else NULL; owned */
};

struct dc_modelfile {
    uint32_t version, flags;
    enum dc_dataset_kind dataset;
    int in_c, in_h, in_w, classes;
    char *net_text;              /* NUL-terminated network description; owned */
    int nparams;
    struct dc_modelfile_param *params; /* [nparams]; owned */
    struct dc_modelfile_stats stats;
};
void dc_modelfile_free(struct dc_modelfile *mf);

/* ---- writing ---- */
/* 1 when the writer stores p as a dense section: no mask and no codebook (a
 * bias, or an untouched weight; a bias quantized with [quantize] bits_bias
 * has a codebook). */
int dc_modelfile_stores_dense(const struct dc_param *p);
/* Bytes the body of a coded section without positions takes (kept count,
 * widths, codebook of 2^bits entries at codebook_bits, one fixed-width stream
 * of n codes; Huffman is used only where smaller), and of a dense section of
 * n values at dense_bits: dc_quantize_pays compares the two, so the writer's
 * layout is stated once, here. */
size_t dc_modelfile_coded_bytes(size_t n, int bits, int codebook_bits);
size_t dc_modelfile_dense_bytes(size_t n, int dense_bits);
/* Round every densely stored value of net to the nearest half (ties to even)
 * in place, so that [encode] dense_bits = 16 loses nothing the network still
 * has: call it before evaluating the network that will be encoded.  Fails,
 * naming the parameter, on a value half precision cannot hold (|x| > 65504
 * after rounding, or not finite). */
enum dc_status dc_round_dense_half(struct dc_net *net);
/* The same for codebooks ([encode] codebook_bits = 16): every codebook entry
 * rounded to the nearest half, and the weights gathered from it again. */
enum dc_status dc_round_codebooks_half(struct dc_net *net);
/* The same for one parameter's codebook (nothing when it has none). */
enum dc_status dc_round_codebook_half(struct dc_backend *be, struct dc_param *p);
/* Encode net (and cfg's net_text, dataset, [encode] keys: index_bits_conv/fc,
 * huffman, dense_bits, codebook_bits) into a malloc'd buffer.  Parameters
 * with a mask or a codebook become coded sections (their codebooks float32,
 * or half with codebook_bits = 16); the rest are dense (float32, or half with
 * dense_bits = 16).  Fails when a quantized weight differs from its
 * codebook entry, a pruned weight is not zero, or (dense_bits = 16) a dense
 * value is not exactly a half, since the file could not then reproduce the
 * network exactly. */
enum dc_status dc_modelfile_encode(struct dc_net *net, const struct dc_config *cfg, uint8_t **buf,
                                   size_t *size);
/* Bytes of the net's parameter i's section in the file dc_modelfile_encode
 * writes: sections are coded independently, so a file is its header plus
 * the sum of these. */
enum dc_status dc_modelfile_section_bytes(struct dc_net *net, const struct dc_config *cfg, int i, size_t *bytes);
/* Encode, decode the result again and compare with the network bit for bit,
 * then write atomically (path.tmp, fsync, rename).  stats may be NULL. */
enum dc_status dc_modelfile_write(const char *path, struct dc_net *net, const struct dc_config *cfg,
                                  struct dc_modelfile_stats *stats);

/* ---- reading ---- */
/* Check and decode a whole file image; origin names it in messages. */
enum dc_status dc_modelfile_parse(const uint8_t *buf, size_t size, const char *origin,
                                  struct dc_modelfile *out);
enum dc_status dc_modelfile_read(const char *path, struct dc_modelfile *out);
/* The same checks, but coded (pruned or quantized) sections stay lists of
 * kept weights (pos, codes or kvalues) and are never expanded to dense
 * arrays: the compressed-inference loader builds its formats from them. */
enum dc_status dc_modelfile_parse_sparse(const uint8_t *buf, size_t size, const char *origin,
                                         struct dc_modelfile *out);
enum dc_status dc_modelfile_read_sparse(const char *path, struct dc_modelfile *out);
/* Copy decoded parameters into net (names and shapes must match; every
 * parameter needs a section): values, masks (p->mask) and quantization
 * state (dc_quantize_restore), so the loaded net can also be fine-tuned. */
enum dc_status dc_modelfile_apply(const struct dc_modelfile *mf, struct dc_net *net, const char *origin);
/* The parameter of net that section i fills: same count of sections and
 * parameters, a parameter of that name, the same shape (else an error naming
 * the section). */
enum dc_status dc_modelfile_match(const struct dc_modelfile *mf, struct dc_net *net, const char *origin, int i,
                                  struct dc_param **out);
/* Before building the network a file describes: every weighted layer's width
 * must agree with the section the file holds for it, so an edited
 * description cannot ask for gigabytes. */
enum dc_status dc_modelfile_check_net(const struct dc_modelfile *mf, const struct dc_config *cfg,
                                      const char *origin);
/* Read path, parse its network description into cfg (dc_config_parse_net;
 * cfg->dataset from the file), build the network (dc_net_create) on be and
 * fill it.  stats may be NULL.  On error nothing is left allocated. */
enum dc_status dc_modelfile_load(const char *path, struct dc_backend *be, int max_batch, struct dc_net **net,
                                 struct dc_config *cfg, struct dc_modelfile_stats *stats);

#endif
