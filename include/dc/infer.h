/* infer.h: running a .dcm model from its compressed form.  The loader reads
 * the file's kept-weight lists (never a dense copy of a coded weight), builds
 * the network from the file's description, gives every fc and conv weight
 * an executable layout (dc/spmat.h: dense, csr or codebook), folds batch
 * norm into the layer before it, and releases the dense weight buffers.  The
 * network then runs through the usual dc_net_forward: a layer whose weight
 * carries a compressed form runs it.
 *
 * The format of each weight is the user's (one for all) or, by default,
 * chosen by timing on this backend at the batch size the plan is made for:
 * each weight's forms alone first, then whole forward passes of the network
 * (src/infer/infer_race.c), so the plan is the fastest here as a whole, not
 * a guess.  DC_INFER_RULE chooses by a fixed rule instead (density, batch),
 * reproducibly; auto falls back to it where the clock cannot tell forms apart. */
#ifndef DC_INFER_H
#define DC_INFER_H

#include "dc/config.h"
#include "dc/modelfile.h"
#include "dc/net.h"
#include "dc/spmat.h"

#define DC_INFER_AUTO (-1)
#define DC_INFER_RULE (-2)

struct dc_infer_opts {
    int format;     /* DC_INFER_AUTO, DC_INFER_RULE, or an enum dc_spmat_format for every weight */
    int batch;      /* batch size the automatic choice is timed at (1..max_batch) */
    int max_batch;  /* largest batch a forward may use */
};

/* One fc or conv weight of the plan. */
struct dc_infer_weight {
    char name[48];
    int rows, cols, is_conv;
    int64_t nnz;                        /* weights kept */
    enum dc_spmat_format format;        /* chosen */
    size_t bytes;                       /* resident bytes of the chosen form */
    uint64_t file_bytes;                /* its section in the file */
    double cand_us[DC_FORMAT_COUNT];    /* auto: each form alone, median microseconds per batch; < 0 not timed */
    int folded_bn;                      /* 1 when a batch norm was folded into its epilogue */
    struct dc_param *param;
};

struct dc_infer {
    struct dc_net *net;
    struct dc_config cfg;               /* the network description from the file */
    int nweights;
    struct dc_infer_weight w[DC_NET_MAX_PARAMS];
    size_t weight_bytes;                /* resident bytes of all compressed forms */
    size_t other_bytes;                 /* resident bytes of every other parameter kept (float32) */
    uint64_t file_bytes;
    int folded;                         /* batch norms folded */
    int batch;                          /* what the choice was timed at */
    double plan_us;                     /* auto: a whole forward of the plan kept, as timed at load; < 0 not
                                         * timed (a forced form, the rule, or forms over 512 MiB in all) */
    double uniform_us[DC_FORMAT_COUNT]; /* auto: a whole forward with every weight in one form (codebook: csr
                                         * where a weight is not quantized), as timed at load; < 0 not timed */
};

/* Load path on be for batches up to opts->max_batch.  Errors (a damaged file,
 * a bad option) leave nothing allocated and name the file. */
enum dc_status dc_infer_load(const char *path, struct dc_backend *be, const struct dc_infer_opts *opts,
                             struct dc_infer **out);
void dc_infer_free(struct dc_infer *inf);

/* Build src (host) in each candidate form on be, time its product at batch
 * size `batch` on random nonzero input (the candidates take turns running
 * blocks of calls, each after a warm-up call; about 40 ms in all) (fc when
 * geom is NULL, else the convolution geom describes, geom->n ignored), and
 * keep the fastest (lowest median) in *best with the epilogue (scale, shift:
 * host [rows] or NULL); cand_us[f] gets each form's median microseconds per
 * batch, -1 for a form not timed.  format forces one form, or DC_INFER_RULE
 * picks one by the rule (nothing is timed then). */
enum dc_status dc_infer_pick(struct dc_backend *be, const struct dc_spmat_src *src, const struct dc_conv_desc *geom,
                             int format, int batch, int max_batch, const float *scale, const float *shift,
                             struct dc_spmat **best, double cand_us[DC_FORMAT_COUNT]);

/* Forward n images of inf->net->act[0], timing each layer (seconds, host
 * array [net->nlayers], may be NULL): the backend is synchronised after
 * every layer when layer_s is given. */
enum dc_status dc_infer_forward(struct dc_infer *inf, int n, double *layer_s);

#endif
