/*
 * pool_worker.c: the life of one worker process.
 *
 * A worker runs its initializer once, then loops: take one message off the
 * shared queue, run its tasks, write one result frame to its own result
 * stream. Both travel through the pool's transport (pool_transport.h: a
 * socket and a pipe, or rings in shared memory). It
 * leaves the loop on an EXIT message (the pool is closing), after
 * maxtasksperchild messages (a fresh worker will replace it), or when the
 * queue is gone. This is CPython's worker() in Lib/multiprocessing/pool.py.
 *
 * Taking a message is the delicate part. Every worker reads the same queue
 * (so whoever asks first gets the work, as in CPython), and the parent must
 * be able to tell, after a worker dies, exactly which chunk it held. So,
 * holding the queue lock, a worker
 *   1. PEEKS at the next message's header, without taking it;
 *   2. writes "I hold job J, chunk C" into its slot in shared memory;
 *   3. only then takes the message (all its fragments).
 * (The transport's wk_take does the three steps, under its robust lock.)
 * A worker that dies before 2 held nothing, and the message is still queued.
 * One that dies after 3 held the chunk, and its slot says so. One that dies
 * between 2 and 3 is reported as holding a chunk that another worker will
 * then run; the parent ignores results for a chunk it has already failed.
 * The lock is a robust mutex, so a worker that dies holding it does not
 * stop the others: the next locker is told, and repairs it.
 *
 * The time limit (pool_options.task_timeout) is kept by the parent, from
 * what the slot says: the worker writes when each item began (t_start, 0
 * between items) and when it took the queue lock (lock_at, 0 when it does
 * not hold it). The parent kills a worker whose item ran past the limit,
 * or that has been stopped longer than the limit, holding the lock or not
 * (pool_result_handler.c, check_limits). With the socket an idle worker
 * holds the lock while it waits for a message (the peek blocks); with shm
 * it waits outside the lock. Either way waiting alone is not a stall, so
 * only a stopped worker is killed for it.
 */
#include "pool_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Sends one frame on the slot's result stream: a uint32 length, then the
 * payload. */
static void worker_send(const struct pool_worker_cfg *cfg, int slot, int fd, msgpack_sbuffer *sb)
{
    uint32_t len = (uint32_t)(sb->size - sizeof len);
    memcpy(sb->data, &len, sizeof len);
    if (cfg->tx->ops->wk_send(cfg->tx, slot, fd, sb->data, sb->size) != 0)
        _exit(POOL_EXIT_RESULT_PIPE);
}

/* Starts a frame in sb: room for the length, then [kind, job, chunk, first, <body>]. */
static void worker_frame_begin(msgpack_sbuffer *sb, msgpack_packer *pk, int kind, uint64_t job,
                               uint32_t chunk, uint32_t first)
{
    static const char room[4];
    msgpack_sbuffer_clear(sb);
    msgpack_sbuffer_write(sb, room, sizeof room);
    msgpack_pack_array(pk, 5);
    msgpack_pack_int(pk, kind);
    msgpack_pack_uint64(pk, job);
    msgpack_pack_uint32(pk, chunk);
    msgpack_pack_uint32(pk, first);
}

/* Packs a message as a str that includes its NUL, so the parent can use it
 * in place as a C string (pool_chunk_item). */
static void worker_pack_msg(msgpack_packer *pk, const char *msg)
{
    size_t n = strlen(msg) + 1;
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, msg, n);
}

double pool_worker_clock_shift;

/* Stores a double as 8 big-endian bytes, msgpack's own order for a float 64:
 * the times column then reads the same on every host. (The MPI transport
 * already sends native structs, pool_mpi_wire.h, so mixed byte orders do
 * not work today; the frame body itself need not add to that.) */
static void worker_store_time(unsigned char *at, double t)
{
    uint64_t u;
    memcpy(&u, &t, sizeof u);
    for (int k = 7; k >= 0; k--, u >>= 8)
        at[k] = (unsigned char)u;
}

