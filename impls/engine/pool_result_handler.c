/*
 * pool_result_handler.c: the result-handler thread, the parent's ear.
 *
 * The result handler reads every worker's result pipe, hands each chunk to
 * the job waiting for it, and runs callbacks, one at a time: while a
 * callback runs, no other result is delivered (phenomenon P2). It also
 * listens to the fork server, so it is the one that learns a worker has
 * ended: it reads what the worker had already sent, fails exactly the chunk
 * the worker still held (its shared-memory slot says which), and asks for a
 * replacement. CPython's Pool never notices a dead worker and waits forever
 * (gh-66587).
 *
 * It finds a chunk's job in the job table (pool_jobs.c) and reaches it only
 * through the job's operations (pool_job_ops): it never knows whether the
 * job is a result or an iterator. docs/architecture.md tells the story.
 *
 * Nothing it waits for may keep it waiting forever. Its poll also watches
 * a wake-up pipe (pool_interrupt_all writes 'i' there from a signal
 * handler: the pool then ends as terminate would, with POOL_EINTR), and
 * has a timeout whenever something has a bound: a task time limit, or a
 * reply owed by the fork server (pool_watch.c checks both). When the fork
 * server's socket closes without a quit, the fork server died, its workers
 * with it: the pool is BROKEN (fs_ended), as concurrent.futures'
 * BrokenProcessPool, and every pending and later job fails at once.
 */
#include "pool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- result frames, to their jobs --------------------------------------------- */

/* Marks the pool broken and fails every job: no worker can ever start.
 * fs_dead: the fork server is gone too (no worker is left to wait for). */
static void pool_break(pool *p, const char *msg, bool fs_dead)
{
    pthread_mutex_lock(&p->lock);
    if (fs_dead) {
        p->fs_gone = true;
        p->live = 0;
        p->pending = 0;
        pthread_cond_broadcast(&p->cond); /* terminate and join wait for workers */
    }
    if (p->broken) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    /* From here on pool_check_submit and pool_job_register refuse with
     * POOL_EBROKEN, under this lock: a job is in the table we steal now,
     * or refused; none is left waiting. */
    p->broken = true;
    snprintf(p->broken_msg, sizeof p->broken_msg, "%s", msg);
    size_t n;
    pool_job **v = pool_jobs_steal(p, &n);
    pool_taskq_clear(p);
    pthread_mutex_unlock(&p->lock);
    pool_jobs_abort(v, n, POOL_EBROKEN, msg);
}

/* Hands a chunk to its job, counting and tracing it. Frees it if no job
 * wants it. One pass under the pool lock: this runs once per message.
 * frame_bytes: the result frame's size read from a worker, 0 for a chunk
 * the parent made (a dead worker's). */
static void chunk_dispatch(pool *p, uint64_t id, pool_chunk *c, int slot, size_t frame_bytes)
{
    double now = p->opt.trace ? pool_now() : 0; /* the trace's t_result alone */
    pthread_mutex_lock(&p->lock);
    if (frame_bytes > 0) {
        p->stats.messages_received++;
        p->stats.bytes_received += frame_bytes;
    }
    pool_job *job = pool_job_find(p, id);
    if (job == NULL) {
        pthread_mutex_unlock(&p->lock);
        pool_chunk_free(c); /* a job already failed or abandoned */
        return;
    }
    job->ops->ref(job);
    /* A chunk read into the scratch buffer moves into its job's room (a
     * copy of about 300 bytes, under the lock that found the job) ... */
    msgpack_object *values = NULL;
    if (c->home == POOL_CHUNK_SCRATCH) {
        if (job->ops->values_home)
            values = job->ops->values_home(job, c);
        if (values == NULL && job->ops->room)
            c = pool_chunk_settle(c, job->ops->room(job, c->block), NULL);
    }
    pool_record_chunk(p, c, job, slot, slot >= 0 ? p->ws[slot].pid : 0, now);
    pthread_mutex_unlock(&p->lock);
    /* ... or, without one, a block of its own, and a map's values into its
     * final array (the job's reference keeps it; only this thread writes
     * there, and only to the slots granted to this chunk) */
    c = pool_chunk_settle(c, NULL, values);
    job->ops->deliver(job, c);
    job->ops->unref(job);
}

