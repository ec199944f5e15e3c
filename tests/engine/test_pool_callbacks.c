/*
 * test_pool_callbacks.c: callbacks, checked against pool.h's contract.
 *
 * Callbacks are where the engine's one result-handler thread shows (phenomenon
 * P2): they run in the parent, on that thread, one at a time, before get()
 * returns. CPython's _TestPool covers callback and error_callback; the engine
 * also promises, unlike CPython (gh-83371), that a failing callback is counted
 * and does not stop the ones after it. concurrent.futures' done callbacks are
 * here too, including the case of a future that is already done.
 *
 * Callbacks only record what they saw (cmocka cannot fail from another
 * thread); the test asserts on the record after get() returned.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "test_helpers.h"

/* What a callback saw. Written on the result-handler thread (or the caller's),
 * read by the test after get() returned, which orders the two. */
typedef struct seen_cb {
    atomic_int calls;
    atomic_int inside, max_inside;
    pid_t pid;
    pthread_t thread;
    int64_t value;
    int ok; /* 1 if the callback saw a value, 0 if it saw an error */
    char error[256];
    int fail_with; /* non-zero: the callback reports a failure */
} seen_cb;

static int record_cb(pool_result *r, void *udata, char *err, size_t errlen)
{
    seen_cb *s = udata;
    int now = atomic_fetch_add(&s->inside, 1) + 1;
    int max = atomic_load(&s->max_inside);
    while (now > max && !atomic_compare_exchange_weak(&s->max_inside, &max, now))
        ;
    s->pid = getpid();
    s->thread = pthread_self();
    /* Not successful(): as in CPython, the result becomes ready only after
     * its callback has returned, so from inside it says POOL_ENOTREADY. */
    s->ok = pool_result_error(r) == NULL;
    const msgpack_object *v = pool_result_value(r);
    if (v && (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
              v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER))
        s->value = v->via.i64;
    const char *e = pool_result_error(r);
    snprintf(s->error, sizeof s->error, "%s", e ? e : "");
    sleep_s(0.002); /* widen the window in which a second callback could overlap */
    atomic_fetch_add(&s->calls, 1);
    atomic_fetch_sub(&s->inside, 1);
    if (s->fail_with) {
        snprintf(err, errlen, "deliberate callback failure");
        return s->fail_with;
    }
    return 0;
}

/* concurrent.futures: a done callback runs on success and failure, and one
 * added to a finished future runs at once, in the adding thread. pool.h says
 * of every pool_callback that it runs before get() returns; that is checked
 * last, so that a violation does not hide the other checks. */
static void done_callback(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_double(&a, 0.3);
    pool_result *f = pool_submit(p, "sleep", a.data, a.size);
    assert_non_null(f);
    seen_cb s1 = { 0 };
    assert_status(pool_result_add_done_callback(f, record_cb, &s1), POOL_OK);
    get_ok(f);
    int s1_at_get = atomic_load(&s1.calls);
    wait_until(atomic_load(&s1.calls) == 1);
    assert_int_equal(s1.ok, 1);
    assert_int_equal(s1.pid, getpid());

    seen_cb s2 = { 0 };
    assert_status(pool_result_add_done_callback(f, record_cb, &s2), POOL_OK);
    assert_int_equal(atomic_load(&s2.calls), 1); /* at once */
    assert_true(pthread_equal(s2.thread, pthread_self()));
    assert_int_equal(s2.ok, 1);
    assert_int_equal(atomic_load(&s1.calls), 1); /* the first one is not rerun */

    pool_args_str(&a, "nope");
    pool_result *g = pool_submit(p, "fail", a.data, a.size);
    seen_cb s3 = { 0 };
    assert_status(pool_result_add_done_callback(g, record_cb, &s3), POOL_OK);
    assert_status(pool_result_get(g, WAIT_S, NULL), POOL_ETASK);
    int s3_at_get = atomic_load(&s3.calls);
    wait_until(atomic_load(&s3.calls) == 1);
    assert_int_equal(s3.ok, 0);
    assert_contains(s3.error, "nope");
    pool_result_free(f);
    pool_result_free(g);
    msgpack_sbuffer_destroy(&a);

    if (s1_at_get != 1 || s3_at_get != 1)
        fail_msg("get() returned before the done callback had run (success: %d, failure: "
                 "%d calls by then); pool.h: a callback runs before get() returns",
                 s1_at_get, s3_at_get);
}

/* The callback runs once, with the value, in the parent, on the result
 * handler thread, before get() returns. */
