/* cpu_reduce.c: reductions whose result goes to the host.  moments gives the
 * sum, the sum of squares and the non-zero count of a tensor (pruning
 * thresholds are quality x std, and sparsity reports count survivors); it
 * sums in double, in index order, so the answer is exact enough for std and
 * does not depend on the thread count.
 *
 * Legend: x [n]; host_out [3]. */
#include "cpu/cpu_internal.h"

enum dc_status dc_cpu_moments(struct dc_backend *be, size_t n, const float *x, double *host_out)
{
    (void)be;
    double sum = 0.0, sq = 0.0, nonzero = 0.0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        sum += v;
        sq += v * v;
        nonzero += x[i] != 0.0f;
    }
    host_out[0] = sum;
    host_out[1] = sq;
    host_out[2] = nonzero;
    return DC_OK;
}
