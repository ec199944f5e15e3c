/*
 * test_strat_basic.c: the six strategies of documents 000 to 003 (apply_sync,
 * async_get_loop, async_get_after, callback_chain, merged, map_async) run
 * small workloads, and their outcomes are checked against strategy.h's
 * contract:
 *
 *   - a two-stage pipeline (square then identity) gives every item's right
 *     value, as many results as items, no error, and the expected number of
 *     task executions in the workers;
 *   - a failing task gives one error per item, with the task's message;
 *   - a stop rule stops the strategies that can stop (fewer results than
 *     items) and is only noted by map_async, which cannot;
 *   - callbacks run in this process, never two at once (P2);
 *   - the models of P1 and P3 hold as ratios, with margins wide enough for a
 *     busy two-core machine. No absolute time is ever asserted.
 *
 * Each case runs in its own process (test_helpers.h). The strategies create
 * their own pools, so g_pool stays NULL here. Values are collected by a stop
 * rule that records what it sees: strat_final calls it for every successful
 * final result until it says yes.
 */
#include "test_helpers.h"
#include "strategy.h"

/* ---- tasks registered by main() before any pool ---------------------------- */

/* Sleeps `udata` seconds and returns its argument unchanged: the built-in
 * sleep returns nil, which could not feed a next stage. */
static int task_nap(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    if (args->size != 1)
        return pool_task_fail(ctx, "nap: expects one value");
    sleep_s(*(const double *)pool_task_udata(ctx));
    msgpack_pack_object(out, args->ptr[0]);
    return 0;
}

static const double nap_s = 0.05;  /* the stage time of the ratio cases */
static const double tick_s = 0.01; /* short, for the 200-item stop cases */

/* tick(x): sleeps tick_s, returns x*x, one stage whose values the stop rule
 * can find 9 in. */
static int task_tick(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    int64_t x;
    if (args->size != 1 || task_int_arg(args, 0, &x))
        return pool_task_fail(ctx, "tick: expects one integer");
    sleep_s(tick_s);
    msgpack_pack_int64(out, x * x);
    return 0;
}

/* ---- running a strategy -------------------------------------------------- */

#define MAX_ITEMS 256

/* What the stop rule saw. It runs on the result handler for callback_chain,
 * so it only records; the case checks afterwards. */
typedef struct seen {
    bool stop_at_answer; /* say yes when the value equals answer */
    int64_t answer;
    int64_t value[MAX_ITEMS];
    int count[MAX_ITEMS];
    long answer_item; /* -1 until yes */
} seen;

static bool seen_stop(void *ctx, const msgpack_object *v, size_t item)
{
    seen *s = ctx;
    if (item >= MAX_ITEMS || v == NULL)
        return false;
    int64_t x = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)v->via.u64
                : v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? v->via.i64
                                                             : INT64_MIN;
    s->value[item] = x;
    s->count[item]++;
    if (s->stop_at_answer && x == s->answer) {
        s->answer_item = (long)item;
        return true;
    }
    return false;
}

typedef struct setup {
    strat_workload w;
    msgpack_sbuffer items;
    seen seen;
} setup;

/* A workload of n integer items 1..n through the given stages. */
static void setup_ints(setup *t, int workers, uint32_t n, int nstages, const char *const *stages)
{
    memset(t, 0, sizeof *t);
    msgpack_sbuffer_init(&t->items);
    pack_range(&t->items, 1, n);
    t->w.workers = workers;
    t->w.items = t->items.data;
    t->w.items_len = t->items.size;
    t->w.n = n;
    t->w.nstages = nstages;
    for (int s = 0; s < nstages; s++)
        t->w.stages[s] = stages[s];
    t->w.stop = seen_stop;
    t->w.stop_ctx = &t->seen;
    t->seen.answer_item = -1;
}

static void setup_done(setup *t)
{
    msgpack_sbuffer_destroy(&t->items);
}

