/*
 * test_pool_limits.c: nothing waits forever, and every item says what
 * happened to it (issue 10).
 *
 *   - The fork server dies (SIGKILL) or stops (SIGSTOP): the pool is broken,
 *     as concurrent.futures' BrokenProcessPool; every pending and later job
 *     fails at once with POOL_EBROKEN, naming the fork server's pid and its
 *     end; an iterator yields each remaining item as an error of its own,
 *     pulling a lazy input one item at a time; join and destroy end.
 *   - The task time limit (pool_options.task_timeout, billiard's hard time
 *     limit): a task past it fails with POOL_ETIMELIMIT naming the task, the
 *     item, the worker and the limit; its worker is replaced; a chunk is
 *     failed once, item by item; a stopped worker, idle or holding the
 *     queue's lock, is caught by the same limit.
 *   - pool_interrupt_all(), from a signal handler: pending jobs fail with
 *     POOL_EINTR, later submits are refused, a blocked join returns.
 *   - Error messages number items so they cannot be misread.
 *
 * No case depends on which side of a timing threshold a run lands: limits
 * are short (0.3 s) against tasks that would run far longer (60 s), and
 * every wait is bounded by WAIT_S; a hang is reported by an alarm that
 * names what hung.
 */
#include "test_helpers.h"

#include <pthread.h>

/* ---- helpers ----------------------------------------------------------- */

/* What a case waits for when an alarm ends it: printed, then exit 1. */
static const char *g_waiting_for = "?";

static void on_alarm(int sig)
{
    (void)sig;
    static const char a[] = "[  FAILED  ] hung: ";
    if (write(2, a, sizeof a - 1) < 0 ||
        write(2, g_waiting_for, strlen(g_waiting_for)) < 0 || write(2, "\n", 1) < 0) {
    }
    _exit(1);
}

/* Ends the case (as a failure) if `what` has not returned in `seconds`. */
static void bound(const char *what, double seconds)
{
    g_waiting_for = what;
    signal(SIGALRM, on_alarm);
    alarm((unsigned)slack(seconds) + 1);
}

static void unbound(void)
{
    alarm(0);
}

static pool *make_pool_limit(int workers, double task_timeout, bool trace)
{
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = workers;
    opt.task_timeout = task_timeout;
    opt.trace = trace;
    return make_pool_opt(&opt);
}

static pool_result *apply_sleep(pool *p, double seconds)
{
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_double(&a, seconds);
    pool_result *r = pool_apply_async(p, "sleep", a.data, a.size, NULL, NULL, NULL);
    msgpack_sbuffer_destroy(&a);
    return r;
}

/* Packs the array of n sleep durations (each item is one argument). */
static void pack_doubles(msgpack_sbuffer *buf, const double *v, uint32_t n)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++)
        msgpack_pack_double(&pk, v[i]);
}

/* A job submitted to a broken pool: refused, or failed, with POOL_EBROKEN
 * and a message naming the fork server. Never a wait past WAIT_S. */
static void assert_broken_apply(pool *p, const char *needle)
{
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_int(&a, 4);
    pool_result *r = pool_apply(p, "square", a.data, a.size);
    if (r == NULL) {
        assert_status(pool_last_status(), POOL_EBROKEN);
        assert_contains(pool_last_error(), needle);
    } else {
        assert_status(pool_result_get(r, WAIT_S, NULL), POOL_EBROKEN);
        assert_contains(pool_result_error(r), needle);
        pool_result_free(r);
    }
    msgpack_sbuffer_destroy(&a);
}

/* A lazy input of n integers that counts its pulls. */
typedef struct counting_input {
    int n, pulled;
} counting_input;

static int next_counting(void *ctx, msgpack_packer *pk, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    counting_input *in = ctx;
    if (in->pulled == in->n)
        return 0;
    msgpack_pack_int(pk, in->pulled++);
    return 1;
}

/* ---- the fork server dies --------------------------------------------------- */