/* A worker's initializer failed: no worker can ever serve, break the pool. */
static void init_failed(pool *p, const msgpack_object *body)
{
    char msg[600];
    snprintf(msg, sizeof msg, "the worker initializer '%s' failed: %s",
             pool_task_name((unsigned)p->cfg.init_task),
             body->type == MSGPACK_OBJECT_STR ? body->via.str.ptr : "?");
    pool_break(p, msg, false);
}

/* Copies a frame into a new chunk and unpacks it there with msgpack-c;
 * *frame is the unpacked [kind, job, chunk, first, body]. For the frames
 * pool_chunk_from_plain_frame does not read. */
static pool_chunk *unpack_frame(int slot, const char *data, uint32_t len, msgpack_object *frame)
{
    pool_chunk *c = calloc(1, sizeof *c + len);
    if (c == NULL)
        pool_panic("handle_frame: out of memory");
    c->raw = c->raw_inline;
    memcpy(c->raw, data, len);
    c->trace_first = SIZE_MAX;
    /* The zone lives as long as the result does. msgpack_unpack_next would
     * make one of msgpack-c's default 8 KiB chunks per frame, which 10 000
     * pending results would pay each; msgpack_unpack takes a zone sized to
     * the frame instead. */
    size_t off = 0;
    if (!msgpack_zone_init(&c->own_zone, pool_zone_guess(len)))
        pool_panic("handle_frame: out of memory");
    c->zone = &c->own_zone;
    if (msgpack_unpack(c->raw, len, &off, c->zone, frame) != MSGPACK_UNPACK_SUCCESS)
        pool_panic("handle_frame: unreadable frame from worker slot %d", slot);
    if (frame->type != MSGPACK_OBJECT_ARRAY || frame->via.array.size != 5)
        pool_panic("handle_frame: malformed frame from worker slot %d", slot);
    return c;
}

/* The general way: INITFAIL, or values that are containers. NULL when the
 * frame was an INITFAIL (handled here). */
static pool_chunk *read_frame(pool *p, int slot, const char *data, uint32_t len, uint64_t *job)
{
    msgpack_object frame;
    pool_chunk *c = unpack_frame(slot, data, len, &frame);
    const msgpack_object *f = frame.via.array.ptr;
    if (f[0].via.i64 == POOL_FRAME_INITFAIL) {
        init_failed(p, &f[4]);
        pool_chunk_free(c);
        return NULL;
    }
    if (!pool_chunk_read_body(c, &f[4]))
        pool_panic("handle_frame: malformed frame from worker slot %d", slot);
    c->index = (uint32_t)f[2].via.u64;
    c->first = (uint32_t)f[3].via.u64;
    *job = f[1].via.u64;
    return c;
}

/* Where the result handler reads a plain frame until its job is found
 * (chunk_dispatch): one per thread, and each pool has its own. It grows to
 * the largest chunk read (a map's, values and all: 25 KB for 834 numbers),
 * up to 4 MiB, so that a map's chunks are read into memory already touched
 * and only their values are copied, once, into the map's array. */
static _Thread_local struct pool_frame_scratch frame_scratch = {.max = 4u << 20};

static void handle_frame(pool *p, int slot, const char *data, uint32_t len)
{
    uint64_t job;
    pool_chunk *c = pool_chunk_from_plain_frame(data, len, &job, &frame_scratch);
    if (c == NULL && (c = read_frame(p, slot, data, len, &job)) == NULL)
        return;
    /* Remembered so that a worker killed between sending this and clearing
     * its slot does not have the chunk failed as well (worker_exited). */
    p->ws[slot].last_job = job;
    p->ws[slot].last_chunk = c->index;
    chunk_dispatch(p, job, c, slot, (size_t)len + 4);
}

/* Reads what a worker's pipe holds; handles every complete frame. Returns
 * false at end of file. */
static bool read_worker(pool *p, int slot)
{
    struct pool_wslot *w = &p->ws[slot];
    for (;;) {
        if (w->cap - w->len < 65536) {
            w->cap = w->cap ? w->cap * 2 : 131072;
            w->buf = realloc(w->buf, w->cap);
            if (w->buf == NULL)
                pool_panic("read_worker: out of memory");
        }
        long n = p->tx->ops->rx_read(p->tx, slot, w->buf + w->len, w->cap - w->len);
        if (n == 0)
            return true;
        if (n < 0)
            return false;
        w->len += (size_t)n;
        size_t off = 0;
        while (w->len - off >= 4) {
            uint32_t flen;
            memcpy(&flen, w->buf + off, 4);
            if (w->len - off - 4 < flen)
                break;
            handle_frame(p, slot, w->buf + off + 4, flen);
            off += 4 + (size_t)flen;
        }
        memmove(w->buf, w->buf + off, w->len - off);
        w->len -= off;
        if ((size_t)n < 65536)
            return true; /* likely drained; rx_wait will tell us if not */
    }
}

