/*
 * chaos_engine.c: fault injection on the engine's API, item by item.
 *
 *   chaos_engine API FAULT SEED [ITEMS]
 *     API    apply_async | map_async | imap | imap_unordered | executor_map | submit
 *     FAULT  none | kill_worker | stop_worker | stop_worker_hold | kill_forkserver |
 *            stop_forkserver | kill_forkserver_first | kill_forkserver_then_worker
 *
 * kill_forkserver_first kills the fork server before the first submission;
 * kill_forkserver_then_worker kills it, then a worker (which cannot be
 * replaced); stop_worker_hold stops one worker and leaves it stopped (only a
 * task time limit can free its task).
 *
 * Why: poolbench's reports count results per strategy; only a client of the
 * engine can say, for EVERY item, whether it got exactly one value (the right
 * one) or exactly one error that says what happened to it. The driver runs
 * ITEMS tasks ("chaos_echo": sleeps a few ms, returns 3x+1) on 3 workers while
 * an injector thread signals workers (pool_worker_pids) or the fork server
 * (pool_forkserver_pid): SIGKILL, or SIGSTOP then, later, SIGCONT or SIGKILL.
 * All waits are bounded by a deadline (CHAOS_DEADLINE seconds, default 8),
 * CHAOS_TASK_TIMEOUT sets the pool's task_timeout (seconds; default none,
 * but 1 s for stop_worker_hold, whose stopped worker only a limit frees),
 * so a hang is reported as lost items instead of hanging the driver; an alarm
 * bounds pool_destroy() too. After destroy it checks that no child, zombie,
 * descriptor or /dev/shm entry is left. The seed (SEED) fixes every random
 * choice (which worker, when, which follow-up), so a failure can be re-run.
 *
 * Output: one line per finding ("FAIL <category>: ...") and a summary line
 * "chaos_engine: API FAULT seed S: N items, V values, E errors, L lost,
 * D duplicated, K kills, S stops". Exit 0 when every check holds, 1 if one
 * failed, 2 on bad usage, 3 when pool_destroy() hung.
 */
#include "pool.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 3
#define MAP_JOBS 8

/* Set once in main (before the injector starts), read-only afterwards. */
static const char *api, *fault;
static unsigned seed;
static long items;
static double deadline; /* pool_now() after which every wait gives up */

/* Per-item tallies: main thread only. */
static int *values, *errors, *wrong;
static int failures;

/* Shared with the injector thread. */
static atomic_int done;
static atomic_int kills, stops;