static void run_strategy(const char *name, const strat_workload *w, strat_outcome *out)
{
    const strategy *s = strat_find(name);
    if (s == NULL)
        fail_msg("no strategy named %s", name);
    assert_string_equal(s->name, name);
    memset(out, 0, sizeof *out);
    if (s->run(w, out) != 0)
        fail_msg("%s could not run: %s", name, out->first_error);
}

static bool is_callback_chain(const char *name)
{
    return strcmp(name, "callback_chain") == 0;
}

/* ---- the checks, one function per kind, run for every strategy ----------- */

/* square then identity over 1..6 on 2 workers. */
static void check_pipeline(const char *name)
{
    static const char *const stages[] = { "square", "identity" };
    setup t;
    setup_ints(&t, 2, 6, 2, stages);
    t.w.trace = true;
    strat_outcome out;
    run_strategy(name, &t.w, &out);

    assert_int_equal(out.results, 6);
    assert_int_equal(out.errors, 0);
    assert_string_equal(out.first_error, "");
    /* tasks_total and tasks_run count what the workers are asked to run and
     * ran. callback_chain runs the second stage in this process, so the
     * workers run only the first; merged runs both stages of an item in one
     * task. */
    bool one_task_per_item = is_callback_chain(name) || strcmp(name, "merged") == 0;
    assert_int_equal(out.tasks_total, one_task_per_item ? 6 : 12);
    assert_int_equal(out.tasks_run, one_task_per_item ? 6 : 12);
    if (one_task_per_item)
        assert_contains(out.note, is_callback_chain(name) ? "in the parent" : "as one task");
    else if (strcmp(name, "map_async") != 0)
        assert_string_equal(out.note, "");
    assert_int_equal(out.ntrace, out.tasks_run);
    assert_false(out.stopped_early);
    assert_true(out.answer_s == 0);
    assert_true(out.wall_s > 0);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(t.seen.count[i], 1);
        assert_int_equal(t.seen.value[i], (int64_t)(i + 1) * (i + 1));
    }
    if (is_callback_chain(name)) {
        assert_int_equal(out.callbacks, 6);
        assert_int_equal(out.callback_pid, getpid());
        assert_int_equal(out.callbacks_max_overlap, 1);
    } else {
        assert_int_equal(out.callbacks, 0);
    }
    strat_outcome_free(&out);
    setup_done(&t);
}

/* The built-in fail task on string items: every item's final result is
 * its error, and the message is the task's. */
static void check_fail(const char *name)
{
    setup t;
    memset(&t, 0, sizeof t);
    msgpack_sbuffer_init(&t.items);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &t.items, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 6);
    for (int i = 0; i < 6; i++)
        pool_pack_str(&pk, "boom on purpose");
    t.w.workers = 2;
    t.w.items = t.items.data;
    t.w.items_len = t.items.size;
    t.w.n = 6;
    t.w.nstages = 1;
    t.w.stages[0] = "fail";
    t.w.stop = seen_stop;
    t.w.stop_ctx = &t.seen;

    strat_outcome out;
    run_strategy(name, &t.w, &out);
    assert_int_equal(out.results, 6);
    assert_int_equal(out.errors, 6);
    assert_contains(out.first_error, "boom on purpose");
    assert_int_equal(out.tasks_run, 6);
    assert_int_equal(out.errors_unobserved, 0); /* every error was looked at */
    for (int i = 0; i < 6; i++)
        assert_int_equal(t.seen.count[i], 0); /* errors never reach the stop rule */
    strat_outcome_free(&out);
    setup_done(&t);
}

/* Two stages, one of which is the built-in fail on integers ("fail: task
 * failed on purpose"): a failure at the first stage ends the item there, one
 * at the last stage is its final result. Either way one error per item. */