static void callback_in_parent(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_int(&a, 5);
    seen_cb ok = { 0 }, bad = { 0 };
    pool_result *r = pool_apply_async(p, "square", a.data, a.size, record_cb, NULL, &ok);
    assert_int_equal(obj_int(get_ok(r)), 25);
    assert_int_equal(atomic_load(&ok.calls), 1);
    assert_int_equal(ok.value, 25);
    assert_int_equal(ok.pid, getpid());
    assert_false(pthread_equal(ok.thread, pthread_self()));
    pool_result_free(r);

    /* map_async: one callback for the whole map, with the whole array. */
    pack_range(&a, 0, 10);
    seen_cb m = { 0 };
    r = pool_map_async(p, "square", a.data, a.size, 3, record_cb, record_cb, &m);
    get_array(r, 10);
    assert_int_equal(atomic_load(&m.calls), 1);
    assert_int_equal(m.ok, 1);
    pool_result_free(r);

    /* CPython's test_async_error_callback: fail("boom") reaches only the
     * error callback, with the task's message. */
    pool_args_str(&a, "boom");
    seen_cb never = { 0 };
    r = pool_apply_async(p, "fail", a.data, a.size, record_cb, record_cb, &bad);
    pool_result *r2 = pool_apply_async(p, "fail", a.data, a.size, record_cb, NULL, &never);
    assert_status(pool_result_get(r, WAIT_S, NULL), POOL_ETASK);
    assert_status(pool_result_get(r2, WAIT_S, NULL), POOL_ETASK);
    assert_int_equal(atomic_load(&bad.calls), 1);
    assert_int_equal(bad.ok, 0);
    assert_contains(bad.error, "boom");
    assert_contains(pool_result_error(r), "boom");
    assert_int_equal(atomic_load(&never.calls), 0); /* callback is for success only */
    assert_int_equal(pool_result_successful(r), 0);
    assert_null(pool_result_value(r));
    pool_result_free(r);
    pool_result_free(r2);
    msgpack_sbuffer_destroy(&a);
}

/* Phenomenon P2: one result-handler thread runs callbacks one at a time. Many
 * quick tasks finishing on two workers would overlap their callbacks if the
 * engine ran them anywhere else. */
static void callbacks_one_at_a_time(void **state)
{
    (void)state;
    enum { N = 60 };
    pool *p = make_pool(2);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    seen_cb s = { 0 };
    pool_result *r[N];
    for (int i = 0; i < N; i++) {
        pool_args_int(&a, i);
        r[i] = pool_apply_async(p, "square", a.data, a.size, record_cb, record_cb, &s);
        assert_non_null(r[i]);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(obj_int(get_ok(r[i])), i * i);
        pool_result_free(r[i]);
    }
    assert_int_equal(atomic_load(&s.calls), N);
    assert_int_equal(atomic_load(&s.max_inside), 1);
    pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.callbacks_run, N);
    msgpack_sbuffer_destroy(&a);
}

/* Unlike CPython (gh-83371), a failing callback is counted and the result
 * handler goes on with the next ones. */
static void callback_error_counted(void **state)
{
    (void)state;
    pool *p = make_pool(2);
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    pool_args_int(&a, 3);
    seen_cb bad = { .fail_with = 1 }, good = { 0 };
    pool_result *r = pool_apply_async(p, "square", a.data, a.size, record_cb, NULL, &bad);
    assert_non_null(r);
    assert_int_not_equal(pool_result_wait(r, WAIT_S), POOL_ETIMEDOUT);
    pool_result *later[10];
    for (int i = 0; i < 10; i++) {
        pool_args_int(&a, i);
        later[i] = pool_apply_async(p, "square", a.data, a.size, record_cb, NULL, &good);
    }
    for (int i = 0; i < 10; i++) {
        assert_int_equal(obj_int(get_ok(later[i])), i * i);
        pool_result_free(later[i]);
    }
    assert_int_equal(atomic_load(&bad.calls), 1);
    assert_int_equal(atomic_load(&good.calls), 10);
    pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.callback_errors, 1);
    assert_int_equal(st.callbacks_run, 11);
    pool_result_free(r);
    msgpack_sbuffer_destroy(&a);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        CASE(callback_in_parent),
        CASE(callbacks_one_at_a_time),
        CASE(callback_error_counted),
        CASE(done_callback),
    };
    return test_main(argc, argv, "test_pool_callbacks", tests, sizeof tests / sizeof tests[0]);
}