/* Ends a RESULT body: the status column (nil when all_ok) and the times
 * column (nil when the chunk was not timed). */
static void worker_pack_columns(msgpack_packer *pk, const unsigned char *status,
                                const unsigned char *times, size_t n, bool all_ok)
{
    if (all_ok) {
        msgpack_pack_nil(pk);
    } else {
        msgpack_pack_bin(pk, n);
        msgpack_pack_bin_body(pk, status, n);
    }
    if (times == NULL) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_bin(pk, 16 * n);
    msgpack_pack_bin_body(pk, times, 16 * n);
}

/* msgpack-c's write, out of line: worker_write's common path then saves
 * and restores no register (16 of its 33 instructions a value before). */
static __attribute__((noinline)) int worker_write_slow(void *data, const char *buf, size_t len)
{
    return msgpack_sbuffer_write(data, buf, len);
}

/* The packer's write into the frame: msgpack_sbuffer_write, with a
 * number's few bytes (1, 2, 3, 5 or 9) stored in place instead of through
 * a call to memcpy. The packer writes once per value: the call was a tenth
 * of a worker's instructions per item of a map of squares (callgrind). */
static int worker_write(void *data, const char *buf, size_t len)
{
    msgpack_sbuffer *sb = data;
    if (sb->alloc - sb->size < 9)
        return worker_write_slow(data, buf, len); /* grows it */
    char *at = sb->data + sb->size;
    switch (len) {
    case 1: at[0] = buf[0]; break;
    case 2: memcpy(at, buf, 2); break;
    case 3: memcpy(at, buf, 3); break;
    case 5: memcpy(at, buf, 5); break;
    case 9: memcpy(at, buf, 9); break;
    default: return worker_write_slow(data, buf, len);
    }
    sb->size += len;
    return 0;
}

/* The zone holds the items of a message that is not plain (a container
 * among them: pool_taskmsg_read_plain reads every other), one object each:
 * 64 KiB fits a chunk of a few thousand, the default chunksize of tens of
 * thousands of items. */
#define WORKER_ZONE_CHUNK (64 * 1024)

/* A plain message's objects kept past a chunk at most (24 bytes each): a
 * worker that once ran a chunk of a million items gives the memory back. */
#define WORKER_PLAIN_KEEP (64 * 1024)

bool pool_worker_scratch_init(struct pool_worker_scratch *s)
{
    s->side = NULL;
    s->side_cap = 0;
    s->plain = (struct pool_plain_objs){NULL, 0};
    return msgpack_zone_init(&s->zone, WORKER_ZONE_CHUNK);
}

void pool_worker_scratch_destroy(struct pool_worker_scratch *s)
{
    msgpack_zone_destroy(&s->zone);
    free(s->plain.v);
    free(s->side);
}

/* The message's task, items and `single` flag: read plainly when it is
 * plain (pool_frame.c), else unpacked by msgpack-c into the zone. */
static void worker_read_message(const struct pool_wire_hdr *hdr, const char *payload,
                                struct pool_worker_scratch *scratch, unsigned *task,
                                msgpack_object_array *items, bool *single)
{
    msgpack_zone_clear(&scratch->zone); /* the last chunk's objects, either way */
    if (scratch->plain.cap > WORKER_PLAIN_KEEP) {
        free(scratch->plain.v);
        scratch->plain = (struct pool_plain_objs){NULL, 0};
    }
    if (pool_taskmsg_read_plain(payload, hdr->total, &scratch->plain, task, items, single))
        return;
    msgpack_object msg;
    size_t off = 0;
    /* The parent built this message; a malformed one is a broken invariant. */
    if (msgpack_unpack(payload, hdr->total, &off, &scratch->zone, &msg) != MSGPACK_UNPACK_SUCCESS ||
        msg.type != MSGPACK_OBJECT_ARRAY || msg.via.array.size != 3 ||
        msg.via.array.ptr[1].type != MSGPACK_OBJECT_ARRAY ||
        msg.via.array.ptr[2].type != MSGPACK_OBJECT_BOOLEAN)
        _exit(POOL_EXIT_BAD_MESSAGE);
    *task = (unsigned)msg.via.array.ptr[0].via.u64;
    *items = msg.via.array.ptr[1].via.array;
    *single = msg.via.array.ptr[2].via.boolean; /* item i is the one argument */
}

