/*
 * test_strat_stream.c: the six strategies that stream results or need no
 * pool: imap, imap_unordered, producer_consumer, executor_submit,
 * executor_map and process_per_task (impls/NAME.c; both imap strategies in
 * impls/imap.c).
 *
 * Each strategy gets the same six cases, named STRATEGY_CASE:
 *   square     6 items, one stage: every value right, each item once, in
 *              input order where the API promises it
 *   chain      two stages (square, square): the strat_chain path
 *   one_fails  the task fails on one item: the error is counted and the
 *              other items still arrive (the iteration goes on)
 *   fail       the built-in "fail" on every item: errors and first_error
 *   stop       300 items of 10 ms, stop at item 5's value: the strategy
 *              stops early and runs far fewer tasks than asked
 *   broken     the workers' initializer fails: the strategy still ends
 *              (no hang), with errors only
 * plus checks of their own: producer_consumer's callbacks ran in this
 * process, process_per_task used one process per item and names the signal
 * that killed one, executor_submit's dropped futures lose their errors.
 *
 * What a strategy saw is recorded by the stop rule (it sees every final
 * value, in the order the strategy collected them) and checked afterwards:
 * no assertion runs inside a strategy. Every check is structural (counts,
 * values, order, pids); the only times compared are two of the same run
 * (the answer came no later than the workers' stop), never a duration.
 */
#include "test_helpers.h"

#include "strategy.h"

extern const strategy strat_imap, strat_imap_unordered, strat_producer_consumer,
    strat_executor_submit, strat_executor_map, strat_process_per_task;

/* ---- tasks ------------------------------------------------------------------ */

/* nap_square(x): sleeps 10 ms, returns x*x; long enough for a stop to matter. */
static int task_nap_square(const msgpack_object_array *args, msgpack_packer *out,
                           pool_task_ctx *ctx)
{
    int64_t x;
    if (args->size != 1 || task_int_arg(args, 0, &x))
        return pool_task_fail(ctx, "nap_square: wants one integer");
    sleep_s(0.01);
    msgpack_pack_int64(out, x * x);
    return 0;
}

/* square_but_3(x): x*x, except that 3 fails. */
static int task_square_but_3(const msgpack_object_array *args, msgpack_packer *out,
                             pool_task_ctx *ctx)
{
    int64_t x;
    if (args->size != 1 || task_int_arg(args, 0, &x))
        return pool_task_fail(ctx, "square_but_3: wants one integer");
    if (x == 3)
        return pool_task_fail(ctx, "square_but_3: three is refused");
    msgpack_pack_int64(out, x * x);
    return 0;
}

/* Before any pool: workers see the registry as it was at pool_create. */
static void register_tasks(void)
{
    strat_register_tasks();
    assert_status(pool_task_register("nap_square", task_nap_square, NULL), POOL_OK);
    assert_status(pool_task_register("square_but_3", task_square_but_3, NULL), POOL_OK);
}

/* ---- what the stop rule saw ------------------------------------------------- */

#define SEEN_MAX 512

struct seen {
    int64_t stop_at; /* the value that is the answer; -1: never stop */
    size_t count;
    int64_t values[SEEN_MAX];
    size_t items[SEEN_MAX];
    bool not_int; /* a value that was not an integer */
};

/* The stop rule: records, and says yes at stop_at. No assertion here: it
 * runs inside the strategy. */