/* The slot's stream has ended: the transport lets go of it, and a partial
 * frame (a worker that died mid-write) is dropped. */
static void close_worker_fd(pool *p, int slot)
{
    struct pool_wslot *w = &p->ws[slot];
    if (w->attached)
        p->tx->ops->rx_detach(p->tx, slot);
    w->attached = false;
    w->len = 0;
}

/* ---- workers coming and going ------------------------------------------------ */

/* Whether an ended worker gets a replacement (caller holds the pool lock). */
static bool should_respawn(pool *p)
{
    return !p->broken && !p->fs_gone && !p->shutting_down &&
           (p->state == POOL_RUN || (p->state == POOL_CLOSE && p->tab_len > 0));
}

void pool_respawn(pool *p, int slot)
{
    p->pending++;
    if (pool_fs_send(p->ctl_fd, POOL_FS_SPAWN, slot) != 0) {
        p->pending--;
        if (!p->fs_gone && p->fs_stuck_at == 0)
            p->fs_stuck_at = pool_now(); /* not reading: pool_watch.c ends it */
        pool_wake_result_handler(p, 'w');
        return;
    }
    p->spawn_at[slot] = pool_now(); /* STARTED is owed within POOL_FS_REPLY_S */
    pool_wake_result_handler(p, 'w');
}

void pool_fs_request(pool *p, int op)
{
    if (p->fs_gone)
        return;
    if (pool_fs_send(p->ctl_fd, op, -1) != 0 && p->fs_stuck_at == 0)
        p->fs_stuck_at = pool_now();
    if (op == POOL_FS_KILLALL)
        p->fs_killall_at = pool_now(); /* the EXITED of every worker is owed */
    if (op == POOL_FS_QUIT) {
        p->fs_quit_sent = true;
        p->fs_quit_at = pool_now(); /* its socket's close is owed */
    }
    pool_wake_result_handler(p, 'w'); /* so that its poll gets a timeout */
}

void pool_wake_result_handler(pool *p, char why)
{
    if (pool_on_result_thread(p))
        return; /* it computes its timeout itself before polling again */
    if (write(p->wake_result[1], &why, 1) < 0) {
        /* full: it is being woken anyway */
    }
}

/* What a dead worker's shared-memory slot said it held. */
struct held_chunk {
    uint64_t job;
    uint32_t chunk, first, item;
    double t_start; /* when that item began, 0: not begun */
};

/* Words an item so that it cannot be misread: the engine numbers items
 * from 0 within their job; a client (the harness) prefixes its own number. */
#define ITEM_FMT "job %llu, index %u within the job (from 0)"

/* The messages of a chunk whose worker the parent killed for the time
 * limit (pool_watch.c wrote why into the slot): the item that ran past the
 * limit, and the others of its chunk, lost with it. */
static void timed_out_messages(pool *p, pool_chunk *c, const struct pool_fs_msg *m,
                               const struct held_chunk *held, const char *task)
{
    struct pool_wslot *w = &p->ws[m->slot];
    c->status = POOL_ETIMELIMIT;
    if (w->kill_t_start == 0) {
        /* Stopped between tasks: every item of the chunk it held fails alike. */
        if (asprintf(&c->errmsg, "worker %d (pid %d) was killed and replaced: it %s, with "
                     "task '%s' (" ITEM_FMT ") taken and not started", m->slot, (int)m->pid,
                     w->kill_why, task, (unsigned long long)held->job, held->item) < 0)
            pool_panic("worker_exited: out of memory");
        return;
    }
    c->culprit = held->item - held->first;
    c->culprit_status = POOL_ETIMELIMIT;
    c->culprit_start = w->kill_t_start;
    if (asprintf(&c->culprit_msg, "task '%s' (" ITEM_FMT ") %s: worker %d (pid %d) was "
                 "killed and replaced", task, (unsigned long long)held->job, held->item,
                 w->kill_why, m->slot, (int)m->pid) < 0 ||
        asprintf(&c->errmsg, "lost with its chunk: worker %d (pid %d) was killed because task "
                 "'%s' (" ITEM_FMT ") %s", m->slot, (int)m->pid, task,
                 (unsigned long long)held->job, held->item, w->kill_why) < 0)
        pool_panic("worker_exited: out of memory");
}

