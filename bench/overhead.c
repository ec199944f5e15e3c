/*
 * overhead.c: what one trivial task costs through each pool API (phenomenon P6).
 *
 * Document 002 found that 20 000 tasks of `a * a` on 6 workers take 0.45 s with
 * map_async but 3 s with apply_async and 4 s with imap. The task is free; the
 * APIs differ in messages per task: map_async sends one per chunk of
 * ceil(n / (4 w)) items, apply_async, imap(chunksize 1) and the executor one per
 * task, and sync apply waits a whole round trip before sending the next. So
 * time ~= startup + messages x cost per message.
 *
 * Each API runs the built-in task "square" n times on a fresh pool. "Wall"
 * spans pool_create .. pool_join, as in the document's programs and so in the
 * CPython figures we compare with; "setup" is the part outside the
 * submit/collect loop. A bare pipe round trip between two processes is timed
 * too: one message there and back is the floor for any process pool, and sync
 * apply is one round trip per task plus the engine's bookkeeping.
 *
 * imap hands its whole input over at the call, as CPython's does (P25), so
 * with one message per task it should cost what map_async with chunksize 1
 * costs (CPython: 31.8 and 31.9 us per task, issue 12); both are printed,
 * and imap with a buffer of 2 * workers chunks (buffersize, the bounded
 * shape), whose producer waits on the consumer.
 *
 * Every result is checked (square(i) == i*i). A missed target is reported, not
 * failed: exit 1 only when something errs, 2 on bad usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "pool.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OVH_TIMEOUT 60.0 /* per wait: a hung engine must not hang the benchmark */
#define OVH_PIPE_MSG 16  /* bytes per pipe round trip: about one small task message */
#define OVH_REF_N 20000  /* the workload of the CPython figures */
#define OVH_REF_W 6

enum { OVH_APPLY, OVH_ASYNC_CB, OVH_MAP_ASYNC, OVH_MAP_ASYNC1, OVH_IMAP, OVH_IMAP_BUF,
       OVH_IMAP_UNORD, OVH_EXEC_SUBMIT, OVH_EXEC_MAP, OVH_NAPI };

/* One row of the report, written by the main thread only. */
typedef struct ovh_row {
    double wall, work;  /* seconds: pool_create..pool_join, first submit..last result */
    uint64_t messages;  /* pool_stats.messages_sent */
    long errors;        /* wrong values, failed tasks, missing results */
    bool ran;
} ovh_row;

/* What an API run works with, made before the clock starts (input, not cost). */
typedef struct ovh_run {
    pool *p;
    long n;
    int api;
    msgpack_sbuffer items; /* the packed array 0..n-1, for map-like APIs */
    msgpack_sbuffer args;  /* scratch for one task's packed (i) */
    pool_result **rs;      /* n handles, for the apply_async and submit APIs */
} ovh_run;

typedef struct ovh_api {
    const char *name, *label;
    long (*run)(ovh_run *r);      /* returns the number of bad results */
    double cpython;               /* CPython 3.11 seconds for n=20000, w=6 (PHENOMENA.md P6) */
    double target;                /* required speed-up over CPython, 0 if none */
} ovh_api;

static bool ovh_is_square(const msgpack_object *v, uint64_t i)
{
    return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 == i * i;
}

static long ovh_apply(ovh_run *r)
{
    long errors = 0;
    for (long i = 0; i < r->n; i++) {
        const msgpack_object *v = NULL;
        pool_args_int(&r->args, i);
        pool_result *h = pool_apply(r->p, "square", r->args.data, r->args.size);
        errors += !h || pool_result_get(h, OVH_TIMEOUT, &v) != POOL_OK ||
                  !ovh_is_square(v, (uint64_t)i);
        if (h)
            pool_result_free(h);
    }
    return errors;
}

/* The callback runs on the result-handler thread while main waits, hence the
 * atomic; udata carries the task index itself, so n callbacks allocate nothing.
 * It is the error callback too: a failed job has no value. */
