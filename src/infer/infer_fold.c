/* infer_fold.c: the epilogue of a compressed weight (its bias, and a batch
 * norm that follows the layer, folded in) and the removal of the folded
 * batch-norm layers from the network.
 *
 * Folding: bn(acc + b) = (acc + b - mean) * g / sqrt(var + eps) + beta
 *                      = acc * s + (beta + (b - mean) * s),  s = g / sqrt(var + eps),
 * as PyTorch's fuse_conv_bn_eval does.  Only the summation order changes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer_internal.h"

const struct dc_modelfile_param *dc_infer_section(const struct dc_modelfile *mf, const char *name)
{
    for (int i = 0; i < mf->nparams; i++)
        if (strcmp(mf->params[i].name, name) == 0)
            return &mf->params[i];
    return NULL;
}

/* The dense float32 values of a section that must be dense, [rows] long. */
static enum dc_status dc_infer_vector(const struct dc_modelfile *mf, const char *origin, const char *layer,
                                      const char *suffix, int rows, const float **out)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%s", layer, suffix);
    const struct dc_modelfile_param *mp = dc_infer_section(mf, name);
    *out = NULL;
    if (!mp)
        return DC_OK;
    if (!mp->values || (int64_t)mp->n * mp->c * mp->h * mp->w != rows)
        return DC_ERROR(DC_ERR_FORMAT, "%s: section %s should hold %d dense values", origin, name, rows);
    *out = mp->values;
    return DC_OK;
}

/* Index of the fc or conv layer whose weight is p, or -1 (a Fire module's
 * convolutions are inside it: nothing after the module folds into them). */
static int dc_infer_owner(const struct dc_net *net, const struct dc_param *p)
{
    for (int i = 0; i < net->nlayers; i++)
        if ((net->layers[i]->type == DC_LAYER_FC || net->layers[i]->type == DC_LAYER_CONV) &&
            net->layers[i]->nparams > 0 && net->layers[i]->params[0] == p)
            return i;
    return -1;
}

enum dc_status dc_infer_epilogue(const struct dc_modelfile *mf, const char *origin, const struct dc_net *net,
                                 const struct dc_param *p, float **scale, float **shift, int *bn_layer)
{
    *scale = *shift = NULL;
    *bn_layer = -1;
    const int rows = p->w.n;
    char prefix[48];
    snprintf(prefix, sizeof prefix, "%s", p->name);
    char *dot = strrchr(prefix, '.');
    if (dot)
        *dot = '\0';
    const float *bias, *g = NULL, *beta = NULL, *mean = NULL, *var = NULL;
    DC_TRY(dc_infer_vector(mf, origin, prefix, "bias", rows, &bias));
    int owner = dc_infer_owner(net, p);
    const struct dc_layer *next = owner >= 0 && owner + 1 < net->nlayers ? net->layers[owner + 1] : NULL;
    if (next && next->type == DC_LAYER_BN) {
        DC_TRY(dc_infer_vector(mf, origin, next->name, "gamma", rows, &g));
        DC_TRY(dc_infer_vector(mf, origin, next->name, "beta", rows, &beta));
        DC_TRY(dc_infer_vector(mf, origin, next->name, "running_mean", rows, &mean));
        DC_TRY(dc_infer_vector(mf, origin, next->name, "running_var", rows, &var));
        if (!g || !beta || !mean || !var)
            return DC_ERROR(DC_ERR_FORMAT, "%s: batch norm %s lacks one of its four sections", origin, next->name);
        *bn_layer = owner + 1;
    }
    if (!bias && *bn_layer < 0)
        return DC_OK;
    *shift = calloc((size_t)rows, sizeof(float));
    *scale = *bn_layer >= 0 ? malloc((size_t)rows * sizeof(float)) : NULL;
    if (!*shift || (*bn_layer >= 0 && !*scale)) {
        free(*shift), free(*scale);
        *scale = *shift = NULL;
        return DC_ERROR(DC_ERR_NOMEM, "no memory to fold layer %s", prefix);
    }
    for (int r = 0; r < rows; r++) {
        float b = bias ? bias[r] : 0.0f;
        if (*bn_layer < 0) {
            (*shift)[r] = b;
            continue;
        }
        float s = g[r] / sqrtf(var[r] + DC_BN_EPS);
        (*scale)[r] = s;
        (*shift)[r] = beta[r] + (b - mean[r]) * s;
    }
    return DC_OK;
}

void dc_infer_drop_layer(struct dc_net *net, int j)
{
    struct dc_backend *be = net->be;
    struct dc_layer *l = net->layers[j];
    int kept = 0;
    for (int i = 0; i < net->nparams; i++) {
        int mine = 0;
        for (int k = 0; k < l->nparams; k++)
            mine |= net->params[i] == l->params[k];
        if (!mine)
            net->params[kept++] = net->params[i];
    }
    net->nparams = kept;
    dc_layer_free(be, l);
    /* its output act[j+1] goes; the next layer reads act[j] */
    dc_tensor_free(be, &net->act[j + 1]);
    dc_tensor_free(be, &net->grad[j + 1]);
    int after = net->nlayers - j - 1;
    memmove(&net->layers[j], &net->layers[j + 1], (size_t)after * sizeof net->layers[0]);
    memmove(&net->act[j + 1], &net->act[j + 2], (size_t)after * sizeof net->act[0]);
    memmove(&net->grad[j + 1], &net->grad[j + 2], (size_t)after * sizeof net->grad[0]);
    net->nlayers--;
    memset(&net->act[net->nlayers + 1], 0, sizeof net->act[0]);
    memset(&net->grad[net->nlayers + 1], 0, sizeof net->grad[0]);
    net->layers[net->nlayers] = NULL;
}
