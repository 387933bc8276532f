/* trainer.c: SGD epochs over data resident on the backend, and evaluation.
 * Shuffle order, augmentation and dropout are functions of (seed, stage,
 * epoch, step) alone, so a run resumed from a checkpoint replays exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/log.h"
#include "dc/rng.h"
#include "dc/train.h"

static uint64_t dc_str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Fill net->act[0] and net->labels with n samples at idx (backend memory). */
static enum dc_status dc_load_batch(struct dc_net *net, const struct dc_device_data *dd, const uint8_t *images,
                                    const uint8_t *labels, const int32_t *idx, int n, int augment, uint64_t seed)
{
    struct dc_backend *be = net->be;
    struct dc_batch_desc bd = {.c = dd->c, .h = dd->h, .w = dd->w, .n = n, .pad = augment ? 4 : 0,
                               .flip = augment, .seed = seed};
    memcpy(bd.mean, dd->mean, sizeof bd.mean);
    memcpy(bd.std, dd->std, sizeof bd.std);
    net->act[0].n = n;
    DC_TRY(be->ops.batch_images(be, &bd, images, idx, net->act[0].data));
    return be->ops.batch_labels(be, n, labels, idx, net->labels);
}

/* Inference over the test set; pred (host, may be NULL) receives arg-maxes. */
static enum dc_status dc_run_test(struct dc_net *net, struct dc_device_data *dd, struct dc_eval *ev, int32_t *pred)
{
    struct dc_backend *be = net->be;
    struct dc_pass pass = {.train = 0, .seed = 0};
    int32_t *dpred = NULL;
    if (pred)
        DC_TRY(be->ops.alloc(be, (void **)&dpred, sizeof(int32_t) * (size_t)net->max_batch));
    enum dc_status s = dc_net_stats_reset(net);
    for (int off = 0; s == DC_OK && off < dd->test_count; off += net->max_batch) {
        int n = dd->test_count - off < net->max_batch ? dd->test_count - off : net->max_batch;
        s = dc_load_batch(net, dd, dd->test_images, dd->test_labels, dd->test_idx + off, n, 0, 0);
        if (s == DC_OK)
            s = dc_net_forward(net, n, &pass);
        if (s == DC_OK)
            s = dc_net_loss(net, n);
        if (s == DC_OK && pred) {
            s = be->ops.argmax(be, n, net->classes, dc_net_output(net)->data, dpred);
            if (s == DC_OK)
                s = be->ops.download(be, pred + off, dpred, sizeof(int32_t) * (size_t)n);
        }
    }
    double loss = 0, correct = 0;
    if (s == DC_OK)
        s = dc_net_stats_read(net, &loss, &correct);
    if (dpred)
        be->ops.release(be, dpred);
    if (s == DC_OK && ev) {
        ev->count = dd->test_count;
        ev->loss = dd->test_count ? loss / dd->test_count : 0;
        ev->accuracy = dd->test_count ? correct / dd->test_count : 0;
    }
    return s;
}

enum dc_status dc_evaluate(struct dc_net *net, struct dc_device_data *dd, struct dc_eval *out)
{
    return dc_run_test(net, dd, out, NULL);
}

enum dc_status dc_predict(struct dc_net *net, struct dc_device_data *dd, int32_t *pred)
{
    return dc_run_test(net, dd, NULL, pred);
}

/* This epoch's order: a shuffle seeded by (seed, stage, epoch), uploaded once. */
static enum dc_status dc_shuffle_epoch(struct dc_device_data *dd, int32_t *host_perm, uint64_t seed)
{
    struct dc_rng rng;
    dc_rng_seed(&rng, seed);
    for (int i = 0; i < dd->train_count; i++)
        host_perm[i] = i;
    dc_rng_shuffle(&rng, host_perm, dd->train_count);
    return dd->be->ops.upload(dd->be, dd->perm, host_perm, sizeof(int32_t) * (size_t)dd->train_count);
}

