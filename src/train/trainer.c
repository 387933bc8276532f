/* trainer.c: SGD epochs over data resident on the backend, and evaluation.
 * Shuffle order, augmentation and dropout are functions of (seed, stage,
 * epoch, step) alone, so a run resumed from a checkpoint replays exactly.
 *
 * A step is: build the batch (its seed and index offset change every step,
 * so it stays eager), store the rate in backend memory, then forward, loss,
 * backward and update, a launch sequence that is the same every step.  With
 * `[train] cuda_graph` on (auto: where the backend has graphs) that sequence
 * runs eagerly once per batch size (the warm-up: convolution plans,
 * workspaces and the update lists are made then), is recorded as a graph on
 * the next step and replayed from then on: one graph for full batches, one
 * for the last, partial batch.  Same kernels in the same order with the same
 * arguments, so the results are those of eager steps bit for bit.  Any
 * failure to record or instantiate prints one notice and the phase continues
 * eagerly.  Dropout draws its mask from a seed passed by value at launch, so
 * a network with a dropout layer runs eagerly.  On the CPU (no graphs) every
 * step is eager, exactly as before graphs existed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc/killpoint.h"
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

/* Fill net->act[0] and net->labels with n samples at idx (backend memory),
 * augmented as cfg says when cfg is given. */
static enum dc_status dc_load_batch(struct dc_net *net, const struct dc_device_data *dd, const uint8_t *images,
                                    const uint8_t *labels, const int32_t *idx, int n,
                                    const struct dc_config *cfg, uint64_t seed)
{
    struct dc_backend *be = net->be;
    const int augment = cfg && cfg->augment;
    struct dc_batch_desc bd = {.c = dd->c, .h = dd->h, .w = dd->w, .n = n, .pad = augment ? cfg->crop_pad : 0,
                               .flip = augment && cfg->flip, .seed = seed};
    memcpy(bd.mean, dd->mean, sizeof bd.mean);
    memcpy(bd.std, dd->std, sizeof bd.std);
    net->act[0].n = n;
    DC_TRY(be->ops.batch_images(be, &bd, images, idx, net->act[0].data));
    return be->ops.batch_labels(be, n, labels, idx, net->labels);
}

enum dc_status dc_load_test_batch(struct dc_net *net, const struct dc_device_data *dd, int off, int n)
{
    return dc_load_batch(net, dd, dd->test_images, dd->test_labels, dd->test_idx + off, n, NULL, 0);
}

