/* cpu_loss.c: softmax cross-entropy and arg-max on the CPU.  The softmax is
 * computed as exp(x - max) over a log-sum-exp, so large logits never
 * overflow; the loss and accuracy statistics accumulate in stats (backend
 * memory) so a training epoch sums them without a host round trip.  dlogits
 * may be NULL when only the statistics are wanted (evaluation).
 *
 * Legend: logits, dlogits [N,K]; labels, pred [N]. */
#include <math.h>

#include "cpu/cpu_internal.h"

/* Index of the first maximum of row[0..k). */
static int dc_row_argmax(const float *row, int k)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (row[j] > row[best])
            best = j;
    return best;
}

enum dc_status dc_cpu_softmax_xent(struct dc_backend *be, int n, int k, const float *logits,
                                   const int32_t *labels, float grad_scale, float *dlogits,
                                   float *stats)
{
    (void)be;
    if (n < 0 || k <= 0)
        return DC_ERROR(DC_ERR_ARG, "softmax_xent: bad shape [%d,%d]", n, k);
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= k)
            return DC_ERROR(DC_ERR_ARG, "softmax_xent: label %d of row %d is outside [0, %d)",
                            (int)labels[i], i, k);
    double loss = 0.0, correct = 0.0;
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * k;
        const int label = labels[i], top = dc_row_argmax(row, k);
        const float max = row[top];
        double sum = 0.0;
        for (int j = 0; j < k; j++)
            sum += exp((double)(row[j] - max));
        loss += log(sum) - (double)(row[label] - max);
        correct += top == label;
        if (dlogits) {
            float *drow = dlogits + (size_t)i * k;
            const float inv = (float)(1.0 / sum);
            for (int j = 0; j < k; j++) {
                float p = expf(row[j] - max) * inv;
                drow[j] = (p - (j == label ? 1.0f : 0.0f)) * grad_scale;
            }
        }
    }
    stats[0] += (float)loss;
    stats[1] += (float)correct;
    return DC_OK;
}

enum dc_status dc_cpu_argmax(struct dc_backend *be, int n, int k, const float *logits, int32_t *pred)
{
    (void)be;
    if (n < 0 || k <= 0)
        return DC_ERROR(DC_ERR_ARG, "argmax: bad shape [%d,%d]", n, k);
    for (int i = 0; i < n; i++)
        pred[i] = dc_row_argmax(logits + (size_t)i * k, k);
    return DC_OK;
}
