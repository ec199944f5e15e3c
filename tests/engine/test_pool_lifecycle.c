/*
 * test_pool_lifecycle.c: a pool's life, from pool_create() to pool_destroy(),
 * checked against pool.h's contract.
 *
 * Creation (worker count, the single-thread rule), the states close /
 * terminate / join (CPython's _TestPool test_close, test_terminate and its
 * "Pool is still running"), worker lifetime (maxtasksperchild and
 * initializers, CPython's _TestPoolWorkerLifetime), what destroy leaves
 * behind (no process, no zombie, no descriptor), and what the pool records
 * about itself (trace records, stats).
 *
 * Leaks are checked from outside the engine, the way a user would notice
 * them: /proc and waitpid(), not the engine's own word.
 */
#include <dirent.h>
#include <pthread.h>

#include "test_helpers.h"

/* ---- tasks registered by the cases --------------------------------------- */

static int64_t init_arg_seen = -1; /* per worker process: set by its initializer */

/* init_store(x): an initializer that keeps its argument for init_arg(). */
static int task_init_store(const msgpack_object_array *args, msgpack_packer *out,
                           pool_task_ctx *ctx)
{
    if (task_int_arg(args, 0, &init_arg_seen))
        return pool_task_fail(ctx, "init_store: wants an integer");
    msgpack_pack_nil(out);
    return 0;
}

static int task_init_arg(const msgpack_object_array *args, msgpack_packer *out,
                         pool_task_ctx *ctx)
{
    (void)args;
    (void)ctx;
    msgpack_pack_int64(out, init_arg_seen);
    return 0;
}

/* ---- /proc helpers ------------------------------------------------------- */

/* The state letter of a process (R, S, Z, ...), or 0 if there is no such process. */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close = strrchr(buf, ')'); /* the name may contain spaces */
    return close && close[1] == ' ' ? close[2] : '?';
}

/* ---- creation ------------------------------------------------------------- */

static void workers_refused(void **state)
{
    (void)state;
    pool_options opt;
    pool_options_default(&opt);
    assert_true(opt.workers >= 1);
    const int bad[] = { 0, -1, -4 };
    for (size_t i = 0; i < 3; i++) {
        opt.workers = bad[i];
        pool *p = pool_create(&opt);
        if (p != NULL) {
            g_pool = p;
            fail_msg("pool_create accepted %d workers", bad[i]);
        }
        assert_contains(pool_last_error(), "worker");
    }
}

static void *block_on_pipe(void *arg)
{
    char c;
    while (read(*(int *)arg, &c, 1) == -1 && errno == EINTR)
        ;
    return NULL;
}

/* pool_create() forks its fork server, so it must refuse a caller that has
 * other threads, and work again once they are gone. */
static void create_refuses_threads(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, block_on_pipe, &fds[0]), 0);
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = 2;
    pool *p = pool_create(&opt);
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    close(fds[0]);
    close(fds[1]);
    if (p != NULL) {
        g_pool = p;
        fail_msg("pool_create accepted a caller with two threads");
    }
    assert_contains(pool_last_error(), "thread");

    p = make_pool(2);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_int(&a, 4);
    pool_result *r = pool_apply(p, "square", a.data, a.size);
    assert_int_equal(obj_int(get_ok(r)), 16);
    pool_result_free(r);
    msgpack_sbuffer_destroy(&a);
}

/* ---- close, terminate, join ---------------------------------------------- */