/* issue 10, 1: apply() after the fork server was killed never returned. */
static void forkserver_killed_breaks_pool(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    pool_result *pending = apply_sleep(p, 60.0);
    assert_non_null(pending);
    wait_until(pool_result_holder(pending) != 0);
    pid_t fs = pool_forkserver_pid(p);
    assert_int_equal(kill(fs, SIGKILL), 0);
    char pid_s[64];
    snprintf(pid_s, sizeof pid_s, "fork server (pid %d)", (int)fs);

    bound("get() of a job pending when the fork server died", WAIT_S);
    assert_status(pool_result_get(pending, WAIT_S, NULL), POOL_EBROKEN);
    assert_contains(pool_result_error(pending), pid_s);
    assert_contains(pool_result_error(pending), "killed by signal 9");
    assert_contains(pool_result_error(pending), "broken");
    pool_result_free(pending);

    /* Every later job fails at once, whatever the API. */
    bound("apply() after the fork server died", WAIT_S);
    for (int i = 0; i < 5; i++)
        assert_broken_apply(p, pid_s);
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    pack_range(&items, 0, 10);
    pool_result *m = pool_map_async(p, "square", items.data, items.size, 2, NULL, NULL, NULL);
    if (m == NULL)
        assert_status(pool_last_status(), POOL_EBROKEN);
    assert_null(m);
    bound("close and join of a broken pool", WAIT_S);
    assert_status(pool_close(p), POOL_OK);
    assert_status(pool_join(p), POOL_OK);
    unbound();
    msgpack_sbuffer_destroy(&items);
}

/* Drains an iterator, checking each of n items comes exactly once, as a
 * value or as its own error (items 0..done-1 were taken already); returns
 * how many were errors. */
static int drain_each_item(pool_iter *it, int n, int done, const char *needle)
{
    char *seen = calloc((size_t)n, 1);
    memset(seen, 1, (size_t)done);
    int errors = 0, rc;
    size_t idx;
    while ((rc = pool_iter_next(it, WAIT_S, NULL, &idx)) != POOL_EEND) {
        if (rc == POOL_ETIMEDOUT)
            fail_msg("next() waited %.0f s", (double)WAIT_S);
        if (idx == SIZE_MAX)
            fail_msg("the iteration ended whole: %s", pool_iter_error(it));
        assert_true(idx < (size_t)n);
        if (seen[idx]++)
            fail_msg("item %zu came twice", idx);
        if (rc != POOL_OK) {
            assert_status(rc, POOL_EBROKEN);
            assert_contains(pool_iter_error(it), needle);
            errors++;
        }
    }
    for (int i = 0; i < n; i++)
        if (!seen[i])
            fail_msg("item %d got neither a value nor an error", i);
    free(seen);
    return errors;
}

/* issue 10, 1: the iterators ended with ONE error and dropped the rest.
 * Now each item not yet returned is an error of its own. */
static void forkserver_killed_iterators_each_item(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    double v[40];
    for (int i = 0; i < 40; i++)
        v[i] = i < 2 ? 0.0 : 0.05;
    pack_doubles(&items, v, 40);
    pool_iter *ex = pool_executor_map(p, "sleep", items.data, items.size, 1);
    pool_iter *un = pool_imap_array(p, "sleep", items.data, items.size, 3, false);
    assert_non_null(ex);
    assert_non_null(un);
    assert_status(pool_iter_next(ex, WAIT_S, NULL, NULL), POOL_OK);
    assert_int_equal(kill(pool_forkserver_pid(p), SIGKILL), 0);
    bound("the iterators after the fork server died", 3 * WAIT_S);
    assert_true(drain_each_item(ex, 40, 1, "fork server") > 0);
    assert_true(drain_each_item(un, 40, 0, "fork server") > 0);
    pool_iter_free(ex);
    pool_iter_free(un);

    /* An iterator made on the broken pool reports each item too. */
    pool_iter *late = pool_imap_array(p, "sleep", items.data, items.size, 1, true);
    assert_non_null(late);
    assert_int_equal(drain_each_item(late, 40, 0, "fork server"), 40);
    pool_iter_free(late);
    unbound();
    msgpack_sbuffer_destroy(&items);
}

/* A lazy input (imap with a buffersize: without one the whole input is read
 * at the call, as CPython's) is pulled one item per next(), never ahead, so
 * a consumer can stop at any item. */
