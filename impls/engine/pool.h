/*
 * pool.h: poolbench's process pool engine, the public API.
 *
 * One engine runs every strategy poolbench compares, so that they all use the
 * same workers and the same messages. Its semantics follow CPython's
 * multiprocessing.Pool (Lib/multiprocessing/pool.py) closely enough that the
 * same traps appear for the same reasons:
 *
 *   - workers are real processes that take tasks from ONE shared queue, so
 *     whoever reads first gets the work (phenomenon P8);
 *   - map splits its input into chunks, one message per chunk (P6, P7);
 *   - one result-handler thread in the parent delivers results and runs the
 *     callbacks, one at a time, in completion order (P2).
 *
 * It differs from CPython where CPython has known bugs: a worker that dies
 * fails exactly the jobs it held and is replaced (CPython's Pool hangs,
 * gh-66587), and a callback that fails is reported without killing the
 * result handler (gh-83371).
 *
 * Values. Arguments and results cross processes as MessagePack (msgpack-c).
 * A task's arguments are always one packed msgpack ARRAY, the positional
 * arguments, like Python's f(*args). Allowed types: nil, boolean, integer,
 * float, string, array, map (ext types are refused at submit). Results come
 * back as msgpack_object views that live as long as the handle they came from.
 *
 * Threads. By default (start method POOL_START_FORKSERVER) pool_create()
 * forks a fork server first, while the caller still has a single thread, and
 * refuses if it has more (a forked child would inherit locks held by the
 * other threads forever). Every worker, including respawns, is forked by that
 * single-threaded fork server. POOL_START_FORK forks each worker from the
 * pool's own process instead, whatever threads it has then (CPython's
 * "fork", and its hazard); POOL_START_SPAWN execs a fresh program for each
 * worker (CPython's "spawn"): see pool_options.start_method. The pool then
 * runs two threads in the parent (three with fork or spawn: the launcher):
 * the task handler (feeds the shared queue) and the result handler (reads
 * results, runs callbacks, notices dead workers).
 *
 * Errors. Functions that return int return POOL_OK (0) or a negative POOL_E*
 * code; functions that return a pointer return NULL on error. Either way
 * pool_last_error() describes the last error of the calling thread.
 * Messages that name an item say "job J, index I within the job (from 0)":
 * the engine numbers items from 0 within their job, and says so, so that a
 * client numbering from 1 (Lua) cannot misread it.
 *
 * Nothing waits forever. Every wait inside the engine ends: on a result, a
 * dead process, a time limit or a signal.
 *   - A BROKEN pool is the analogue of concurrent.futures'
 *     BrokenProcessPool. When the fork server dies (killed, or stopped and
 *     then killed by the pool because it did not answer within a bound),
 *     its workers die with it and none can be started again: every pending
 *     job fails at once with POOL_EBROKEN, with a message naming the fork
 *     server's pid and how it ended, and so does every later submit
 *     (refused, NULL). An iterator does not end with one error: each of its
 *     remaining items is reported as an error of its own (pool_iter_next).
 *     join and destroy still end and leave nothing behind. A failed
 *     initializer breaks the pool the same way.
 *   - A task time limit (pool_options.task_timeout) fails a task that runs
 *     too long with POOL_ETIMELIMIT and replaces its worker.
 *   - pool_interrupt_all() ends every pool from a signal handler.
 */
#ifndef POOL_H
#define POOL_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- errors ------------------------------------------------------------ */

enum pool_status {
    POOL_OK = 0,
    POOL_EINVAL = -1,      /* bad argument: see pool_last_error() */
    POOL_ESTATE = -2,      /* wrong pool state (submit after close, join while running) */
    POOL_ETIMEDOUT = -3,   /* a wait expired; the job keeps running */
    POOL_ETASK = -4,       /* the task failed; the message is the task's */
    POOL_EWORKER = -5,     /* the worker running the task died */
    POOL_ETERMINATED = -6, /* the pool was terminated before the task finished */
    POOL_ENOTREADY = -7,   /* successful() asked before the result is ready */
    POOL_EEND = -8,        /* an iterator has no more items */
    POOL_ESYS = -9,        /* a system call or an allocation failed (fork, socketpair, memory) */
    POOL_EBROKEN = -10,    /* the pool cannot serve: a worker initializer failed, or the
                              fork server died (every pending and later job fails) */
    POOL_ETIMELIMIT = -11, /* the task ran past the pool's task_timeout: its worker was
                              killed and replaced */
    POOL_EINTR = -12,      /* pool_interrupt_all() (a SIGINT or SIGTERM handler) ended the
                              pool before the task finished */
};