enum dc_status dc_load_train_batch(struct dc_net *net, const struct dc_device_data *dd, const int32_t *idx, int n,
                                   const struct dc_config *cfg, uint64_t seed)
{
    return dc_load_batch(net, dd, dd->train_images, dd->train_labels, idx, n, cfg, seed);
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
        s = dc_load_test_batch(net, dd, off, n);
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

/* The teacher's logits for the batch in net->act[0]: an inference pass
 * (batch norm on running statistics, no dropout), eager, before the step, so
 * a recorded step only reads them. */
static enum dc_status dc_teacher_forward(struct dc_net *teacher, struct dc_net *net, int n)
{
    if (teacher->max_batch < n || teacher->classes != net->classes || teacher->in_c != net->in_c ||
        teacher->in_h != net->in_h || teacher->in_w != net->in_w)
        return DC_ERROR(DC_ERR_ARG, "teacher network: batch %d, input %dx%dx%d, %d classes; the student's: %d, "
                        "%dx%dx%d, %d", teacher->max_batch, teacher->in_c, teacher->in_h, teacher->in_w,
                        teacher->classes, n, net->in_c, net->in_h, net->in_w, net->classes);
    size_t bytes = sizeof(float) * (size_t)n * (size_t)net->in_c * (size_t)net->in_h * (size_t)net->in_w;
    DC_TRY(net->be->ops.copy(net->be, teacher->act[0].data, net->act[0].data, bytes));
    teacher->act[0].n = n;
    struct dc_pass pass = {.train = 0, .seed = 0};
    return dc_net_forward(teacher, n, &pass);
}

/* Graphs of the step for the phase: one per batch size (full, last partial). */
struct dc_step_graph {
    int n;      /* batch size; 0 = slot unused */
    int warm;   /* an eager step of this size has run since the last recording */
    void *exec; /* the backend's graph, NULL until recorded */
};
struct dc_graphs {
    int on;     /* still recording and replaying; 0 after a failure */
    struct dc_step_graph slot[2];
};

static int dc_net_has_dropout(const struct dc_net *net)
{
    for (int i = 0; i < net->nlayers; i++)
        if (net->layers[i]->type == DC_LAYER_DROPOUT)
            return 1;
    return 0;
}

/* `[train] cuda_graph`: off; on (a notice when it cannot be); auto (on where
 * the backend has graphs, quietly off where it has none). */
static void dc_graphs_init(struct dc_graphs *gs, const struct dc_net *net, const struct dc_config *cfg)
{
    memset(gs, 0, sizeof *gs);
    int asked = strcmp(cfg->cuda_graph, "on") == 0;
    if (strcmp(cfg->cuda_graph, "off") == 0 || (!asked && net->be->kind != DC_DEVICE_CUDA))
        return;
    if (dc_net_has_dropout(net)) {
        if (asked)
            dc_warn("cuda_graph = on: this network has a dropout layer, whose per-step seed a graph would "
                    "freeze; running steps eagerly");
        return;
    }
    if (cfg->clip_norm > 0) {
        if (asked)
            dc_warn("cuda_graph = on: clip_norm reads the gradient norm on the host every step, which a graph "
                    "cannot; running steps eagerly");
        return;
    }
    gs->on = 1;
}

static void dc_graphs_free(struct dc_backend *be, struct dc_graphs *gs)
{
    for (int i = 0; i < 2; i++) {
        if (gs->slot[i].exec)
            be->ops.graph_free(be, gs->slot[i].exec);
        gs->slot[i] = (struct dc_step_graph){0, 0, NULL};
    }
}

/* The graph slot for batch size n: the one that has it, else a free one. */
static struct dc_step_graph *dc_graphs_slot(struct dc_graphs *gs, int n)
{
    for (int i = 0; i < 2; i++)
        if (gs->slot[i].n == n)
            return &gs->slot[i];
    for (int i = 0; i < 2; i++)
        if (gs->slot[i].n == 0) {
            gs->slot[i].n = n;
            return &gs->slot[i];
        }
    return NULL; /* a third size: cannot happen in an epoch; run it eagerly */
}

/* [train] clip_norm: scale every gradient by clip / ||g|| when the global
 * norm ||g|| (all trainable parameters, pruned positions left out: their
 * gradients are never applied) is above clip, as PyTorch's
 * clip_grad_norm_.  Reads the norm on the host, so a clipped step is never
 * recorded in a graph. */
static enum dc_status dc_clip_grads(struct dc_net *net, float clip)
{
    struct dc_backend *be = net->be;
    double sumsq = 0;
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        double mom[3];
        if (!p->trainable)
            continue;
        if (p->mask)
            DC_TRY(be->ops.mul(be, dc_param_count(p), p->g.data, p->mask, p->g.data));
        DC_TRY(be->ops.moments(be, dc_param_count(p), p->g.data, mom));
        sumsq += mom[1];
    }
    double norm = sqrt(sumsq);
    if (!(norm > clip)) /* also NaN: the loss check names that */
        return DC_OK;
    float scale = (float)(clip / norm);
    for (int i = 0; i < net->nparams; i++) {
        struct dc_param *p = net->params[i];
        if (p->trainable)
            DC_TRY(be->ops.axpby(be, dc_param_count(p), scale, p->g.data, 0.0f, p->g.data));
    }
    return DC_OK;
}

/* The part of a step that is the same launch sequence every step; soft NULL:
 * the labels alone. */