static void close_join_states(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    /* CPython: join() on a running pool raises "Pool is still running". */
    assert_status(pool_join(p), POOL_ESTATE);

    /* Work queued before close still runs (CPython's test_close). */
    pool_args_double(&a, 0.2);
    pool_result *r[4];
    for (int i = 0; i < 4; i++)
        r[i] = pool_apply_async(p, "sleep", a.data, a.size, NULL, NULL, NULL);
    assert_status(pool_close(p), POOL_OK);

    pool_args_int(&a, 2);
    assert_null(pool_apply_async(p, "square", a.data, a.size, NULL, NULL, NULL));
    assert_true(pool_last_error()[0] != '\0');
    assert_null(pool_apply(p, "square", a.data, a.size));
    assert_null(pool_submit(p, "square", a.data, a.size));
    pack_range(&a, 0, 4);
    assert_null(pool_map_async(p, "square", a.data, a.size, 0, NULL, NULL, NULL));
    assert_null(pool_imap_array(p, "square", a.data, a.size, 1, true));

    assert_status(pool_join(p), POOL_OK);
    for (int i = 0; i < 4; i++) {
        assert_true(pool_result_ready(r[i]));
        assert_int_equal(pool_result_successful(r[i]), 1);
        pool_result_free(r[i]);
    }
    msgpack_sbuffer_destroy(&a);
}

/* CPython's test_terminate: 10 000 queued sleeps do not delay terminate().
 * CPython asserts 2 s; 5 s leaves room for a busy machine, and a pool that
 * ran the queue instead would take 5 000 s. */
static void terminate_many(void **state)
{
    (void)state;
    enum { N = 10000 };
    pool *p = make_pool(2);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_double(&a, 1.0);
    pool_result **r = calloc(N, sizeof *r);
    assert_non_null(r);
    for (int i = 0; i < N; i++) {
        r[i] = pool_apply_async(p, "sleep", a.data, a.size, NULL, NULL, NULL);
        assert_non_null(r[i]);
    }
    double t0 = pool_now();
    assert_status(pool_terminate(p), POOL_OK);
    assert_status(pool_join(p), POOL_OK);
    double took = pool_now() - t0;
    if (took >= slack(5.0))
        fail_msg("terminate + join took %.2f s", took);

    /* Every job is settled: terminated, or done if it beat the terminate. */
    int terminated = 0;
    assert_status(pool_result_wait(r[N - 1], WAIT_S), POOL_OK);
    for (int i = 0; i < N; i++) {
        int rc = pool_result_get(r[i], 0, NULL);
        if (rc == POOL_ETERMINATED)
            terminated++;
        else if (rc != POOL_OK)
            fail_msg("job %d: %s after terminate", i, pool_status_name(rc));
        pool_result_free(r[i]);
    }
    assert_true(terminated >= N - 10);
    free(r);
    msgpack_sbuffer_destroy(&a);
}

static int terminate_cb(pool_result *r, void *udata, char *err, size_t errlen)
{
    (void)r;
    if (pool_terminate(udata) != POOL_OK) {
        snprintf(err, errlen, "terminate from a callback: %s", pool_last_error());
        return 1;
    }
    return 0;
}

/* pool.h: terminate is safe to call from a callback (it does not wait for
 * the workers, which would deadlock the result handler). */
static void terminate_from_callback(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_double(&a, 30.0);
    pool_result *sleeper = pool_apply_async(p, "sleep", a.data, a.size, NULL, NULL, NULL);
    pool_args_int(&a, 3);
    pool_result *trigger = pool_apply_async(p, "square", a.data, a.size, terminate_cb, NULL, p);
    assert_non_null(sleeper);
    assert_non_null(trigger);
    assert_int_not_equal(pool_result_wait(trigger, WAIT_S), POOL_ETIMEDOUT);
    assert_status(pool_result_get(sleeper, WAIT_S, NULL), POOL_ETERMINATED);
    assert_status(pool_join(p), POOL_OK);
    pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.callback_errors, 0);
    pool_result_free(sleeper);
    pool_result_free(trigger);
    msgpack_sbuffer_destroy(&a);
}

/* ---- worker lifetime ------------------------------------------------------ */

/* CPython's test_pool_worker_lifetime: with maxtasksperchild=2, 40 tasks on
 * 2 workers need at least 20 distinct worker processes. */
