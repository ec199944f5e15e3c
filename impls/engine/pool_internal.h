/*
 * pool_internal.h: what the engine's files share and no client may use.
 *
 * The engine is three kinds of process and two parent threads:
 *
 *   parent process                    fork server              workers
 *   --------------                    -----------              -------
 *   caller's threads  --submit-->  task queue (memory)
 *   task handler      --messages--> the transport's shared queue ------> any worker
 *   result handler    <--frames------ a result stream per worker <---- its worker
 *                     (pool_transport.h: a SOCK_SEQPACKET queue and pipes, or
 *                      rings in shared memory)
 *   result handler    <--STARTED/EXITED-- control socket --> fork server --fork--> worker
 *                     (start methods fork and spawn: a launcher thread of the parent
 *                      speaks the same protocol, and forks, or forks and execs: pool_launcher.c)
 *
 * A job is one submit call (apply, map, imap). It is split into chunks; a
 * chunk is one message on the shared queue and one result frame back. The
 * job table maps job ids to the objects waiting for their chunks: a
 * pool_result (apply, map, futures) or a pool_iter (imap family).
 *
 * Dependencies run one way, downwards (docs/architecture.md draws them):
 *
 *   API files       pool_apply.c, pool_map.c, pool_imap_new.c -> pool_imap.c
 *                   (pool_imap.h), pool_result.c, pool_as_completed.c
 *   job table       pool_jobs.c      admits jobs, finds them by id
 *   task queue      pool_taskq.c     the queue in memory and the task handler
 *   result handler  pool_result_handler.c   reads results, watches workers
 *                   pool_watch.c     its time limits and fork-server bounds
 *
 * The job table and the result handler reach a job only through the
 * operations it carries (pool_job_ops), filled by pool_result.c and
 * pool_imap.c: nothing below the API files names a kind of job. pool_core.c
 * (the lifecycle) starts and stops them all; pool_msg.c and pool_frame.c,
 * pool_trace.c, pool_util.c and pool_registry.c serve every layer.
 *
 * Lock order: an object's lock (result or iterator) may be held while taking
 * the pool lock, never the reverse. The pool lock is never held while a
 * callback runs.
 *
 * Every wait has an end (docs/architecture.md, "Nothing waits forever"): a
 * result, a dead process, the task time limit, a bound on the fork
 * server's replies (past it the pool kills it and is broken), or an
 * interrupt (pool_interrupt_all).
 */
#ifndef POOL_INTERNAL_H
#define POOL_INTERNAL_H

#include "pool.h"
#include "pool_transport.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdnoreturn.h>
#include <string.h>

/* ---- errors (pool_util.c) ---------------------------------------------- */