static enum dc_status dc_step_ops(struct dc_net *net, const struct dc_config *cfg, int n, const struct dc_pass *pass,
                                  const struct dc_soft_target *soft)
{
    DC_TRY(dc_net_forward(net, n, pass));
    DC_TRY(dc_net_loss_soft(net, n, soft));
    DC_TRY(dc_net_backward(net, n));
    if (cfg->clip_norm > 0)
        DC_TRY(dc_clip_grads(net, cfg->clip_norm));
    return dc_net_update_apply(net, cfg->momentum, cfg->weight_decay, cfg->nesterov);
}

/* The first parameter holding a NaN or an infinity, or NULL.  A step can
 * leave such values while the loss it reported was finite (the update comes
 * after the loss), and a checkpoint must not keep them. */
static enum dc_status dc_nonfinite_param(struct dc_net *net, const char **name)
{
    *name = NULL;
    for (int i = 0; i < net->nparams && !*name; i++) {
        double mom[3];
        DC_TRY(net->be->ops.moments(net->be, dc_param_count(net->params[i]), net->params[i]->w.data, mom));
        if (!isfinite(mom[1]))
            *name = net->params[i]->name;
    }
    return DC_OK;
}

/* Record the step into sg and run it; DC_ERR_UNSUPPORTED (message set) when
 * recording, instantiating or the first replay failed: nothing has run then. */
static enum dc_status dc_step_record(struct dc_net *net, const struct dc_config *cfg, int n,
                                     const struct dc_pass *pass, const struct dc_soft_target *soft,
                                     struct dc_step_graph *sg)
{
    struct dc_backend *be = net->be;
    char cause[256] = "";
    DC_TRY(be->ops.graph_begin(be));
    enum dc_status s_ops = dc_step_ops(net, cfg, n, pass, soft);
    if (s_ops != DC_OK)
        snprintf(cause, sizeof cause, "%s", dc_error_msg()); /* graph_end may overwrite it */
    void *exec = NULL;
    enum dc_status s = be->ops.graph_end(be, &exec);
    if (s_ops != DC_OK) {
        if (exec)
            be->ops.graph_free(be, exec);
        return DC_ERROR(DC_ERR_UNSUPPORTED, "an op failed while the step was recorded: %s", cause);
    }
    DC_TRY(s);
    int ran = 0;
    s = be->ops.graph_launch(be, exec, &ran);
    if (s != DC_OK || !ran) {
        be->ops.graph_free(be, exec);
        return s != DC_OK ? s : DC_ERROR(DC_ERR_UNSUPPORTED, "the step's graph went stale as it was recorded");
    }
    sg->exec = exec;
    return DC_OK;
}

/* Forward, loss, backward and update of one step (the batch is loaded and the
 * rate stored): replayed, recorded or eager as described at the top. */
static enum dc_status dc_train_step(struct dc_net *net, const struct dc_config *cfg, struct dc_graphs *gs, int n,
                                    const struct dc_pass *pass, const struct dc_soft_target *soft)
{
    struct dc_backend *be = net->be;
    struct dc_step_graph *sg = gs->on ? dc_graphs_slot(gs, n) : NULL;
    if (!sg)
        return dc_step_ops(net, cfg, n, pass, soft);
    if (sg->exec) {
        int ran = 0;
        DC_TRY(be->ops.graph_launch(be, sg->exec, &ran));
        if (ran)
            return DC_OK;
        be->ops.graph_free(be, sg->exec); /* a workspace grew since (an evaluation): warm up, record anew */
        sg->exec = NULL;
        sg->warm = 0;
    }
    if (!sg->warm) {
        sg->warm = 1;
        return dc_step_ops(net, cfg, n, pass, soft);
    }
    if (dc_step_record(net, cfg, n, pass, soft, sg) == DC_OK)
        return DC_OK;
    static int notice_given; /* one notice per process, not one per phase */
    if (!notice_given)
        dc_warn("cuda_graph: %s; training steps run eagerly (set [train] cuda_graph = off to skip the attempt)",
                dc_error_msg());
    notice_given = 1;
    dc_error_clear();
    dc_graphs_free(be, gs);
    gs->on = 0;
    return dc_step_ops(net, cfg, n, pass, soft);
}