static void fail(const char *category, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(const char *category, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: %s %s seed %u: ", category, api, fault, seed);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    failures++;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The task: sleeps 2-6 ms (by item), returns 3x+1, so a value proves its item. */
static int chaos_echo(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    if (args->size != 1 || args->ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return pool_task_fail(ctx, "chaos_echo wants one integer");
    uint64_t x = args->ptr[0].via.u64;
    sleep_ms(2 + (long)(x % 5));
    msgpack_pack_uint64(out, 3 * x + 1);
    return 0;
}

/* Does an error message say what happened to the item? */
static bool error_explains(const char *msg)
{
    static const char *words[] = {"worker", "fork server", "forkserver", "pid", "signal",
                                  "terminat", "broken", "killed", "timeout", "timed out"};
    if (!msg || !*msg)
        return false;
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strcasestr(msg, words[i]))
            return true;
    return false;
}

static void record_value(size_t i, const msgpack_object *v)
{
    if (i >= (size_t)items) {
        fail("lost-or-duplicated", "value for item %zu, out of range", i);
        return;
    }
    values[i]++;
    if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != 3 * i + 1)
        wrong[i]++;
}

static void record_error(size_t i, const char *msg)
{
    static int shown;
    if (i >= (size_t)items) {
        fail("lost-or-duplicated", "error for item %zu, out of range: %s", i, msg);
        return;
    }
    errors[i]++;
    if (!error_explains(msg) && shown++ < 3)
        fail("error-message", "item %zu: error does not say what happened: '%s'", i,
             msg ? msg : "(null)");
}

static double remaining(void)
{
    double r = deadline - pool_now();
    return r > 0 ? r : 0;
}

/* ---- the injector ------------------------------------------------------ */

static pid_t pick_worker(pool *p, unsigned *rng)
{
    pid_t pids[WORKERS * 2];
    int n = pool_worker_pids(p, pids, WORKERS * 2);
    return n > 0 ? pids[rand_r(rng) % (unsigned)n] : 0;
}

/* SIGSTOP, then after 100-400 ms SIGCONT or SIGKILL (a coin). */
static void stop_then(pid_t pid, unsigned *rng)
{
    if (kill(pid, SIGSTOP) != 0)
        return;
    atomic_fetch_add(&stops, 1);
    sleep_ms(100 + rand_r(rng) % 300);
    if (rand_r(rng) % 2) {
        kill(pid, SIGCONT);
    } else {
        kill(pid, SIGKILL);
        atomic_fetch_add(&kills, 1);
    }
}

/* Faults that are one event, not a series. */
static bool one_shot(pool *p, unsigned *rng)
{
    pid_t pid;
    if (strcmp(fault, "stop_worker_hold") == 0) {
        if ((pid = pick_worker(p, rng)) > 0 && kill(pid, SIGSTOP) == 0)
            atomic_fetch_add(&stops, 1);
        return true;
    }
    if (strcmp(fault, "kill_forkserver_then_worker") == 0) {
        if (kill(pool_forkserver_pid(p), SIGKILL) == 0)
            atomic_fetch_add(&kills, 1);
        sleep_ms(50);
        if ((pid = pick_worker(p, rng)) > 0 && kill(pid, SIGKILL) == 0)
            atomic_fetch_add(&kills, 1);
        return true;
    }
    return false;
}

static void *injector(void *arg)
{
    pool *p = arg;
    unsigned rng = seed * 2654435761u + 1;
    bool server = strstr(fault, "forkserver") != NULL;
    int budget = server ? 1 : 6;
    sleep_ms(30 + rand_r(&rng) % 80);
    if (one_shot(p, &rng))
        return NULL;
    while (!atomic_load(&done) && budget-- > 0) {
        pid_t pid = server ? pool_forkserver_pid(p) : pick_worker(p, &rng);
        if (pid > 0) {
            if (strncmp(fault, "kill", 4) == 0) {
                if (kill(pid, SIGKILL) == 0)
                    atomic_fetch_add(&kills, 1);
            } else {
                stop_then(pid, &rng);
            }
        }
        sleep_ms(40 + rand_r(&rng) % 120);
    }
    return NULL;
}

/* ---- the APIs ------------------------------------------------------------ */

static void pack_items(msgpack_sbuffer *buf, long from, long n)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, (size_t)n);
    for (long i = from; i < from + n; i++)
        msgpack_pack_uint64(&pk, (uint64_t)i);
}

/* Gets handle r of item i (or the map covering [from, from+n)). */
static void collect(pool_result *r, long from, long n, bool is_map)
{
    const msgpack_object *v = NULL;
    int st = pool_result_get(r, remaining(), &v);
    if (st == POOL_ETIMEDOUT)
        return; /* counted as lost at the end */
    for (long i = from; i < from + n; i++) {
        if (st != POOL_OK)
            record_error((size_t)i, pool_result_error(r));
        else if (!is_map)
            record_value((size_t)i, v);
        else if (v && v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size == (uint32_t)n)
            record_value((size_t)i, &v->via.array.ptr[i - from]);
        else
            record_value((size_t)i, NULL);
    }
}

