/* infer_internal.h: what the loader's files share.  Private to src/infer. */
#ifndef DC_INFER_INTERNAL_H
#define DC_INFER_INTERNAL_H

#include "dc/infer.h"

/* The section called name, or NULL. */
const struct dc_modelfile_param *dc_infer_section(const struct dc_modelfile *mf, const char *name);
/* Host epilogue of weight p (malloc'd [rows], NULL when not needed): shift
 * holds its bias; when a batch-norm layer follows p's layer, scale and shift
 * fold it in and *bn_layer is that layer's index (else -1). */
enum dc_status dc_infer_epilogue(const struct dc_modelfile *mf, const char *origin, const struct dc_net *net,
                                 const struct dc_param *p, float **scale, float **shift, int *bn_layer);
/* The form the fixed rule gives a weight of nnz kept in rows x cols at batch
 * `batch`: dense from 50% density (25% above batch 1), else codebook for a
 * quantized fc weight, csr otherwise. */
int dc_infer_rule(int64_t nnz, int rows, int cols, int is_conv, int quantized, int batch);
/* dc_infer_pick keeping every form it built: cand[f] (NULL where not built),
 * and *win the form it would keep. */
enum dc_status dc_infer_candidates(struct dc_backend *be, const struct dc_spmat_src *src,
                                   const struct dc_conv_desc *geom, int format, int batch, int max_batch,
                                   const float *scale, const float *shift, struct dc_spmat *cand[DC_FORMAT_COUNT],
                                   double cand_us[DC_FORMAT_COUNT], int *win);
/* The whole-network race (infer_race.c): weight i of inf has its forms in
 * cand[i] and its per-layer choice in w[i].format; on return w[i].format and
 * its param's sp are the plan chosen, and plan_us, uniform_us are set.  The
 * forms not chosen stay in cand for the caller to free. */
struct dc_progress;
enum dc_status dc_infer_race_net(struct dc_infer *inf, struct dc_spmat *(*cand)[DC_FORMAT_COUNT], int batch,
                                  struct dc_progress *pg);
/* Remove layer j (a folded batch norm) from the network, its parameters and output buffer. */
void dc_infer_drop_layer(struct dc_net *net, int j);

#endif
