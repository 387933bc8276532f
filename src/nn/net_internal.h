/* net_internal.h: the network builder's memory budget (net_budget.c).
 * Private to src/nn. */
#ifndef DC_NET_INTERNAL_H
#define DC_NET_INTERNAL_H

#include "dc/config.h"
#include "layer_internal.h"

/* Bytes the network would take, added up section by section before each is built. */
struct dc_net_budget {
    double bytes, limit;
};

/* The limit: DC_MEMORY_LIMIT_MB when set (MiB), else the machine's physical memory. */
double dc_net_memory_limit(void);

/* Add the section lc with input shape c x h x w; an error naming the layer and
 * the estimate once the total passes the limit (nothing is allocated). */
enum dc_status dc_net_budget_add(struct dc_net_budget *bud, const struct dc_layer_cfg *lc, int c, int h, int w,
                                 int max_batch);

#endif