/* Fails the chunk a dead worker held: a chunk of the same size whose every
 * item carries the cause (or, for a time limit, the item that ran past it
 * its own cause). Failed once: the job ignores a chunk it already has. */
static void fail_held_chunk(pool *p, const struct pool_fs_msg *m, const struct held_chunk *held)
{
    uint64_t job_id = held->job;
    pool_job *job = pool_job_get(p, job_id);
    if (job == NULL)
        return; /* already failed or abandoned */
    pool_chunk *c = calloc(1, sizeof *c);
    if (c == NULL)
        pool_panic("worker_exited: out of memory");
    c->index = held->chunk;
    c->first = held->first;
    c->count = job->ops->chunk_count(job, held->chunk);
    c->trace_first = SIZE_MAX;
    /* For the trace: the item it was on, and whether that one had begun. */
    c->lost_at = held->item - held->first + 1;
    c->running_start = held->t_start;
    const char *task = pool_task_name(job->task);
    if (p->ws[m->slot].killed) {
        timed_out_messages(p, c, m, held, task);
    } else {
        char how[160];
        pool_describe_exit(m->status, how, sizeof how);
        c->status = POOL_EWORKER;
        if (asprintf(&c->errmsg, "worker %d (pid %d) %s while running task '%s' (" ITEM_FMT ")",
                     m->slot, (int)m->pid, how, task, (unsigned long long)job_id,
                     held->item) < 0)
            pool_panic("worker_exited: out of memory");
    }
    job->ops->unref(job);
    chunk_dispatch(p, job_id, c, m->slot, 0);
}

/* A worker ended: deliver what it sent, fail what it held, replace it. */
static void worker_exited(pool *p, const struct pool_fs_msg *m)
{
    int slot = m->slot;
    if (slot < 0 || slot >= p->nworkers)
        pool_panic("worker_exited: slot %d out of range", slot);
    /* Whatever it sent before dying is in its pipe: deliver it first, so
     * that only the chunk it really did not finish is failed. */
    if (p->ws[slot].attached) {
        read_worker(p, slot);
        close_worker_fd(p, slot);
    }
    struct pool_slot_shm *s = pool_slot(p, slot);
    /* Read whole before the slot is respawned: its next worker may claim a
     * chunk (and reset t_start) before this one's is failed. */
    struct held_chunk held = {atomic_load(&s->job), atomic_load(&s->chunk),
                              atomic_load(&s->first), atomic_load(&s->item),
                              atomic_load(&s->t_start)};
    if (held.job == p->ws[slot].last_job && held.chunk == p->ws[slot].last_chunk)
        held.job = 0; /* its result is in: it died after sending, before clearing */
    /* The slot starts clean for its next worker, BEFORE the respawn below:
     * the new worker may take a task and write its slot at once, and a
     * clear after that would erase its t_start (the time limit would never
     * see it run). */
    atomic_store(&s->job, 0);
    atomic_store(&s->t_start, 0.0);
    atomic_store(&s->lock_at, 0.0);

    bool clean = WIFEXITED(m->status) && WEXITSTATUS(m->status) == POOL_EXIT_OK;
    pthread_mutex_lock(&p->lock);
    p->live--;
    p->pids[slot] = 0;
    if (!clean && !(p->state == POOL_TERMINATE || p->shutting_down))
        p->stats.worker_deaths++;
    if (should_respawn(p))
        pool_respawn(p, slot);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);

    if (held.job != 0)
        fail_held_chunk(p, m, &held);
    struct pool_wslot *w = &p->ws[slot];
    w->eof_at = w->stopped_since = w->kill_t_start = 0;
    w->killed = false;
    w->last_job = 0;
}

