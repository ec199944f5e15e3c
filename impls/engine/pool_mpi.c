/*
 * pool_mpi.c: the MPI job under the engine (pool_mpi.h): starting it, who
 * is where (hosts, pids), whose clock is how far from rank 0's, and the
 * worker ranks' whole life (pool_mpi_serve). Rank 0's side of a pool is
 * pool_transport_mpi.c; the messages between them are pool_mpi_wire.h.
 *
 * Threads. Rank 0 has several threads (the caller's, the task and result
 * handlers, the transport's pump), so MPI must allow calls from more than
 * one: we ask for MPI_THREAD_SERIALIZED and make every call of rank 0
 * happen on one thread at a time: this file's (init, the clock, finalize)
 * before the first pool and after the last, the pump's while a pool lives
 * (pools on MPI are one at a time). A worker rank has one thread.
 *
 * Waiting. A blocking MPI_Recv spins inside MPI at 100% of a core; on a
 * machine running more ranks than cores (the tests: 5 ranks on 2 cores) the
 * idle ranks would steal the busy ones' time. So every wait is MPI_Iprobe
 * in a loop with a deadline: a spin (Iprobe, sched_yield) for
 * POOL_MPI_SPIN_S after the wait begins (a reply within a round trip costs
 * no sleep), then sleeps of a quarter of the time waited so far, from 20 us
 * up to POOL_MPI_NAP_MAX_S (pool_mpi_nap). An idle worker thus answers
 * within about 0.2 ms plus the kernel's timer slack, a worker kept busy
 * never sleeps, and an idle one wakes at most 5000 times a second.
 *
 * Clocks (NTP's method). Rank 0 sends a worker PINGS pings; the worker
 * answers each with its pool_now(); with t0 and t2 rank 0's send and receive
 * times, offset = t_worker - (t0 + t2) / 2, within (t2 - t0) / 2; the
 * exchange with the shortest round trip wins. The worker then adds
 * -offset to every time it reports (pool_worker_clock_shift), so a trace's
 * times are all on rank 0's clock whatever the host.
 *
 * On one machine every rank reads the same clock, so the correction would
 * go untested: POOLBENCH_MPI_SKEW_US makes each worker rank behave as if
 * its clock ran that far ahead (its answers in the exchange and the times
 * it reports), and tests/mpi/test_mpi.sh checks the trace comes out right.
 */
#include "pool_mpi.h"
#include "pool_mpi_wire.h"
#include "pool_internal.h"

#include <mpi.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POOL_MPI_SPIN_S 200e-6 /* the default; POOLBENCH_MPI_SPIN_US sets it */
#define POOL_MPI_NAP_MIN_S 20e-6
#define POOL_MPI_NAP_MAX_S 200e-6
#define PINGS 16
#define CLOCK_WAIT_S 60.0 /* a rank that does not answer the clock at start */

struct rank_info {
    char host[64];
    int32_t pid;
};

static struct {
    double spin_s;
    double skew_s; /* a worker rank's simulated clock error (POOLBENCH_MPI_SKEW_US) */
    bool active;
    int rank, size;
    struct rank_info *ranks;
    double *offset, *rtt;
    pool_mpi_pack_fn pack;
    pool_mpi_apply_fn apply;
} mpi;

/* ---- waits ------------------------------------------------------------- */

double pool_mpi_nap(double waited)
{
    double s = waited / 4;
    return s < POOL_MPI_NAP_MIN_S ? POOL_MPI_NAP_MIN_S : s > POOL_MPI_NAP_MAX_S ? POOL_MPI_NAP_MAX_S : s;
}

bool pool_mpi_spinning(double waited)
{
    return waited < mpi.spin_s;
}

/* POOLBENCH_MPI_SPIN_US: on a cluster with a core per rank, spinning
 * longer costs nobody and saves the naps (docs/mpi.md). */