static enum dc_status dc_train_epoch(struct dc_net *net, struct dc_device_data *dd, const struct dc_config *cfg,
                                     const struct dc_phase *ph, int epoch, uint64_t eseed,
                                     struct dc_epoch_report *rep)
{
    int steps = (dd->train_count + cfg->batch - 1) / cfg->batch;
    char label[64], extra[96] = "";
    snprintf(label, sizeof label, "%s %d/%d", ph->stage, epoch + 1, ph->epochs);
    struct dc_progress prog;
    dc_progress_begin(&prog, label, (size_t)steps);
    DC_TRY(dc_net_stats_reset(net));
    double loss = 0, correct = 0, seen = 0;
    for (int step = 0; step < steps; step++) {
        int off = step * cfg->batch;
        int n = dd->train_count - off < cfg->batch ? dd->train_count - off : cfg->batch;
        uint64_t sseed = eseed ^ (0xD1B54A32D192ED03ull * (uint64_t)(step + 1));
        struct dc_pass pass = {.train = 1, .seed = sseed};
        float lr = dc_lr_at(cfg, ph, epoch + (double)step / steps);
        rep->lr = lr;
        DC_TRY(dc_load_batch(net, dd, dd->train_images, dd->train_labels, dd->perm + off, n, cfg->augment,
                             sseed * 3 + 1));
        DC_TRY(dc_net_forward(net, n, &pass));
        DC_TRY(dc_net_loss(net, n));
        DC_TRY(dc_net_backward(net, n));
        DC_TRY(dc_net_update(net, lr, cfg->momentum, cfg->weight_decay, cfg->nesterov));
        seen += n;
        /* reading the stats synchronises a GPU: only every 50 steps, for the bar */
        if (step % 50 == 49 || step == steps - 1) {
            DC_TRY(dc_net_stats_read(net, &loss, &correct));
            snprintf(extra, sizeof extra, "loss %.4f acc %.2f%% lr %.4g", loss / seen, 100 * correct / seen, lr);
            dc_progress_update(&prog, (size_t)step + 1, extra);
        }
    }
    dc_progress_end(&prog, extra);
    rep->train_loss = seen ? loss / seen : 0;
    rep->train_accuracy = seen ? correct / seen : 0;
    return DC_OK;
}

enum dc_status dc_train_phase(struct dc_net *net, struct dc_device_data *dd, const struct dc_config *cfg,
                              const struct dc_phase *ph, int start_epoch, dc_epoch_fn fn, void *user,
                              struct dc_eval *last)
{
    if (cfg->batch > net->max_batch)
        return DC_ERROR(DC_ERR_ARG, "batch %d exceeds the network's max batch %d", cfg->batch, net->max_batch);
    int32_t *host_perm = malloc(sizeof(int32_t) * (size_t)(dd->train_count ? dd->train_count : 1));
    if (!host_perm)
        return DC_ERROR(DC_ERR_NOMEM, "out of memory for the shuffle order");
    enum dc_status s = DC_OK;
    for (int epoch = start_epoch; s == DC_OK && epoch < ph->epochs; epoch++) {
        double t0 = dc_time_now();
        uint64_t eseed = dc_str_hash(ph->stage) ^ (cfg->seed * 0x9E3779B97F4A7C15ull) ^
                         (0xC2B2AE3D27D4EB4Full * (uint64_t)(epoch + 1));
        struct dc_epoch_report rep = {.stage = ph->stage, .epoch = epoch + 1, .epochs = ph->epochs};
        struct dc_eval ev;
        s = dc_shuffle_epoch(dd, host_perm, eseed);
        if (s == DC_OK)
            s = dc_train_epoch(net, dd, cfg, ph, epoch, eseed, &rep);
        rep.train_seconds = dc_time_now() - t0;
        if (s == DC_OK)
            s = dc_evaluate(net, dd, &ev);
        if (s != DC_OK)
            break;
        rep.test_loss = ev.loss;
        rep.test_accuracy = ev.accuracy;
        rep.seconds = dc_time_now() - t0;
        dc_info("%s epoch %d/%d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | %.1fs", ph->stage,
                epoch + 1, ph->epochs, rep.train_loss, 100 * rep.train_accuracy, ev.loss, 100 * ev.accuracy,
                rep.seconds);
        if (last)
            *last = ev;
        if (fn)
            s = fn(user, &rep);
    }
    free(host_perm);
    return s;
}