static atomic_long ovh_cb_ok;

static int ovh_on_done(pool_result *r, void *udata, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    if (ovh_is_square(pool_result_value(r), (uintptr_t)udata))
        atomic_fetch_add(&ovh_cb_ok, 1);
    return 0;
}

static long ovh_async_callback(ovh_run *r)
{
    long errors = 0, n = r->n;
    atomic_store(&ovh_cb_ok, 0);
    for (long i = 0; i < n; i++) {
        pool_args_int(&r->args, i);
        r->rs[i] = pool_apply_async(r->p, "square", r->args.data, r->args.size, ovh_on_done,
                                    ovh_on_done, (void *)(uintptr_t)i);
    }
    /* Results come in completion order, so the last submitted need not be the
     * last done: wait for each (nearly all are ready by the time we ask). */
    for (long i = 0; i < n; i++)
        errors += !r->rs[i] || pool_result_wait(r->rs[i], OVH_TIMEOUT) != POOL_OK;
    /* A job's callback has run before its handle is ready: the count is final. */
    long ok = atomic_load(&ovh_cb_ok);
    return errors > n - ok ? errors : n - ok;
}

static long ovh_map_async(ovh_run *r)
{
    const msgpack_object *v = NULL;
    long errors = 0;
    long chunksize = r->api == OVH_MAP_ASYNC1 ? 1 : 0;
    pool_result *h = pool_map_async(r->p, "square", r->items.data, r->items.size, chunksize,
                                    NULL, NULL, NULL);
    if (!h || pool_result_get(h, OVH_TIMEOUT, &v) != POOL_OK || !v ||
        v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size != (uint32_t)r->n)
        errors = r->n;
    else
        for (long i = 0; i < r->n; i++)
            errors += !ovh_is_square(&v->via.array.ptr[i], (uint64_t)i);
    if (h)
        pool_result_free(h);
    return errors;
}

/* imap, imap_unordered and executor map over the packed range, chunksize 1:
 * one message per item however the input is fed. Ordered ones check order too. */
static long ovh_iterate(ovh_run *r)
{
    long errors = 0, seen = 0, n = r->n;
    bool ordered = r->api != OVH_IMAP_UNORD;
    const void *items = r->items.data;
    pool_imap_opts o = {.chunksize = 1, .ordered = ordered};
    if (r->api == OVH_IMAP_BUF)
        o.buffersize = 2L * pool_workers(r->p);
    pool_iter *it = r->api == OVH_EXEC_MAP
                        ? pool_executor_map_opt(r->p, "square", items, r->items.size, &o)
                        : pool_imap_array_opt(r->p, "square", items, r->items.size, &o);
    for (int rc; it && seen <= n; seen++) {
        const msgpack_object *v = NULL;
        size_t idx = 0;
        if ((rc = pool_iter_next(it, OVH_TIMEOUT, &v, &idx)) == POOL_EEND)
            break;
        if (rc != POOL_OK && rc != POOL_ETASK && rc != POOL_EWORKER) {
            fprintf(stderr, "overhead: iterator: %s: %s\n", pool_status_name(rc),
                    pool_last_error());
            break;
        }
        /* A failed item (ETASK, EWORKER) counts, and the iteration goes on. */
        errors += rc != POOL_OK || !ovh_is_square(v, idx) || (ordered && idx != (size_t)seen);
    }
    if (it)
        pool_iter_free(it);
    /* Too many items count as one error; too few, one per missing item. */
    return errors + (seen > n ? 1 : n - seen);
}