static void maxtasksperchild_respawns(void **state)
{
    (void)state;
    enum { N = 40 };
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = 2;
    opt.maxtasksperchild = 2;
    pool *p = make_pool_opt(&opt);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args0(&a);
    pool_result *r[N];
    for (int i = 0; i < N; i++)
        r[i] = pool_apply_async(p, "getpid", a.data, a.size, NULL, NULL, NULL);
    int64_t pids[N];
    int distinct = 0;
    for (int i = 0; i < N; i++) {
        int64_t pid = obj_int(get_ok(r[i]));
        int j;
        for (j = 0; j < distinct && pids[j] != pid; j++)
            ;
        if (j == distinct)
            pids[distinct++] = pid;
        pool_result_free(r[i]);
    }
    assert_true(distinct >= N / 2);
    /* CPython's test_pool_worker_lifetime_early_close: close + join with
     * respawning workers does not hang. */
    assert_status(pool_close(p), POOL_OK);
    assert_status(pool_join(p), POOL_OK);
    pool_stats st;
    pool_get_stats(p, &st);
    assert_true(st.workers_started >= (uint64_t)distinct);
    assert_true(st.workers_started > 2);
    assert_int_equal(st.worker_deaths, 0); /* a planned exit is a clean one */
    msgpack_sbuffer_destroy(&a);
}

/* The initializer runs once in each worker, respawned ones included, before
 * its first task, with its initargs. */
static void initializer_once_per_worker(void **state)
{
    (void)state;
    enum { N = 30 };
    assert_status(pool_task_register("init_store", task_init_store, NULL), POOL_OK);
    assert_status(pool_task_register("init_arg", task_init_arg, NULL), POOL_OK);
    msgpack_sbuffer init, a;
    msgpack_sbuffer_init(&init);
    msgpack_sbuffer_init(&a);
    pool_args_int(&init, 42);
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = 2;
    opt.initializer = "init_store";
    opt.initargs = init.data;
    opt.initargs_len = init.size;
    opt.maxtasksperchild = 3;
    pool *p = make_pool_opt(&opt);

    pool_args0(&a);
    pool_result *counts[N], *args[N];
    for (int i = 0; i < N; i++) {
        counts[i] = pool_apply_async(p, "init_count", a.data, a.size, NULL, NULL, NULL);
        args[i] = pool_apply_async(p, "init_arg", a.data, a.size, NULL, NULL, NULL);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(obj_int(get_ok(counts[i])), 1);
        assert_int_equal(obj_int(get_ok(args[i])), 42);
        pool_result_free(counts[i]);
        pool_result_free(args[i]);
    }
    pool_stats st;
    pool_get_stats(p, &st);
    assert_true(st.workers_started > 2); /* respawned workers were checked too */
    msgpack_sbuffer_destroy(&init);
    msgpack_sbuffer_destroy(&a);
}

/* ---- what destroy leaves behind ------------------------------------------ */

/* Fork server and workers are gone after destroy, none of them a zombie:
 * the fork server is this process's child, so the engine must reap it, and
 * the workers are the fork server's, so it must reap them before it exits
 * (an orphaned zombie is left to init, which may never reap it: on this
 * project's machines, pid 1 does not). This process has no child left. */
static void check_nothing_left(pid_t server, const pid_t *workers, int n)
{
    char s = proc_state(server);
    if (s != 0)
        fail_msg("fork server %d still exists after destroy (state %c)", (int)server, s);
    errno = 0;
    pid_t w = waitpid(-1, NULL, WNOHANG);
    if (w != -1 || errno != ECHILD)
        fail_msg("waitpid(-1) after destroy: %d (%s); want -1 (ECHILD)", (int)w,
                 strerror(errno));
    for (int i = 0; i < n; i++) {
        /* A reaping init may need a moment; a stray worker never goes. */
        double until = pool_now() + slack(2.0);
        while (proc_state(workers[i]) != 0 && pool_now() < until)
            sleep_s(0.01);
        s = proc_state(workers[i]);
        if (s != 0)
            fail_msg("worker %d still exists after destroy (state %c%s)", (int)workers[i], s,
                     s == 'Z' ? ": a zombie nobody reaped" : "");
    }
}