static void check_fail_stage(const char *name, bool first)
{
    static const char *const fail_first[] = { "fail", "identity" };
    static const char *const fail_last[] = { "square", "fail" };
    setup t;
    setup_ints(&t, 2, 6, 2, first ? fail_first : fail_last);
    strat_outcome out;
    run_strategy(name, &t.w, &out);
    assert_int_equal(out.results, 6);
    assert_int_equal(out.errors, 6);
    assert_contains(out.first_error, "task failed on purpose");
    assert_int_equal(out.errors_unobserved, 0);
    /* A first-stage failure leaves nothing for the second; merged and
     * callback_chain run one worker task per item in any case. */
    bool one_task_per_item = is_callback_chain(name) || strcmp(name, "merged") == 0;
    assert_int_equal(out.tasks_run, first || one_task_per_item ? 6 : 12);
    strat_outcome_free(&out);
    setup_done(&t);
}

/* 200 items through tick (x*x after 10 ms); the answer is 9, item index 2. */
static void check_stop(const char *name)
{
    static const char *const stages[] = { "tick" };
    setup t;
    setup_ints(&t, 2, 200, 1, stages);
    t.seen.stop_at_answer = true;
    t.seen.answer = 9;
    strat_outcome out;
    run_strategy(name, &t.w, &out);

    assert_int_equal(t.seen.answer_item, 2);
    assert_true(out.answer_s > 0);
    assert_true(out.stopped_s >= out.answer_s);
    assert_int_equal(out.errors, 0);
    if (strcmp(name, "map_async") == 0) {
        /* It cannot stop: every item ran and was collected, and it says so. */
        assert_false(out.stopped_early);
        assert_int_equal(out.results, 200);
        assert_int_equal(out.tasks_run, 200);
        assert_contains(out.note, "map_async waits for every chunk");
    } else {
        assert_true(out.stopped_early);
        /* In submission order the answer is the third result; callbacks come
         * in completion order, so there it is at least the first. */
        if (is_callback_chain(name))
            assert_true(out.results >= 1 && out.results < 200);
        else
            assert_int_equal(out.results, 3);
        assert_true(out.tasks_run < 200);
    }
    strat_outcome_free(&out);
    setup_done(&t);
}

#define STRATEGY_CASES(s)                                                                \
    static void s##_pipeline(void **state) { (void)state; check_pipeline(#s); }         \
    static void s##_fail(void **state) { (void)state; check_fail(#s); }                 \
    static void s##_stop(void **state) { (void)state; check_stop(#s); }                 \
    static void s##_fail_first(void **state) { (void)state; check_fail_stage(#s, true); } \
    static void s##_fail_last(void **state) { (void)state; check_fail_stage(#s, false); }