static void forkserver_killed_lazy_input_one_at_a_time(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    counting_input in = { .n = 1000 };
    pool_imap_opts o = { .chunksize = 1, .buffersize = 2 * pool_workers(p), .ordered = true };
    pool_iter *it = pool_imap_opt(p, "sleep", next_counting, &in, &o);
    assert_non_null(it);
    assert_status(pool_iter_next(it, WAIT_S, NULL, NULL), POOL_OK); /* sleep(0) */
    assert_int_equal(kill(pool_forkserver_pid(p), SIGKILL), 0);
    bound("imap after the fork server died", WAIT_S);
    int errors = 0;
    size_t idx = 0, last = 0;
    while (errors < 30) {
        int rc = pool_iter_next(it, WAIT_S, NULL, &idx);
        if (rc == POOL_OK)
            continue; /* items that finished before the death */
        assert_status(rc, POOL_EBROKEN);
        assert_int_not_equal(idx, SIZE_MAX);
        if (errors > 0)
            assert_int_equal(idx, last + 1); /* in order, none skipped */
        last = idx;
        errors++;
    }
    /* The input was pulled as the consumer asked, not drained. */
    if (in.pulled > (int)last + 1 + 2 * pool_workers(p) + 1)
        fail_msg("the input was pulled %d times for %zu items yielded", in.pulled, last + 1);
    pool_iter_free(it); /* the consumer stops: no more pulls */
    assert_true(in.pulled < in.n);
    unbound();
}

/* A stopped fork server owes replies it never sends: after a bound the pool
 * kills it and is broken; get(), terminate and destroy all end. */
static void forkserver_stopped_breaks_pool(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    pool_result *r = apply_sleep(p, 60.0);
    pid_t victim = 0;
    wait_until((victim = pool_result_holder(r)) != 0);
    pid_t fs = pool_forkserver_pid(p);
    assert_int_equal(kill(fs, SIGSTOP), 0);
    /* The worker dies; only the stopped fork server could report it. */
    assert_int_equal(kill(victim, SIGKILL), 0);
    bound("get() while the fork server is stopped", WAIT_S);
    assert_status(pool_result_get(r, WAIT_S, NULL), POOL_EBROKEN);
    assert_contains(pool_result_error(r), "stopped answering");
    pool_result_free(r);
    assert_broken_apply(p, "fork server");
    bound("destroy after the fork server was stopped", WAIT_S);
    drop_pool();
    unbound();
    assert_int_equal(kill(fs, 0), -1); /* killed and reaped */
}

/* A stopped fork server and nothing else: terminate (destroy) waits for the
 * workers' exits, which only the fork server reports. */
static void forkserver_stopped_destroy_ends(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    pool_result *r = apply_sleep(p, 60.0);
    wait_until(pool_result_holder(r) != 0);
    assert_int_equal(kill(pool_forkserver_pid(p), SIGSTOP), 0);
    bound("pool_terminate() with the fork server stopped", WAIT_S);
    assert_status(pool_terminate(p), POOL_OK);
    assert_status(pool_result_get(r, WAIT_S, NULL), POOL_ETERMINATED);
    pool_result_free(r);
    assert_status(pool_join(p), POOL_OK);
    unbound();
}

/* ---- the task time limit -------------------------------------------------- */

static void task_timeout_apply(void **state)
{
    (void)state;
    pool *p = make_pool_limit(2, 0.3, false);
    pool_result *r = apply_sleep(p, 60.0);
    pid_t victim = 0;
    wait_until((victim = pool_result_holder(r)) != 0);
    assert_status(pool_result_get(r, WAIT_S, NULL), POOL_ETIMELIMIT);
    const char *e = pool_result_error(r);
    char want[64];
    snprintf(want, sizeof want, "(pid %d)", (int)victim);
    assert_contains(e, want);
    assert_contains(e, "task 'sleep'");
    snprintf(want, sizeof want, "job %llu, index 0 within the job (from 0)",
             (unsigned long long)pool_result_job(r));
    assert_contains(e, want);
    assert_contains(e, "time limit of 0.3 s");
    assert_contains(e, "worker ");
    pool_result_free(r);

    /* The pool goes on with a new worker. */
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_int(&a, 9);
    r = pool_apply(p, "square", a.data, a.size);
    assert_int_equal(obj_int(get_ok(r)), 81);
    pool_result_free(r);
    pid_t now[2];
    int n = 0;
    wait_until((n = pool_worker_pids(p, now, 2)) == 2 && !has_pid(now, n, victim));
    msgpack_sbuffer_destroy(&a);
}

/* A chunk with a hung item: failed once, item by item; the trace says so;
 * the other jobs are unaffected. */