static void no_child_left(void **state)
{
    (void)state;
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pack_range(&a, 0, 20);
    /* Destroy on a running pool (it terminates), then on a closed and joined
     * one: both must leave nothing behind. */
    for (int closed = 0; closed < 2; closed++) {
        pool *p = make_pool(3);
        pool_result *r = pool_map(p, "square", a.data, a.size, 1);
        get_array(r, 20);
        pool_result_free(r);
        pid_t server = pool_forkserver_pid(p);
        assert_true(server > 0);
        assert_int_not_equal(server, getpid());
        pid_t workers[8];
        int n = pool_worker_pids(p, workers, 8);
        assert_true(n >= 1 && n <= 3);
        for (int i = 0; i < n; i++)
            assert_int_not_equal(workers[i], server);
        if (closed) {
            assert_status(pool_close(p), POOL_OK);
            assert_status(pool_join(p), POOL_OK);
        }
        drop_pool();
        check_nothing_left(server, workers, n);
    }
    msgpack_sbuffer_destroy(&a);
}

static void no_fd_leaked(void **state)
{
    (void)state;
    int before = count_fds();
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = 2;
    opt.maxtasksperchild = 3; /* respawns open and close descriptors too */
    opt.trace = true;
    pool *p = make_pool_opt(&opt);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pack_range(&a, 0, 30);
    pool_result *r = pool_map(p, "square", a.data, a.size, 1);
    get_array(r, 30);
    pool_result_free(r);
    pool_iter *it = pool_imap_array(p, "square", a.data, a.size, 2, false);
    while (pool_iter_next(it, WAIT_S, NULL, NULL) == POOL_OK)
        ;
    pool_iter_free(it);
    assert_int_not_equal(count_fds(), before); /* the pool does hold some */
    drop_pool();
    assert_int_equal(count_fds(), before);

    /* A pool that never ran anything, terminated explicitly. */
    p = make_pool(2);
    assert_status(pool_terminate(p), POOL_OK);
    assert_status(pool_join(p), POOL_OK);
    drop_pool();
    assert_int_equal(count_fds(), before);
    msgpack_sbuffer_destroy(&a);
}

/* ---- what the pool records ------------------------------------------------ */

/* One trace record per task execution, times on one clock in causal order. */
static void trace_records(void **state)
{
    (void)state;
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = 2;
    opt.trace = true;
    pool *p = make_pool_opt(&opt);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pack_range(&a, 0, 8);
    double t0 = pool_now();
    pool_result *r = pool_map(p, "square", a.data, a.size, 0);
    get_array(r, 8);
    double t1 = pool_now();
    assert_int_equal(pool_trace_count(p), 8);
    pid_t pids[2];
    int np = pool_worker_pids(p, pids, 2);
    pool_trace_rec rec[16];
    assert_int_equal(pool_trace_copy(p, 0, rec, 16), 8);
    int items[8] = { 0 };
    for (int i = 0; i < 8; i++) {
        assert_true(rec[i].job == pool_result_job(r));
        assert_true(rec[i].item < 8);
        items[rec[i].item]++;
        assert_string_equal(pool_task_name(rec[i].task), "square");
        assert_true(rec[i].slot >= 0 && rec[i].slot < 2);
        assert_true(has_pid(pids, np, rec[i].pid));
        assert_int_equal(rec[i].ok, 1);
        assert_true(t0 <= rec[i].t_submit);
        assert_true(rec[i].t_submit <= rec[i].t_start);
        assert_true(rec[i].t_start <= rec[i].t_end);
        assert_true(rec[i].t_end <= rec[i].t_result);
        assert_true(rec[i].t_result <= t1);
        assert_true(rec[i].t_callback == 0); /* map has no callback */
    }
    for (int i = 0; i < 8; i++)
        assert_int_equal(items[i], 1);
    pool_result_free(r);
    /* Copying from a position returns the rest. */
    assert_int_equal(pool_trace_copy(p, 6, rec, 16), 2);

    /* A job with a callback and a failing one. */
    pool_args_str(&a, "traced failure");
    r = pool_apply_async(p, "fail", a.data, a.size, NULL, NULL, NULL);
    assert_status(pool_result_get(r, WAIT_S, NULL), POOL_ETASK);
    pool_result_free(r);
    assert_int_equal(pool_trace_copy(p, 8, rec, 16), 1);
    assert_int_equal(rec[0].ok, 0);
    assert_string_equal(pool_task_name(rec[0].task), "fail");
    drop_pool();

    opt.trace = false;
    p = make_pool_opt(&opt);
    pack_range(&a, 0, 8);
    r = pool_map(p, "square", a.data, a.size, 0);
    get_array(r, 8);
    pool_result_free(r);
    assert_int_equal(pool_trace_count(p), 0);
    msgpack_sbuffer_destroy(&a);
}

