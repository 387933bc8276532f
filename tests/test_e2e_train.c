/* test_e2e_train.c: end-to-end training through the library on real MNIST:
 * LeNet-300-100 on a 20,000-image subset for 3 epochs must reach >= 95% test
 * accuracy on 2,000 test images (seeds 1-6 give 95.8-96.3%).  An untrained
 * net scores about 10% and a linear classifier about 92%, so a broken
 * gradient, update, shuffle or data path (or hidden layers that do not
 * learn) cannot pass: this is the test that the pieces add up to a trainer.  Skips (77)
 * when the MNIST files are not present. */
#include <stdio.h>

#include "check.h"
#include "dc/backend.h"
#include "dc/config.h"
#include "dc/data.h"
#include "dc/log.h"
#include "dc/net.h"
#include "dc/train.h"

static const char lenet300_ini[] =
    "# LeNet-300-100, as configs/lenet300_mnist.ini, on a subset (test_e2e_train)\n"
    "[data]\nset = mnist\ndir = overridden\ntrain_limit = 20000\ntest_limit = 2000\n"
    "[train]\ndevice = cpu\nepochs = 3\nbatch = 64\nlr = 0.05\nmomentum = 0.9\n"
    "weight_decay = 1e-4\nschedule = cosine\nseed = 7\nthreads = 1\n"
    "[fc]\noutputs = 300\nactivation = relu\n"
    "[fc]\noutputs = 100\nactivation = relu\n"
    "[fc]\noutputs = 10\n";

/* Counts the epochs the trainer reports and checks each report is sane. */
struct e2e_seen {
    int epochs;
    double first_train_loss, last_train_loss;
};

static enum dc_status e2e_on_epoch(void *user, const struct dc_epoch_report *r)
{
    struct e2e_seen *seen = user;
    seen->epochs++;
    CHECK(r->epoch == seen->epochs && r->epochs == 3);
    CHECK(r->test_accuracy >= 0.0 && r->test_accuracy <= 1.0);
    if (seen->epochs == 1)
        seen->first_train_loss = r->train_loss;
    seen->last_train_loss = r->train_loss;
    printf("epoch %d: train loss %.4f acc %.4f | test loss %.4f acc %.4f (%.1fs)\n", r->epoch, r->train_loss,
           r->train_accuracy, r->test_loss, r->test_accuracy, r->seconds);
    return DC_OK;
}

int main(void)
{
    char dir[512], ini[1024], set_dir[600];
    if (!test_data_dir("mnist", dir, sizeof dir)) {
        printf("test_e2e_train: no MNIST under $DC_TEST_DATA: skipped\n");
        return DC_TEST_SKIP;
    }
    if (!write_tmp_file("e2e_lenet300.ini", lenet300_ini, ini, sizeof ini)) {
        fprintf(stderr, "test_e2e_train: cannot write %s\n", ini);
        return 1;
    }
    snprintf(set_dir, sizeof set_dir, "data.dir=%s", dir);
    const char *sets[] = {set_dir};
    struct dc_config cfg;
    struct dc_backend *be = NULL;
    struct dc_data data = {0};
    struct dc_device_data dd = {0};
    struct dc_net *net = NULL;
    enum dc_status s = dc_config_load(ini, sets, 1, &cfg);
    remove(ini);
    if (s != DC_OK) {
        fprintf(stderr, "test_e2e_train: %s\n", dc_error_msg());
        return 1;
    }
    struct dc_backend_opts bo = {.threads = cfg.threads};
    s = dc_backend_create("cpu", &bo, &be);
    if (s == DC_OK && (s = dc_data_load(&cfg, &data)) == DC_ERR_IO) {
        /* the folder exists but the files do not: nothing to train on here */
        printf("test_e2e_train: %s: skipped\n", dc_error_msg());
        dc_backend_free(be);
        dc_config_free(&cfg);
        return DC_TEST_SKIP;
    }
    CHECK_OK(s);
    if (s == DC_OK) {
        CHECK(data.train.count == 20000 && data.test.count == 2000 && data.classes == 10);
        CHECK_OK(s = dc_device_data_init(be, &data, &dd));
    }
    if (s == DC_OK)
        CHECK_OK(s = dc_net_create(be, &cfg, data.train.c, data.train.h, data.train.w, data.classes, cfg.batch,
                                   cfg.seed, &net));
    if (s == DC_OK) {
        CHECK(dc_net_param_count(net) == 266610);
        struct dc_eval before = {0}, after = {0};
        CHECK_OK(dc_evaluate(net, &dd, &before));
        struct dc_phase ph = {.stage = "train", .epochs = cfg.epochs, .lr = cfg.lr, .schedule = cfg.schedule};
        struct e2e_seen seen = {0};
        double t0 = dc_time_now();
        CHECK_OK(dc_train_phase(net, &dd, &cfg, &ph, 0, e2e_on_epoch, &seen, &after));
        printf("untrained accuracy %.4f, trained %.4f (loss %.4f) in %.1fs\n", before.accuracy, after.accuracy,
               after.loss, dc_time_now() - t0);
        CHECK(before.accuracy < 0.3);
        CHECK(seen.epochs == 3);
        CHECK(seen.last_train_loss < seen.first_train_loss);
        CHECK(after.count == 2000);
        CHECK(after.accuracy >= 0.95);
        /* dc_evaluate again must give the same figures: inference has no hidden state */
        struct dc_eval again = {0};
        CHECK_OK(dc_evaluate(net, &dd, &again));
        CHECK(again.accuracy == after.accuracy);
    }
    if (net)
        dc_net_free(net);
    dc_device_data_free(&dd);
    dc_data_free(&data);
    dc_backend_free(be);
    dc_config_free(&cfg);
    return test_finish("test_e2e_train");
}
