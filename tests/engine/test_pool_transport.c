/*
 * test_pool_transport.c: the transport seam (impls/engine/pool_transport.h),
 * issue 14. The other engine suites run whole on both transports (make check
 * runs them twice); these cases test what only the seam has:
 *
 *   - the choice: pool_options.transport names one, POOL_TRANSPORT_DEFAULT
 *     takes POOLBENCH_TRANSPORT (else the socket), a bad kind or a bad
 *     variable is refused with a message naming the valid ones;
 *   - messages larger than every buffer of both transports (the socket's
 *     fragments, the shm task ring of 4 MiB and result rings of 128 KiB)
 *     arrive whole, both ways;
 *   - a worker SIGKILLed while it takes a message that streams through the
 *     shm task ring (claimed, partly read) fails exactly that job naming its
 *     pid, and the ring stays usable: the next holder skips the rest of the
 *     message (msg_end), and later jobs run;
 *   - an idle shm worker waits for a message OUTSIDE the task ring's lock:
 *     stopped there (SIGSTOP), it holds up no other worker even when no
 *     time limit would ever kill it; SIGKILLed there, it loses nothing (no
 *     job fails) and counts as exactly one death.
 *
 * Every wait is bounded (WAIT_S); no case asserts a time.
 */
#include "test_helpers.h"

#include "pool_internal.h"

#include <pthread.h>

static pool *make_pool_tr(int workers, enum pool_transport_kind kind)
{
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = workers;
    opt.transport = kind;
    return make_pool_opt(&opt);
}

/* A packed argument array [s] where s is a string of `len` bytes. */
static void pack_big_str(msgpack_sbuffer *sb, size_t len, char fill)
{
    char *s = malloc(len);
    assert_non_null(s);
    for (size_t i = 0; i < len; i++)
        s[i] = (char)(fill + (char)(i % 23));
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_str(&pk, len);
    msgpack_pack_str_body(&pk, s, len);
    free(s);
}

/* ---- the choice -------------------------------------------------------------- */

static void transport_named(void **state)
{
    (void)state;
    static const struct { enum pool_transport_kind kind; const char *name; } k[] = {
        {POOL_TRANSPORT_SOCKET, "socket"}, {POOL_TRANSPORT_SHM, "shm"}};
    for (size_t i = 0; i < 2; i++) {
        pool *p = make_pool_tr(2, k[i].kind);
        assert_string_equal(pool_transport_name(p), k[i].name);
        msgpack_sbuffer a;
        msgpack_sbuffer_init(&a);
        pool_args_int(&a, 7);
        pool_result *r = pool_apply(p, "square", a.data, a.size);
        assert_int_equal(obj_int(get_ok(r)), 49);
        pool_result_free(r);
        msgpack_sbuffer_destroy(&a);
        drop_pool();
    }
}

static void transport_default_from_env(void **state)
{
    (void)state;
    const char *env = getenv("POOLBENCH_TRANSPORT");
    pool *p = make_pool(1); /* pool_options_default: POOL_TRANSPORT_DEFAULT */
    assert_string_equal(pool_transport_name(p), env && *env ? env : "socket");
    drop_pool();
    setenv("POOLBENCH_TRANSPORT", "shm", 1);
    p = make_pool(1);
    assert_string_equal(pool_transport_name(p), "shm");
    drop_pool();
    setenv("POOLBENCH_TRANSPORT", "socket", 1);
    p = make_pool(1);
    assert_string_equal(pool_transport_name(p), "socket");
}

static void transport_bad_refused(void **state)
{
    (void)state;
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = 1;
    opt.transport = (enum pool_transport_kind)99;
    assert_null(pool_create(&opt));
    assert_int_equal(pool_last_status(), POOL_EINVAL);
    assert_contains(pool_last_error(), "POOL_TRANSPORT_SHM");
    setenv("POOLBENCH_TRANSPORT", "carrier-pigeon", 1);
    opt.transport = POOL_TRANSPORT_DEFAULT;
    assert_null(pool_create(&opt));
    assert_int_equal(pool_last_status(), POOL_EINVAL);
    assert_contains(pool_last_error(), "'carrier-pigeon' is not a transport (valid: socket, shm)");
    assert_int_equal(pool_transport_parse("shm"), POOL_TRANSPORT_SHM);
    assert_int_equal(pool_transport_parse("socket"), POOL_TRANSPORT_SOCKET);
    assert_int_equal(pool_transport_parse("SHM"), -1);
}

