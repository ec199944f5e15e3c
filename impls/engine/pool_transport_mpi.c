/*
 * pool_transport_mpi.c: rank 0's side of the MPI transport (issue 15),
 * behind the seam of pool_transport.h. The workers are ranks 1..N of the
 * job (pool_mpi.c serves them); nothing is forked.
 *
 * One thread, the pump, makes every MPI call of rank 0 while a pool lives
 * (MPI_THREAD_SERIALIZED: pool_mpi.c). It stands where the socket
 * transport has the kernel and the fork server:
 *
 *   task handler --tx_send--> queue (memory) --pump: TASK--> an idle rank
 *   result handler <--rx_read-- stream per slot <--pump: RESULT-- its rank
 *   result handler <--STARTED/EXITED-- ctl socket <--pump (the fork server's
 *                                      protocol: SPAWN opens the pool on a
 *                                      rank, EXIT/KILLALL/QUIT close it)
 *
 * Chunks one at a time (docs/mpi.md). A rank holds at most one chunk: the
 * pump sends the next only when the rank's result for the last is in, to
 * the rank idle longest (a FIFO), as mpi4py.futures keeps one task in flight
 * per worker. So the queue stays one queue that idle workers pull from, as
 * in CPython, and P7/P8 keep their meaning: a chunk goes to whichever worker
 * is free first, and a big chunk idles the others. The price is a round
 * trip per chunk between a result and the next chunk (a prefetch of one
 * would hide it, and bind a chunk to a busy worker). The pump claims each
 * chunk in the slot's record before sending it (rule 2 of the seam, on the
 * worker's behalf: it knows who holds what), and clears it on the result.
 *
 * What cannot be done. A rank cannot be killed without ending the job
 * (MPI's rule), so KILLALL (terminate) sends EXIT and the rank ends when its
 * chunk does; a pool that still has ranks busy POOL_MPI_END_S after a
 * terminate or a quit is ended by MPI_Abort, which ends the job: every wait
 * is bounded. maxtasksperchild and task_timeout are refused (pool_core.c).
 */
#include "pool_mpi.h"
#include "pool_mpi_wire.h"
#include "pool_internal.h"
#include "pool_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define POOL_MPI_END_S 30.0 /* a terminate or quit the ranks must finish within */

enum slot_state { S_NONE, S_IDLE, S_BUSY, S_CLOSING, S_ENDED };

struct mpi_msg {
    struct mpi_msg *next;
    size_t len;
    char data[]; /* struct pool_wire_hdr, then the body */
};

struct mpi_slot {
    enum slot_state state;
    char *buf; /* result bytes not yet read (rx_read) */
    size_t off, len, cap;
    bool ended; /* BYE in: the stream ends after its bytes */
};

typedef struct mpi_transport {
    pool_transport base;
    int n;
    struct pool_slot_shm *rec; /* the parent's slot records */
    bool own_rec;
    pthread_mutex_t mu; /* the queue and the streams: pump vs the engine's threads */
    struct mpi_msg *q_head, *q_tail;
    struct mpi_slot *s;
    int *idle, idle_len; /* FIFO of idle slots (pump only) */
    int rx_wake[2], tx_wake[2], ctl[2];
    pthread_t pump;
    bool pump_started;
    double end_at; /* KILLALL or QUIT received (0: none) */
    bool quit;
    bool ctl_eof; /* the engine closed its end: nothing more to read */
    struct pool_worker_cfg cfg;
    char *ctx;
    size_t ctx_len;
} mpi_transport;

static atomic_bool mpi_in_use; /* one MPI pool at a time: the ranks are one set */

static void wake(int fd)
{
    char c = 'w';
    if (write(fd, &c, 1) < 0) {
        /* full: a wake-up is pending anyway */
    }
}

static void drain(int fd)
{
    char b[64];
    while (read(fd, b, sizeof b) > 0) {
    }
}

/* ---- the pump: the fork server's protocol ---------------------------------- */

