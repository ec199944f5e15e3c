/*
 * test_helpers.h: what every engine test binary shares (tests/engine/test_pool_*.c).
 *
 * Each case runs in a process of its own, so that a crash or a hung pool
 * cannot take the other cases down, and because pool_create() wants a caller
 * with a single thread. main() is therefore a small case runner, test_main():
 *
 *   BINARY --list    prints the case names, one a line
 *   BINARY CASE      runs that case alone, in this process
 *   BINARY           runs every case, each in a forked child
 *
 * tests/run_cases.sh drives the first two forms with a timeout per case.
 *
 * Every wait in a case is bounded (WAIT_S), so a hung engine shows up as a
 * failed assertion that says what it was waiting for, not as a killed case.
 * Assertions never run inside callbacks or tasks: cmocka's failure path
 * longjmps, which is only valid on the test's own thread. Callbacks record
 * what they saw and the test checks it afterwards.
 *
 * Helpers are static inline so that a file using only some of them still
 * builds with -Wall -Wextra -Werror.
 */
#ifndef TEST_HELPERS_H
#define TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"

/* Upper bounds on time are multiplied by $TEST_TIME_SCALE (at least 1), so
 * that the same cases run under valgrind, where run_cases.sh sets it to 10. */
static inline double slack(double seconds)
{
    const char *e = getenv("TEST_TIME_SCALE");
    double k = e ? atof(e) : 1.0;
    return seconds * (k > 1.0 ? k : 1.0);
}

/* Longest wait for anything that should happen; well under run_cases.sh's
 * 60 s per case, so that a hang is reported here, with a reason. */
#define WAIT_S slack(20.0)
/* A case run by the no-argument form is killed after this long. */
#define CASE_LIMIT_S 60

/* The case's pool. The teardown destroys it even after a failed assertion,
 * so that a failing case does not leave workers behind. */
static pool *g_pool;

static inline int case_teardown(void **state)
{
    (void)state;
    if (g_pool) {
        pool_destroy(g_pool);
        g_pool = NULL;
    }
    return 0;
}

/* A case: the function's own name is the case name used by --list. */
#define CASE(fn) { #fn, fn, NULL, case_teardown, NULL }

/* ---- assertions ------------------------------------------------------- */

/* Status codes are compared by name so that a failure reads as a sentence. */
#define assert_status(expr, want)                                                    \
    do {                                                                             \
        int got_ = (expr), want_ = (want);                                           \
        if (got_ != want_)                                                           \
            fail_msg("%s: got %s, want %s (last error: %s)", #expr,                  \
                     pool_status_name(got_), pool_status_name(want_),                \
                     pool_last_error());                                             \
    } while (0)

#define assert_contains(hay, needle)                                                 \
    do {                                                                             \
        const char *h_ = (hay), *n_ = (needle);                                      \
        if (h_ == NULL || strstr(h_, n_) == NULL)                                    \
            fail_msg("%s = \"%s\" does not contain \"%s\"", #hay,                    \
                     h_ ? h_ : "(null)", n_);                                        \
    } while (0)

