/* lr_schedule.c: learning rate as a function of fractional epoch, so a resumed
 * run recomputes exactly the rate the interrupted one would have used. */
#include <math.h>

#include "dc/train.h"

float dc_lr_at(const struct dc_config *cfg, const struct dc_phase *ph, double t)
{
    const double pi = 3.14159265358979323846;
    double lr = ph->lr, E = ph->epochs > 0 ? ph->epochs : 1;
    double f = t / E;
    switch (ph->schedule) {
    case DC_LR_CONST:
        break;
    case DC_LR_STEP:
        lr *= pow(cfg->gamma, floor(t / (cfg->step_epochs > 0 ? cfg->step_epochs : 1)));
        break;
    case DC_LR_COSINE:
        lr *= 0.5 * (1.0 + cos(pi * (f < 1 ? f : 1)));
        break;
    case DC_LR_ONECYCLE: {
        /* PyTorch OneCycleLR defaults: 30% rise from lr/25, cosine fall to lr/25e4 */
        const double rise = 0.3, lo = ph->lr / 25.0, end = lo / 1e4;
        if (f < rise)
            return (float)(lo + (ph->lr - lo) * 0.5 * (1.0 - cos(pi * f / rise)));
        double g = (f - rise) / (1.0 - rise);
        return (float)(end + (ph->lr - end) * 0.5 * (1.0 + cos(pi * (g < 1 ? g : 1))));
    }
    }
    if (cfg->warmup_epochs > 0 && t < cfg->warmup_epochs && ph->schedule != DC_LR_ONECYCLE) {
        double w = t / cfg->warmup_epochs;
        lr *= 0.1 + 0.9 * w;
    }
    return (float)lr;
}