static long ovh_executor_submit(ovh_run *r)
{
    long seen = 0, errors = 0, n = r->n, i;
    for (i = 0; i < n; i++) {
        pool_args_int(&r->args, i);
        if (!(r->rs[i] = pool_submit(r->p, "square", r->args.data, r->args.size)))
            break;
    }
    pool_iter *it = i == n ? pool_as_completed(r->rs, (size_t)n) : NULL; /* needs them all */
    for (size_t idx = 0; it && seen < n && pool_iter_next(it, OVH_TIMEOUT, NULL, &idx) == POOL_OK;
         seen++)
        errors += idx >= (size_t)n || !ovh_is_square(pool_result_value(r->rs[idx]), idx);
    if (it)
        pool_iter_free(it);
    return errors + (n - seen);
}

static const ovh_api ovh_apis[OVH_NAPI] = {
    { "apply", "apply (sync)", ovh_apply, 5.69, 0 },
    { "async_callback", "apply_async+callback", ovh_async_callback, 0.652, 20 },
    { "map_async", "map_async (chunk 0)", ovh_map_async, 0.037, 5 },
    { "map_async1", "map_async (chunk 1)", ovh_map_async, 0, 0 },
    { "imap", "imap (chunk 1)", ovh_iterate, 0.528, 20 },
    { "imap_buffered", "imap (1, buf 2w)", ovh_iterate, 0, 0 },
    { "imap_unordered", "imap_unordered (1)", ovh_iterate, 0.562, 0 },
    { "executor_submit", "exec submit+as_compl", ovh_executor_submit, 2.31, 0 },
    { "executor_map", "exec map (chunk 1)", ovh_iterate, 2.08, 0 },
};

/* One API on a fresh pool, so that no API inherits warm workers or a busy queue. */
static int ovh_measure(int api, long n, int workers, ovh_row *row)
{
    ovh_run r = { .n = n, .api = api, .rs = calloc((size_t)n, sizeof(pool_result *)) };
    msgpack_packer pk;
    pool_options opt;
    pool_stats st;
    int rc = POOL_ESYS;
    msgpack_sbuffer_init(&r.args);
    msgpack_sbuffer_init(&r.items);
    msgpack_packer_init(&pk, &r.items, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, (size_t)n);
    for (long i = 0; i < n; i++)
        msgpack_pack_int64(&pk, i);
    pool_options_default(&opt);
    opt.workers = workers;
    fflush(stdout); /* pool_create forks: no child may inherit buffered output */
    double t0 = pool_now();
    if (!r.rs || !(r.p = pool_create(&opt)))
        goto out;
    double t1 = pool_now();
    row->errors = ovh_apis[api].run(&r);
    double t2 = pool_now();
    if ((rc = pool_close(r.p)) == POOL_OK)
        rc = pool_join(r.p);
    double t3 = pool_now();
    pool_get_stats(r.p, &st);
    pool_destroy(r.p);
    *row = (ovh_row){ t3 - t0, t2 - t1, st.messages_sent, row->errors, true };
out:
    if (rc != POOL_OK)
        fprintf(stderr, "overhead: %s: %s\n", ovh_apis[api].name, pool_last_error());
    for (long i = 0; r.rs && i < n; i++)
        if (r.rs[i])
            pool_result_free(r.rs[i]);
    free(r.rs);
    msgpack_sbuffer_destroy(&r.args);
    msgpack_sbuffer_destroy(&r.items);
    return rc == POOL_OK ? 0 : -1;
}

/* ---- the floor: a bare pipe round trip ------------------------------------ */

/* Seconds per round trip of OVH_PIPE_MSG bytes through an echoing child, or -1.
 * 16 < PIPE_BUF, so a write is atomic, and each side writes only after reading
 * the whole message: a read never sees half of one. */