/* Waits until cond holds, at most WAIT_S; fails naming the condition. */
#define wait_until(cond)                                                             \
    do {                                                                             \
        double until_ = pool_now() + WAIT_S;                                         \
        while (!(cond) && pool_now() < until_)                                       \
            sleep_s(0.005);                                                          \
        if (!(cond))                                                                 \
            fail_msg("still false after %.0f s: %s", (double)WAIT_S, #cond);                 \
    } while (0)

/* A fixed pseudo-random sequence (xorshift64), so that a failing case
 * fails the same way on every run. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static inline uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static inline void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* ---- pools ------------------------------------------------------------ */

static inline pool *make_pool_opt(const pool_options *opt)
{
    pool *p = pool_create(opt);
    if (p == NULL)
        fail_msg("pool_create: %s", pool_last_error());
    g_pool = p;
    return p;
}

static inline pool *make_pool(int workers)
{
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = workers;
    return make_pool_opt(&opt);
}

/* Destroys the case's pool now (for cases that make more than one). */
static inline void drop_pool(void)
{
    if (g_pool) {
        pool_destroy(g_pool);
        g_pool = NULL;
    }
}

/* The descriptors this process holds (the entries of /proc/self/fd, less
 * the one opendir reads it through); -1 if it cannot be read. A pool must
 * leave this count as it found it. */
static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

static inline bool has_pid(const pid_t *pids, int n, pid_t pid)
{
    for (int i = 0; i < n; i++)
        if (pids[i] == pid)
            return true;
    return false;
}

/* ---- values ----------------------------------------------------------- */

/* An integer result, whichever of msgpack's two integer types carries it. */
#define obj_int(o) obj_int_at((o), __FILE__, __LINE__)
static inline int64_t obj_int_at(const msgpack_object *o, const char *file, int line)
{
    if (o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)o->via.u64;
    if (o != NULL && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o->via.i64;
    print_error("expected an integer, got %s (msgpack type %d)\n",
                o ? "another type" : "NULL", o ? (int)o->type : -1);
    _fail(file, line);
    return 0;
}

/* The value of a job that must succeed, waiting at most WAIT_S. */
#define get_ok(r) get_ok_at((r), __FILE__, __LINE__)
static inline const msgpack_object *get_ok_at(pool_result *r, const char *file, int line)
{
    const msgpack_object *v = NULL;
    if (r == NULL) {
        print_error("no result handle (last error: %s)\n", pool_last_error());
        _fail(file, line);
    }
    int rc = pool_result_get(r, WAIT_S, &v);
    if (rc != POOL_OK) {
        const char *e = pool_result_error(r);
        print_error("pool_result_get: %s (%s)\n", pool_status_name(rc),
                    e ? e : pool_last_error());
        _fail(file, line);
    }
    return v;
}

/* The array value of a map, checked for its length. */
#define get_array(r, n) get_array_at((r), (n), __FILE__, __LINE__)
static inline const msgpack_object_array *get_array_at(pool_result *r, uint32_t n,
                                                       const char *file, int line)
{
    const msgpack_object *v = get_ok_at(r, file, line);
    if (v == NULL || v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size != n) {
        print_error("expected an array of %u values, got %s of %u\n", n,
                    v && v->type == MSGPACK_OBJECT_ARRAY ? "an array" : "another value",
                    v && v->type == MSGPACK_OBJECT_ARRAY ? v->via.array.size : 0);
        _fail(file, line);
    }
    return &v->via.array;
}

/* sleep() returns nil; get() may hand it over as a nil object or as NULL. */
static inline bool is_nil(const msgpack_object *o)
{
    return o == NULL || o->type == MSGPACK_OBJECT_NIL;
}

/* Packs the array [from, from+1, ..., from+n-1]. */
static inline void pack_range(msgpack_sbuffer *buf, int64_t from, uint32_t n)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++)
        msgpack_pack_int64(&pk, from + (int64_t)i);
}

/* Packs the array of the n given integers. */
static inline void pack_ints(msgpack_sbuffer *buf, const int64_t *v, uint32_t n)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++)
        msgpack_pack_int64(&pk, v[i]);
}

/* For tasks: the i-th positional argument as an integer, -1 if it is not one. */
static inline int task_int_arg(const msgpack_object_array *args, uint32_t i, int64_t *out)
{
    if (i >= args->size)
        return -1;
    const msgpack_object *o = &args->ptr[i];
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *out = (int64_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = o->via.i64;
    else
        return -1;
    return 0;
}

/* ---- the case runner --------------------------------------------------- */

static inline int run_one(const char *group, const struct CMUnitTest *t)
{
    return _cmocka_run_group_tests(group, t, 1, NULL, NULL) == 0 ? 0 : 1;
}

static inline int test_main(int argc, char **argv, const char *group,
                            const struct CMUnitTest *tests, size_t n)
{
    /* Line-buffered, so that cmocka's stdout and stderr interleave in order
     * when both go to one pipe. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 || (argc == 2 && argv[1][0] == '-' && strcmp(argv[1], "--list") != 0)) {
        fprintf(stderr, "usage: %s [--list | CASE]\n", argv[0]);
        return 2;
    }
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    if (argc == 2) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(tests[i].name, argv[1]) == 0)
                return run_one(group, &tests[i]);
        fprintf(stderr, "%s: no case named %s (see --list)\n", argv[0], argv[1]);
        return 2;
    }

    /* No argument: every case in a child of its own. Forking here is safe:
     * no pool exists yet, so this process has one thread. */
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == -1) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            alarm((unsigned)slack(CASE_LIMIT_S));
            _exit(run_one(group, &tests[i]));
        }
        int st;
        while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            failed++;
            if (WIFSIGNALED(st))
                printf("[  CRASH   ] %s: killed by signal %d\n", tests[i].name,
                       WTERMSIG(st));
        }
    }
    printf("%zu passed, %zu failed\n", n - failed, failed);
    return failed ? 1 : 0;
}

#endif