static void ctl_reply(mpi_transport *t, int op, int slot, int status)
{
    struct pool_fs_msg m = {.op = op, .slot = slot, .pid = pool_mpi_pid(slot + 1),
                            .status = status};
    if (send(t->ctl[1], &m, sizeof m, MSG_NOSIGNAL) < 0) {
        /* the engine's end is closed: it no longer listens */
    }
}

/* SPAWN: the pool opens on rank slot + 1 (OPEN carries the initializer and
 * the harness's context). The rank is idle at once: MPI keeps the order of
 * OPEN and the first TASK. */
static void open_slot(mpi_transport *t, int slot)
{
    if (slot < 0 || slot >= t->n || t->s[slot].state == S_IDLE || t->s[slot].state == S_BUSY) {
        ctl_reply(t, POOL_FS_SPAWNFAIL, slot, EINVAL);
        return;
    }
    struct pool_mpi_open o = {
        .slot = slot, .init_task = t->cfg.init_task, .registry = pool_mpi_registry_hash(),
        .initargs_len = (uint32_t)t->cfg.initargs_len, .context_len = (uint32_t)t->ctx_len,
    };
    size_t len = sizeof o + o.initargs_len + o.context_len;
    char *m = malloc(len);
    if (m == NULL)
        pool_panic("pool_transport_mpi: out of memory");
    memcpy(m, &o, sizeof o);
    if (o.initargs_len)
        memcpy(m + sizeof o, t->cfg.initargs, o.initargs_len);
    if (o.context_len)
        memcpy(m + sizeof o + o.initargs_len, t->ctx, o.context_len);
    MPI_Send(m, (int)len, MPI_BYTE, slot + 1, POOL_MPI_OPEN, MPI_COMM_WORLD);
    free(m);
    pthread_mutex_lock(&t->mu);
    t->s[slot] = (struct mpi_slot){.state = S_IDLE, .buf = t->s[slot].buf,
                                   .cap = t->s[slot].cap};
    pthread_mutex_unlock(&t->mu);
    atomic_store(&t->rec[slot].pid, pool_mpi_pid(slot + 1));
    t->idle[t->idle_len++] = slot;
    ctl_reply(t, POOL_FS_STARTED, slot, 0);
}

/* Ends the pool on every rank still in it (KILLALL, QUIT): EXIT to each;
 * a busy rank reads it after its chunk. Queued work is dropped. */
static void close_all(mpi_transport *t)
{
    pthread_mutex_lock(&t->mu);
    for (struct mpi_msg *m = t->q_head, *nx; m; m = nx) {
        nx = m->next;
        free(m);
    }
    t->q_head = t->q_tail = NULL;
    pthread_mutex_unlock(&t->mu);
    for (int k = 0; k < t->n; k++)
        if (t->s[k].state == S_IDLE || t->s[k].state == S_BUSY) {
            MPI_Send(NULL, 0, MPI_BYTE, k + 1, POOL_MPI_EXIT, MPI_COMM_WORLD);
            t->s[k].state = S_CLOSING;
        }
    t->idle_len = 0;
    if (t->end_at == 0)
        t->end_at = pool_now();
}

/* Reads the engine's requests. Returns true if one came. */
static bool ctl_requests(mpi_transport *t)
{
    bool did = false;
    struct pool_fs_msg m;
    ssize_t r;
    if (t->ctl_eof)
        return false;
    while ((r = recv(t->ctl[1], &m, sizeof m, MSG_DONTWAIT)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return did; /* EAGAIN: nothing more now */
        }
        did = true;
        if (m.op == POOL_FS_SPAWN)
            open_slot(t, m.slot);
        else if (m.op == POOL_FS_KILLALL)
            close_all(t);
        else if (m.op == POOL_FS_QUIT) {
            close_all(t);
            t->quit = true;
        }
    }
    close_all(t); /* the engine closed its end: the pool is gone */
    t->quit = true;
    t->ctl_eof = true; /* from here only the ranks' BYE are awaited */
    return true;
}

/* ---- the pump: chunks out, results in -------------------------------------- */