static void task_timeout_chunk_once(void **state)
{
    (void)state;
    pool *p = make_pool_limit(2, 0.3, true);
    msgpack_sbuffer items, sq;
    msgpack_sbuffer_init(&items);
    msgpack_sbuffer_init(&sq);
    const double v[] = { 0.0, 0.0, 60.0, 0.0 };
    pack_doubles(&items, v, 4);
    pool_result *m = pool_map_async(p, "sleep", items.data, items.size, 4, NULL, NULL, NULL);
    pack_range(&sq, 0, 20);
    pool_result *other = pool_map_async(p, "square", sq.data, sq.size, 1, NULL, NULL, NULL);
    assert_status(pool_result_get(m, WAIT_S, NULL), POOL_ETIMELIMIT);
    assert_contains(pool_result_error(m), "index 2 within the job (from 0)");
    get_array(other, 20);

    pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.tasks_failed, 4); /* the chunk's four items, once each */
    size_t nrec = pool_trace_count(p);
    pool_trace_rec *rec = calloc(nrec, sizeof *rec);
    pool_trace_copy(p, 0, rec, nrec);
    int mine = 0;
    for (size_t i = 0; i < nrec; i++)
        if (rec[i].job == pool_result_job(m)) {
            mine++;
            assert_int_equal(rec[i].ok, 0);
            if (rec[i].item == 2)
                assert_true(rec[i].t_start > 0); /* it began; it never ended */
        }
    assert_int_equal(mine, 4);
    free(rec);
    pool_result_free(m);
    pool_result_free(other);

    /* Through imap: four errors of their own, the hung one says so. */
    pool_iter *it = pool_imap_array(p, "sleep", items.data, items.size, 4, true);
    for (size_t i = 0; i < 4; i++) {
        size_t idx = 99;
        assert_status(pool_iter_next(it, WAIT_S, NULL, &idx), POOL_ETIMELIMIT);
        assert_int_equal(idx, i);
        assert_contains(pool_iter_error(it), i == 2 ? "ran past its time limit"
                                                    : "lost with its chunk");
    }
    assert_status(pool_iter_next(it, WAIT_S, NULL, NULL), POOL_EEND);
    pool_iter_free(it);
    msgpack_sbuffer_destroy(&items);
    msgpack_sbuffer_destroy(&sq);
}

/* A stopped worker: one worker, idle (with the socket it holds the queue's
 * lock, waiting for a message inside it; with shm it waits outside). It is
 * the only worker, so without the limit the next task waits forever; with
 * it, the stopped worker is killed and replaced. */
static void task_timeout_stopped_lock_holder(void **state)
{
    (void)state;
    pool *p = make_pool_limit(1, 0.3, false);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_int(&a, 5);
    pool_result *r = pool_apply(p, "square", a.data, a.size);
    assert_int_equal(obj_int(get_ok(r)), 25);
    pool_result_free(r);
    pid_t w = 0;
    wait_until(pool_worker_pids(p, &w, 1) == 1);
    assert_int_equal(kill(w, SIGSTOP), 0);
    r = pool_apply_async(p, "square", a.data, a.size, NULL, NULL, NULL);
    assert_int_equal(obj_int(get_ok(r)), 25);
    pool_result_free(r);
    pid_t now = 0;
    wait_until(pool_worker_pids(p, &now, 1) == 1 && now != w);
    msgpack_sbuffer_destroy(&a);
}

/* Both workers stopped, one of them running a task: the task fails with the
 * limit, the other worker is replaced too, the pool goes on. */
static void task_timeout_stopped_workers(void **state)
{
    (void)state;
    pool *p = make_pool_limit(2, 0.3, false);
    pool_result *r = apply_sleep(p, 5.0);
    pid_t busy = 0;
    wait_until((busy = pool_result_holder(r)) != 0);
    pid_t w[2];
    wait_until(pool_worker_pids(p, w, 2) == 2 && has_pid(w, 2, busy));
    assert_int_equal(kill(w[0], SIGSTOP), 0);
    assert_int_equal(kill(w[1], SIGSTOP), 0);
    assert_status(pool_result_get(r, WAIT_S, NULL), POOL_ETIMELIMIT);
    assert_contains(pool_result_error(r), "index 0 within the job (from 0)");
    pool_result_free(r);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_int(&a, 6);
    r = pool_apply(p, "square", a.data, a.size);
    assert_int_equal(obj_int(get_ok(r)), 36);
    pool_result_free(r);
    pid_t now[2];
    int n = 0;
    wait_until((n = pool_worker_pids(p, now, 2)) == 2 && !has_pid(now, n, w[0]) &&
               !has_pid(now, n, w[1]));
    msgpack_sbuffer_destroy(&a);
}

/* ---- interrupts -------------------------------------------------------------- */

static void on_sigint(int sig)
{
    (void)sig;
    pool_interrupt_all();
}

static void install_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

