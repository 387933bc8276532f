/* test_budget_drop.c: the aims of max_accuracy_drop's prune rounds
 * (src/train/job_budget_drop.c), a round kept or undone at a time: the cubic
 * schedule until a round is undone, then half the failed step; a kept round
 * keeps its step, so the failed aim comes back one round later; the rounds
 * stop raising once the step is under 1%. */
#include <math.h>

#include "check.h"
#include "train/job_budget.h"

#define ROUNDS 20

static struct dc_budget start(void)
{
    struct dc_budget b;
    memset(&b, 0, sizeof b);
    b.drop = 1;
    b.dense = 90000;
    b.least = 2500;
    b.good = b.dense;
    return b;
}

/* Round r aims, then is kept (ok) or undone; returns its aim. */
static long long round_trial(struct dc_budget *b, int r, int ok)
{
    b->aim = dc_budget_round_aim(b, r, ROUNDS);
    if (b->aim == 0)
        return 0;
    if (ok)
        dc_budget_kept(b);
    else
        dc_budget_failed(b);
    return b->aim;
}

static int near(long long got, double want)
{
    return fabs((double)got - want) <= 2.0 + 1e-6 * want;
}

static void test_schedule_until_undone(void)
{
    struct dc_budget b = start();
    long long last = b.dense;
    int r = 1;
    for (; r <= ROUNDS; r++) {
        long long aim = round_trial(&b, r, 1);
        if (aim == 0)
            break;
        double f = 1.0 - pow(1.0 - (double)r / ROUNDS, 3.0);
        double want = exp(log(90000.0) + f * (log(2500.0) - log(90000.0)));
        if (want >= (double)last) /* never at or above the last round's: 1% under it */
            want = exp(log((double)last) - 0.01);
        if (!near(aim, want))
            fprintf(stderr, "round %d: aim %lld, want %.1f\n", r, aim, want);
        CHECK(near(aim, want));
        CHECK(aim < last);
        last = aim;
    }
    /* the schedule ends at the least file: no raise once within 1% of it */
    CHECK(r > 15 && r <= ROUNDS);
    CHECK(log((double)b.good) - log(2500.0) < 0.01);
    CHECK(b.fail == 0);
}

static void test_undone_then_retried(void)
{
    struct dc_budget b = start();
    long long a1 = round_trial(&b, 1, 1);
    long long a2 = round_trial(&b, 2, 0); /* undone */
    CHECK(b.good == a1 && b.fail == a2);
    /* halfway in log bytes */
    long long a3 = round_trial(&b, 3, 1);
    CHECK(near(a3, sqrt((double)a1 * (double)a2)));
    /* kept: the same step again, down to the aim that failed */
    long long a4 = round_trial(&b, 4, 1);
    CHECK(near(a4, (double)a2));
    /* a run killed after the kept round's budget.csv and resumed checks the
       round again: the second call must change nothing */
    struct dc_budget again = b;
    dc_budget_kept(&again);
    CHECK(again.good == b.good && again.fail == b.fail);
    long long a5 = round_trial(&b, 5, 1);
    CHECK(near(a5, (double)a4 * (double)a3 / (double)a1));
    CHECK(a5 < a4 && a4 < a3);
    /* undone again: half the step */
    double step = log((double)a4) - log((double)a5);
    long long a6 = round_trial(&b, 6, 0);
    CHECK(near(a6, exp(log((double)a5) - step)));
    long long a7 = round_trial(&b, 7, 1);
    CHECK(near(a7, exp(log((double)a5) - step / 2)));
}

static void test_stops_under_one_percent(void)
{
    struct dc_budget b = start();
    round_trial(&b, 1, 1);
    int r = 2, undone = 0;
    while (r <= ROUNDS && round_trial(&b, r, 0) != 0)
        r++, undone++;
    /* each undone round halves the step, from the first (log 54k/34k ~ 0.46) */
    CHECK(undone >= 5 && undone <= 8);
    CHECK(r <= ROUNDS);
    CHECK(dc_budget_round_aim(&b, r, ROUNDS) == 0);
    CHECK(log((double)b.good) - log((double)b.fail) < 0.01);
}

static void test_bound_never_below_least(void)
{
    struct dc_budget b = start();
    b.good = 3000;
    b.fail = 2600;
    b.aim = dc_budget_round_aim(&b, 10, ROUNDS);
    CHECK(b.aim < 3000 && b.aim > 2600);
    dc_budget_kept(&b);
    CHECK(b.fail == b.least);
}

int main(void)
{
    test_schedule_until_undone();
    test_undone_then_retried();
    test_stops_under_one_percent();
    test_bound_never_below_least();
    if (dc_test_failures) {
        fprintf(stderr, "test_budget_drop: %d failures\n", dc_test_failures);
        return 1;
    }
    printf("test_budget_drop: ok\n");
    return 0;
}
