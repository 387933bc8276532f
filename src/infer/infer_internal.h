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
/* Remove layer j (a folded batch norm) from the network, its parameters and output buffer. */
void dc_infer_drop_layer(struct dc_net *net, int j);

#endif
