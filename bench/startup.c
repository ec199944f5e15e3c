/*
 * startup.c: what a pool's start-up costs per worker, path by path (issue 14).
 *
 * A pool starts in steps (docs/architecture.md): pool_create forks the fork
 * server (one fork of the caller) and starts the pool's two threads, then
 * asks the server for every worker; the server forks each (a pipe, a fork,
 * a STARTED message carrying the pipe's read end) one after the other, and
 * each worker, once forked, runs the initializer if there is one and then
 * waits on the shared queue. There is no exec anywhere: a worker is a fork
 * of the fork server, which is a fork of the caller.
 *
 * Measured here, for W workers (median of R pools each):
 *   create   pool_create returning (the fork server's fork, the threads);
 *   started  pool_create until the pool has heard STARTED from all W
 *            (pool_stats.workers_started: every worker forked);
 *   ready    pool_create until W tasks of sleep(S), chunksize 1, have all
 *            returned, less S: each worker took one, so each was forked,
 *            initialized and reading the queue (an upper bound on "all
 *            ready": it includes one task's round trip);
 *   init     the same ready with an initializer (the built-in identity);
 *   teardown pool_close + pool_join + pool_destroy.
 * Per worker: the slope of started and ready between the smallest and the
 * largest W. Beside them the floor: fork + _exit + waitpid of this process,
 * and of a child as small as the fork server (the fork server's own fork
 * of a worker costs what its size costs: the page tables it copies).
 *
 *   build/startup [R]      (default 15 pools per point)
 *
 * Figures, not pass/fail: exit 1 only when a pool cannot be made.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLEEP_S 0.05

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct one_start {
    double create, started, ready, teardown;
} one_start;

/* Polls the pool's counters until every worker has started (bounded). */
static double wait_started(pool *p, int w, double t0)
{
    pool_stats st;
    for (;;) {
        pool_get_stats(p, &st);
        if ((int)st.workers_started >= w || pool_now() - t0 > 10)
            return pool_now() - t0;
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
}

/* One pool of w workers: its steps' times. -1 when it could not be made. */
static int start_once(int w, bool init, one_start *o)
{
    pool_options opt;
    pool_options_default(&opt);
    opt.workers = w;
    static const char one_arg[] = {(char)0x91, 0x01}; /* [1] */
    if (init) {
        opt.initializer = "identity";
        opt.initargs = one_arg;
        opt.initargs_len = sizeof one_arg;
    }
    fflush(stdout); /* pool_create forks */
    double t0 = pool_now();
    pool *p = pool_create(&opt);
    if (p == NULL) {
        fprintf(stderr, "startup: pool_create: %s\n", pool_last_error());
        return -1;
    }
    o->create = pool_now() - t0;
    o->started = wait_started(p, w, t0);
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &items, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, (size_t)w);
    for (int i = 0; i < w; i++)
        msgpack_pack_double(&pk, SLEEP_S);
    pool_result *r = pool_map(p, "sleep", items.data, items.size, 1);
    int st = r ? pool_result_get(r, 30, NULL) : POOL_EINVAL;
    o->ready = pool_now() - t0 - SLEEP_S;
    pool_result_free(r);
    msgpack_sbuffer_destroy(&items);
    double t1 = pool_now();
    pool_close(p);
    pool_join(p);
    pool_destroy(p);
    o->teardown = pool_now() - t1;
    return st == POOL_OK ? 0 : -1;
}

/* fork + _exit + waitpid, the floor of any worker's start. */
static double fork_floor(int reps)
{
    double *v = calloc((size_t)reps, sizeof *v);
    for (int i = 0; v && i < reps; i++) {
        double t = pool_now();
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        waitpid(pid, NULL, 0);
        v[i] = pool_now() - t;
    }
    double m = v ? median(v, reps) : 0;
    free(v);
    return m;
}

static void row(const char *what, int w, const double *ms)
{
    printf("%-22s %3d %9.3f %9.3f %9.3f %9.3f\n", what, w, ms[0], ms[1], ms[2], ms[3]);
}

/* Every W, without and with an initializer; *slope_* the per-worker cost
 * (ms) of started and ready between the first and last W. */