static void run_apply(pool *p, bool submit)
{
    pool_result **rs = calloc((size_t)items, sizeof *rs);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    for (long i = 0; i < items; i++) {
        pool_args_int(&buf, i);
        rs[i] = submit ? pool_submit(p, "chaos_echo", buf.data, buf.size)
                       : pool_apply_async(p, "chaos_echo", buf.data, buf.size, NULL, NULL, NULL);
        if (!rs[i])
            record_error((size_t)i, pool_last_error());
    }
    if (submit) {
        /* as_completed over the accepted futures. */
        pool_result **ok = calloc((size_t)items, sizeof *ok);
        long *idx = calloc((size_t)items, sizeof *idx), n = 0;
        for (long i = 0; i < items; i++)
            if (rs[i]) {
                ok[n] = rs[i];
                idx[n++] = i;
            }
        pool_iter *it = pool_as_completed(ok, (size_t)n);
        size_t k;
        int st;
        while (it && (st = pool_iter_next(it, remaining(), NULL, &k)) == POOL_OK)
            collect(ok[k], idx[k], 1, false);
        if (it)
            pool_iter_free(it);
        free(ok);
        free(idx);
    } else {
        for (long i = 0; i < items; i++)
            if (rs[i])
                collect(rs[i], i, 1, false);
    }
    for (long i = 0; i < items; i++)
        if (rs[i])
            pool_result_free(rs[i]);
    free(rs);
    msgpack_sbuffer_destroy(&buf);
}

static void run_map(pool *p)
{
    long per = (items + MAP_JOBS - 1) / MAP_JOBS;
    pool_result *rs[MAP_JOBS] = {0};
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    for (int j = 0; j < MAP_JOBS; j++) {
        long from = j * per, n = from + per > items ? items - from : per;
        if (n <= 0)
            break;
        pack_items(&buf, from, n);
        rs[j] = pool_map_async(p, "chaos_echo", buf.data, buf.size, 2, NULL, NULL, NULL);
        if (!rs[j])
            for (long i = from; i < from + n; i++)
                record_error((size_t)i, pool_last_error());
    }
    for (int j = 0; j < MAP_JOBS; j++) {
        long from = j * per, n = from + per > items ? items - from : per;
        if (rs[j]) {
            collect(rs[j], from, n, true);
            pool_result_free(rs[j]);
        }
    }
    msgpack_sbuffer_destroy(&buf);
}

static void run_iter(pool *p)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    pack_items(&buf, 0, items);
    pool_iter *it;
    if (strcmp(api, "executor_map") == 0)
        it = pool_executor_map(p, "chaos_echo", buf.data, buf.size, 1);
    else
        it = pool_imap_array(p, "chaos_echo", buf.data, buf.size, 2, strcmp(api, "imap") == 0);
    if (!it) {
        fail("api", "iterator refused: %s", pool_last_error());
        msgpack_sbuffer_destroy(&buf);
        return;
    }
    for (;;) {
        const msgpack_object *v = NULL;
        size_t k = 0;
        int st = pool_iter_next(it, remaining(), &v, &k);
        if (st == POOL_EEND || st == POOL_ETIMEDOUT)
            break;
        if (st == POOL_OK) {
            record_value(k, v);
        } else if (k == SIZE_MAX) {
            /* The whole iteration ended: items not seen yet will count as lost. */
            printf("note: %s %s seed %u: iteration ended whole: %s\n", api, fault, seed,
                   pool_iter_error(it));
            break;
        } else {
            record_error(k, pool_iter_error(it));
        }
    }
    pool_iter_free(it);
    msgpack_sbuffer_destroy(&buf);
}

/* ---- leftovers ------------------------------------------------------------ */

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Children of this process still in /proc (live or zombie). */
static int count_children(void)
{
    DIR *d = opendir("/proc");
    int n = 0;
    char path[64], line[512];
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%.20s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(line, sizeof line, f)) {
            char *rp = strrchr(line, ')');
            char state;
            int ppid;
            if (rp && sscanf(rp + 2, "%c %d", &state, &ppid) == 2 && ppid == getpid()) {
                printf("note: child %s left, state %c\n", e->d_name, state);
                n++;
            }
        }
        fclose(f);
    }
    closedir(d);
    return n;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL hang: pool_destroy() did not return within 5 s\n";
    if (write(1, msg, sizeof msg - 1) < 0) {
    }
    _exit(3);
}