/* Sends queued messages to idle ranks, oldest idle first. */
static bool dispatch(mpi_transport *t)
{
    bool did = false;
    while (t->idle_len > 0) {
        pthread_mutex_lock(&t->mu);
        struct mpi_msg *m = t->q_head;
        if (m) {
            t->q_head = m->next;
            if (t->q_head == NULL)
                t->q_tail = NULL;
        }
        pthread_mutex_unlock(&t->mu);
        if (m == NULL)
            break;
        int slot = t->idle[0];
        memmove(t->idle, t->idle + 1, (size_t)--t->idle_len * sizeof *t->idle);
        struct pool_wire_hdr hdr;
        memcpy(&hdr, m->data, sizeof hdr);
        if (hdr.kind == POOL_WIRE_EXIT) { /* one worker ends, as a forked one would */
            MPI_Send(NULL, 0, MPI_BYTE, slot + 1, POOL_MPI_EXIT, MPI_COMM_WORLD);
            t->s[slot].state = S_CLOSING;
        } else { /* claim on the worker's behalf, then send (rule 2) */
            struct pool_slot_shm *r = &t->rec[slot];
            atomic_store(&r->chunk, hdr.chunk);
            atomic_store(&r->first, hdr.first);
            atomic_store(&r->item, hdr.first);
            atomic_store(&r->job, hdr.job);
            MPI_Send(m->data, (int)m->len, MPI_BYTE, slot + 1, POOL_MPI_TASK, MPI_COMM_WORLD);
            t->s[slot].state = S_BUSY;
        }
        free(m);
        did = true;
    }
    return did;
}

/* Appends a rank's result frame to its slot's stream. */
static void stream_append(mpi_transport *t, int slot, const char *b, size_t n)
{
    pthread_mutex_lock(&t->mu);
    struct mpi_slot *s = &t->s[slot];
    if (s->off > 0 && s->off == s->len)
        s->off = s->len = 0;
    if (s->len + n > s->cap) {
        size_t cap = (s->len + n) * 2;
        char *nb = realloc(s->buf, cap);
        if (nb == NULL)
            pool_panic("pool_transport_mpi: out of memory for results");
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, b, n);
    s->len += n;
    pthread_mutex_unlock(&t->mu);
}

/* One message from a worker rank. */
static void receive_one(mpi_transport *t, int src, int tag, int bytes)
{
    int slot = src - 1;
    char *b = malloc(bytes > 0 ? (size_t)bytes : 1);
    if (b == NULL)
        pool_panic("pool_transport_mpi: out of memory");
    MPI_Recv(b, bytes, MPI_BYTE, src, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (slot < 0 || slot >= t->n || t->s[slot].state == S_NONE) {
        free(b); /* not of this pool */
        return;
    }
    if (tag == POOL_MPI_RESULT) {
        stream_append(t, slot, b, (size_t)bytes);
        atomic_store(&t->rec[slot].job, 0); /* its result is in: no longer held */
        if (t->s[slot].state == S_BUSY) {
            t->s[slot].state = S_IDLE;
            t->idle[t->idle_len++] = slot;
        }
    } else if (tag == POOL_MPI_BYE) {
        int32_t status = 0;
        memcpy(&status, b, bytes >= 4 ? sizeof status : 0);
        pthread_mutex_lock(&t->mu);
        t->s[slot].ended = true;
        t->s[slot].state = S_ENDED;
        pthread_mutex_unlock(&t->mu);
        for (int k = 0; k < t->idle_len; k++) /* an init failure ends an idle rank */
            if (t->idle[k] == slot)
                memmove(t->idle + k, t->idle + k + 1, (size_t)(--t->idle_len - k) * sizeof(int));
        ctl_reply(t, POOL_FS_EXITED, slot, (status & 0xff) << 8); /* a wait status */
    }
    free(b);
    wake(t->rx_wake[1]);
}

static bool receive(mpi_transport *t)
{
    bool did = false;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (!flag)
            return did;
        int bytes;
        MPI_Get_count(&st, MPI_BYTE, &bytes);
        receive_one(t, st.MPI_SOURCE, st.MPI_TAG, bytes);
        did = true;
    }
}