/* The side columns of a chunk of n items: n status bytes, then when timed
 * 16 bytes of times per item. */
static unsigned char *worker_side(struct pool_worker_scratch *s, size_t n, bool timed)
{
    size_t need = n * (timed ? 17 : 1) + 1;
    if (need > s->side_cap) {
        unsigned char *p = realloc(s->side, need);
        if (p == NULL)
            _exit(POOL_EXIT_NOMEM);
        s->side = p;
        s->side_cap = need;
    }
    return s->side;
}

/*
 * Runs a chunk's items and packs its RESULT frame in `out`. The body is
 * columnar (pool_internal.h, enum pool_frame_kind):
 *   [values, status, times]
 * values: an array of one object per item, its value, or for a failed
 * item its message (worker_pack_msg); status: nil when every item
 * succeeded, else a bin of one byte per item (1 ok, 0 failed); times: a bin
 * of two big-endian doubles per item (when it began and ended, on the
 * parent's clock), or nil when the pool reads no item's times (`timed`
 * false: no trace and no time limit). The values are packed as the items
 * run, straight into `out` (a failed item's partial value is cut off
 * again); status and times are gathered on the side and appended after the
 * last item. Three objects per chunk plus one per item is what the parent
 * unpacks, where [ok, value, t0, t1] per item cost it five.
 *
 * Why `timed`: two clock reads per item were a quarter of a trivial map's
 * CPU here (perf, 23 ns each), and nothing reads them unless the pool
 * traces or keeps a time limit. The item number is written either way: a
 * dead worker's error names the item it was running.
 */
void pool_worker_run_chunk(struct pool_slot_shm *me, int slot, const struct pool_wire_hdr *hdr,
                           const char *payload, msgpack_sbuffer *out,
                           struct pool_worker_scratch *scratch, bool timed)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, worker_write);
    worker_frame_begin(out, &pk, POOL_FRAME_RESULT, hdr->job, hdr->chunk, hdr->first);

    unsigned task;
    msgpack_object_array all;
    bool single; /* item i is the one argument */
    worker_read_message(hdr, payload, scratch, &task, &all, &single);
    const msgpack_object_array *items = &all;
    size_t n = items->size;
    unsigned char *status = worker_side(scratch, n, timed);
    unsigned char *times = timed ? status + n : NULL;
    bool all_ok = true;
    char err[1024];
    struct pool_task_runner run; /* no such task: every item fails with err */
    bool known = pool_task_runner_init(&run, task, slot, err, sizeof err);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        atomic_store_explicit(&me->item, hdr->first + i, memory_order_release);
        size_t mark = out->size;
        double t0 = timed ? pool_now() : 0;
        if (timed) /* the time limit runs from here... */
            atomic_store_explicit(&me->t_start, t0, memory_order_release);
        msgpack_object_array one = {1, &items->ptr[i]};
        int rc = known ? pool_task_runner_run(&run, single ? &one : &items->ptr[i].via.array, &pk)
                       : -1;
        if (timed) { /* ...to here, item by item */
            atomic_store_explicit(&me->t_start, 0.0, memory_order_release);
            worker_store_time(times + 16 * i, t0 + pool_worker_clock_shift); /* the parent's clock */
            worker_store_time(times + 16 * i + 8, pool_now() + pool_worker_clock_shift);
        }
        status[i] = rc == 0;
        all_ok &= rc == 0;
        if (rc != 0) {
            out->size = mark; /* what the failed task packed is not a value */
            worker_pack_msg(&pk, err);
        }
    }
    worker_pack_columns(&pk, status, times, n, all_ok);
}