static int nop_cb(pool_result *r, void *udata, char *err, size_t errlen)
{
    (void)r, (void)udata, (void)err, (void)errlen;
    return 0;
}

/* The callback's time closes the record of a job that has one. */
static void trace_callback_time(void **state)
{
    (void)state;
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = 2;
    opt.trace = true;
    pool *p = make_pool_opt(&opt);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_int(&a, 6);
    pool_result *r = pool_apply_async(p, "square", a.data, a.size, nop_cb, NULL, NULL);
    get_ok(r);
    pool_trace_rec rec;
    assert_int_equal(pool_trace_copy(p, 0, &rec, 1), 1);
    assert_true(rec.job == pool_result_job(r));
    assert_true(rec.t_callback >= rec.t_result);
    assert_true(rec.t_result > 0);
    pool_result_free(r);
    msgpack_sbuffer_destroy(&a);
}

/* The counters agree with what was done, once the pool has settled. */
static void stats_counts(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_int(&a, 3);
    pool_result *r = pool_apply(p, "square", a.data, a.size);
    get_ok(r);
    pool_result_free(r);
    pack_range(&a, 0, 10);
    r = pool_map(p, "square", a.data, a.size, 1);
    get_array(r, 10);
    pool_result_free(r);
    pool_args_str(&a, "counted");
    r = pool_apply(p, "fail", a.data, a.size);
    assert_status(pool_result_get(r, WAIT_S, NULL), POOL_ETASK);
    pool_result_free(r);
    assert_status(pool_close(p), POOL_OK);
    assert_status(pool_join(p), POOL_OK);

    pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.jobs_submitted, 3);
    assert_int_equal(st.tasks_done, 11);
    assert_int_equal(st.tasks_failed, 1);
    assert_int_equal(st.messages_sent, 12);
    assert_true(st.messages_received >= 12);
    assert_int_equal(st.workers_started, 2);
    assert_int_equal(st.worker_deaths, 0);
    assert_int_equal(st.callbacks_run, 0);
    assert_int_equal(st.errors_unobserved, 0); /* the failure was read */
    msgpack_sbuffer_destroy(&a);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        CASE(workers_refused),
        CASE(create_refuses_threads),
        CASE(close_join_states),
        CASE(terminate_many),
        CASE(terminate_from_callback),
        CASE(maxtasksperchild_respawns),
        CASE(initializer_once_per_worker),
        CASE(no_child_left),
        CASE(no_fd_leaked),
        CASE(trace_records),
        CASE(trace_callback_time),
        CASE(stats_counts),
    };
    return test_main(argc, argv, "test_pool_lifecycle", tests, sizeof tests / sizeof tests[0]);
}