static double ovh_pipe_round_trip(long trips)
{
    int down[2], up[2];
    char msg[OVH_PIPE_MSG] = "0123456789abcde";
    long i = 0;
    if (pipe(down) < 0)
        return -1;
    if (pipe(up) < 0) {
        close(down[0]), close(down[1]);
        return -1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) { /* the echo; _exit, so that no stdio buffer is flushed twice */
        close(down[1]), close(up[0]);
        while (read(down[0], msg, OVH_PIPE_MSG) == OVH_PIPE_MSG &&
               write(up[1], msg, OVH_PIPE_MSG) == OVH_PIPE_MSG)
            ;
        _exit(0);
    }
    close(down[0]), close(up[1]);
    double t0 = pool_now();
    while (pid > 0 && i < trips && write(down[1], msg, OVH_PIPE_MSG) == OVH_PIPE_MSG &&
           read(up[0], msg, OVH_PIPE_MSG) == OVH_PIPE_MSG)
        i++;
    double t = pool_now() - t0;
    close(down[1]), close(up[0]); /* EOF ends the child */
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return pid > 0 && i == trips ? t / (double)trips : -1;
}

static void ovh_usage(FILE *f)
{
    fprintf(f, "usage: overhead [-n tasks] [-w workers] [-a api,api,...] [-h]\n"
               "  -n N     trivial tasks per API, 1..10000000 (default %d)\n"
               "  -w W     workers, 1..1024 (default %d)\n"
               "  -a LIST  APIs to run (default: all):", OVH_REF_N, OVH_REF_W);
    for (int a = 0; a < OVH_NAPI; a++)
        fprintf(f, "%s%s", a ? "," : " ", ovh_apis[a].name);
    fprintf(f, "\n");
}

static bool ovh_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    *out = strtol(s, &end, 10);
    return !errno && end != s && !*end && *out >= lo && *out <= hi;
}

/* Marks each API named in a comma list; false at the first unknown name. */
static bool ovh_parse_apis(const char *list, bool *sel)
{
    for (const char *s = list;; s++) {
        size_t len = strcspn(s, ",");
        int a = 0;
        while (a < OVH_NAPI && (strncmp(s, ovh_apis[a].name, len) || ovh_apis[a].name[len]))
            a++;
        if (a == OVH_NAPI) {
            fprintf(stderr, "overhead: unknown API '%.*s'\n", (int)len, s);
            return false;
        }
        sel[a] = true;
        if (!*(s += len))
            return true;
    }
}

static void ovh_report(const ovh_row *rows, long n, long w, double rtt)
{
    printf("%-21s %7s %7s %9s %8s %9s %6s %10s %8s\n", "api", "wall s", "setup s", "tasks/s",
           "us/task", "messages", "errors", "CPython s", "speed-up");
    for (int a = 0; a < OVH_NAPI; a++) {
        if (!rows[a].ran)
            continue;
        printf("%-21s %7.3f %7.3f %9.0f %8.2f %9llu %6ld", ovh_apis[a].label, rows[a].wall,
               rows[a].wall - rows[a].work, (double)n / rows[a].wall,
               rows[a].wall * 1e6 / (double)n, (unsigned long long)rows[a].messages,
               rows[a].errors);
        if (ovh_apis[a].cpython > 0) /* no CPython figure quoted for the newer rows */
            printf(" %10.3f %7.1fx\n", ovh_apis[a].cpython, ovh_apis[a].cpython / rows[a].wall);
        else
            printf(" %10s %8s\n", "-", "-");
    }
    printf("wall = pool_create..pool_join; setup = wall outside the submit/collect loop.\n"
           "CPython s = CPython 3.11 on a 2-core machine, n=%d, w=%d, quoted from PHENOMENA.md\n"
           "(phenomenon P6), not measured here; speed-up = CPython s / wall s.\n\n",
           OVH_REF_N, OVH_REF_W);

    /* apply's loop time, not its wall: the pipe figure has no start-up in it either. */
    double apply_us = rows[OVH_APPLY].work * 1e6 / (double)n, ratio = apply_us / (rtt * 1e6);
    if (rtt > 0)
        printf("bare pipe round trip (%d B, two processes): %.2f us\n", OVH_PIPE_MSG, rtt * 1e6);
    if (rtt > 0 && rows[OVH_APPLY].ran)
        printf("apply per task, loop only: %.2f us = %.2fx the pipe round trip\n", apply_us,
               ratio);
    if (rows[OVH_IMAP].ran && rows[OVH_MAP_ASYNC1].ran)
        printf("one message per task (P25): imap %.2f us/task, map_async chunk 1 %.2f us/task: "
               "imap / map_async = %.2f (CPython 31.8 / 31.9 us, issue 12)\n",
               rows[OVH_IMAP].wall * 1e6 / (double)n, rows[OVH_MAP_ASYNC1].wall * 1e6 / (double)n,
               rows[OVH_IMAP].wall / rows[OVH_MAP_ASYNC1].wall);

    printf("\ntargets (P6):\n");
    if (n != OVH_REF_N || w != OVH_REF_W)
        printf("  note: CPython ran n=%d, w=%d; at n=%ld, w=%ld its targets are indicative only\n",
               OVH_REF_N, OVH_REF_W, n, w);
    for (int a = 0; a < OVH_NAPI; a++) {
        double speedup = ovh_apis[a].cpython / rows[a].wall, want = ovh_apis[a].target;
        if (want > 0 && rows[a].ran)
            printf("  %-21s >= %4.1fx CPython:         %8.2fx  %s\n", ovh_apis[a].label, want, speedup,
                   speedup >= want ? "PASS" : "MISS");
    }
    if (rows[OVH_APPLY].ran && rtt > 0)
        printf("  %-21s <=  1.5x pipe round trip: %8.2fx  %s\n", ovh_apis[OVH_APPLY].label, ratio,
               ratio <= 1.5 ? "PASS" : "MISS");
}