static bool all_ended(const mpi_transport *t)
{
    for (int k = 0; k < t->n; k++)
        if (t->s[k].state != S_NONE && t->s[k].state != S_ENDED)
            return false;
    return true;
}

/* Nothing happened: wait for the engine (tx_wake, ctl) or, while ranks are
 * busy, the next short nap of pool_mpi.c's backoff. */
static void pump_idle(mpi_transport *t, double idle_since)
{
    bool remote = false;
    for (int k = 0; k < t->n && !remote; k++)
        remote = t->s[k].state == S_BUSY || t->s[k].state == S_CLOSING;
    double quiet = pool_now() - idle_since;
    if (remote && pool_mpi_spinning(quiet)) {
        sched_yield();
        return;
    }
    double nap = remote ? pool_mpi_nap(quiet) : 0.05; /* idle: the engine wakes us */
    struct pollfd pf[2] = {{.fd = t->tx_wake[0], .events = POLLIN},
                           {.fd = t->ctl_eof ? -1 : t->ctl[1], .events = POLLIN}};
    struct timespec ts = {0, (long)(nap * 1e9)};
    if (ppoll(pf, 2, &ts, NULL) > 0 && pf[0].revents)
        drain(t->tx_wake[0]);
}

static void *pump_main(void *arg)
{
    mpi_transport *t = arg;
    double idle_since = pool_now();
    while (!(t->quit && all_ended(t))) {
        bool did = ctl_requests(t);
        did = dispatch(t) || did;
        did = receive(t) || did;
        if (t->end_at > 0 && pool_now() - t->end_at > POOL_MPI_END_S) {
            fprintf(stderr, "pool_transport_mpi: worker ranks still busy %.0f s after the pool "
                    "ended (a task that does not return); a rank cannot be killed alone, so "
                    "the MPI job is aborted\n", POOL_MPI_END_S);
            MPI_Abort(MPI_COMM_WORLD, POOL_EXIT_QUEUE_LOCK);
        }
        if (did)
            idle_since = pool_now();
        else
            pump_idle(t, idle_since);
    }
    shutdown(t->ctl[1], SHUT_RDWR); /* the engine sees its "fork server" end */
    wake(t->rx_wake[1]);
    return NULL;
}

/* ---- the ops: lifecycle ------------------------------------------------------- */

static void mpi_destroy(pool_transport *base);