/* ---- sizes ----------------------------------------------------------------------- */

/* identity of a 9 MiB string, and a map whose one result frame is ~2 MiB. */
static void big_messages_both_ways(void **state)
{
    (void)state;
    const size_t big = 9u << 20;
    msgpack_sbuffer a;
    pack_big_str(&a, big, 'a');
    for (int k = POOL_TRANSPORT_SOCKET; k <= POOL_TRANSPORT_SHM; k++) {
        pool *p = make_pool_tr(2, (enum pool_transport_kind)k);
        pool_result *r = pool_apply(p, "identity", a.data, a.size);
        const msgpack_object *v = get_ok(r);
        assert_int_equal(v->type, MSGPACK_OBJECT_STR);
        assert_int_equal(v->via.str.size, big);
        /* a.data: array header (1 B), str32 header (5 B), then the bytes */
        assert_memory_equal(v->via.str.ptr, a.data + 6, big);
        pool_result_free(r);
        /* 2000 items of 1 KiB in 2 chunks: each result frame ~1 MiB. */
        msgpack_sbuffer items;
        msgpack_packer pk;
        msgpack_sbuffer_init(&items);
        msgpack_packer_init(&pk, &items, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 2000);
        for (int i = 0; i < 2000; i++) {
            msgpack_pack_str(&pk, 1024);
            msgpack_pack_str_body(&pk, a.data + 6 + i, 1024);
        }
        pool_result *m = pool_map_async(p, "identity", items.data, items.size, 1000, NULL, NULL,
                                        NULL);
        const msgpack_object_array *arr = get_array(m, 2000);
        for (int i = 0; i < 2000; i++)
            assert_memory_equal(arr->ptr[i].via.str.ptr, a.data + 6 + i, 1024);
        pool_result_free(m);
        msgpack_sbuffer_destroy(&items);
        drop_pool();
    }
    msgpack_sbuffer_destroy(&a);
}

/* ---- a death inside a take ------------------------------------------------------------ */

/* The first worker seen holding a chunk (its slot names a job), polled
 * without sleeping so that the kill lands early in the take; 0 if none. */
static pid_t first_holder(pool *p)
{
    double until = pool_now() + WAIT_S;
    while (pool_now() < until)
        for (int i = 0; i < pool_workers(p); i++)
            if (atomic_load(&pool_slot(p, i)->job) != 0)
                return atomic_load(&pool_slot(p, i)->pid);
    return 0;
}

/* pool_apply checks and copies its 48 MiB argument for a good part of a
 * second, during which a worker may already run it: so it is called on a
 * thread of its own while the case watches the slots. */
struct submit {
    pool *p;
    const msgpack_sbuffer *a;
    pool_result *r;
};

static void *submit_big(void *arg)
{
    struct submit *s = arg;
    s->r = pool_apply(s->p, "identity", s->a->data, s->a->size);
    return NULL;
}

static void shm_worker_killed_mid_take(void **state)
{
    (void)state;
    msgpack_sbuffer a, sq;
    pack_big_str(&a, 48u << 20, 'k'); /* 12 times the task ring: read as it is written */
    msgpack_sbuffer_init(&sq);
    pool_args_int(&sq, 12);
    pool *p = make_pool_tr(2, POOL_TRANSPORT_SHM);
    for (int round = 0; round < 3; round++) {
        struct submit sub = {p, &a, NULL};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, submit_big, &sub), 0);
        pid_t pid = first_holder(p);
        sleep_s(0.002); /* past the claim: the 48 MiB take lasts tens of ms */
        if (pid > 0)
            kill(pid, SIGKILL); /* most often mid-take: claimed, the body partly read */
        pthread_join(th, NULL);
        assert_true(pid > 0);
        assert_non_null(sub.r);
        /* Killed after its claim: the chunk fails naming the pid. Killed
         * between the claim and the take (pool_transport.h, rule 2), the
         * message stayed whole and another worker ran it too: the job keeps
         * whichever came first, so a value it has is the right one. */
        const msgpack_object *v = NULL;
        int rc = pool_result_get(sub.r, WAIT_S, &v);
        if (rc == POOL_OK) {
            assert_int_equal(v->via.str.size, 48u << 20);
            assert_memory_equal(v->via.str.ptr, a.data + 6, 48u << 20);
        } else {
            assert_status(rc, POOL_EWORKER);
            char want[64];
            snprintf(want, sizeof want, "(pid %d) was killed by signal 9", (int)pid);
            assert_contains(pool_result_error(sub.r), want);
        }
        pool_result_free(sub.r);
        /* The ring is whole again: later jobs run, on the replacement too. */
        for (int i = 0; i < 4; i++) {
            pool_result *s = pool_apply(p, "square", sq.data, sq.size);
            assert_int_equal(obj_int(get_ok(s)), 144);
            pool_result_free(s);
        }
    }
    pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.worker_deaths, 3);
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&sq);
}