int main(int argc, char **argv)
{
    long n = OVH_REF_N, w = OVH_REF_W;
    bool sel[OVH_NAPI] = { false }, all = true;
    ovh_row rows[OVH_NAPI] = { { 0 } };
    int c, failed = 0;

    while ((c = getopt(argc, argv, "n:w:a:h")) != -1) {
        bool ok = c == 'n'   ? ovh_parse_long(optarg, 1, 10000000, &n)
                  : c == 'w' ? ovh_parse_long(optarg, 1, 1024, &w)
                  : c == 'a' ? (all = false, ovh_parse_apis(optarg, sel))
                             : false;
        if (!ok) {
            if (c == 'n' || c == 'w')
                fprintf(stderr, "overhead: -%c: '%s' is not an integer in range\n", c, optarg);
            ovh_usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "overhead: unexpected argument '%s'\n", argv[optind]);
        ovh_usage(stderr);
        return 2;
    }
    for (int a = 0; a < OVH_NAPI; a++)
        sel[a] = sel[a] || all;

    char date[64];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", localtime(&now));
    printf("ARG tasks %ld\nARG workers %ld\nARG apis", n, w);
    for (int a = 0; a < OVH_NAPI; a++)
        if (sel[a])
            printf(" %s", ovh_apis[a].name);
    printf("\nARG task square(i) for i = 0..%ld, every value checked\n"
           "ARG pipe round trips %ld of %d bytes\nonline cores %ld\ndate %s\n"
           "Every figure below but the CPython ones was measured on this machine, in this run.\n\n",
           n - 1, n, OVH_PIPE_MSG, sysconf(_SC_NPROCESSORS_ONLN), date);

    /* Before any pool: this program has one thread here, so fork is safe. */
    double rtt = ovh_pipe_round_trip(n);
    if ((failed = rtt < 0))
        fprintf(stderr, "overhead: pipe round trip: %s\n", strerror(errno));
    /* Each pool's threads are gone after pool_destroy, so the next pool_create
     * again sees a single-threaded process. */
    for (int a = 0; a < OVH_NAPI; a++)
        failed |= (sel[a] && ovh_measure(a, n, (int)w, &rows[a]) < 0) || rows[a].errors;
    ovh_report(rows, n, w, rtt);
    if (failed)
        fprintf(stderr, "overhead: errors occurred (see above and the errors column)\n");
    return failed;
}