static pool_transport *mpi_create(int nworkers, struct pool_slot_shm *slots)
{
    if (!pool_mpi_active() || pool_mpi_rank() != 0) {
        pool_seterr(POOL_EINVAL, "pool_create: the MPI transport runs on rank 0 of an MPI job "
                    "(mpirun -n N+1 poolbench run FILE --transport mpi)");
        return NULL;
    }
    if (nworkers > pool_mpi_size() - 1) {
        pool_seterr(POOL_EINVAL, "pool_create: a pool of %d workers needs %d MPI ranks (rank 0 "
                    "and one per worker); this job has %d: run mpirun -n %d", nworkers,
                    nworkers + 1, pool_mpi_size(), nworkers + 1);
        return NULL;
    }
    if (atomic_exchange(&mpi_in_use, true)) {
        pool_seterr(POOL_ESTATE, "pool_create: another pool is using the MPI ranks; on MPI "
                    "pools run one at a time");
        return NULL;
    }
    mpi_transport *t = calloc(1, sizeof *t);
    if (t == NULL) {
        atomic_store(&mpi_in_use, false);
        pool_seterr(POOL_ESYS, "pool_create: out of memory");
        return NULL;
    }
    t->base.ops = &pool_transport_mpi_ops;
    t->n = nworkers;
    t->rx_wake[0] = t->rx_wake[1] = t->tx_wake[0] = t->tx_wake[1] = t->ctl[0] = t->ctl[1] = -1;
    pthread_mutex_init(&t->mu, NULL);
    t->rec = slots ? slots : calloc((size_t)nworkers, sizeof *t->rec);
    t->own_rec = slots == NULL;
    t->s = calloc((size_t)nworkers, sizeof *t->s);
    t->idle = calloc((size_t)nworkers, sizeof *t->idle);
    if (t->rec == NULL || t->s == NULL || t->idle == NULL ||
        pipe2(t->rx_wake, O_CLOEXEC | O_NONBLOCK) != 0 ||
        pipe2(t->tx_wake, O_CLOEXEC | O_NONBLOCK) != 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, t->ctl) != 0) {
        pool_seterr(POOL_ESYS, "pool_create: MPI transport: %s", strerror(errno));
        mpi_destroy(&t->base);
        return NULL;
    }
    return &t->base;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void mpi_destroy(pool_transport *base)
{
    mpi_transport *t = (mpi_transport *)base;
    if (t->pump_started) {
        /* The engine closed its end already; this makes sure the pump sees
         * the end, ends the pool on the ranks, and returns (bounded:
         * POOL_MPI_END_S, then MPI_Abort). */
        shutdown(t->ctl[1], SHUT_RD);
        pthread_join(t->pump, NULL);
    }
    for (struct mpi_msg *m = t->q_head, *nx; m; m = nx) {
        nx = m->next;
        free(m);
    }
    for (int k = 0; t->s && k < t->n; k++)
        free(t->s[k].buf);
    free(t->s);
    free(t->idle);
    if (t->own_rec)
        free(t->rec);
    free(t->cfg.initargs);
    free(t->ctx);
    for (int i = 0; i < 2; i++) {
        close_fd(&t->rx_wake[i]);
        close_fd(&t->tx_wake[i]);
        close_fd(&t->ctl[i]);
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
    atomic_store(&mpi_in_use, false);
}

/* Instead of a fork server: the pump, which answers its protocol on *ctl_fd
 * (the engine's end; it stays the transport's, closed by destroy). */
static int mpi_start_workers(pool_transport *base, const struct pool_worker_cfg *cfg,
                             int *ctl_fd)
{
    mpi_transport *t = (mpi_transport *)base;
    t->cfg.init_task = cfg->init_task;
    if (cfg->initargs_len) {
        t->cfg.initargs = malloc(cfg->initargs_len);
        if (t->cfg.initargs == NULL)
            return pool_seterr(POOL_ESYS, "pool_create: out of memory");
        memcpy(t->cfg.initargs, cfg->initargs, cfg->initargs_len);
        t->cfg.initargs_len = cfg->initargs_len;
    }
    if (pool_mpi_context_pack(&t->ctx, &t->ctx_len) != 0)
        return pool_seterr(POOL_EINVAL, "pool_create: the MPI context (the scenario's "
                           "parameters) cannot be packed");
    if (pthread_create(&t->pump, NULL, pump_main, t) != 0)
        return pool_seterr(POOL_ESYS, "pool_create: cannot start the MPI pump thread");
    t->pump_started = true;
    *ctl_fd = t->ctl[0]; /* the engine's from here: its close ends the pump */
    t->ctl[0] = -1;
    return POOL_OK;
}

static void mpi_noop(pool_transport *t) { (void)t; }

/* ---- the ops: tasks out ------------------------------------------------------ */

static int mpi_tx_send(pool_transport *base, const struct pool_wire_hdr *hdr, const char *body,
                       size_t len, bool wait)
{
    (void)wait; /* the queue is in memory and unbounded: there is always room */
    mpi_transport *t = (mpi_transport *)base;
    struct mpi_msg *m = malloc(sizeof *m + sizeof *hdr + len);
    if (m == NULL)
        return -1;
    m->next = NULL;
    m->len = sizeof *hdr + len;
    memcpy(m->data, hdr, sizeof *hdr);
    if (len)
        memcpy(m->data + sizeof *hdr, body, len);
    pthread_mutex_lock(&t->mu);
    if (t->q_tail)
        t->q_tail->next = m;
    else
        t->q_head = m;
    t->q_tail = m;
    pthread_mutex_unlock(&t->mu);
    wake(t->tx_wake[1]);
    return 1;
}

/* ---- the ops: results in (result handler thread) ----------------------------- */

static void mpi_rx_attach(pool_transport *base, int slot, int fd)
{
    (void)base;
    (void)slot;
    if (fd >= 0)
        close(fd); /* a rank has no pipe */
}

static void mpi_rx_detach(pool_transport *base, int slot)
{
    mpi_transport *t = (mpi_transport *)base;
    pthread_mutex_lock(&t->mu);
    t->s[slot].off = t->s[slot].len = 0;
    pthread_mutex_unlock(&t->mu);
}

/* Which streams are worth reading: bytes waiting, or an end to report. */
static int ready_streams(mpi_transport *t, bool *ready)
{
    int n = 0;
    pthread_mutex_lock(&t->mu);
    for (int k = 0; k < t->n; k++) {
        bool r = t->s[k].len > t->s[k].off || t->s[k].ended;
        if (ready)
            ready[k] = r;
        n += r;
    }
    pthread_mutex_unlock(&t->mu);
    return n;
}

static int mpi_rx_wait(pool_transport *base, struct pollfd *extra, int nextra, int timeout_ms,
                       bool *ready)
{
    mpi_transport *t = (mpi_transport *)base;
    struct pollfd pf[nextra + 1];
    memcpy(pf, extra, (size_t)nextra * sizeof *pf);
    pf[nextra] = (struct pollfd){.fd = t->rx_wake[0], .events = POLLIN};
    int rc = poll(pf, (nfds_t)nextra + 1, ready_streams(t, NULL) > 0 ? 0 : timeout_ms);
    if (rc < 0)
        return -1;
    memcpy(extra, pf, (size_t)nextra * sizeof *pf);
    if (pf[nextra].revents)
        drain(t->rx_wake[0]);
    int n = ready_streams(t, ready);
    for (int i = 0; i < nextra; i++)
        n += pf[i].revents != 0;
    return n;
}

static long mpi_rx_read(pool_transport *base, int slot, char *buf, size_t cap)
{
    mpi_transport *t = (mpi_transport *)base;
    pthread_mutex_lock(&t->mu);
    struct mpi_slot *s = &t->s[slot];
    long n = 0;
    if (s->len > s->off) {
        size_t k = s->len - s->off < cap ? s->len - s->off : cap;
        memcpy(buf, s->buf + s->off, k);
        s->off += k;
        n = (long)k;
    } else if (s->ended) {
        s->ended = false; /* reported once */
        n = -1;
    }
    pthread_mutex_unlock(&t->mu);
    return n;
}

/* ---- the ops: the worker side, which rank 0 never runs ------------------------ */

static int mpi_wk_take(pool_transport *t, int slot, struct pool_wire_hdr *hdr, char **buf,
                       size_t *cap)
{
    (void)t, (void)slot, (void)hdr, (void)buf, (void)cap;
    pool_panic("pool_transport_mpi: a worker rank serves chunks in pool_mpi.c, not wk_take");
}

static int mpi_wk_send(pool_transport *t, int slot, int fd, const char *data, size_t len)
{
    (void)t, (void)slot, (void)fd, (void)data, (void)len;
    pool_panic("pool_transport_mpi: a worker rank sends results in pool_mpi.c, not wk_send");
}

static struct pool_slot_shm *mpi_slot(pool_transport *base, int slot)
{
    return &((mpi_transport *)base)->rec[slot];
}

const pool_transport_ops pool_transport_mpi_ops = {
    .name = "mpi",
    .create = mpi_create,
    .in_forkserver = mpi_noop,
    .in_parent = mpi_noop,
    .destroy = mpi_destroy,
    .tx_send = mpi_tx_send,
    .tx_wake = mpi_noop,
    .rx_attach = mpi_rx_attach,
    .rx_detach = mpi_rx_detach,
    .rx_wait = mpi_rx_wait,
    .rx_read = mpi_rx_read,
    .wk_take = mpi_wk_take,
    .wk_send = mpi_wk_send,
    .slot = mpi_slot,
    .start_workers = mpi_start_workers,
};