static void check_items(void)
{
    long lost = 0, dup = 0, bad = 0, v = 0, e = 0;
    for (long i = 0; i < items; i++) {
        int got = values[i] + errors[i];
        v += values[i];
        e += errors[i];
        lost += got == 0;
        dup += got > 1;
        bad += wrong[i] > 0;
        if (got > 1 && dup <= 3)
            fail("lost-or-duplicated", "item %ld: %d values, %d errors", i, values[i], errors[i]);
    }
    if (lost)
        fail(remaining() <= 0 ? "hang" : "lost-or-duplicated",
             "%ld of %ld items got neither a value nor an error%s", lost, items,
             remaining() <= 0 ? " before the deadline (a wait hung)" : "");
    if (dup)
        fail("lost-or-duplicated", "%ld items got more than one outcome", dup);
    if (bad)
        fail("wrong-value", "%ld items got a wrong value", bad);
    printf("chaos_engine: %s %s seed %u: %ld items, %ld values, %ld errors, %ld lost, "
           "%ld duplicated, %d kills, %d stops\n",
           api, fault, seed, items, v, e, lost, dup, atomic_load(&kills), atomic_load(&stops));
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s API FAULT SEED [ITEMS]\n", argv[0]);
        return 2;
    }
    api = argv[1];
    fault = argv[2];
    seed = (unsigned)strtoul(argv[3], NULL, 10);
    items = argc > 4 ? atol(argv[4]) : 300;
    const char *dl = getenv("CHAOS_DEADLINE");
    if (items < 1 || pool_task_register("chaos_echo", chaos_echo, NULL) != POOL_OK) {
        fprintf(stderr, "chaos_engine: bad ITEMS or registry\n");
        return 2;
    }
    values = calloc((size_t)items, sizeof *values);
    errors = calloc((size_t)items, sizeof *errors);
    wrong = calloc((size_t)items, sizeof *wrong);
    int fds0 = count_dir("/proc/self/fd"), shm0 = count_dir("/dev/shm");
    setvbuf(stdout, NULL, _IOLBF, 0);

    pool_options opt;
    pool_options_default(&opt);
    opt.workers = WORKERS;
    /* The pool's task_timeout, in seconds: only a time limit frees the task
     * of a worker left stopped, so stop_worker_hold defaults to 1 s. */
    const char *tt = getenv("CHAOS_TASK_TIMEOUT");
    if (tt)
        opt.task_timeout = atof(tt);
    else if (strcmp(fault, "stop_worker_hold") == 0)
        opt.task_timeout = 1.0;
    pool *p = pool_create(&opt);
    if (!p) {
        fprintf(stderr, "chaos_engine: pool_create: %s\n", pool_last_error());
        return 1;
    }
    deadline = pool_now() + (dl ? atof(dl) : 8.0);
    pthread_t th;
    if (strcmp(fault, "kill_forkserver_first") == 0) {
        if (kill(pool_forkserver_pid(p), SIGKILL) == 0)
            atomic_fetch_add(&kills, 1);
        sleep_ms(100);
    }
    bool injecting = strcmp(fault, "none") != 0 && strcmp(fault, "kill_forkserver_first") != 0;
    if (injecting)
        pthread_create(&th, NULL, injector, p);

    if (strcmp(api, "apply_async") == 0 || strcmp(api, "submit") == 0)
        run_apply(p, strcmp(api, "submit") == 0);
    else if (strcmp(api, "map_async") == 0)
        run_map(p);
    else if (strcmp(api, "imap") == 0 || strcmp(api, "imap_unordered") == 0 ||
             strcmp(api, "executor_map") == 0)
        run_iter(p);
    else {
        fprintf(stderr, "chaos_engine: unknown API '%s'\n", api);
        return 2;
    }
    atomic_store(&done, 1);
    if (injecting)
        pthread_join(th, NULL);
    check_items();

    /* pool_destroy() must end every worker, a stopped one included. */
    signal(SIGALRM, on_alarm);
    alarm(5);
    pool_destroy(p);
    alarm(0);
    sleep_ms(50);
    if (count_children() > 0)
        fail("leftover", "child processes left after pool_destroy()");
    int fds1 = count_dir("/proc/self/fd"), shm1 = count_dir("/dev/shm");
    if (fds1 != fds0)
        fail("leftover", "%d descriptors before pool_create, %d after pool_destroy", fds0, fds1);
    if (shm1 > shm0)
        fail("leftover", "/dev/shm had %d entries, now %d", shm0, shm1);
    free(values);
    free(errors);
    free(wrong);
    return failures ? 1 : 0;
}