/* ---- idle workers wait outside the lock (shm) ---------------------------------------- */

/* Whether no slot holds a chunk or the task ring's lock: idle shm workers
 * wait outside it (before, one waited holding it, and this never held). */
static bool idle_outside_lock(pool *p)
{
    for (int i = 0; i < pool_workers(p); i++)
        if (atomic_load(&pool_slot(p, i)->job) != 0 || atomic_load(&pool_slot(p, i)->lock_at) != 0.0)
            return false;
    return true;
}

/* Until every slot is idle, then a while more, so that the workers are
 * past their look (SPIN_S) and asleep. */
static void settle_idle(pool *p)
{
    wait_until(idle_outside_lock(p));
    sleep_s(0.05);
}

/* square(x) by pool_apply, n times, each within WAIT_S. */
static void apply_squares(pool *p, int n)
{
    msgpack_sbuffer a;
    msgpack_sbuffer_init(&a);
    for (int i = 0; i < n; i++) {
        pool_args_int(&a, i);
        pool_result *r = pool_apply(p, "square", a.data, a.size);
        assert_int_equal(obj_int(get_ok(r)), i * i);
        pool_result_free(r);
    }
    msgpack_sbuffer_destroy(&a);
}

/* No time limit: a stopped worker is never killed. Each of the two idle
 * workers is stopped in turn while the other runs tasks, so that whichever
 * waited nearest to the ring (before, the one holding the lock while it
 * waited: the tasks then hung) is stopped once. */
static void shm_stopped_idle_worker_blocks_nobody(void **state)
{
    (void)state;
    pool *p = make_pool_tr(2, POOL_TRANSPORT_SHM);
    pid_t w[2];
    wait_until(pool_worker_pids(p, w, 2) == 2);
    apply_squares(p, 4);
    for (int k = 0; k < 2; k++) {
        settle_idle(p);
        assert_int_equal(kill(w[k], SIGSTOP), 0);
        apply_squares(p, 8); /* all by the other worker */
        assert_int_equal(kill(w[k], SIGCONT), 0);
    }
    pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.worker_deaths, 0);
    pid_t now[2];
    assert_int_equal(pool_worker_pids(p, now, 2), 2);
    assert_true(has_pid(now, 2, w[0]) && has_pid(now, 2, w[1]));
}

/* An idle worker SIGKILLed while it waits: no job fails (it held none and
 * took none), the tasks after run, and exactly that death is counted. */
static void shm_idle_worker_killed_loses_nothing(void **state)
{
    (void)state;
    pool *p = make_pool_tr(3, POOL_TRANSPORT_SHM);
    for (int round = 0; round < 4; round++) {
        pid_t w[3];
        wait_until(pool_worker_pids(p, w, 3) == 3);
        settle_idle(p);
        assert_int_equal(kill(w[round % 3], SIGKILL), 0);
        apply_squares(p, 12);
    }
    pool_stats st;
    wait_until((pool_get_stats(p, &st), st.worker_deaths >= 4));
    sleep_s(0.05); /* none counted twice, none late */
    pool_get_stats(p, &st);
    assert_int_equal(st.worker_deaths, 4);
    assert_int_equal(st.tasks_failed, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        CASE(transport_named),
        CASE(transport_default_from_env),
        CASE(transport_bad_refused),
        CASE(big_messages_both_ways),
        CASE(shm_worker_killed_mid_take),
        CASE(shm_stopped_idle_worker_blocks_nobody),
        CASE(shm_idle_worker_killed_loses_nothing),
    };
    return test_main(argc, argv, "pool_transport", tests, sizeof tests / sizeof *tests);
}