/* One event from the fork server. Returns false when its socket closed. */
static bool fs_event(pool *p)
{
    struct pool_fs_msg m;
    int fd;
    int rc = pool_fs_recv(p->ctl_fd, &m, &fd);
    if (rc <= 0 || m.op == POOL_FS_BYE)
        return false; /* the fork server's end, or the launcher's last word */
    if (m.op == POOL_FS_STARTED) {
        if (m.slot < 0 || m.slot >= p->nworkers || (fd < 0 && !p->tx->ops->start_workers))
            pool_panic("fs_event: bad STARTED for slot %d", m.slot);
        p->tx->ops->rx_attach(p->tx, m.slot, fd); /* owns fd from here */
        p->ws[m.slot].attached = true;
        p->ws[m.slot].pid = m.pid;
        p->ws[m.slot].len = 0;
        pthread_mutex_lock(&p->lock);
        p->spawn_at[m.slot] = 0;
        p->pending--;
        p->live++;
        p->pids[m.slot] = m.pid;
        p->stats.workers_started++;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
    } else if (m.op == POOL_FS_EXITED) {
        worker_exited(p, &m);
    } else if (m.op == POOL_FS_SPAWNFAIL) {
        pthread_mutex_lock(&p->lock);
        if (m.slot >= 0 && m.slot < p->nworkers)
            p->spawn_at[m.slot] = 0;
        p->pending--;
        bool none = p->live == 0 && p->pending == 0;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        if (none) {
            char msg[256];
            snprintf(msg, sizeof msg, "the fork server cannot start a worker: %s",
                     strerror(m.status));
            pool_break(p, msg, false);
        }
    }
    return true;
}

/* ---- the thread ------------------------------------------------------------------ */

/* The pool was interrupted (pool_interrupt_all): terminate, as
 * pool_terminate does, failing unfinished jobs with POOL_EINTR. From here on
 * submits are refused with POOL_EINTR (pool_jobs.c). */
static void interrupted(pool *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->interrupted) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    p->interrupted = true;
    if (p->state != POOL_TERMINATE) {
        p->state = POOL_TERMINATE;
        pool_fs_request(p, POOL_FS_KILLALL);
    }
    size_t n;
    pool_job **v = pool_jobs_steal(p, &n); /* wakes join, which waits for the table */
    pool_taskq_clear(p);
    pthread_mutex_unlock(&p->lock); /* abort runs done callbacks: not under the pool lock */
    pool_jobs_abort(v, n, POOL_EINTR, "interrupted (SIGINT or SIGTERM: pool_interrupt_all): "
                    "the pool was terminated before the task finished");
}

/* Reads the wake-up pipe: an 'i' is an interrupt. */
static void read_wakeups(pool *p)
{
    char buf[64];
    ssize_t n;
    bool intr = false;
    while ((n = read(p->wake_result[0], buf, sizeof buf)) > 0)
        intr = intr || memchr(buf, 'i', (size_t)n) != NULL;
    if (intr || pool_interrupt_pending(p))
        interrupted(p);
}

/* Whether a child has ended (a zombie, or gone), without reaping it. */
static bool child_ended(pid_t pid)
{
    siginfo_t si = {0};
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid != 0;
}

/* Waits for a child that is ending to have ended, for up to `bound`
 * seconds: on its pidfd, which wakes as it ends; without one (ENOSYS:
 * before Linux 5.3, valgrind 3.19), by looking with naps that grow from
 * 20 us. A nap of 1 ms was a join's largest cost: the server closes its
 * socket before it is a zombie, and a third of the joins here found it not
 * one yet (0.6 or 1.7 ms a join, bench/overhead's start-up). */
static void await_ended(pid_t pid, double bound)
{
    double until = pool_now() + bound;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        double left;
        while ((left = until - pool_now()) > 0 && poll(&pf, 1, (int)(left * 1000) + 1) < 0 &&
               errno == EINTR) {
        }
        close(fd);
        return;
    }
    long nap_ns = 20000;
    while (!child_ended(pid) && pool_now() < until) {
        nanosleep(&(struct timespec){0, nap_ns}, NULL);
        nap_ns = nap_ns < 1000000 ? nap_ns * 2 : nap_ns;
    }
}

/* Reaps the fork server, whose socket has closed, within a bound: it closes
 * its socket as it exits, so it is a zombie within moments; one that is
 * not after a second is killed. Sets p->fs_status. */