static bool seen_stop(void *ctx, const msgpack_object *v, size_t item)
{
    struct seen *s = ctx;
    int64_t x = 0;
    if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        x = (int64_t)v->via.u64;
    else if (v && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        x = v->via.i64;
    else
        s->not_int = true;
    if (s->count < SEEN_MAX) {
        s->values[s->count] = x;
        s->items[s->count] = item;
    }
    s->count++;
    return s->stop_at >= 0 && x == s->stop_at;
}

/* ---- running a strategy ------------------------------------------------------ */

/* The workload of every case: the packed items through the given stages,
 * on 2 workers with the trace on, every final value seen by `seen`. */
static void workload_init(strat_workload *w, const msgpack_sbuffer *items, size_t n,
                          const char *const *stages, int nstages, struct seen *seen)
{
    memset(w, 0, sizeof *w);
    w->workers = 2;
    w->trace = true;
    w->items = items->data;
    w->items_len = items->size;
    w->n = n;
    for (int i = 0; i < nstages; i++)
        w->stages[i] = stages[i];
    w->nstages = nstages;
    w->stop = seen_stop;
    w->stop_ctx = seen;
}

static void run_workload(const strategy *s, const strat_workload *w, strat_outcome *out)
{
    memset(out, 0, sizeof *out);
    int rc = s->run(w, out);
    if (rc != 0)
        fail_msg("%s: run returned %d: %s", s->name, rc, out->first_error);
    /* One chain task per item runs every stage, except without a pool. */
    size_t per_item = w->nstages > 1 && strcmp(s->name, "process_per_task") != 0 ? 1
                                                                                 : (size_t)w->nstages;
    assert_int_equal(out->tasks_total, w->n * per_item);
}

static void run_on(const strategy *s, const msgpack_sbuffer *items, size_t n,
                   const char *const *stages, int nstages, struct seen *seen,
                   strat_outcome *out)
{
    strat_workload w;
    workload_init(&w, items, n, stages, nstages, seen);
    run_workload(s, &w, out);
}

/* Items 0..n-1 through the stages; stop_at -1 for no stop. */
static void run_range(const strategy *s, uint32_t n, const char *const *stages, int nstages,
                      int64_t stop_at, struct seen *seen, strat_outcome *out)
{
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    pack_range(&items, 0, n);
    memset(seen, 0, sizeof *seen);
    seen->stop_at = stop_at;
    run_on(s, &items, n, stages, nstages, seen, out);
    msgpack_sbuffer_destroy(&items);
}

static bool in_input_order(const strategy *s)
{
    return s == &strat_imap || s == &strat_executor_map || s == &strat_process_per_task;
}

/* Every recorded value is f(item), each item at most once; in increasing
 * item order when the strategy promises input order. */
static void check_values(const strategy *s, const struct seen *seen, int power)
{
    assert_false(seen->not_int);
    assert_true(seen->count <= SEEN_MAX);
    bool once[SEEN_MAX] = {false};
    for (size_t k = 0; k < seen->count; k++) {
        size_t i = seen->items[k];
        assert_true(i < SEEN_MAX);
        assert_false(once[i]);
        once[i] = true;
        int64_t want = 1;
        for (int e = 0; e < power; e++)
            want *= (int64_t)i;
        assert_int_equal(seen->values[k], want);
        if (k > 0 && in_input_order(s))
            assert_true(seen->items[k - 1] < i);
    }
}

/* Strategy-specific checks of where the work ran. */
static void check_processes(const strategy *s, const strat_outcome *out, size_t n)
{
    for (int k = 0; k < out->nworker_pids; k++)
        assert_int_not_equal(out->worker_pids[k], getpid());
    if (s == &strat_process_per_task) {
        /* A process per task, each a new one. */
        assert_int_equal(out->nworker_pids, n);
        for (int a = 0; a < out->nworker_pids; a++)
            for (int b = a + 1; b < out->nworker_pids; b++)
                assert_int_not_equal(out->worker_pids[a], out->worker_pids[b]);
        assert_int_equal(out->ntrace, 0);
    } else {
        assert_in_range(out->nworker_pids, 1, 2); /* the pool's 2 workers */
    }
    if (s == &strat_producer_consumer) {
        /* apply_async's callbacks: in the parent, one per item, never two
         * at once (P2). */
        assert_int_equal(out->callback_pid, getpid());
        assert_int_equal(out->callbacks, n);
        assert_int_equal(out->callbacks_max_overlap, 1);
    }
}

/* ---- the five cases, for any strategy ---------------------------------------- */

static void case_square(const strategy *s)
{
    register_tasks();
    static const char *const stages[] = {"square"};
    struct seen seen;
    strat_outcome out;
    run_range(s, 6, stages, 1, -1, &seen, &out);
    assert_int_equal(out.results, 6);
    assert_int_equal(out.errors, 0);
    assert_int_equal(out.tasks_run, 6);
    assert_false(out.stopped_early);
    assert_true(out.answer_s == 0);
    assert_int_equal(seen.count, 6);
    check_values(s, &seen, 2);
    check_processes(s, &out, 6);
    strat_outcome_free(&out);
}

static void case_chain(const strategy *s)
{
    register_tasks();
    static const char *const stages[] = {"square", "square"};
    struct seen seen;
    strat_outcome out;
    run_range(s, 6, stages, 2, -1, &seen, &out);
    assert_int_equal(out.results, 6);
    if (out.errors)
        fail_msg("%s: %zu errors, the first: %s", s->name, out.errors, out.first_error);
    assert_int_equal(seen.count, 6);
    check_values(s, &seen, 4);
    strat_outcome_free(&out);
}

static void case_one_fails(const strategy *s)
{
    register_tasks();
    static const char *const stages[] = {"square_but_3"};
    struct seen seen;
    strat_outcome out;
    run_range(s, 6, stages, 1, -1, &seen, &out);
    /* Item 3's error is one of the six final results; the others arrive. */
    assert_int_equal(out.results, 6);
    assert_int_equal(out.errors, 1);
    assert_contains(out.first_error, "three is refused");
    assert_int_equal(seen.count, 5);
    check_values(s, &seen, 2);
    for (size_t k = 0; k < seen.count; k++)
        assert_int_not_equal(seen.items[k], 3);
    strat_outcome_free(&out);
}

static void case_fail(const strategy *s)
{
    register_tasks();
    static const char *const stages[] = {"fail"};
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &items, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    for (int i = 0; i < 4; i++)
        pool_pack_str(&pk, "boom on purpose");
    struct seen seen;
    memset(&seen, 0, sizeof seen);
    seen.stop_at = -1;
    strat_outcome out;
    run_on(s, &items, 4, stages, 1, &seen, &out);
    assert_int_equal(out.results, 4);
    assert_int_equal(out.errors, 4);
    assert_contains(out.first_error, "boom on purpose");
    assert_int_equal(seen.count, 0); /* the stop rule sees values only */
    strat_outcome_free(&out);
    msgpack_sbuffer_destroy(&items);
}

static void case_stop(const strategy *s)
{
    register_tasks();
    static const char *const stages[] = {"nap_square"};
    const uint32_t n = 300; /* 1.5 s of work on 2 workers; the answer is item 5 */
    struct seen seen;
    strat_outcome out;
    run_range(s, n, stages, 1, 25, &seen, &out);
    assert_true(out.answer_s > 0);
    assert_true(out.stopped_early);
    assert_true(out.stopped_s >= out.answer_s);
    assert_true(out.results < n);
    assert_true(out.tasks_run < n);
    /* The answer is the last value the stop rule saw. */
    assert_true(seen.count >= 1);
    assert_int_equal(seen.values[seen.count - 1], 25);
    assert_int_equal(seen.items[seen.count - 1], 5);
    check_values(s, &seen, 2);
    strat_outcome_free(&out);
}

/* A pool whose workers cannot start (the initializer fails): every
 * strategy ends, with errors only, naming the initializer. How many depends
 * on the API (an iterator fails once; each job fails on its own), so the
 * count is not checked. process_per_task runs the initializer in each
 * child, so its items fail the same way. */
static void case_broken(const strategy *s)
{
    register_tasks();
    static const char *const stages[] = {"square"};
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    pack_range(&items, 0, 20);
    struct seen seen;
    memset(&seen, 0, sizeof seen);
    seen.stop_at = -1;
    strat_workload w;
    workload_init(&w, &items, 20, stages, 1, &seen);
    w.initializer = "fail";
    strat_outcome out;
    run_workload(s, &w, &out);
    assert_true(out.results >= 1);
    assert_int_equal(out.errors, out.results);
    assert_contains(out.first_error, "initializer 'fail' failed");
    assert_int_equal(seen.count, 0);
    strat_outcome_free(&out);
    msgpack_sbuffer_destroy(&items);
}

/* The six cases of one strategy, as functions named STRATEGY_CASE. */
#define ONE_CASE(name, kind)                                                         \
    static void name##_##kind(void **state)                                          \
    {                                                                                \
        (void)state;                                                                 \
        case_##kind(&strat_##name);                                                  \
    }
#define STRATEGY_CASES(name)                                                         \
    ONE_CASE(name, square)                                                           \
    ONE_CASE(name, chain)                                                            \
    ONE_CASE(name, one_fails)                                                        \
    ONE_CASE(name, fail)                                                             \
    ONE_CASE(name, stop)                                                             \
    ONE_CASE(name, broken)

STRATEGY_CASES(imap)
STRATEGY_CASES(imap_unordered)
STRATEGY_CASES(producer_consumer)
STRATEGY_CASES(executor_submit)
STRATEGY_CASES(executor_map)
STRATEGY_CASES(process_per_task)

#define CASES_OF(name)                                                               \
    CASE(name##_square), CASE(name##_chain), CASE(name##_one_fails), CASE(name##_fail), \
        CASE(name##_stop), CASE(name##_broken)

/* ---- checks of their own ------------------------------------------------------ */

/* A child killed by a signal is an error that names the signal; the loop
 * goes on to the next item. */
static void process_per_task_signal(void **state)
{
    (void)state;
    register_tasks();
    static const char *const stages[] = {"die"};
    int64_t v[] = {-9, -9};
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    pack_ints(&items, v, 2);
    struct seen seen;
    memset(&seen, 0, sizeof seen);
    seen.stop_at = -1;
    strat_outcome out;
    run_on(&strat_process_per_task, &items, 2, stages, 1, &seen, &out);
    assert_int_equal(out.results, 2);
    assert_int_equal(out.errors, 2);
    assert_contains(out.first_error, "killed by signal 9");
    assert_int_equal(out.nworker_pids, 2);
    strat_outcome_free(&out);
    msgpack_sbuffer_destroy(&items);
}

/* submit() with the future dropped (document 002, P10): the tasks run, the
 * error is seen by nobody, and the engine counts it as unobserved. */
static void executor_submit_fire_and_forget(void **state)
{
    (void)state;
    register_tasks();
    static const char *const stages[] = {"square_but_3"};
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    pack_range(&items, 0, 6);
    struct seen seen;
    memset(&seen, 0, sizeof seen);
    seen.stop_at = -1;
    strat_workload w;
    workload_init(&w, &items, 6, stages, 1, &seen);
    w.fire_and_forget = true;
    strat_outcome out;
    run_workload(&strat_executor_submit, &w, &out);
    assert_int_equal(out.results, 0); /* nobody looked */
    assert_int_equal(out.errors, 0);
    assert_int_equal(out.errors_unobserved, 1);
    assert_int_equal(out.tasks_run, 6); /* but everything ran */
    assert_int_equal(seen.count, 0);
    strat_outcome_free(&out);
    msgpack_sbuffer_destroy(&items);
}

/* The workload's buffersize (CPython's, P25) reaches imap, imap_unordered
 * and executor map: every result comes back right, in order where promised,
 * through the bounded path as through the eager default. */
static void buffersize_runs_bounded(void **state)
{
    (void)state;
    register_tasks();
    static const char *const stages[] = {"square"};
    const strategy *three[] = {&strat_imap, &strat_imap_unordered, &strat_executor_map};
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    pack_range(&items, 0, 40);
    for (size_t k = 0; k < 3; k++) {
        struct seen seen;
        memset(&seen, 0, sizeof seen);
        seen.stop_at = -1;
        strat_workload w;
        workload_init(&w, &items, 40, stages, 1, &seen);
        w.buffersize = 2;
        w.chunksize = 3;
        strat_outcome out;
        run_workload(three[k], &w, &out);
        assert_int_equal(out.results, 40);
        assert_int_equal(out.errors, 0);
        assert_int_equal(seen.count, 40);
        check_values(three[k], &seen, 2);
        strat_outcome_free(&out);
    }
    msgpack_sbuffer_destroy(&items);
}

/* The catalogue finds each of the six by the name scenarios use. */
static void catalogue_names(void **state)
{
    (void)state;
    const strategy *six[] = {&strat_imap,           &strat_imap_unordered,
                             &strat_producer_consumer, &strat_executor_submit,
                             &strat_executor_map,   &strat_process_per_task};
    for (size_t i = 0; i < sizeof six / sizeof six[0]; i++) {
        assert_ptr_equal(strat_find(six[i]->name), six[i]);
        assert_non_null(six[i]->source);
        assert_true(strlen(six[i]->summary) > 0);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        CASES_OF(imap),
        CASES_OF(imap_unordered),
        CASES_OF(producer_consumer),
        CASES_OF(executor_submit),
        CASES_OF(executor_map),
        CASES_OF(process_per_task),
        CASE(process_per_task_signal),
        CASE(executor_submit_fire_and_forget),
        CASE(buffersize_runs_bounded),
        CASE(catalogue_names),
    };
    return test_main(argc, argv, "test_strat_stream", tests, sizeof tests / sizeof tests[0]);
}
