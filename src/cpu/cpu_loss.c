/* cpu_loss.c: softmax cross-entropy (with hard or soft targets) and arg-max
 * on the CPU.  The softmax is computed as exp(x - max) over a log-sum-exp,
 * so large logits never overflow; the loss and accuracy statistics
 * accumulate in stats (backend memory) so a training epoch sums them without
 * a host round trip.  dlogits
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

/* One row against soft targets (see struct dc_soft_target); returns its loss. */
static double dc_soft_row(const struct dc_soft_target *st, int k, const float *row, const float *trow, int label,
                          float max, float grad_scale, float *drow)
{
    const float eps = st->smoothing, a = st->alpha, T = st->temperature;
    double sum = 0.0, logsum = 0.0; /* sum_j exp(z_j - max), sum_j (z_j - max) */
    for (int j = 0; j < k; j++) {
        sum += exp((double)(row[j] - max));
        logsum += (double)(row[j] - max);
    }
    const double lse = log(sum);
    /* -sum_j s_j log p_j with log p_j = z_j - max - lse */
    double loss = (1.0 - a) * ((1.0 - eps) * (lse - (double)(row[label] - max)) + eps * (lse - logsum / k));
    double rsum = 0.0, qsum = 0.0, kl = 0.0;
    float tmax = 0.0f;
    if (a > 0.0f) {
        tmax = trow[dc_row_argmax(trow, k)];
        for (int j = 0; j < k; j++) {
            rsum += exp((double)((row[j] - max) / T));
            qsum += exp((double)((trow[j] - tmax) / T));
        }
        const double lr = log(rsum), lq = log(qsum);
        for (int j = 0; j < k; j++) {
            const double logq = (double)((trow[j] - tmax) / T) - lq, logr = (double)((row[j] - max) / T) - lr;
            kl += exp(logq) * (logq - logr);
        }
        loss += (double)a * T * T * kl;
    }
    if (drow) {
        const float inv = (float)(1.0 / sum), rinv = (float)(1.0 / rsum), qinv = (float)(1.0 / qsum);
        for (int j = 0; j < k; j++) {
            float target = (j == label ? 1.0f - eps : 0.0f) + eps / (float)k;
            float g = (1.0f - a) * (expf(row[j] - max) * inv - target);
            if (a > 0.0f)
                g += a * T * (expf((row[j] - max) / T) * rinv - expf((trow[j] - tmax) / T) * qinv);
            drow[j] = g * grad_scale;
        }
    }
    return loss;
}

enum dc_status dc_cpu_softmax_xent(struct dc_backend *be, int n, int k, const float *logits,
                                   const int32_t *labels, const struct dc_soft_target *soft, float grad_scale,
                                   float *dlogits, float *stats)
{
    (void)be;
    if (n < 0 || k <= 0)
        return DC_ERROR(DC_ERR_ARG, "softmax_xent: bad shape [%d,%d]", n, k);
    DC_TRY(dc_soft_target_check(soft));
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= k)
            return DC_ERROR(DC_ERR_ARG, "softmax_xent: label %d of row %d is outside [0, %d)",
                            (int)labels[i], i, k);
    double loss = 0.0, correct = 0.0;
    if (soft) {
        for (int i = 0; i < n; i++) {
            const float *row = logits + (size_t)i * k;
            const int top = dc_row_argmax(row, k);
            loss += dc_soft_row(soft, k, row, soft->alpha > 0.0f ? soft->teacher + (size_t)i * k : NULL,
                                labels[i], row[top], grad_scale, dlogits ? dlogits + (size_t)i * k : NULL);
            correct += top == labels[i];
        }
        stats[0] += (float)loss;
        stats[1] += (float)correct;
        return DC_OK;
    }
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