static enum dc_status dc_train_epoch(struct dc_net *net, struct dc_device_data *dd, const struct dc_config *cfg,
                                     const struct dc_phase *ph, int epoch, uint64_t eseed, struct dc_graphs *gs,
                                     struct dc_epoch_report *rep)
{
    int steps = (dd->train_count + cfg->batch - 1) / cfg->batch;
    char label[64], extra[96] = "";
    snprintf(label, sizeof label, "%s %d/%d", ph->stage, epoch + 1, ph->epochs);
    struct dc_progress prog;
    dc_progress_begin(&prog, label, (size_t)steps);
    DC_TRY(dc_net_stats_reset(net));
    double loss = 0, correct = 0, seen = 0;
    struct dc_soft_target soft = {.smoothing = cfg->label_smoothing, .alpha = ph->teacher ? cfg->distill_alpha : 0.0f,
                                  .temperature = cfg->distill_temperature,
                                  .teacher = ph->teacher ? dc_net_output(ph->teacher)->data : NULL};
    const struct dc_soft_target *use_soft = soft.smoothing > 0.0f || soft.alpha > 0.0f ? &soft : NULL;
    for (int step = 0; step < steps; step++) {
        int off = step * cfg->batch;
        int n = dd->train_count - off < cfg->batch ? dd->train_count - off : cfg->batch;
        uint64_t sseed = eseed ^ (0xD1B54A32D192ED03ull * (uint64_t)(step + 1));
        struct dc_pass pass = {.train = 1, .seed = sseed};
        float lr = dc_lr_at(cfg, ph, epoch + (double)step / steps);
        rep->lr = lr;
        DC_TRY(dc_load_batch(net, dd, dd->train_images, dd->train_labels, dd->perm + off, n, cfg, sseed * 3 + 1));
        if (ph->teacher)
            DC_TRY(dc_teacher_forward(ph->teacher, net, n));
        DC_TRY(dc_net_set_lr(net, lr));
        DC_TRY(dc_train_step(net, cfg, gs, n, &pass, use_soft));
        dc_killpoint("step");
        seen += n;
        /* reading the stats synchronises a GPU: only every 50 steps, for the bar */
        if (step % 50 == 49 || step == steps - 1) {
            const char *bad = NULL;
            DC_TRY(dc_net_stats_read(net, &loss, &correct));
            if (isfinite(loss))
                DC_TRY(dc_nonfinite_param(net, &bad));
            if (!isfinite(loss) || bad) {
                char what[96];
                if (bad)
                    snprintf(what, sizeof what, "parameter %s holds NaN or infinite values", bad);
                else
                    snprintf(what, sizeof what, "the training loss is %s", isnan(loss) ? "NaN" : "infinite");
                dc_progress_end(&prog, "diverged");
                return DC_ERROR(DC_ERR_DIVERGED, "stage %s, epoch %d, by step %d of %d: %s (lr %.4g); "
                                "checkpoints of finished epochs are intact: resume from the last one with a "
                                "smaller learning rate%s", ph->stage, epoch + 1, step + 1, steps, what, lr,
                                cfg->clip_norm > 0 ? "" : " or [train] clip_norm");
            }
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
    struct dc_graphs gs;
    dc_graphs_init(&gs, net, cfg);
    for (int epoch = start_epoch; s == DC_OK && epoch < ph->epochs; epoch++) {
        double t0 = dc_time_now();
        uint64_t eseed = dc_str_hash(ph->stage) ^ (cfg->seed * 0x9E3779B97F4A7C15ull) ^
                         (0xC2B2AE3D27D4EB4Full * (uint64_t)(epoch + 1));
        struct dc_epoch_report rep = {.stage = ph->stage, .epoch = epoch + 1, .epochs = ph->epochs};
        struct dc_eval ev;
        s = dc_shuffle_epoch(dd, host_perm, eseed);
        if (s == DC_OK)
            s = dc_train_epoch(net, dd, cfg, ph, epoch, eseed, &gs, &rep);
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
    dc_graphs_free(net->be, &gs);
    free(host_perm);
    return s;
}