/* Sets the calling thread's error message and returns `status`. */
int pool_seterr(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A broken invariant: prints "panic: ..." and aborts (xv6's panic). */
noreturn void pool_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Describes a worker's wait status: "was killed by signal 9 (Killed)",
 * "exited with status 3"; an engine exit status is named (pool_exit_status). */
void pool_describe_exit(int status, char *buf, size_t len);

/* ---- registry (pool_registry.c) ---------------------------------------- */

#define POOL_MAX_TASKS 256
#define POOL_TASK_NAME_MAX 64

/* Loads the built-ins; pool_create calls it before forking, because a
 * worker's registry is the copy it was forked with. */
void pool_registry_init(void);
/* A hash of every registered task's name, in order: a spawned worker
 * checks its own against its parent's. */
uint64_t pool_registry_hash(void);
/* How many tasks are registered (a mismatch's message names both counts). */
unsigned pool_registry_count(void);
/* Index of a task name, or -1. */
int pool_task_index(const char *name);
/*
 * Runs task `index` on `args`. On success packs the result into `out` and
 * returns 0; on failure writes the message into err and returns -1 (nothing
 * packed). `slot` is the worker slot, -1 in the parent.
 */
int pool_task_run(unsigned index, const msgpack_object_array *args, msgpack_packer *out,
                  int slot, char *err, size_t errlen);

/* What a task is handed beside its arguments (pool.h: pool_task_slot,
 * pool_task_udata, pool_task_fail). */
struct pool_task_ctx {
    int slot;
    void *udata;
    char *err;
    size_t errlen;
    bool failed; /* pool_task_fail wrote err */
};

/* A task made ready to run item after item: pool_task_run's lookup and
 * context once per chunk, not once per item (a fifth of a worker's
 * instructions per item of a map of squares, callgrind). */
struct pool_task_runner {
    pool_task_fn fn;
    unsigned index;
    struct pool_task_ctx ctx;
};
/* False, with the message in err, when there is no task `index`. */
bool pool_task_runner_init(struct pool_task_runner *r, unsigned index, int slot, char *err,
                           size_t errlen);
/* A task's failure without pool_task_fail: a message of the engine's. */
void pool_task_runner_no_message(const struct pool_task_runner *r, int rc);

/* pool_task_run, once the runner is made. */
static inline int pool_task_runner_run(struct pool_task_runner *r,
                                       const msgpack_object_array *args, msgpack_packer *out)
{
    r->ctx.failed = false;
    int rc = r->fn(args, out, &r->ctx);
    if (rc != 0 && !r->ctx.failed)
        pool_task_runner_no_message(r, rc);
    return rc == 0 ? 0 : -1;
}
/* pool_task_register without the one-time registration of the built-ins. */
int pool_task_register_raw(const char *name, pool_task_fn fn, void *udata);
/* Registers the built-in tasks (pool_tasks_builtin.c); called once. */
void pool_builtin_register(void);
/* How many times this process ran a worker initializer (init_count task). */
extern int pool_worker_init_runs;

/* ---- wire formats (pool_msg.c) ------------------------------------------ */

/*
 * A task message is a header and a payload; the transport moves it whole
 * (pool_transport.h). The socket transport's queue carries fragments:
 * datagrams of at most POOL_FRAG_MAX bytes. A message is one FIRST fragment (header + start of payload)
 * followed by CONT fragments. One thread sends at a time (the task handler,
 * or a submitter on the direct path, which sends only one-fragment messages:
 * pool_taskq.c), so a message's fragments are consecutive; a worker reads a whole message while
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
 * msgpack array [task_index, [item_0, item_1, ...], single]: each item is
 * an argument array (apply, starmap), or with single true the task's one
 * argument (map calls task(item)), which the worker hands over as a
 * one-element array without its having travelled as one.
 */
typedef struct pool_taskmsg {
    struct pool_taskmsg *next;
    struct pool_wire_hdr hdr;
    size_t len;
    char data[];
} pool_taskmsg;

/*
 * Builds a task message from already-packed values in buf: the `count`
 * values in buf[start, end), copied as they are, in one piece. Each value
 * is an argument array, or with `single` the task's one argument.
 */
pool_taskmsg *pool_taskmsg_new(uint64_t job, uint32_t chunk, uint32_t first, unsigned task,
                               const char *buf, size_t start, size_t count, size_t end,
                               bool single);
/* Frees a linked list of task messages. */
void pool_taskmsg_free_list(pool_taskmsg *m);

/*
 * Checks that buf[0..len) is exactly one msgpack value of the allowed types
 * (no ext), and if `want_array`, that it is an array. Returns POOL_OK or
 * POOL_EINVAL with a message naming `what`.
 */
int pool_msg_check_value(const char *buf, size_t len, bool want_array, const char *what);

/*
 * Splits a packed array into its elements: sets *count and, for every
 * stride-th element i (0, stride, 2 stride, ...; stride 0 is 1), its byte
 * offset into starts[i / stride] (the caller frees *starts; with stride 1,
 * element i ends where i+1 begins, the last at len). Checks every element
 * as above.
 */
int pool_msg_split_array(const char *buf, size_t len, size_t stride, size_t **starts,
                         size_t *count, bool elements_are_arrays);
/* A packed array's length, from its header alone; POOL_EINVAL when buf is
 * not an array's start or claims more elements than it has bytes. */
int pool_msg_array_count(const char *buf, size_t len, size_t *count);

/* Result frames on a worker's pipe: a uint32 length, then the msgpack payload
 * [kind, job, chunk, first, body]. INITFAIL's body is the message. RESULT's
 * body is columnar, [values, status, times], for a chunk of n items:
 *   values  an array of n objects: item i's value, or when it failed its
 *           message (a str that holds its NUL, so usable in place);
 *   status  nil when every item succeeded, else a bin of n bytes (1 ok, 0 failed);
 *   times   a bin of 2n big-endian doubles: item i began at 2i, ended at 2i+1;
 *           nil when the worker was not timed (no trace, no time limit).
 * So the parent unpacks one object per item, not the five of an array
 * [ok, value, t_start, t_end] per item, and skips every per-item status
 * check of a chunk without failures (pool_chunk.nfailed); a plain frame
 * (every value a scalar) it reads by a walk, with no unpack (pool_frame.c). */
enum pool_frame_kind { POOL_FRAME_RESULT = 1, POOL_FRAME_INITFAIL = 2 };

/* A big-endian number of k (0..8) bytes: msgpack's order for lengths and
 * numbers, and the frame's times column. The submit-time walk, the plain
 * frame's reader and pool_chunk_time all read through it. */
static inline uint64_t pool_be_read(const unsigned char *p, size_t k)
{
    uint32_t w;
    uint64_t v = 0;
    switch (k) { /* msgpack's widths in a load or two; a loop took 14 instructions for 2 */
    case 1:
        return p[0];
    case 2:
        return (uint64_t)p[0] << 8 | p[1];
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    case 4:
        memcpy(&w, p, sizeof w);
        return __builtin_bswap32(w);
    case 8:
        memcpy(&v, p, sizeof v);
        return __builtin_bswap64(v);
#else
    case 4:
        memcpy(&w, p, sizeof w);
        return w;
    case 8:
        memcpy(&v, p, sizeof v);
        return v;
#endif
    }
    for (size_t i = 0; i < k; i++)
        v = v << 8 | p[i];
    return v;
}

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
    /* For the time limit (pool_options.task_timeout; the result handler's
     * check_limits reads them): when the item named above began (0 between
     * items: reading a message, sending a result), and when the worker took
     * the queue lock (0 when it does not hold it). */
    _Atomic double t_start;
    _Atomic double lock_at;
};

/* Everything a worker needs, copied into the fork server at pool_create. */
struct pool_worker_cfg {
    struct pool_transport *tx; /* how it takes chunks and sends results */
    int init_task;         /* -1: no initializer */
    char *initargs;        /* packed array, or NULL */
    size_t initargs_len;
    long maxtasks;
    bool timed;            /* read the clock per item: the pool traces or keeps a time
                              limit (pool_worker_run_chunk) */
    /* Start methods fork and spawn (pool_launcher.c). */
    int start_method;      /* enum pool_start_method */
    int shm_fd;            /* spawn: the memfd behind the slot records, passed to each
                              worker (the initializer's arguments after them); else -1 */
    size_t shm_size;       /* spawn: its size (the slots, then initargs) */
    uint64_t registry_hash; /* spawn: the task names' hash (pool_registry_hash) */
    char **spawn_argv;     /* spawn: the program and its arguments, a copy */
};

/* The worker's whole life; never returns. */
noreturn void pool_worker_main(const struct pool_worker_cfg *cfg, int slot, int result_fd);
/* The pieces of that life an MPI worker rank (pool_mpi.c), which serves one
 * pool after another and never exits between them, runs on its own:
 * the initializer (0, or -1 with an INITFAIL frame in out), the INITFAIL
 * frame itself, and one chunk's tasks into one RESULT frame in out (its
 * uint32 length left for the sender to fill). `me` is the slot record the
 * worker writes (the item it runs, and when timed, when it began). */
int pool_worker_initialize(const struct pool_worker_cfg *cfg, int slot, msgpack_sbuffer *out,
                           msgpack_sbuffer *tmp);
void pool_worker_initfail_frame(msgpack_sbuffer *out, const char *msg);
/* A worker's objects for a plain task message, kept between chunks. */
struct pool_plain_objs {
    msgpack_object *v;
    size_t cap;
};
/* What a worker keeps from one chunk to the next, so that a chunk costs no
 * allocation once its buffers have grown to fit: the objects of a plain
 * task message (pool_taskmsg_read_plain), the zone any other is unpacked
 * into (msgpack-c's unpack_next made and freed an 8 KiB one per message)
 * and the side columns of its result (status, times). */
struct pool_worker_scratch {
    msgpack_zone zone;
    struct pool_plain_objs plain; /* a plain message's objects (pool_frame.c) */
    unsigned char *side;
    size_t side_cap;
};
bool pool_worker_scratch_init(struct pool_worker_scratch *s);
void pool_worker_scratch_destroy(struct pool_worker_scratch *s);
void pool_worker_run_chunk(struct pool_slot_shm *me, int slot, const struct pool_wire_hdr *hdr,
                           const char *payload, msgpack_sbuffer *out,
                           struct pool_worker_scratch *scratch, bool timed);
/* Added to every time a worker reports (t_start, t_end): 0 for a forked
 * worker (one clock); an MPI rank's offset to rank 0's clock, so that a
 * trace across hosts is on one clock (pool_mpi.c). */
extern double pool_worker_clock_shift;

/*
 * Exit statuses of the engine's own processes, one meaning per number, so
 * that "exited with status 74" in an error names its cause
 * (pool_describe_exit decodes them). They follow sysexits.h; a task that
 * calls exit() itself (the built-in die) may of course use any number.
 */
enum pool_exit_status {
    POOL_EXIT_OK = 0,              /* worker: EXIT message, maxtasksperchild, or queue closed */
    POOL_EXIT_QUEUE_LOCK = 70,     /* worker: the shared queue's lock is unusable */
    POOL_EXIT_NOMEM = 71,          /* worker: no memory for a task message, or a result */
    POOL_EXIT_QUEUE_CUT = 72,      /* worker: the queue closed in the middle of a message */
    POOL_EXIT_QUEUE_OVERRUN = 73,  /* worker: a message longer than its header said */
    POOL_EXIT_RESULT_PIPE = 74,    /* worker: cannot write its result (the pool is gone) */
    POOL_EXIT_BAD_MESSAGE = 75,    /* worker: a task message it cannot parse */
    POOL_EXIT_FS_SETUP = 76,       /* fork server: no signalfd or memory at start */
    POOL_EXIT_FS_POLL = 77,        /* fork server: poll() failed */
    POOL_EXIT_INIT_FAILED = 78,    /* worker: its initializer failed (INITFAIL sent first) */
    POOL_EXIT_REAPED_ELSEWHERE = 79, /* (not an exit) fork: another part of the program reaped
                                      the worker (waitpid(-1)), its status is lost */
    POOL_EXIT_EXEC = 80,           /* spawn: the worker program could not be exec'd */
    POOL_EXIT_SPAWN_ARG = 81,      /* spawn: the worker could not use what it was passed */
};

/* A worker that cannot start (its initializer failed; a spawned one whose
 * tasks differ from the parent's): sends an INITFAIL frame with msg, which
 * breaks the pool, and exits with POOL_EXIT_INIT_FAILED. Through cfg's
 * transport; cfg NULL (a spawned worker before it has one, always on the
 * socket transport, whose result stream is the pipe): straight to result_fd. */
noreturn void pool_worker_fail_start(const struct pool_worker_cfg *cfg, int slot,
                                     int result_fd, const char *msg);

/* ---- fork server (pool_forkserver.c) ------------------------------------ */

enum pool_fs_op {
    POOL_FS_SPAWN = 1,   /* parent -> fs: start a worker in `slot` */
    POOL_FS_KILLALL = 2, /* parent -> fs: SIGKILL every worker */
    POOL_FS_QUIT = 3,    /* parent -> fs: kill what is left, reap, exit */
    POOL_FS_STARTED = 4, /* fs -> parent: worker `pid` in `slot`; carries its result pipe */
    POOL_FS_EXITED = 5,  /* fs -> parent: worker `pid` in `slot` ended with `status` */
    POOL_FS_SPAWNFAIL = 6, /* fs -> parent: no worker in `slot`; `status` is the errno */
    POOL_FS_BYE = 7,     /* launcher -> parent: every worker reaped, the launcher is done
                            (fork, spawn: the end of its socket cannot tell, since forks
                            made elsewhere in the process may hold a copy of it) */
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
/* Sends an event, with `fd` attached when fd >= 0 (fork server, launcher). */
int pool_fs_send_event(int ctl_fd, const struct pool_fs_msg *m, int fd);
/* Forks (spawn: and execs) the first nslots workers on the calling thread,
 * then starts the launcher thread of start methods fork and spawn
 * (pool_launcher.c), which speaks the fork server's protocol from inside
 * this process: the first workers' STARTED (or SPAWNFAIL) are already in
 * the socket. Returns 0 and sets *ctl_fd, or -1 with pool_last_error set. */
int pool_launcher_start(const struct pool_worker_cfg *cfg, int nslots, int *ctl_fd,
                        pthread_t *thread);
/* Sends a request: 0, or -1 when the fork server is gone. */
int pool_fs_send(int ctl_fd, int op, int slot);
/* Receives an event (*fd: the descriptor passed with it, or -1): 1, 0 when
 * the socket closed, -1 on error. */
int pool_fs_recv(int ctl_fd, struct pool_fs_msg *msg, int *fd);

/* ---- chunks (pool_msg.c) ------------------------------------------------- */

/*
 * A chunk's results, as delivered to its job. Owned by the job once handed
 * over. A frame's chunk holds the columns of its RESULT body (enum
 * pool_frame_kind above): `values` are unpacked objects that point into
 * `raw` (msgpack-c unpacks strings without copying), `ok` and `times` point
 * into `raw` directly. A chunk the parent makes (a dead worker's, a time
 * limit's) has none of them: status and errmsg say why every item failed.
 */
typedef struct pool_chunk {
    uint32_t index;
    uint32_t first;       /* job-wide index of item 0 */
    uint32_t count;
    char *raw;            /* the frame payload: NULL (none, or a settled plain
                             frame's that nothing points into), or inside the
                             chunk's block */
    msgpack_zone *zone;   /* owns the unpacked objects: NULL (none, or a plain
                             frame's values inside the block), or &own_zone */
    msgpack_object *values;          /* count values or messages; NULL: no frame */
    const unsigned char *ok;         /* count bytes, 1 ok, 0 failed; NULL: all ok */
    const unsigned char *times;      /* 2 * count big-endian doubles (pool_chunk_time);
                                        NULL: not timed */
    uint32_t nfailed;                /* items whose ok byte is 0 */
    int status;           /* POOL_OK, or the error failing every item (dead worker) */
    char *errmsg;         /* for a chunk failed by the parent */
    /* A chunk failed because one of its items ran past the time limit: that
     * item (index within the chunk) fails with culprit_status and
     * culprit_msg, the others with status and errmsg (culprit_msg NULL: none). */
    uint32_t culprit;
    int culprit_status;
    char *culprit_msg;
    double culprit_start; /* when that item began (its trace record's t_start) */
    /* A chunk failed by its worker's end: 1 + the index (within the chunk)
     * of the item the worker was on, 0 when unknown; running_start: when
     * that item began (0: not begun). For the trace's states. */
    uint32_t lost_at;
    double running_start;
    size_t trace_first;   /* index of its first trace record, SIZE_MAX if none */
    /* Where a plain frame's chunk lives (pool_chunk_from_plain_frame):
     * HEAP its own block (and every other chunk), SCRATCH the result
     * handler's buffer until its job is found, ROOM inside its job (an
     * apply's result has room for one small chunk: one allocation per task
     * fewer). block: the bytes of a chunk in SCRATCH (at most the scratch
     * buffer's size, what pool_chunk_settle copies), 0 for others. */
    uint8_t home;
    uint32_t block;
    /* A frame's chunk is one block: the chunk, then its payload (raw_inline),
     * and its zone's head inside (own_zone), so that a result costs the
     * result handler two allocations (this block and the zone's first
     * chunk), not four. A chunk the parent makes has neither (calloc of
     * sizeof *c: raw and zone stay NULL). */
    msgpack_zone own_zone;
    char raw_inline[];
} pool_chunk;

void pool_chunk_free(pool_chunk *c);
/* Points c's columns (count, values, ok, times, nfailed) into an unpacked
 * RESULT body [values, status, times]; false when its shape is wrong. */
bool pool_chunk_read_body(pool_chunk *c, const msgpack_object *body);
/* Item i: POOL_OK and *value, or an error status and *msg. */
int pool_chunk_item(const pool_chunk *c, uint32_t i, const msgpack_object **value,
                    const char **msg);
/* pool_frame.c: a RESULT frame whose values are all scalars (the common
 * one), read without msgpack-c into one block with no zone: its chunk (index, first
 * and columns set) and *job; NULL for any other frame, which the caller
 * unpacks the general way. The block is the scratch buffer (home SCRATCH)
 * when it fits there, the buffer grown to it if need be, else allocated
 * (home HEAP; always, when scratch is NULL). */
struct pool_frame_scratch {
    void *buf;   /* malloc'd, aligned for a chunk; NULL until the first frame */
    size_t size; /* its bytes */
    size_t max;  /* the most it grows to: a larger block is allocated */
};
pool_chunk *pool_chunk_from_plain_frame(const char *data, uint32_t len, uint64_t *job,
                                        struct pool_frame_scratch *scratch);
enum pool_chunk_home { POOL_CHUNK_HEAP, POOL_CHUNK_SCRATCH, POOL_CHUNK_ROOM };
/* A chunk in SCRATCH moved (its pointers with it) into `room` (c->block
 * bytes, aligned for a chunk), or into a block of its own when room is
 * NULL; its values into `values` (count objects: a map's slots for it,
 * pool_job_ops.values_home) when not NULL, else kept in the block. Any
 * other chunk is returned as it is. */
pool_chunk *pool_chunk_settle(pool_chunk *c, void *room, msgpack_object *values);
/* Reads a task message [task, items, single] whose items are scalars or
 * arrays of scalars into a->v (items first, then their elements), as
 * msgpack-c's unpack would; strings point into payload. False for any
 * other message (msgpack-c reads it then) or out of memory. */
bool pool_taskmsg_read_plain(const char *payload, size_t len, struct pool_plain_objs *a,
                             unsigned *task, msgpack_object_array *items, bool *single);
/* The first zone chunk for unpacking len packed bytes (grows if short). */
size_t pool_zone_guess(size_t len);
/* How many of its items failed: all of a chunk without a frame. */
uint32_t pool_chunk_failed(const pool_chunk *c);
/* When item i began (end false) or ended (end true); only for a frame's
 * chunk (values not NULL); 0 when it was not timed. */
double pool_chunk_time(const pool_chunk *c, uint32_t i, bool end);

/* ---- jobs and their operations -------------------------------------------- */

typedef struct pool_job pool_job;

/*
 * What the engine below the API files may do to a job without knowing its
 * kind, as libuv's threadpool calls w->work(w). pool_result.c (apply, map,
 * futures) and pool_imap.c (the iterators) each fill one table; the job
 * table and the result handler call through it and name no kind.
 */
typedef struct pool_job_ops {
    /* A chunk arrived (result handler thread); the job takes ownership. */
    void (*deliver)(pool_job *job, pool_chunk *c);
    /* Fails whatever is still missing (terminate, a broken pool, the fork
     * server gone); called after the job has left the table. */
    void (*abort)(pool_job *job, int status, const char *msg);
    /* Items in chunk number `chunk`, to fail a dead worker's chunk whole. */
    uint32_t (*chunk_count)(pool_job *job, uint32_t chunk);
    /* A block of `size` bytes inside the job for a chunk of it, or NULL:
     * asked by the result handler under the pool lock, at most once
     * granted per job (NULL: the job has no room, a chunk gets a block). */
    void *(*room)(pool_job *job, size_t size);
    /* Where chunk c's values go, c->count objects inside the job (a map's
     * final array), or NULL: asked like room, at most once granted per
     * chunk index, so that a chunk run twice never writes over the values
     * of the one kept (NULL: the job keeps values in each chunk). */
    msgpack_object *(*values_home)(pool_job *job, const pool_chunk *c);
    /* Reference counting shared by the job table and the caller. */
    void (*ref)(pool_job *job);
    void (*unref)(pool_job *job);
} pool_job_ops;

/* The head of every object in the job table: a result's or an iterator's
 * first member. Set before the job is registered, read-only after. */
struct pool_job {
    const pool_job_ops *ops;
    uint64_t id;
    unsigned task;
    double t_submit;
    bool has_cb;   /* a callback will mark its trace records (pool_trace_mark_callback) */
};

/* ---- results, for the other API files (pool_result.c) ----------------------- */

/* Creates an apply (is_map false: one item) or map result, holding one
 * reference for the caller. */
pool_result *pool_result_new(pool *p, unsigned task, bool is_map, size_t nitems, long chunksize,
                             pool_callback cb, pool_callback ecb, void *udata);
/* The job head of a result: its first member. */
static inline pool_job *pool_result_head(pool_result *r) { return (pool_job *)(void *)r; }
/* Calls fn once the result is ready (after its callbacks), or at once if it
 * is: how as_completed learns, like CPython's Future._waiters. */
int pool_result_add_waiter(pool_result *r, pool_callback fn, void *udata);
/* Completes a map of no items at once, as CPython does (no callback). */
void pool_result_finish_empty(pool_result *r);

/* ---- as_completed, for the iterator (pool_as_completed.c) ------------------ */

typedef struct pool_completion pool_completion;

/* Watches the futures; holds one reference for the caller. NULL with
 * pool_last_error set when out of memory. */
pool_completion *pool_completion_new(pool_result *const *futures, size_t n);
/* The next finished future's index: POOL_OK, POOL_EEND or POOL_ETIMEDOUT. */
int pool_completion_next(pool_completion *c, double timeout, size_t *index);
/* Drops the caller's reference (futures not yet done hold their own). */
void pool_completion_release(pool_completion *c);

/* ---- the job table (pool_jobs.c) ------------------------------------------- */

/*
 * Checks the pool accepts work and resolves the task name: returns the task
 * index, or an error status with pool_last_error set.
 */
int pool_check_submit(pool *p, const char *task);
/* A new job id (counts a submitted job). */
uint64_t pool_new_job(pool *p);
/*
 * Puts a job in the table, which takes a reference of its own. Refused
 * (POOL_ESTATE / POOL_EBROKEN) once the pool is terminated or broken, and
 * once closed unless `continuing` (an iterator accepted before close).
 */
int pool_job_register(pool *p, pool_job *job, bool continuing);
/* A new id (into job and m's header), register, then m on the task queue,
 * under one hold of the pool lock; m is taken in every case. As register. */
int pool_job_submit_one(pool *p, pool_job *job, struct pool_taskmsg *m);
/* Removes a job from the table; true if it was there (the caller then drops
 * the table's reference). */
bool pool_job_unregister(pool *p, uint64_t id);
/* The job of that id, or NULL. Caller holds the pool lock. */
pool_job *pool_job_find(pool *p, uint64_t id);
/* The same, taking the pool lock and a reference for the caller. */
pool_job *pool_job_get(pool *p, uint64_t id);
/* Takes every job out of the table (caller holds the pool lock); the caller
 * then unlocks and calls pool_jobs_abort, which fails them and drops the
 * table's references. Two steps, so no callback runs under the pool lock. */
pool_job **pool_jobs_steal(pool *p, size_t *n);
void pool_jobs_abort(pool_job **v, size_t n, int status, const char *msg);

/* ---- the task queue and its thread (pool_taskq.c) ------------------------- */

/* Starts the task handler thread (and its wake-up pipe). */
int pool_taskq_start(pool *p);
/* Appends task messages (a linked list ending at `last`), or sends them
 * from the calling thread when nothing is waiting. Takes the pool lock. */
void pool_taskq_push(pool *p, pool_taskmsg *first, pool_taskmsg *last, size_t n);
/* The same under the caller's hold of the pool lock; false: refused (the
 * pool ended), the caller frees the list after the unlock. */
bool pool_taskq_push_locked(pool *p, pool_taskmsg *first, pool_taskmsg *last, size_t n);
/* Appends one EXIT message per worker slot (caller holds the pool lock). */
void pool_taskq_push_exits(pool *p);
/* Frees every queued message (caller holds the pool lock, or is alone). */
void pool_taskq_clear(pool *p);
/* Tells the task handler to stop, wakes it, and waits for it to end. */
void pool_taskq_stop(pool *p);

/* ---- the result handler (pool_result_handler.c) ----------------------------- */

void *pool_result_handler(void *arg);
/* True on the result-handler thread (a callback). */
bool pool_on_result_thread(pool *p);
pthread_t pool_result_thread_id(pool *p);
/* Asks the fork server for a worker in `slot` (caller holds the pool lock). */
void pool_respawn(pool *p, int slot);
/* Sends the fork server a request without ever blocking (caller holds the
 * pool lock): a full control socket means the fork server is not reading,
 * which the result handler then treats as a stopped fork server. KILLALL
 * and QUIT start the clock of the reply they wait for (fs_killall_at,
 * fs_quit_at). */
void pool_fs_request(pool *p, int op);
/* How long the pool waits for the fork server to answer a request (a
 * worker started, a worker's exit reported, a quit) before it kills it
 * and the pool is broken (pool_watch.c): a stopped fork server must not
 * hang anything. REPLY when it is stopped (SIGSTOP), HARD in any state. */
#define POOL_FS_REPLY_S 2.0
#define POOL_FS_HARD_S 30.0
/* The watch (pool_watch.c), on the result handler before each poll: kills
 * workers past the time limit or stopped too long, and a fork server that
 * owes a reply too long. Returns the poll timeout in ms (-1: none due). */
int pool_watch(pool *p);
/* Wakes the result handler out of poll (any thread; never blocks). */
void pool_wake_result_handler(pool *p, char why);
/* The interrupt table (pool_core.c): pools pool_interrupt_all() wakes. */
void pool_live_add(pool *p);
void pool_live_remove(pool *p);
/* Whether pool_interrupt_all ran since the pool was created (result handler). */
bool pool_interrupt_pending(const pool *p);
/* How many times pool_interrupt_all has run in this process. */
unsigned pool_interrupts_so_far(void);

/* ---- counters and the trace (pool_trace.c) ---------------------------------- */

/* Counts a delivered chunk's items and appends their trace records
 * (caller holds the pool lock). */
void pool_record_chunk(pool *p, pool_chunk *c, const pool_job *job, int slot, pid_t pid,
                       double now);
/* Task messages about to be queued (caller holds the pool lock): counts
 * their bytes and, with the trace on, remembers their chunks, so that the
 * ones that never come back leave records too (pool_trace_abandon). */
void pool_trace_sent(pool *p, const pool_taskmsg *first);
/* Every job is being failed at once (terminate, interrupt, a broken pool,
 * the end: pool_jobs_steal, whose jobs v are; caller holds the pool lock):
 * appends a record for each task of theirs sent and not recorded, KILLED if
 * a worker was running it (or had run it, its chunk's result unsent), else
 * NOT_STARTED; then forgets the sent chunks (no job can follow). */
void pool_trace_abandon(pool *p, pool_job *const *v, size_t n);
/* Sets t_callback on `count` records from `first` (a chunk's trace_first;
 * t = 0: no callback ran, the records are only released to the sink). */
void pool_trace_mark_callback(pool *p, size_t first, size_t count, double t);
/* Counts a callback run, and a failed one with its message on stderr. */
void pool_count_callback(pool *p, int rc, const char *what, uint64_t job, const char *err);
void pool_count_unobserved(pool *p);
/* Failed jobs whose handle was freed unread AFTER they completed: counted
 * by pool_result_free, which may run after pool_destroy (handles outlive the
 * pool), so this count lives apart from the pool, shared by reference by
 * the pool and its results (pool_result.c); pool_get_stats adds it in. */
struct pool_unobserved {
    atomic_int refs;
    atomic_uint_fast64_t late;
};
struct pool_unobserved *pool_unobserved_new(void);
void pool_unobserved_unref(struct pool_unobserved *u);

/* ---- lifecycle and introspection (pool_core.c) ------------------------------ */

/* Pid of a worker currently holding a chunk of job `id`, or 0. */
pid_t pool_job_holder(pool *p, uint64_t id);

/* ---- clocks and waits (pool_util.c) ----------------------------------------- */

/* Waits on c (which must be on CLOCK_MONOTONIC, see pool_cond_init) until
 * signalled or `deadline` (pool_now() seconds; < 0: forever). Returns 0, or
 * ETIMEDOUT. The caller re-checks its own condition, as with any cond wait. */
int pool_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, double deadline);
/* The deadline `timeout` seconds from now; < 0 (forever) stays -1. */
double pool_deadline(double timeout);
/* Initializes a condition variable on CLOCK_MONOTONIC. */
void pool_cond_init(pthread_cond_t *c);

/* ---- the pool itself ------------------------------------------------------- */

enum pool_state { POOL_RUN, POOL_CLOSE, POOL_TERMINATE };

/* A job table entry; id 0 marks an empty bucket. */
struct pool_jobslot {
    uint64_t id;
    pool_job *job;
};

/* The parent's view of one worker slot: the result handler's alone. */
struct pool_wslot {
    bool attached; /* a worker is started in the slot and its stream not yet ended */
    pid_t pid;
    char *buf;     /* bytes read but not yet parsed into frames */
    size_t len, cap;
    double eof_at;        /* its pipe closed and EXITED is not in yet (0: none) */
    double stopped_since; /* first seen stopped (SIGSTOP) by check_limits (0: not) */
    bool killed;          /* the parent killed it for a limit; why, below */
    char kill_why[256];
    double kill_t_start;  /* the timed-out item's start, for its trace record */
    uint64_t last_job;    /* the last chunk it delivered (not to fail it again) */
    uint32_t last_chunk;
};

struct pool {
    /* Set by pool_create, read-only after. */
    pool_options opt;
    int nworkers;
    pid_t fs_pid;    /* the fork server; 0 with a launcher thread (fork, spawn) */
    bool fs_thread_mode; /* start method fork or spawn: the launcher is a thread */
    pthread_t fs_thread;
    int ctl_fd;      /* control socket to the fork server */
    pool_transport *tx; /* how chunks and results travel (pool_transport.h) */
    struct pool_slot_shm *slots; /* shared memory, one per worker slot */
    size_t slots_size;
    struct pool_worker_cfg cfg;
    pthread_t task_thread, result_thread;
    int wake_result[2]; /* wakes the result handler out of poll(): 'i' = interrupt
                           (pool_interrupt_all, from a signal handler), 'w' = look */
    unsigned intr_seen;   /* interrupts counted before this pool was created */

    /* Guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* jobs finished, workers started or exited */
    pthread_cond_t task_cond; /* the task queue has work, or the handler must stop */
    enum pool_state state;
    bool shutting_down;       /* join has sent the EXIT messages: no more respawns */
    bool joined;
    bool broken;              /* an initializer failed, or the fork server died */
    char broken_msg[512];
    bool interrupted;         /* pool_interrupt_all: jobs and submits fail with POOL_EINTR */
    bool fs_gone;             /* the fork server's socket closed */
    bool fs_quit_sent;        /* join told it to quit: its end is expected */
    double fs_stuck_at;       /* a request could not even be sent (0: none): it is
                                 not reading, a reply owed as any other */
    double fs_killall_at;     /* KILLALL sent, workers not all reported gone (0: none) */
    double fs_quit_at;        /* QUIT sent, its socket not closed yet (0: none) */
    double *spawn_at;         /* per slot: SPAWN sent, no STARTED/SPAWNFAIL yet (0: none) */
    struct pool_jobslot *tab; /* the job table (pool_jobs.c) */
    size_t tab_cap, tab_len;
    uint64_t next_job;
    pool_taskmsg *q_head, *q_tail; /* the task queue (pool_taskq.c) */
    bool task_busy;           /* the task handler is sending a message it popped */
    bool task_stop;
    pool_stats stats;
    /* stats.callbacks_run and .callback_errors, counted outside the lock
     * (the result handler counts one per callback, beside the lock rounds
     * it already pays per result); pool_get_stats adds them in. */
    atomic_uint_fast64_t callbacks_run, callback_errors;
    struct pool_unobserved *unobs; /* errors_unobserved counted at free (pool_result.c) */
    pool_trace_rec *trace;
    size_t trace_len, trace_cap;
    size_t trace_base;        /* records handed to the trace_sink so far */
    uint8_t *trace_hold;      /* per record (trace_sink only): awaits its callback */
    struct pool_trace_sent *sent; /* chunks queued, no records yet (trace on): pool_trace.c */
    size_t sent_len, sent_cap, sent_dead;
    int live, pending;        /* workers running; spawns asked for, not yet started */
    pid_t *pids;              /* per slot, 0 when empty */

    /* Result handler only. */
    struct pool_wslot *ws;
    char fs_kill_why[200];    /* why the pool killed its fork server ("" if it did not) */
    int fs_status;            /* the fork server's wait status, once reaped */
    bool fs_reaped;
    double watch_at;          /* the watch's last check (pool_watch.c) */
};

/* A worker slot's record (job held, item, t_start, lock_at, pid), through
 * the transport: shared memory for the local ones. */
static inline struct pool_slot_shm *pool_slot(pool *p, int i)
{
    return p->tx->ops->slot(p->tx, i);
}

#endif
