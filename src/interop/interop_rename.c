/* interop_rename.c: the config's [init] map, "file_name:our_name, ...",
 * applied to a view of an imported file's tensors before they pair with the
 * network's parameters.  It exists for files whose names follow neither our
 * scheme nor the network's order (a wrapped model, an extra head to drop),
 * where pairing by order would be ambiguous or wrong. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "interop_internal.h"

/* Copy s[0..n) into out with surrounding blanks removed; 0 if it did not fit. */
static int dc_trim_copy(const char *s, size_t n, char *out, size_t len)
{
    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= len)
        return 0;
    memcpy(out, s, n);
    out[n] = '\0';
    return 1;
}

/* The parameter that `name` (ours, or its PyTorch name) denotes, or -1. */
static int dc_param_index(const struct dc_net *net, const char *name)
{
    for (int j = 0; j < net->nparams; j++) {
        char tn[DC_INTEROP_NAME_LEN];
        dc_interop_torch_name(net->params[j]->name, tn, sizeof tn);
        if (!strcmp(name, tn) || !strcmp(name, net->params[j]->name))
            return j;
    }
    return -1;
}

/* Apply one entry "from:to" (already split) to view; orig holds the file's names. */
static enum dc_status dc_rename_one(struct dc_interop_set *view, const struct dc_interop_set *orig,
                                    const struct dc_net *net, const char *from, const char *to, const char *origin)
{
    int i = dc_interop_find(orig, from);
    if (i < 0)
        return DC_ERROR(DC_ERR_CONFIG, "%s: [init] map: no tensor named '%s' in the file", origin, from);
    if (strcmp(view->t[i].name, from))
        return DC_ERROR(DC_ERR_CONFIG, "%s: [init] map: tensor '%s' is mapped twice", origin, from);
    char target[DC_INTEROP_NAME_LEN];
    if (!strcmp(to, "-")) {
        /* "__" names take no part in the pairing (dc_interop_apply) */
        snprintf(target, sizeof target, "__dropped %d", i);
    } else {
        int j = dc_param_index(net, to);
        if (j < 0)
            return DC_ERROR(DC_ERR_CONFIG, "%s: [init] map: '%s:%s': the network has no parameter '%s' "
                            "(names: dcinfo --json, or docs/interop.md)", origin, from, to, to);
        dc_interop_torch_name(net->params[j]->name, target, sizeof target);
        for (int k = 0; k < view->n; k++)
            if (k != i && !strcmp(view->t[k].name, target))
                return DC_ERROR(DC_ERR_CONFIG, "%s: [init] map: '%s:%s': tensor '%s' already has the name %s "
                                "(map it too, or to '-' to drop it)", origin, from, to, orig->t[k].name, target);
    }
    snprintf(view->t[i].name, sizeof view->t[i].name, "%s", target);
    return DC_OK;
}

enum dc_status dc_interop_rename(struct dc_interop_set *view, const struct dc_interop_set *orig,
                                 const struct dc_net *net, const char *map, const char *origin)
{
    const char *p = map;
    while (*p) {
        size_t n = strcspn(p, ",");
        char entry[2 * DC_INTEROP_NAME_LEN + 8], from[DC_INTEROP_NAME_LEN], to[DC_INTEROP_NAME_LEN];
        if (!dc_trim_copy(p, n, entry, sizeof entry))
            return DC_ERROR(DC_ERR_CONFIG, "%s: [init] map: entry '%.40s...' is too long", origin, p);
        const char *colon = strrchr(entry, ':');
        if (entry[0] && (!colon || !dc_trim_copy(entry, (size_t)(colon - entry), from, sizeof from) ||
                         !dc_trim_copy(colon + 1, strlen(colon + 1), to, sizeof to) || !from[0] || !to[0]))
            return DC_ERROR(DC_ERR_CONFIG, "%s: [init] map: entry '%s' is not FILE_NAME:OUR_NAME "
                            "(e.g. net.0.weight:fc1.weight, or extra.weight:- to drop a tensor)", origin, entry);
        if (entry[0])
            DC_TRY(dc_rename_one(view, orig, net, from, to, origin));
        p += n + (p[n] == ',');
    }
    return DC_OK;
}
