/*
 * pool_internal.h: what the engine's files share and no client may use.
 *
 * The engine is three kinds of process and two parent threads:
 *
 *   parent process                    fork server              workers
 *   --------------                    -----------              -------
 *   caller's threads  --submit-->  task queue (memory)
 *   task handler      --fragments--> shared queue (SOCK_SEQPACKET) --> any worker
 *   result handler    <--frames------ one pipe per worker <----------- its worker
 *   result handler    <--STARTED/EXITED-- control socket --> fork server --fork--> worker
 *
 * A job is one submit call (apply, map, imap). It is split into chunks; a
 * chunk is one message on the shared queue and one result frame back. The
 * job table maps job ids to the objects waiting for their chunks: a
 * pool_result (apply, map, futures) or a pool_iter (imap family).
 *
 * Lock order: an object's lock (result or iterator) may be held while taking
 * the pool lock, never the reverse. The pool lock is never held while a
 * callback runs.
 */
#ifndef POOL_INTERNAL_H
#define POOL_INTERNAL_H

#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdnoreturn.h>

/* ---- errors (pool_util.c) ---------------------------------------------- */

/* Sets the calling thread's error message and returns `status`. */
int pool_seterr(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A broken invariant: prints "panic: ..." and aborts (xv6's panic). */
noreturn void pool_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Describes a wait status: "was killed by signal 9 (Killed)", "exited with status 3". */
void pool_describe_exit(int status, char *buf, size_t len);

/* ---- registry (pool_registry.c) ---------------------------------------- */

#define POOL_MAX_TASKS 256
#define POOL_TASK_NAME_MAX 64

/* Loads the built-ins; pool_create calls it before forking, because a
 * worker's registry is the copy it was forked with. */
void pool_registry_init(void);
/* Index of a task name, or -1. */
int pool_task_index(const char *name);
/*
 * Runs task `index` on `args`. On success packs the result into `out` and
 * returns 0; on failure writes the message into err and returns -1 (nothing
 * packed). `slot` is the worker slot, -1 in the parent.
 */
int pool_task_run(unsigned index, const msgpack_object_array *args, msgpack_packer *out,
                  int slot, char *err, size_t errlen);
/* pool_task_register without the one-time registration of the built-ins. */
int pool_task_register_raw(const char *name, pool_task_fn fn, void *udata);
/* Registers the built-in tasks (pool_tasks_builtin.c); called once. */
void pool_builtin_register(void);
/* How many times this process ran a worker initializer (init_count task). */
extern int pool_worker_init_runs;

/* ---- wire formats (pool_msg.c) ------------------------------------------ */

/*
 * The shared queue carries fragments: datagrams of at most POOL_FRAG_MAX
 * bytes. A message is one FIRST fragment (header + start of payload)
 * followed by CONT fragments. The task handler is the only writer, so a
 * message's fragments are consecutive; a worker reads a whole message while
 * holding the queue lock, so no other worker can take a fragment of it. If a
 * worker dies mid-read, the next reader skips the orphan CONT fragments.
 */
#define POOL_FRAG_MAX 32768

enum pool_wire_kind { POOL_WIRE_FIRST = 1, POOL_WIRE_CONT = 2, POOL_WIRE_EXIT = 3 };

struct pool_wire_hdr {
    uint32_t kind;
    uint32_t total; /* payload bytes of the whole message (FIRST only) */
    uint64_t job;
    uint32_t chunk;
    uint32_t first; /* index of the chunk's first item within its job */
};

/*
 * A task message waiting in the parent's task queue. Its payload is the
 * msgpack array [task_index, [args_0, args_1, ...]].
 */
typedef struct pool_taskmsg {
    struct pool_taskmsg *next;
    struct pool_wire_hdr hdr;
    size_t len;
    char data[];
} pool_taskmsg;

/*
 * Builds a task message from already-packed values in buf: value i spans
 * [starts[i], starts[i+1]), the last one ends at `end`. Each value is an
 * argument array, or with `wrap` an item that becomes the one-element array
 * [item] (map calls task(item)).
 */
pool_taskmsg *pool_taskmsg_new(uint64_t job, uint32_t chunk, uint32_t first, unsigned task,
                               const char *buf, const size_t *starts, size_t count, size_t end,
                               bool wrap);

/*
 * Checks that buf[0..len) is exactly one msgpack value of the allowed types
 * (no ext), and if `want_array`, that it is an array. Returns POOL_OK or
 * POOL_EINVAL with a message naming `what`.
 */
int pool_msg_check_value(const char *buf, size_t len, bool want_array, const char *what);

/*
 * Splits a packed array into its elements: sets *count and, for each element
 * i, its byte offset into starts[i] (the caller frees *starts; element i ends
 * where i+1 begins, the last at len). Checks every element as above.
 */
int pool_msg_split_array(const char *buf, size_t len, size_t **starts, size_t *count,
                         bool elements_are_arrays);

/* Result frames on a worker's pipe: a uint32 length, then the msgpack payload
 * [kind, job, chunk, first, body]. RESULT's body is an array of [ok, value_or_message,
 * t_start, t_end], one per item; INITFAIL's body is the message. */
enum pool_frame_kind { POOL_FRAME_RESULT = 1, POOL_FRAME_INITFAIL = 2 };

/* ---- shared memory: what each worker is doing (pool_worker.c) ----------- */

/*
 * One per worker slot, written by the worker, read by the parent. The worker
 * records the chunk it is about to take BEFORE it takes it off the queue
 * (see pool_worker.c), so the parent can always tell what a dead worker held.
 */
struct pool_slot_shm {
    _Atomic uint64_t job; /* 0: idle */
    _Atomic uint32_t chunk;
    _Atomic uint32_t first; /* job-wide index of the chunk's first item */
    _Atomic uint32_t item;  /* the item running now, as a job-wide index */
    _Atomic int32_t pid;
};

struct pool_shm {
    pthread_mutex_t queue_lock; /* process-shared, robust: held to read one message */
    struct pool_slot_shm slot[];
};

/* Everything a worker needs, copied into the fork server at pool_create. */
struct pool_worker_cfg {
    int queue_fd;          /* read side of the shared queue */
    struct pool_shm *shm;
    int init_task;         /* -1: no initializer */
    char *initargs;        /* packed array, or NULL */
    size_t initargs_len;
    long maxtasks;
    int parent_queue_fd;   /* the parent's end of the queue: closed in the fork server */
};

/* The worker's whole life; never returns. */
noreturn void pool_worker_main(const struct pool_worker_cfg *cfg, int slot, int result_fd);

/* ---- fork server (pool_forkserver.c) ------------------------------------ */

enum pool_fs_op {
    POOL_FS_SPAWN = 1,   /* parent -> fs: start a worker in `slot` */
    POOL_FS_KILLALL = 2, /* parent -> fs: SIGKILL every worker */
    POOL_FS_QUIT = 3,    /* parent -> fs: kill what is left, reap, exit */
    POOL_FS_STARTED = 4, /* fs -> parent: worker `pid` in `slot`; carries its result pipe */
    POOL_FS_EXITED = 5,  /* fs -> parent: worker `pid` in `slot` ended with `status` */
    POOL_FS_SPAWNFAIL = 6,
};

struct pool_fs_msg {
    int32_t op;
    int32_t slot;
    int32_t pid;
    int32_t status; /* wait status (EXITED) or errno (SPAWNFAIL) */
};

/* Forks the fork server. Returns its pid and sets *ctl_fd to the parent's end
 * of the control socket, or -1 with pool_last_error set. */
pid_t pool_forkserver_start(const struct pool_worker_cfg *cfg, int nslots, int *ctl_fd);
/* Sends a request; receives an event (fd: the passed descriptor or -1). */
int pool_fs_send(int ctl_fd, int op, int slot);
int pool_fs_recv(int ctl_fd, struct pool_fs_msg *msg, int *fd);

/* ---- chunks and jobs (pool_handlers.c, pool_result.c, pool_imap.c) ------ */

/*
 * A chunk's results, as delivered to its job. Owned by the job once handed
 * over. Items are msgpack arrays [ok, value_or_message, t_start, t_end] that
 * point into `raw` (msgpack-c unpacks strings without copying).
 */
typedef struct pool_chunk {
    uint32_t index;
    uint32_t first;       /* job-wide index of item 0 */
    uint32_t count;
    char *raw;            /* the frame payload */
    msgpack_zone *zone;   /* owns the unpacked objects */
    msgpack_object *items;
    int status;           /* POOL_OK, or the error failing every item (dead worker) */
    char *errmsg;         /* for a chunk failed by the parent */
    size_t trace_first;   /* index of its first trace record, SIZE_MAX if none */
} pool_chunk;

void pool_chunk_free(pool_chunk *c);
/* Item i: POOL_OK and *value, or an error status and *msg. */
int pool_chunk_item(const pool_chunk *c, uint32_t i, const msgpack_object **value,
                    const char **msg);

enum pool_job_kind { POOL_JOB_RESULT = 1, POOL_JOB_ITER = 2 };

/* The head of every object in the job table. */
typedef struct pool_job {
    uint64_t id;
    int kind;
    unsigned task;
    double t_submit;
} pool_job;

/* Delivery, called on the result-handler thread (or by terminate with a
 * failed chunk). The job takes ownership of the chunk. */
void pool_result_deliver(pool_result *r, pool_chunk *c);
void pool_iter_deliver(pool_iter *it, pool_chunk *c);
/* Fails every remaining chunk of the job (terminate, broken pool). */
void pool_result_abort(pool_result *r, int status, const char *msg);
void pool_iter_abort(pool_iter *it, int status, const char *msg);
/* Chunk count of an in-flight chunk (needed to fail a dead worker's chunk). */
uint32_t pool_result_chunk_count(pool_result *r, uint32_t chunk);
uint32_t pool_iter_chunk_count(pool_iter *it, uint32_t chunk);
/* Reference counting shared by the job table and the caller. */
void pool_result_ref(pool_result *r);
void pool_result_unref(pool_result *r);
void pool_iter_ref(pool_iter *it);
void pool_iter_unref(pool_iter *it);

/* Creates an apply (is_map false: one item) or map result, holding one
 * reference for the caller (pool_result.c). */
pool_result *pool_result_new(pool *p, unsigned task, bool is_map, size_t nitems, long chunksize,
                             pool_callback cb, pool_callback ecb, void *udata);
/* The job head of a result or iterator: it is their first member. */
static inline pool_job *pool_result_head(pool_result *r) { return (pool_job *)(void *)r; }
static inline pool_job *pool_iter_head(pool_iter *it) { return (pool_job *)(void *)it; }
/* Calls fn once the result is ready (after its callbacks), or at once if it
 * is: how as_completed learns, like CPython's Future._waiters. */
int pool_result_add_waiter(pool_result *r, pool_callback fn, void *udata);
/* Completes a map of no items at once, as CPython does (no callback). */
void pool_result_finish_empty(pool_result *r);

/* ---- submitting, for the API files (pool_jobs.c) ------------------------ */

/*
 * Checks the pool accepts work and resolves the task name: returns the task
 * index, or an error status with pool_last_error set.
 */
int pool_check_submit(pool *p, const char *task);
/* A new job id (counts a submitted job). */
uint64_t pool_new_job(pool *p);
/*
 * Puts a job in the table; the caller hands the table one reference.
 * Refused (POOL_ESTATE / POOL_EBROKEN) once the pool is terminated or broken,
 * and once closed unless `continuing` (an iterator accepted before close).
 */
int pool_register(pool *p, pool_job *job, bool continuing);
/* Removes a job from the table; true if it was there (the caller then drops
 * the table's reference). */
bool pool_unregister(pool *p, uint64_t id);
/* Appends task messages to the task queue (a linked list ending at `last`). */
void pool_enqueue(pool *p, pool_taskmsg *first, pool_taskmsg *last, size_t n);
/* True on the result-handler thread (a callback). */
bool pool_on_result_thread(pool *p);
pthread_t pool_result_thread_id(pool *p);
/* Trace: sets t_callback on `count` records from `first`. */
void pool_trace_mark_callback(pool *p, size_t first, size_t count, double t);
/* Counts a callback run, and a failed one with its message. */
void pool_count_callback(pool *p, int rc, const char *what, uint64_t job, const char *err);
void pool_count_unobserved(pool *p);
/* Pid of a worker currently holding a chunk of job `id`, or 0. */
pid_t pool_job_holder(pool *p, uint64_t id);
long pool_imap_window(pool *p);

/* Waits on cond until *flag-like predicate: a helper for timed waits.
 * Returns 0, or ETIMEDOUT. timeout < 0: forever. */
int pool_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, double deadline);
double pool_deadline(double timeout);
/* Initializes a condition variable on CLOCK_MONOTONIC. */
void pool_cond_init(pthread_cond_t *c);

/* ---- the pool itself (pool_core.c, pool_jobs.c, pool_handlers.c) -------- */

enum pool_state { POOL_RUN, POOL_CLOSE, POOL_TERMINATE };

/* A job table entry; id 0 marks an empty bucket. */
struct pool_jobslot {
    uint64_t id;
    pool_job *job;
};

/* The parent's view of one worker slot: the result handler's alone. */
struct pool_wslot {
    int fd;        /* read end of the worker's result pipe, -1 when none */
    pid_t pid;
    char *buf;     /* bytes read but not yet parsed into frames */
    size_t len, cap;
};

struct pool {
    /* Set by pool_create, read-only after. */
    pool_options opt;
    int nworkers;
    pid_t fs_pid;
    int ctl_fd;      /* control socket to the fork server */
    int queue_fd;    /* write end of the shared queue */
    struct pool_shm *shm;
    size_t shm_size;
    struct pool_worker_cfg cfg;
    pthread_t task_thread, result_thread;
    int wake_task[2]; /* wakes the task handler out of poll() */

    /* Guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* jobs finished, workers started or exited */
    pthread_cond_t task_cond; /* the task queue has work, or the handler must stop */
    enum pool_state state;
    bool shutting_down;       /* join has sent the EXIT messages: no more respawns */
    bool joined;
    bool broken;
    char broken_msg[512];
    bool fs_gone;             /* the fork server's socket closed */
    struct pool_jobslot *tab;
    size_t tab_cap, tab_len;
    uint64_t next_job;
    pool_taskmsg *q_head, *q_tail;
    bool task_busy;           /* the task handler is sending a message it popped */
    bool task_stop;
    pool_stats stats;
    pool_trace_rec *trace;
    size_t trace_len, trace_cap;
    int live, pending;        /* workers running; spawns asked for, not yet started */
    pid_t *pids;              /* per slot, 0 when empty */

    /* Result handler only. */
    struct pool_wslot *ws;
};

/* The job table (pool_jobs.c). Callers of pool_tab_find hold the pool lock. */
pool_job *pool_tab_find(pool *p, uint64_t id);
void pool_job_ref(pool_job *job);
void pool_job_unref(pool_job *job);
void pool_job_abort(pool_job *job, int status, const char *msg);
/* Takes every job out of the table (caller holds the lock); the caller then
 * calls pool_abort_jobs, which aborts them and drops the table's references. */
pool_job **pool_steal_jobs(pool *p, size_t *n);
void pool_abort_jobs(pool_job **v, size_t n, int status, const char *msg);
/* Frees the task queue's messages (caller holds the lock). */
void pool_free_task_queue(pool *p);

/* The handlers (pool_handlers.c). */
void *pool_task_handler(void *arg);
void *pool_result_handler(void *arg);
/* Sends one fragment without waiting: 1 sent, 0 no room, -1 queue gone. */
int pool_frag_send(pool *p, const struct pool_wire_hdr *hdr, const char *body, size_t len);
/* Asks the fork server for a worker in `slot` (caller holds the lock). */
void pool_respawn(pool *p, int slot);

#endif