static void reap_forkserver(pool *p)
{
    if (p->fs_thread_mode) { /* the launcher thread: it said BYE and returns */
        pthread_join(p->fs_thread, NULL);
        p->fs_status = 0;
        p->fs_reaped = true;
        return;
    }
    if (p->fs_pid <= 0) { /* none was forked (MPI): its stand-in has ended */
        p->fs_status = 0;
        p->fs_reaped = true;
        return;
    }
    int st = 0;
    pid_t r = waitpid(p->fs_pid, &st, WNOHANG);
    if (r == 0) {
        await_ended(p->fs_pid, 1.0);
        r = waitpid(p->fs_pid, &st, WNOHANG);
    }
    if (r == 0) {
        kill(p->fs_pid, SIGKILL);
        while ((r = waitpid(p->fs_pid, &st, 0)) < 0 && errno == EINTR) {
        }
    }
    p->fs_status = r == p->fs_pid ? st : -1; /* -1: reaped by someone else (SIGCHLD ignored) */
    p->fs_reaped = true;
}

/* The fork server's socket closed. After a quit that is the end; otherwise
 * it died, and every worker with it (PR_SET_PDEATHSIG): the pool is broken,
 * every pending and later job fails with POOL_EBROKEN (pool.h). */
static void fs_ended(pool *p)
{
    reap_forkserver(p);
    pthread_mutex_lock(&p->lock);
    bool expected = p->fs_quit_sent && p->fs_kill_why[0] == '\0';
    pthread_mutex_unlock(&p->lock);
    char how[160] = "ended (its exit status is unknown)";
    if (p->fs_status != -1)
        pool_describe_exit(p->fs_status, how, sizeof how);
    char msg[512];
    snprintf(msg, sizeof msg, "the pool's fork server (pid %d) %s%s%s; the pool is broken: "
             "its workers ended with it, and no job can run", (int)p->fs_pid,
             p->fs_kill_why, p->fs_kill_why[0] ? ": " : "", how);
    if (!expected) {
        pool_break(p, msg, true);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->fs_gone = true;
    p->live = 0;
    p->pending = 0;
    size_t n;
    pool_job **v = pool_jobs_steal(p, &n); /* empty after a join's wait */
    pthread_mutex_unlock(&p->lock);
    pool_jobs_abort(v, n, POOL_EBROKEN, msg);
}

/* Reads every ready result stream, then the wake-up pipe, then the fork
 * server's news. Returns false when the fork server's socket closed. */
static bool handle_events(pool *p, const struct pollfd *pf, bool *ready)
{
    /* Results before fork-server news: a worker's last results must be
     * in before its exit is handled (worker_exited drains too). */
    for (int i = 0; i < p->nworkers; i++) {
        if (!ready[i])
            continue;
        ready[i] = false;
        if (p->ws[i].attached && !read_worker(p, i)) {
            close_worker_fd(p, i);
            p->ws[i].eof_at = pool_now(); /* its EXITED is owed */
        }
    }
    if (pf[1].revents)
        read_wakeups(p);
    return !(pf[0].revents && !fs_event(p));
}

void *pool_result_handler(void *arg)
{
    pool *p = arg;
    bool *ready = calloc((size_t)p->nworkers, sizeof *ready);
    if (ready == NULL)
        pool_panic("result_handler: out of memory");
    for (;;) {
        struct pollfd pf[2] = {{.fd = p->ctl_fd, .events = POLLIN},
                               {.fd = p->wake_result[0], .events = POLLIN}};
        /* A timeout only while something has a bound (pool_watch.c); the
         * transport sleeps on its streams and these two descriptors. */
        int rc = p->tx->ops->rx_wait(p->tx, pf, 2, pool_watch(p), ready);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            pool_panic("result_handler: rx_wait: %s", strerror(errno));
        }
        if (rc > 0 && !handle_events(p, pf, ready))
            break;
    }
    fs_ended(p); /* the fork server is gone, and every worker with it */
    for (int i = 0; i < p->nworkers; i++)
        close_worker_fd(p, i);
    free(ready);
    free(frame_scratch.buf);
    frame_scratch = (struct pool_frame_scratch){.max = frame_scratch.max};
    return NULL;
}

bool pool_on_result_thread(pool *p)
{
    return pthread_equal(pthread_self(), p->result_thread);
}

pthread_t pool_result_thread_id(pool *p)
{
    return p->result_thread;
}