static void spin_from_env(void)
{
    const char *e = getenv("POOLBENCH_MPI_SPIN_US");
    char *end;
    double us = e ? strtod(e, &end) : -1;
    mpi.spin_s = e && *e && !*end && us >= 0 && us <= 1e6 ? us * 1e-6 : POOL_MPI_SPIN_S;
    e = getenv("POOLBENCH_MPI_SKEW_US");
    us = e ? strtod(e, &end) : 0;
    mpi.skew_s = e && *e && !*end && us >= -1e9 && us <= 1e9 ? us * 1e-6 : 0;
}

int pool_mpi_wait_msg(int source, double seconds, int *tag, int *src, int *bytes)
{
    double start = pool_now(), until = start + seconds;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(source, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (flag) {
            *tag = st.MPI_TAG;
            *src = st.MPI_SOURCE;
            MPI_Get_count(&st, MPI_BYTE, bytes);
            return 1;
        }
        double now = pool_now();
        if (now >= until)
            return 0;
        if (pool_mpi_spinning(now - start)) {
            sched_yield();
            continue;
        }
        struct timespec ts = {0, (long)(pool_mpi_nap(now - start) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* Receives the message pool_mpi_wait_msg found: `bytes` into a new buffer. */
static char *recv_bytes(int src, int tag, int bytes)
{
    char *b = malloc(bytes > 0 ? (size_t)bytes : 1);
    if (b == NULL)
        pool_panic("pool_mpi: out of memory for a message of %d bytes", bytes);
    MPI_Recv(b, bytes, MPI_BYTE, src, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    return b;
}

/* Waits for a message of `tag` from `src` (CLOCK_WAIT_S at most: past it
 * the job cannot start, and MPI_Abort ends it: no rank hangs). */
static void recv_clock(int src, double *v, int n)
{
    int tag, from, bytes;
    if (!pool_mpi_wait_msg(src, CLOCK_WAIT_S, &tag, &from, &bytes) || tag != POOL_MPI_CLOCK) {
        fprintf(stderr, "pool_mpi: rank %d: no clock message from rank %d within %.0f s\n",
                mpi.rank, src, CLOCK_WAIT_S);
        MPI_Abort(MPI_COMM_WORLD, POOL_EXIT_QUEUE_CUT);
    }
    MPI_Recv(v, n, MPI_DOUBLE, src, POOL_MPI_CLOCK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

/* ---- the start: who is where, and their clocks --------------------------- */

/* Rank 0's side of the clock exchange with rank r. */
static void clock_measure(int r)
{
    double best_rtt = 1e9, best_off = 0;
    for (int i = 0; i < PINGS; i++) {
        double t0 = pool_now(), tw;
        MPI_Send(&t0, 1, MPI_DOUBLE, r, POOL_MPI_CLOCK, MPI_COMM_WORLD);
        recv_clock(r, &tw, 1);
        double t2 = pool_now();
        if (t2 - t0 < best_rtt) {
            best_rtt = t2 - t0;
            best_off = tw - (t0 + t2) / 2;
        }
    }
    mpi.offset[r] = best_off;
    mpi.rtt[r] = best_rtt;
    double verdict[2] = {best_off, best_rtt};
    MPI_Send(verdict, 2, MPI_DOUBLE, r, POOL_MPI_CLOCK, MPI_COMM_WORLD);
}

/* A worker's side: answer each ping with its clock, then learn the verdict. */
static void clock_answer(void)
{
    for (int i = 0; i < PINGS; i++) {
        double t0;
        recv_clock(0, &t0, 1);
        double now = pool_now() + mpi.skew_s; /* this rank's clock, as it reads */
        MPI_Send(&now, 1, MPI_DOUBLE, 0, POOL_MPI_CLOCK, MPI_COMM_WORLD);
    }
    double verdict[2];
    recv_clock(0, verdict, 2);
    mpi.offset[mpi.rank] = verdict[0];
    mpi.rtt[mpi.rank] = verdict[1];
    pool_worker_clock_shift = mpi.skew_s - verdict[0]; /* its clock, then corrected */
}

int pool_mpi_init(int *argc, char ***argv, char *err, size_t errlen)
{
    int provided = 0;
    spin_from_env();
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
        snprintf(err, errlen, "MPI_Init_thread failed");
        return -1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &mpi.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &mpi.size);
    mpi.active = true;
    if (provided < MPI_THREAD_SERIALIZED) {
        snprintf(err, errlen, "this MPI provides thread level %d; rank 0 needs "
                 "MPI_THREAD_SERIALIZED (%d)", provided, MPI_THREAD_SERIALIZED);
        return -1;
    }
    mpi.ranks = calloc((size_t)mpi.size, sizeof *mpi.ranks);
    mpi.offset = calloc((size_t)mpi.size, sizeof *mpi.offset);
    mpi.rtt = calloc((size_t)mpi.size, sizeof *mpi.rtt);
    if (!mpi.ranks || !mpi.offset || !mpi.rtt) {
        snprintf(err, errlen, "pool_mpi_init: out of memory");
        return -1;
    }
    struct rank_info me = {.pid = (int32_t)getpid()};
    gethostname(me.host, sizeof me.host - 1);
    MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, mpi.ranks, (int)sizeof me, MPI_BYTE,
                  MPI_COMM_WORLD);
    if (mpi.rank == 0)
        for (int r = 1; r < mpi.size; r++)
            clock_measure(r);
    else
        clock_answer();
    return 0;
}

bool pool_mpi_active(void) { return mpi.active; }
int pool_mpi_rank(void) { return mpi.rank; }
int pool_mpi_size(void) { return mpi.size; }

const char *pool_mpi_host(int rank)
{
    return mpi.ranks && rank >= 0 && rank < mpi.size ? mpi.ranks[rank].host : "";
}

pid_t pool_mpi_pid(int rank)
{
    return mpi.ranks && rank >= 0 && rank < mpi.size ? mpi.ranks[rank].pid : 0;
}

double pool_mpi_clock_offset(int rank)
{
    return mpi.offset && rank >= 0 && rank < mpi.size ? mpi.offset[rank] : 0;
}

double pool_mpi_clock_rtt(int rank)
{
    return mpi.rtt && rank >= 0 && rank < mpi.size ? mpi.rtt[rank] : 0;
}

void pool_mpi_set_context(pool_mpi_pack_fn pack, pool_mpi_apply_fn apply)
{
    mpi.pack = pack;
    mpi.apply = apply;
}

int pool_mpi_context_pack(char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    return mpi.pack ? mpi.pack(buf, len) : 0;
}

uint32_t pool_mpi_registry_hash(void)
{
    uint32_t h = 2166136261u; /* FNV-1a over "name\0name\0..." */
    for (unsigned i = 0; i < POOL_MAX_TASKS; i++) {
        const char *n = pool_task_name(i);
        if (strcmp(n, "?") == 0)
            break;
        for (const char *c = n;; c++) {
            h = (h ^ (uint8_t)*c) * 16777619u;
            if (*c == '\0')
                break;
        }
    }
    return h;
}

/* ---- a worker rank's life ------------------------------------------------ */

static void send_frame(msgpack_sbuffer *sb)
{
    uint32_t len = (uint32_t)(sb->size - sizeof len);
    memcpy(sb->data, &len, sizeof len);
    MPI_Send(sb->data, (int)sb->size, MPI_BYTE, 0, POOL_MPI_RESULT, MPI_COMM_WORLD);
}

static void send_bye(int32_t status)
{
    MPI_Send(&status, 1, MPI_INT32_T, 0, POOL_MPI_BYE, MPI_COMM_WORLD);
}

/* Opens a pool from its OPEN message: the context, then the initializer.
 * 0, or -1 when it failed (an INITFAIL frame is in out). */
static int open_pool(const char *msg, int bytes, msgpack_sbuffer *out, msgpack_sbuffer *tmp)
{
    struct pool_mpi_open o;
    memcpy(&o, msg, sizeof o);
    struct pool_worker_cfg cfg = {.init_task = o.init_task};
    if ((size_t)bytes < sizeof o + o.initargs_len + o.context_len)
        pool_panic("pool_mpi: a short OPEN message (%d bytes)", bytes);
    if (o.initargs_len) {
        cfg.initargs = (char *)msg + sizeof o;
        cfg.initargs_len = o.initargs_len;
    }
    char err[1024];
    if (o.registry != pool_mpi_registry_hash()) {
        snprintf(err, sizeof err, "rank %d's task registry differs from rank 0's: every rank "
                 "must load the same scenario file (the same path on every host)", mpi.rank);
        pool_worker_initfail_frame(out, err);
        return -1;
    }
    if (mpi.apply && mpi.apply(msg + sizeof o + o.initargs_len, o.context_len, err,
                               sizeof err) != 0) {
        pool_worker_initfail_frame(out, err);
        return -1;
    }
    return o.init_task >= 0 ? pool_worker_initialize(&cfg, o.slot, out, tmp) : 0;
}

/* One pool: chunks one at a time until EXIT. */
static void serve_pool(char *open_msg, int bytes)
{
    msgpack_sbuffer out, tmp;
    msgpack_sbuffer_init(&out);
    msgpack_sbuffer_init(&tmp);
    struct pool_worker_scratch scratch;
    if (!pool_worker_scratch_init(&scratch))
        pool_panic("pool_mpi: out of memory");
    struct pool_slot_shm me;
    memset(&me, 0, sizeof me);
    int32_t slot = ((struct pool_mpi_open *)(void *)open_msg)->slot;
    /* A forked worker starts with no initializer run; a rank serves one pool
     * after another, so each pool starts it afresh (the init_count task). */
    pool_worker_init_runs = 0;
    bool open = true;
    if (open_pool(open_msg, bytes, &out, &tmp) != 0) { /* the pool breaks (pool.h) */
        send_frame(&out);
        send_bye(POOL_EXIT_INIT_FAILED);
        open = false;
    }
    while (open) {
        int tag, src, n;
        if (!pool_mpi_wait_msg(0, 1.0, &tag, &src, &n))
            continue; /* rank 0 is alive as long as the job is (mpirun's rule) */
        char *m = recv_bytes(0, tag, n);
        if (tag == POOL_MPI_TASK) {
            struct pool_wire_hdr hdr;
            memcpy(&hdr, m, sizeof hdr);
            /* Always timed: the OPEN message does not say whether the pool
             * traces (the harness always does) or keeps a limit (refused here). */
            pool_worker_run_chunk(&me, slot, &hdr, m + sizeof hdr, &out, &scratch, true);
            send_frame(&out);
        } else if (tag == POOL_MPI_EXIT) {
            send_bye(POOL_EXIT_OK);
            open = false;
        }
        free(m);
    }
    msgpack_sbuffer_destroy(&out);
    msgpack_sbuffer_destroy(&tmp);
    pool_worker_scratch_destroy(&scratch);
}

int pool_mpi_serve(void)
{
    for (;;) {
        int tag, src, n;
        if (!pool_mpi_wait_msg(0, 1.0, &tag, &src, &n))
            continue;
        char *m = recv_bytes(0, tag, n);
        if (tag == POOL_MPI_OPEN && (size_t)n >= sizeof(struct pool_mpi_open))
            serve_pool(m, n);
        free(m);
        if (tag == POOL_MPI_QUIT)
            return 0;
    }
}

void pool_mpi_finalize(void)
{
    if (!mpi.active)
        return;
    if (mpi.rank == 0)
        for (int r = 1; r < mpi.size; r++)
            MPI_Send(NULL, 0, MPI_BYTE, r, POOL_MPI_QUIT, MPI_COMM_WORLD);
    MPI_Finalize();
    mpi.active = false;
    free(mpi.ranks);
    free(mpi.offset);
    free(mpi.rtt);
    mpi.ranks = NULL;
    mpi.offset = mpi.rtt = NULL;
}