/* The last error of the calling thread, as a sentence. Never NULL. */
const char *pool_last_error(void);
/* Its status code (a function that returned NULL leaves it here). */
int pool_last_status(void);
/* A short name for a status code ("POOL_ETIMEDOUT"). */
const char *pool_status_name(int status);

/* ---- clocks ------------------------------------------------------------ */

/* Seconds on CLOCK_MONOTONIC. The clock is system-wide, so times taken in a
 * worker and in the parent are on one axis. */
double pool_now(void);

/* ---- tasks ------------------------------------------------------------- */

typedef struct pool_task_ctx pool_task_ctx;

/*
 * A task: reads its positional arguments (a msgpack array), packs exactly one
 * result value into `out`, returns 0. On failure it returns
 * pool_task_fail(ctx, ...), which records the message and returns -1; it must
 * not pack anything then.
 */
typedef int (*pool_task_fn)(const msgpack_object_array *args, msgpack_packer *out,
                            pool_task_ctx *ctx);

int pool_task_fail(pool_task_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The worker slot (0..workers-1) running this task, -1 when run in the parent. */
int pool_task_slot(const pool_task_ctx *ctx);
/* The `udata` given to pool_task_register. */
void *pool_task_udata(const pool_task_ctx *ctx);

/*
 * Registers a task under `name` (process-wide). Call it before pool_create():
 * workers see the registry as it was when their pool was created. Registering
 * a name again replaces it. The built-in tasks are always there:
 *   sleep(seconds)       sleeps, returns nil
 *   spin(seconds)        burns CPU for that long, returns the loop count
 *   square(x)            x*x (integer or float)
 *   identity(x)          x
 *   fail(message)        fails with that message
 *   die(code)            code > 0: exit(code); code < 0: raise(-code)
 *   getpid()             the worker's pid
 *   init_count()         how many times this worker ran its initializer
 */
int pool_task_register(const char *name, pool_task_fn fn, void *udata);
/* Whether a task of that name is registered. */
bool pool_task_exists(const char *name);

/*
 * Runs a registered task here, in the calling process (no pool). Used by
 * strategies that run a stage in the parent. On success packs the result into
 * `out` and returns POOL_OK; on failure returns POOL_ETASK with the task's
 * message in pool_last_error().
 */
int pool_task_call(const char *name, const void *args, size_t args_len, msgpack_sbuffer *out);

/* ---- the pool ---------------------------------------------------------- */

typedef struct pool pool;
typedef struct pool_trace_rec pool_trace_rec;

/* How workers are started (pool_options.start_method); CPython's start
 * methods of the same names. */
enum pool_start_method {
    POOL_START_FORKSERVER = 0, /* forked by a single-threaded fork server, itself forked at
                                  pool_create (the default; CPython 3.14's on Linux) */
    POOL_START_FORK = 1,       /* forked straight from the pool's process, from its launcher
                                  thread, whatever other threads hold at that moment */
    POOL_START_SPAWN = 2,      /* a fresh program (spawn_argv) exec'd for each worker: it
                                  inherits nothing but what is passed */
};
/* "forkserver", "fork", "spawn" ("?" otherwise). */
const char *pool_start_method_name(int method);
/* The method of that name, or -1. */
int pool_start_method_parse(const char *name);

enum pool_transport_kind {
    POOL_TRANSPORT_DEFAULT = 0, /* POOLBENCH_TRANSPORT if set, else the socket */
    POOL_TRANSPORT_SOCKET = 1,
    POOL_TRANSPORT_SHM = 2,
    POOL_TRANSPORT_MPI = 3,     /* ranks 1..N of an MPI job are the workers (pool_mpi.h) */
};

typedef struct pool_options {
    int workers;             /* >= 1; pool_options_default() sets the online CPUs */
    const char *initializer; /* task run once in each worker before its first task, or NULL */
    const void *initargs;    /* its packed argument array (NULL: no arguments) */
    size_t initargs_len;
    long maxtasksperchild;   /* a worker exits after this many task messages; 0: never */
    bool trace;              /* keep one trace record per task execution (its workers
                                then read the clock twice per task: without a trace or
                                a task_timeout they do not, nothing would read it) */
    /* With trace: where the records go as the run goes, in batches, instead
     * of staying in the pool (NULL: they stay, pool_trace_copy reads them).
     * Called under the pool's lock on the engine's threads (or the caller's,
     * in pool_trace_drain): it must not call back into the pool. A record
     * whose job has a callback is held until that callback has returned, so
     * its t_callback is known; the others leave within a batch. The pool then
     * keeps no per-task state beyond the chunks in flight. */
    void (*trace_sink)(void *ctx, const pool_trace_rec *recs, size_t n);
    void *trace_ctx;
    long imap_window;        /* the buffersize of pool_imap and its kin (pool_imap_opts):
                                0: none, the input is consumed at the call, as CPython's
                                Pool.imap does; > 0: at most that many chunks out */
    double task_timeout;     /* seconds one task may run (billiard's hard time limit): past
                                it the worker is killed and replaced and the task fails
                                with POOL_ETIMELIMIT; 0: no limit */
    int start_method;        /* enum pool_start_method; 0: the fork server */
    const char *const *spawn_argv; /* POOL_START_SPAWN: the program to exec for each worker,
                                      argv[0] its path, NULL-terminated; the engine appends
                                      one argument of its own. The program must register
                                      the same tasks in the same order, then call
                                      pool_worker_spawn_main(). Copied at pool_create. */
    enum pool_transport_kind transport; /* how chunks and results travel (below) */
} pool_options;
/*
 * Start methods. Every method keeps every other semantic (dead workers,
 * time limits, respawns, maxtasksperchild, nothing orphaned, no zombie or
 * descriptor left); what differs is who starts a worker and what it
 * inherits:
 *   - forkserver: a copy of the process as it was at pool_create (tasks,
 *     globals), taken while it had one thread; pool_create refuses a caller
 *     with more threads.
 *   - fork: a copy of the process as it is when that worker starts (a
 *     respawn copies the process of that moment), made from a thread of the
 *     pool (the launcher) while other threads run: a lock another thread
 *     holds at that moment stays held in the worker forever. pthread_atfork
 *     handlers run around each fork (a program protects its own locks
 *     there, as CPython does its GIL). The workers' parent is this process.
 *   - spawn: spawn_argv exec'd, with the shared queue, its result pipe and
 *     the pool's shared memory (a memfd) as its only inherited descriptors
 *     besides 0, 1, 2. The initializer's arguments travel in the shared
 *     memory. The program re-creates its tasks; the engine checks that the
 *     registry's names match the parent's (a mismatch fails the initializer
 *     and breaks the pool).
 * pool_forkserver_pid() is 0 for fork and spawn (there is no fork server).
 * Start methods and transports: fork works with socket and shm, spawn with
 * socket only (a spawned worker rebuilds its end of the transport from the
 * descriptors it inherits); any other pair fails pool_create with POOL_EINVAL
 * naming what works (pool_start_method_check).
 */

/*
 * The entry point of a spawned worker: call it from main() after
 * registering the tasks, when pool_worker_spawn_arg() finds the engine's
 * argument (the last one, "--pool-worker=..."). It never returns when the
 * argument is well formed; otherwise it prints why and returns 2.
 */
int pool_worker_spawn_main(int argc, char **argv);
/* The engine's argument in argv, or NULL: whether this process is a
 * spawned worker. */
const char *pool_worker_spawn_arg(int argc, char **argv);
/* A spawned worker whose program cannot become the worker (its scenario
 * does not load, say): tells the pool why, as a failed initializer does
 * (the pool is broken with msg), and exits. Without the engine's argument
 * it only prints msg and returns. */
void pool_worker_spawn_fail(int argc, char **argv, const char *msg);
/*
 * The transport (impls/engine/pool_transport.h): POOL_TRANSPORT_SOCKET, one
 * SOCK_SEQPACKET queue all workers read and a pipe per worker for results;
 * POOL_TRANSPORT_SHM, rings in shared memory with futex wake-ups only when a
 * side sleeps. POOL_TRANSPORT_DEFAULT (0) takes the environment variable
 * POOLBENCH_TRANSPORT ("socket" or "shm"; another value makes pool_create
 * fail with POOL_EINVAL naming the valid ones), else the socket. Every
 * semantic below is the same on both.
 *
 * The time limit is per task, that is per item: each item of a chunk has
 * the whole limit. The task past it fails with POOL_ETIMELIMIT and a message
 * naming the task, the item, the worker slot and pid and the limit; the
 * other items of its chunk (whose results died with the worker) fail with
 * POOL_ETIMELIMIT too, "lost with its chunk", naming that item. Other jobs
 * are unaffected. A worker stopped (SIGSTOP) longer than the limit is killed
 * and replaced as well, whether it ran a task, was idle, or held the shared
 * queue's lock, so a stopped worker stalls the others no longer than the
 * limit. The limit is checked every limit/4 (at most every 50 ms), so a task
 * ends a little after its limit, never before.
 */

void pool_options_default(pool_options *opt);

/* Creates a pool and starts its workers (it does not wait for them to be up). */
pool *pool_create(const pool_options *opt);

/* No more submissions; queued work still runs. */
int pool_close(pool *p);
/* Kills the workers now; every unfinished job fails with POOL_ETERMINATED.
 * Safe to call from a callback (it then does not wait for the workers). */
int pool_terminate(pool *p);
/* Async-signal-safe, for a SIGINT or SIGTERM handler: every live pool of this
 * process terminates as pool_terminate() would, from its own result-handler
 * thread; unfinished and later jobs fail with POOL_EINTR, so a caller blocked
 * in get(), next() or join() returns promptly. An iterator ends with one
 * POOL_EINTR (index SIZE_MAX). It only writes a byte to each pool's wake-up
 * pipe (no lock, no allocation). Pools created after it are not affected;
 * it reaches at most 64 pools at once (more are not interrupted). */
void pool_interrupt_all(void);
/* Waits for the workers to exit. The pool must be closed or terminated
 * (POOL_ESTATE otherwise, as CPython's "Pool is still running"). */
int pool_join(pool *p);
/* Terminates if still running, joins, frees. Leaves no process, descriptor or
 * allocation behind. Result handles and iterators stay valid until freed. */
void pool_destroy(pool *p);

int pool_workers(const pool *p);
/* The transport this pool runs on: "socket" or "shm". */
const char *pool_transport_name(const pool *p);
/* The transport kind named "socket" or "shm", or -1 (for a command line). */
int pool_transport_parse(const char *name);
/* The kind POOL_TRANSPORT_DEFAULT stands for now: POOLBENCH_TRANSPORT if
 * set, else POOL_TRANSPORT_SOCKET; -1 when the variable names no transport. */
int pool_transport_default(void);
/* Whether workers can be started with `start_method` on `transport`
 * (POOL_TRANSPORT_DEFAULT resolved first): POOL_OK, or POOL_EINVAL with
 * pool_last_error naming the pairs that work. */
int pool_start_method_check(int start_method, enum pool_transport_kind transport);
/* Pids of the live workers, up to `max`; returns how many. */
int pool_worker_pids(pool *p, pid_t *out, int max);
/* The fork server's pid (the parent of every worker); 0 when the pool has
 * none (start methods fork and spawn: the workers' parent is this process). */
pid_t pool_forkserver_pid(const pool *p);

typedef struct pool_stats {
    uint64_t jobs_submitted;     /* apply/map/imap calls accepted */
    uint64_t tasks_done;         /* task executions that returned a result */
    uint64_t tasks_failed;       /* task executions that failed (task error or dead worker) */
    uint64_t messages_sent;      /* task messages put on the shared queue */
    uint64_t messages_received;  /* result messages read from workers */
    uint64_t workers_started;    /* including respawns */
    uint64_t worker_deaths;      /* workers that exited other than cleanly */
    uint64_t callbacks_run;
    uint64_t callback_errors;    /* callbacks that returned non-zero */
    uint64_t errors_unobserved;  /* failed jobs whose handle was freed unread with no error callback */
    uint64_t bytes_sent;         /* bytes of the task messages put on the shared queue (payload
                                    and one wire header per fragment) */
    uint64_t bytes_received;     /* bytes of the result frames read from workers (with their
                                    4-byte length) */
} pool_stats;

void pool_get_stats(pool *p, pool_stats *out);

/* ---- results: apply_async, map_async, futures -------------------------- */

typedef struct pool_result pool_result;

/*
 * A callback runs in the parent, on the result-handler thread, one at a time,
 * in completion order, before get() returns. It returns 0, or non-zero after
 * writing a message into err (errlen bytes): the failure is counted in
 * callback_errors, printed on stderr, and the result handler goes on.
 */
typedef int (*pool_callback)(pool_result *r, void *udata, char *err, size_t errlen);

/*
 * A job failed by terminate, by an interrupt or by a broken pool (a failed
 * initializer, the loss of the fork server) runs neither callback nor error
 * callback (CPython's terminate completes nothing either); it does run its
 * done callbacks, and get() returns its status.
 */

/* apply: blocks until done. Returns a ready handle (check pool_result_get). */
pool_result *pool_apply(pool *p, const char *task, const void *args, size_t args_len);
/* apply_async: callback on success, error_callback on failure, either may be NULL. */
pool_result *pool_apply_async(pool *p, const char *task, const void *args, size_t args_len,
                              pool_callback callback, pool_callback error_callback, void *udata);

/*
 * map_async / starmap_async. `items` is one packed msgpack array; map calls
 * task(item) for each, starmap calls task(*item) (each item an array).
 * chunksize 0 picks CPython's default: ceil(n / (4 * workers)), so an empty
 * input makes no chunk and is ready at once. The value is the array of
 * results in input order. If a task fails, the result is the first error to
 * arrive, and it is ready only after every chunk has ended, as in CPython.
 */
pool_result *pool_map_async(pool *p, const char *task, const void *items, size_t items_len,
                            long chunksize, pool_callback callback,
                            pool_callback error_callback, void *udata);
pool_result *pool_starmap_async(pool *p, const char *task, const void *items,
                                size_t items_len, long chunksize, pool_callback callback,
                                pool_callback error_callback, void *udata);
/* map / starmap: the same, blocking until done. */
pool_result *pool_map(pool *p, const char *task, const void *items, size_t items_len,
                      long chunksize);
pool_result *pool_starmap(pool *p, const char *task, const void *items, size_t items_len,
                          long chunksize);
/* CPython's default chunksize for map over n items on `workers` workers. */
long pool_default_chunksize(size_t n, int workers);

/* Waits up to timeout seconds (< 0: forever). POOL_OK when ready, else POOL_ETIMEDOUT. */
int pool_result_wait(pool_result *r, double timeout);
/*
 * Waits as wait() does, then: POOL_OK with *value set (valid until the handle
 * is freed; value may be NULL), or the job's error status (POOL_ETASK,
 * POOL_EWORKER, POOL_ETERMINATED, POOL_EBROKEN,
 * POOL_ETIMELIMIT, POOL_EINTR) with pool_result_error() set, or
 * POOL_ETIMEDOUT (the job goes on).
 */
int pool_result_get(pool_result *r, double timeout, const msgpack_object **value);
bool pool_result_ready(pool_result *r);
/* 1 success, 0 failure, POOL_ENOTREADY if not ready (CPython raises there). */
int pool_result_successful(pool_result *r);
/* The job's status once its chunks are all in (usable inside its callbacks,
 * where get() would wait for itself): POOL_OK or its error status;
 * POOL_ENOTREADY before. */
int pool_result_status(pool_result *r);
/* The error message of a failed job, or NULL. */
const char *pool_result_error(pool_result *r);
/* The value of a ready, successful job, or NULL. */
const msgpack_object *pool_result_value(pool_result *r);
/* The job's id (unique within its pool; trace records carry it). */
uint64_t pool_result_job(const pool_result *r);
/* Pid of the worker running this job right now (first busy one for a map), or 0. */
pid_t pool_result_holder(pool_result *r);
/* Releases the caller's reference. The job itself goes on if unfinished. */
void pool_result_free(pool_result *r);

/* ---- the concurrent.futures side ---------------------------------------- */

/* submit: a future is a pool_result with no callbacks. */
pool_result *pool_submit(pool *p, const char *task, const void *args, size_t args_len);
/*
 * Adds a done callback (run on success and failure alike). If the future is
 * already done it runs at once, in the calling thread, as in CPython.
 */
int pool_result_add_done_callback(pool_result *r, pool_callback fn, void *udata);

/* ---- iterators: imap, imap_unordered, executor map, as_completed -------- */

typedef struct pool_iter pool_iter;

/*
 * An input source for imap: packs the next item into pk and returns 1, or
 * returns 0 at the end, or -1 on error after writing a message into err
 * (errlen bytes); the iterator reports it at that position. It is called only
 * on the caller's thread, never on a pool thread. Without a buffersize (CPython's
 * default) it is called until it ends inside pool_imap() itself, so every item
 * is submitted before the call returns (memory grows with n; an endless input
 * never returns). With a buffersize it is called inside pool_iter_next(), only
 * as far ahead as the buffer allows, so an input of any length runs in flat
 * memory.
 */
typedef int (*pool_input_fn)(void *ctx, msgpack_packer *pk, char *err, size_t errlen);

/* imap (ordered) and imap_unordered (completion order). chunksize 0 means 1. */
pool_iter *pool_imap(pool *p, const char *task, pool_input_fn next, void *ctx, long chunksize);
pool_iter *pool_imap_unordered(pool *p, const char *task, pool_input_fn next, void *ctx,
                               long chunksize);
/* Star forms: each input item is an argument ARRAY, and the task is called
 * as task(*item), as starmap does (map and imap call task(item)). */
pool_iter *pool_imap_star(pool *p, const char *task, pool_input_fn next, void *ctx,
                          long chunksize, bool ordered);
/* imap (ordered) or imap_unordered over a packed msgpack array of items,
 * read as the buffer advances: `items` must stay valid until the iterator
 * is freed. */
pool_iter *pool_imap_array(pool *p, const char *task, const void *items, size_t items_len,
                           long chunksize, bool ordered);
/* Executor.map: every item submitted at once, results in order, chunksize 0 means 1. */
pool_iter *pool_executor_map(pool *p, const char *task, const void *items, size_t items_len,
                             long chunksize);
/* Its star form: each item is an argument array, task(*item). */
pool_iter *pool_executor_starmap(pool *p, const char *task, const void *items,
                                 size_t items_len, long chunksize);

/*
 * The same with every option, CPython's imap(func, iterable, chunksize,
 * buffersize) and Executor.map(fn, iterable, chunksize=, buffersize=).
 * buffersize (CPython 3.14's Executor.map, and Pool.imap after gh-64192):
 * at most that many chunks submitted whose results have not all been
 * yielded; the input is read only as the consumer frees room. 0: no bound,
 * the whole input is read and submitted at the call. The legacy calls above
 * take buffersize from pool_options.imap_window (Executor.map: 0).
 */
typedef struct pool_imap_opts {
    long chunksize;  /* items per task message; 0 means 1 */
    long buffersize; /* chunks out at most; 0: unbounded (eager) */
    bool ordered;    /* input order (imap) or completion order (imap_unordered);
                        Executor.map is always in order */
    bool star;       /* each item is an argument array: task(*item) */
} pool_imap_opts;
pool_iter *pool_imap_opt(pool *p, const char *task, pool_input_fn next, void *ctx,
                         const pool_imap_opts *o);
/* Over a packed array (which must stay valid until the iterator is freed). */
pool_iter *pool_imap_array_opt(pool *p, const char *task, const void *items,
                               size_t items_len, const pool_imap_opts *o);
pool_iter *pool_executor_map_opt(pool *p, const char *task, const void *items,
                                 size_t items_len, const pool_imap_opts *o);

/*
 * Next item. POOL_OK with *value (valid until the next call or free), an
 * error status for an item whose task failed (pool_iter_error() says why;
 * the iteration can go on), POOL_EEND at the end, POOL_ETIMEDOUT.
 * *index receives the item's input position (may be NULL); on an error that
 * ends the whole iteration (terminated, interrupted, out of memory) it is
 * SIZE_MAX, which tells it from one item's error. A failed input is
 * reported once, at its position, then POOL_EEND. On a BROKEN pool each
 * remaining item is its own POOL_EBROKEN error with its index: the items
 * in flight at once, then the items still in a lazy input, pulled one per
 * call, so the consumer may stop at any item (an iterator created on a
 * broken pool works the same way, from its first item).
 */
int pool_iter_next(pool_iter *it, double timeout, const msgpack_object **value, size_t *index);
const char *pool_iter_error(pool_iter *it);
/* Stops iterating: nothing more is submitted; chunks in flight finish unseen. */
void pool_iter_free(pool_iter *it);

/*
 * as_completed: yields the futures' indexes (into `futures`) as they finish.
 * pool_iter_next then sets *index and returns POOL_OK (value NULL).
 * The futures must outlive the iterator.
 */
pool_iter *pool_as_completed(pool_result *const *futures, size_t n);

/* ---- trace ------------------------------------------------------------- */

/* What became of a traced task (pool_trace_rec.state). */
enum pool_trace_state {
    POOL_TRACE_DONE = 1,        /* it returned a result */
    POOL_TRACE_FAILED = 2,      /* it raised (the task failed) */
    POOL_TRACE_KILLED = 3,      /* its worker died or was killed (terminate) while it ran, or
                                   after it ran and before its chunk's result was sent: the
                                   result died with the worker */
    POOL_TRACE_TIMED_OUT = 4,   /* it ran past task_timeout */
    POOL_TRACE_NOT_STARTED = 5, /* submitted, never begun: its pool was terminated,
                                   interrupted or broken first, or its worker died first */
};
/* "done", "failed", "killed", "timed_out", "not_started" ("?" otherwise). */
const char *pool_trace_state_name(int state);

/* One record per task execution (one item of one chunk), and one for each
 * submitted task that never ended (state KILLED, TIMED_OUT, NOT_STARTED).
 * A chunk that ends after its caller let go of its job (an iterator freed
 * early) is not waited for and leaves no record. Times are pool_now()
 * seconds; 0 means "did not happen" (no callback, or never started). */
struct pool_trace_rec {
    uint64_t job;        /* the job id (pool_result_job) */
    uint32_t item;       /* the item's index within its job (from 0) */
    uint16_t task;       /* registry index: pool_task_name() */
    int16_t slot;        /* worker slot, -1 if it never ran on a worker */
    int32_t pid;         /* worker pid, 0 if unknown */
    uint8_t ok;          /* 1 when the task returned a result */
    uint8_t state;       /* enum pool_trace_state */
    double t_submit;     /* the submit call */
    double t_start;      /* the worker began the task */
    double t_end;        /* the worker finished the task */
    double t_result;     /* the parent read the result */
    double t_callback;   /* the job's callback returned (apply_async, map_async) */
};

/* With a trace_sink: hands every record still in the pool to the sink, the
 * held ones too (call it once the pool is joined, before pool_destroy). */
void pool_trace_drain(pool *p);
/* Number of records so far (with a trace_sink: not yet handed over). */
size_t pool_trace_count(pool *p);
/* Copies up to max records from position `from`; returns how many. */
size_t pool_trace_copy(pool *p, size_t from, pool_trace_rec *out, size_t max);
/* The registered name of a task index. */
const char *pool_task_name(unsigned index);

/* ---- packing helpers ----------------------------------------------------- */

/*
 * Small helpers for building argument arrays in tests and drivers. Each
 * clears `buf` and packs an array: () / (i) / (d) / (s).
 */
void pool_args0(msgpack_sbuffer *buf);
void pool_args_int(msgpack_sbuffer *buf, int64_t i);
void pool_args_double(msgpack_sbuffer *buf, double d);
void pool_args_str(msgpack_sbuffer *buf, const char *s);
/* Packs a C string as a msgpack str. */
void pool_pack_str(msgpack_packer *pk, const char *s);

/* ---- work and I/O helpers that clients share ----------------------------- */

/* Burns `seconds` of this thread's CPU time (not wall time: on a busy machine
 * the caller still does that much work, which is what CPU-bound means).
 * Returns the number of inner loops it ran. The built-in task "spin" and the
 * harness's pb.spin() are this function. */
uint64_t pool_spin(double seconds);
/* Writes all of buf to fd (blocking), retrying on EINTR. 0 or -1. */
int pool_write_all(int fd, const void *buf, size_t len);

#endif