static void interrupt_fails_pending_jobs(void **state)
{
    (void)state;
    install_sigint();
    pool *p = make_pool(2);
    pool_result *r[3];
    for (int i = 0; i < 3; i++)
        assert_non_null(r[i] = apply_sleep(p, 60.0));
    counting_input in = { .n = 1000 };
    pool_iter *it = pool_imap(p, "identity", next_counting, &in, 1);
    assert_non_null(it);
    wait_until(pool_result_holder(r[0]) != 0 || pool_result_holder(r[1]) != 0);
    bound("get() after an interrupt", WAIT_S);
    raise(SIGINT);
    for (int i = 0; i < 3; i++) {
        assert_status(pool_result_get(r[i], WAIT_S, NULL), POOL_EINTR);
        assert_contains(pool_result_error(r[i]), "interrupted");
        pool_result_free(r[i]);
    }
    int rc;
    size_t idx = 0;
    while ((rc = pool_iter_next(it, WAIT_S, NULL, &idx)) == POOL_OK)
        ;
    assert_status(rc, POOL_EINTR);
    assert_int_equal(idx, SIZE_MAX);
    pool_iter_free(it);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_int(&a, 1);
    assert_null(pool_apply_async(p, "square", a.data, a.size, NULL, NULL, NULL));
    assert_status(pool_last_status(), POOL_EINTR);
    assert_status(pool_join(p), POOL_OK);
    unbound();
    msgpack_sbuffer_destroy(&a);
}

static void *interrupt_later(void *arg)
{
    (void)arg;
    sleep_s(0.3);
    pool_interrupt_all();
    return NULL;
}

/* A join blocked on a long task returns promptly on an interrupt. */
static void interrupt_wakes_join(void **state)
{
    (void)state;
    pool *p = make_pool(1);
    pool_result *r = apply_sleep(p, 60.0);
    assert_status(pool_close(p), POOL_OK);
    pthread_t th;
    pthread_create(&th, NULL, interrupt_later, NULL);
    bound("pool_join() after an interrupt", WAIT_S);
    assert_status(pool_join(p), POOL_OK);
    assert_status(pool_result_get(r, WAIT_S, NULL), POOL_EINTR);
    unbound();
    pthread_join(th, NULL);
    pool_result_free(r);
}

/* ---- messages ------------------------------------------------------------------ */

static int task_die_on_3(const msgpack_object_array *args, msgpack_packer *out,
                         pool_task_ctx *ctx)
{
    int64_t x;
    if (task_int_arg(args, 0, &x))
        return pool_task_fail(ctx, "die_on_3: wants an integer");
    if (x == 3)
        raise(SIGKILL);
    msgpack_pack_int64(out, x);
    return 0;
}

/* issue 10, 7: "item 13107" for Lua's item 13108, "item 0" for every
 * apply_async. The index is kept, worded so it cannot be misread. */
static void worker_death_message_names_index(void **state)
{
    (void)state;
    assert_status(pool_task_register("die_on_3", task_die_on_3, NULL), POOL_OK);
    pool *p = make_pool(2);
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    pack_range(&items, 0, 6);
    pool_result *m = pool_map(p, "die_on_3", items.data, items.size, 1);
    assert_status(pool_result_get(m, WAIT_S, NULL), POOL_EWORKER);
    char want[80];
    snprintf(want, sizeof want, "(job %llu, index 3 within the job (from 0))",
             (unsigned long long)pool_result_job(m));
    assert_contains(pool_result_error(m), want);
    pool_result_free(m);
    pool_args_int(&items, 3);
    pool_result *r = pool_apply(p, "die_on_3", items.data, items.size);
    assert_status(pool_result_get(r, WAIT_S, NULL), POOL_EWORKER);
    assert_contains(pool_result_error(r), "index 0 within the job (from 0)");
    pool_result_free(r);
    msgpack_sbuffer_destroy(&items);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        CASE(forkserver_killed_breaks_pool),
        CASE(forkserver_killed_iterators_each_item),
        CASE(forkserver_killed_lazy_input_one_at_a_time),
        CASE(forkserver_stopped_breaks_pool),
        CASE(forkserver_stopped_destroy_ends),
        CASE(task_timeout_apply),
        CASE(task_timeout_chunk_once),
        CASE(task_timeout_stopped_lock_holder),
        CASE(task_timeout_stopped_workers),
        CASE(interrupt_fails_pending_jobs),
        CASE(interrupt_wakes_join),
        CASE(worker_death_message_names_index),
    };
    return test_main(argc, argv, "pool_limits", tests, sizeof tests / sizeof *tests);
}