/* The same five cases of a strategy, for main()'s table. */
#define STRATEGY_CASE_LIST(s)                                                            \
    CASE(s##_pipeline), CASE(s##_fail), CASE(s##_fail_first), CASE(s##_fail_last),       \
        CASE(s##_stop)

STRATEGY_CASES(apply_sync)
STRATEGY_CASES(async_get_loop)
STRATEGY_CASES(async_get_after)
STRATEGY_CASES(callback_chain)
STRATEGY_CASES(merged)
STRATEGY_CASES(map_async)

/* ---- cases of one strategy ----------------------------------------------- */

/* Document 002's lost errors: handles freed unread, no error callback. The
 * strategy collects nothing; the engine counts what nobody saw. */
static void async_get_after_fire_and_forget(void **state)
{
    (void)state;
    static const char *const stages[] = { "fail" };
    setup t;
    setup_ints(&t, 2, 6, 1, stages);
    t.w.fire_and_forget = true;
    strat_outcome out;
    run_strategy("async_get_after", &t.w, &out);
    assert_int_equal(out.results, 0);
    assert_int_equal(out.errors, 0);
    assert_int_equal(out.tasks_run, 6);
    assert_int_equal(out.errors_unobserved, 6);
    strat_outcome_free(&out);
    setup_done(&t);
}

/* map_async's chunksize is the workload's: 6 items in chunks of 4 are two
 * messages. */
static void map_async_chunksize(void **state)
{
    (void)state;
    static const char *const stages[] = { "square" };
    setup t;
    setup_ints(&t, 2, 6, 1, stages);
    t.w.chunksize = 4;
    strat_outcome out;
    run_strategy("map_async", &t.w, &out);
    assert_int_equal(out.results, 6);
    assert_int_equal(out.stats.messages_sent, 2);
    for (int i = 0; i < 6; i++)
        assert_int_equal(t.seen.value[i], (int64_t)(i + 1) * (i + 1));
    strat_outcome_free(&out);
    setup_done(&t);
}

/* ---- ratios: the models of P1, P2 and P3 ------------------------------------ */

/* Wall time of a strategy on n items through nap stages; checks it ran all. */
static double timed(const char *name, int workers, uint32_t n, int nstages)
{
    static const char *const naps[] = { "nap", "nap" };
    setup t;
    setup_ints(&t, workers, n, nstages, naps);
    strat_outcome out;
    run_strategy(name, &t.w, &out);
    assert_int_equal(out.results, n);
    assert_int_equal(out.errors, 0);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(t.seen.value[i], (int64_t)i + 1); /* nap returns its argument */
    double wall = out.wall_s;
    print_message("%-16s n=%u w=%d stages=%d: %.3f s\n", name, n, workers, nstages, wall);
    strat_outcome_free(&out);
    setup_done(&t);
    return wall;
}

/* P1: n=8, 4 workers, a = b = 50 ms. get() in the loop ≈ n·a + b = 0.45 s;
 * merged ≈ ⌈n/w⌉·(a+b) = 0.2 s. */
static void ratio_get_loop_vs_merged(void **state)
{
    (void)state;
    double loop = timed("async_get_loop", 4, 8, 2);
    double merged = timed("merged", 4, 8, 2);
    if (loop < 1.6 * merged)
        fail_msg("async_get_loop %.3f s is not 1.6x merged %.3f s", loop, merged);
}

/* P2: callbacks in the parent, one at a time: ≈ a + n·b = 0.45 s, as slow
 * as get() in the loop when b = a, against merged's 0.2 s. */
static void ratio_callback_vs_merged(void **state)
{
    (void)state;
    double cb = timed("callback_chain", 4, 8, 2);
    double merged = timed("merged", 4, 8, 2);
    if (cb < 1.6 * merged)
        fail_msg("callback_chain %.3f s is not 1.6x merged %.3f s", cb, merged);
}

/* P3: one stage, get() at once ≈ n·t = 0.4 s; get after ≈ ⌈n/w⌉·t = 0.1 s. */
static void ratio_get_at_once_vs_after(void **state)
{
    (void)state;
    double once = timed("async_get_loop", 4, 8, 1);
    double after = timed("async_get_after", 4, 8, 1);
    if (once < 2.0 * after)
        fail_msg("get at once %.3f s is not 2x get after %.3f s", once, after);
}

int main(int argc, char **argv)
{
    /* Before any pool: workers see the registry as it is at pool_create. */
    pool_task_register("nap", task_nap, (void *)&nap_s);
    pool_task_register("tick", task_tick, NULL);
    strat_register_tasks();

    const struct CMUnitTest tests[] = {
        STRATEGY_CASE_LIST(apply_sync),
        STRATEGY_CASE_LIST(async_get_loop),
        STRATEGY_CASE_LIST(async_get_after),
        STRATEGY_CASE_LIST(callback_chain),
        STRATEGY_CASE_LIST(merged),
        STRATEGY_CASE_LIST(map_async),
        CASE(async_get_after_fire_and_forget),
        CASE(map_async_chunksize),
        CASE(ratio_get_loop_vs_merged),
        CASE(ratio_callback_vs_merged),
        CASE(ratio_get_at_once_vs_after),
    };
    return test_main(argc, argv, "strat_basic", tests, sizeof tests / sizeof tests[0]);
}