static int sweep(int reps, bool init, double *slope_started, double *slope_ready)
{
    static const int ws[] = {1, 2, 4, 8, 16};
    const int nw = sizeof ws / sizeof ws[0];
    double first[2] = {0}, last[2] = {0};
    for (int k = 0; k < nw; k++) {
        double c[64], s[64], r[64], t[64];
        for (int i = 0; i < reps && i < 64; i++) {
            one_start o;
            if (start_once(ws[k], init, &o) != 0)
                return -1;
            c[i] = o.create, s[i] = o.started, r[i] = o.ready, t[i] = o.teardown;
        }
        int n = reps < 64 ? reps : 64;
        double ms[4] = {1e3 * median(c, n), 1e3 * median(s, n), 1e3 * median(r, n),
                        1e3 * median(t, n)};
        row(init ? "with initializer" : "no initializer", ws[k], ms);
        if (k == 0)
            first[0] = ms[1], first[1] = ms[2];
        last[0] = ms[1], last[1] = ms[2];
    }
    *slope_started = (last[0] - first[0]) / (ws[nw - 1] - ws[0]);
    *slope_ready = (last[1] - first[1]) / (ws[nw - 1] - ws[0]);
    return 0;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 15;
    if (reps < 1 || reps > 64) {
        fprintf(stderr, "usage: startup [R]   (1 to 64 pools per point)\n");
        return 2;
    }
    printf("pool start-up, median of %d pools per row, ms (measured here, %ld cores):\n", reps,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("%-22s %3s %9s %9s %9s %9s\n", "path", "W", "create", "started", "ready",
           "teardown");
    double ss, sr, iss, isr;
    if (sweep(reps, false, &ss, &sr) != 0 || sweep(reps, true, &iss, &isr) != 0)
        return 1;
    double ff = fork_floor(50);
    /* The fork itself grows with the caller: a fork copies the page tables
     * of every page the caller has touched, and the fork server (a fork of
     * the caller) passes its size on to every worker it forks. */
    size_t big = (size_t)256 << 20;
    char *ballast = malloc(big);
    if (ballast)
        memset(ballast, 1, big);
    double sb, rb;
    printf("\nthe same with 256 MiB touched in the caller:\n");
    if (ballast && sweep(reps, false, &sb, &rb) != 0)
        return 1;
    double ffb = fork_floor(20);
    free(ballast);
    /* Memory the caller freed but its allocator kept (256 MiB of small
     * blocks under one still in use: the heap cannot shrink from the top):
     * pool_create hands it back first (malloc_trim), so neither the fork
     * server nor any worker copies its page tables. */
    enum { SMALL = 4000, NSMALL = (256 << 20) / SMALL };
    char **blocks = malloc(NSMALL * sizeof *blocks);
    for (int i = 0; blocks && i < NSMALL; i++)
        if ((blocks[i] = malloc(SMALL)) != NULL)
            memset(blocks[i], 1, SMALL);
    for (int i = 0; blocks && i < NSMALL - 1; i++)
        free(blocks[i]);
    double sf = 0, rf = 0;
    printf("\nthe same after freeing 256 MiB of small blocks (the allocator keeps them):\n");
    if (blocks && sweep(reps, false, &sf, &rf) != 0)
        return 1;
    if (blocks)
        free(blocks[NSMALL - 1]);
    free(blocks);
    printf("\nper worker (slope from W=1 to W=16), ms:\n");
    printf("  forked (STARTED heard)        %.3f\n", ss);
    printf("  ready (took a task)           %.3f\n", sr);
    printf("  ready, with an initializer    %.3f  (the initializer: %+.3f)\n", isr, isr - sr);
    printf("  floor: fork+_exit+waitpid of this process  %.3f\n", 1e3 * ff);
    printf("  not the fork itself: ready - floor = %.3f per worker\n", sr - 1e3 * ff);
    if (ballast) {
        printf("  with 256 MiB in the caller: ready %.3f per worker; floor %.3f\n", rb, 1e3 * ffb);
    }
    printf("  after freeing 256 MiB of small blocks: ready %.3f per worker\n", rf);
    return 0;
}