void pool_worker_initfail_frame(msgpack_sbuffer *out, const char *msg)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    worker_frame_begin(out, &pk, POOL_FRAME_INITFAIL, 0, 0, 0);
    worker_pack_msg(&pk, msg);
}

noreturn void pool_worker_fail_start(const struct pool_worker_cfg *cfg, int slot,
                                     int result_fd, const char *msg)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    pool_worker_initfail_frame(&out, msg);
    if (cfg != NULL && cfg->tx != NULL) {
        worker_send(cfg, slot, result_fd, &out);
    } else { /* no transport yet (a spawned worker, on the socket): its pipe */
        uint32_t len = (uint32_t)(out.size - sizeof len);
        memcpy(out.data, &len, sizeof len);
        pool_write_all(result_fd, out.data, out.size);
    }
    _exit(POOL_EXIT_INIT_FAILED);
}

int pool_worker_initialize(const struct pool_worker_cfg *cfg, int slot, msgpack_sbuffer *out,
                           msgpack_sbuffer *tmp)
{
    pool_worker_init_runs++;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    static const char no_args[] = {(char)0x90};
    const char *a = cfg->initargs ? cfg->initargs : no_args;
    size_t alen = cfg->initargs ? cfg->initargs_len : 1;
    msgpack_unpack_next(&u, a, alen, &off); /* checked by pool_create */
    msgpack_packer tpk;
    msgpack_packer_init(&tpk, tmp, msgpack_sbuffer_write);
    char err[1024];
    int rc = pool_task_run((unsigned)cfg->init_task, &u.data.via.array, &tpk, slot, err,
                           sizeof err);
    msgpack_unpacked_destroy(&u);
    if (rc != 0) {
        pool_worker_initfail_frame(out, err);
        return -1;
    }
    return 0;
}

noreturn void pool_worker_main(const struct pool_worker_cfg *cfg, int slot, int result_fd)
{
    /* Our parent (the fork server, or the pool's launcher thread with
     * start methods fork and spawn): if it goes, we go (no orphans). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        _exit(POOL_EXIT_OK);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);

    struct pool_slot_shm *me = cfg->tx->ops->slot(cfg->tx, slot);
    atomic_store(&me->pid, getpid());

    msgpack_sbuffer out, tmp;
    msgpack_sbuffer_init(&out);
    msgpack_sbuffer_init(&tmp);
    /* A failed initializer tells the parent (an INITFAIL frame, which
     * breaks the pool) and exits. */
    if (cfg->init_task >= 0 && pool_worker_initialize(cfg, slot, &out, &tmp) != 0) {
        worker_send(cfg, slot, result_fd, &out);
        _exit(POOL_EXIT_INIT_FAILED);
    }

    struct pool_worker_scratch scratch;
    if (!pool_worker_scratch_init(&scratch))
        _exit(POOL_EXIT_NOMEM);
    char *buf = NULL;
    size_t cap = 0;
    long done = 0;
    while (cfg->maxtasks == 0 || done < cfg->maxtasks) {
        struct pool_wire_hdr hdr;
        /* Peek, claim in the slot, take: pool_transport.h, rule 2. */
        if (cfg->tx->ops->wk_take(cfg->tx, slot, &hdr, &buf, &cap) != POOL_WIRE_FIRST)
            break;
        pool_worker_run_chunk(me, slot, &hdr, buf, &out, &scratch, cfg->timed);
        worker_send(cfg, slot, result_fd, &out);
        /* Only now is the chunk no longer ours: its result is in the stream. */
        atomic_store(&me->job, 0);
        done++;
    }
    /* _exit, not exit: the parent's atexit handlers and stdio buffers were
     * copied into us and are not ours to run or flush. */
    _exit(POOL_EXIT_OK);
}
