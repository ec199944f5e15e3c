/*
 * pool_handlers.c: the pool's two threads in the parent.
 *
 * The task handler moves task messages from the in-memory task queue onto
 * the shared queue. It is a thread of its own, as in CPython, because the
 * shared queue fills up (a socket has a bounded buffer): apply_async must
 * return at once even when 10 000 tasks are waiting.
 *
 * The result handler reads every worker's result pipe, hands each chunk to
 * the job waiting for it, and runs callbacks, one at a time: while a
 * callback runs, no other result is delivered (phenomenon P2). It also
 * listens to the fork server, so it is the one that learns a worker has
 * ended: it reads what the worker had already sent, fails exactly the chunk
 * the worker still held (its shared-memory slot says which), and asks for a
 * replacement. CPython's Pool never notices a dead worker and waits forever
 * (gh-66587).
 */
#include "pool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the task handler ----------------------------------------------------- */

/* Sends one fragment (header + body) without waiting: 1 sent, 0 no room,
 * -1 the workers' end is gone. */
int pool_frag_send(pool *p, const struct pool_wire_hdr *hdr, const char *body, size_t len)
{
    struct iovec iov[2] = {{(void *)hdr, sizeof *hdr}, {(void *)body, len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    for (;;) {
        if (sendmsg(p->queue_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
            return 1;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN ? 0 : -1;
    }
}

/* Sends a whole message, fragment by fragment, waiting for room; false if
 * told to stop meanwhile (terminate, join) or the queue is gone. */
static bool task_send(pool *p, const pool_taskmsg *m)
{
    struct pool_wire_hdr hdr = m->hdr;
    size_t off = 0;
    do {
        size_t body = m->len - off < POOL_FRAG_MAX ? m->len - off : POOL_FRAG_MAX;
        int rc;
        while ((rc = pool_frag_send(p, &hdr, m->data + off, body)) == 0) {
            struct pollfd pf[2] = {{.fd = p->queue_fd, .events = POLLOUT},
                                   {.fd = p->wake_task[0], .events = POLLIN}};
            poll(pf, 2, -1);
            if (pf[1].revents)
                return false;
        }
        if (rc < 0)
            return false;
        off += body;
        hdr.kind = POOL_WIRE_CONT;
    } while (off < m->len);
    return true;
}

void *pool_task_handler(void *arg)
{
    pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        p->task_busy = false;
        while (p->q_head == NULL && !p->task_stop)
            pthread_cond_wait(&p->task_cond, &p->lock);
        if (p->task_stop) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        pool_taskmsg *m = p->q_head;
        p->q_head = m->next;
        if (p->q_head == NULL)
            p->q_tail = NULL;
        p->task_busy = true; /* until sent: enqueue must not overtake it */
        pthread_mutex_unlock(&p->lock);

        bool ok = task_send(p, m);
        free(m);
        if (!ok) {
            pthread_mutex_lock(&p->lock);
            bool stop = p->task_stop || p->state == POOL_TERMINATE;
            pthread_mutex_unlock(&p->lock);
            if (stop)
                return NULL;
        }
    }
}

/* ---- the result handler ---------------------------------------------------- */

/* Checks a result frame's shape (the worker is ours: a bad one is a bug). */
static const msgpack_object_array *frame_items(const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 5 ||
        o->via.array.ptr[4].type != MSGPACK_OBJECT_ARRAY)
        return NULL;
    const msgpack_object_array *a = &o->via.array.ptr[4].via.array;
    for (uint32_t i = 0; i < a->size; i++) {
        const msgpack_object *it = &a->ptr[i];
        if (it->type != MSGPACK_OBJECT_ARRAY || it->via.array.size != 4 ||
            it->via.array.ptr[0].type != MSGPACK_OBJECT_BOOLEAN)
            return NULL;
    }
    return a;
}

/* Marks the pool broken and fails every job: no worker can ever start. */
static void pool_break(pool *p, const char *msg)
{
    pthread_mutex_lock(&p->lock);
    if (p->broken) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    p->broken = true;
    snprintf(p->broken_msg, sizeof p->broken_msg, "%s", msg);
    size_t n;
    pool_job **v = pool_steal_jobs(p, &n);
    pool_free_task_queue(p);
    pthread_mutex_unlock(&p->lock);
    pool_abort_jobs(v, n, POOL_EBROKEN, msg);
}

/* Looks a job up and takes a reference for the caller, or NULL. */
static pool_job *job_get(pool *p, uint64_t id)
{
    pthread_mutex_lock(&p->lock);
    pool_job *job = pool_tab_find(p, id);
    if (job)
        pool_job_ref(job);
    pthread_mutex_unlock(&p->lock);
    return job;
}

static void job_deliver(pool_job *job, pool_chunk *c)
{
    if (job->kind == POOL_JOB_RESULT)
        pool_result_deliver((pool_result *)job, c);
    else
        pool_iter_deliver((pool_iter *)job, c);
}

/* Appends trace records for a chunk (caller holds the lock). */
static void trace_chunk(pool *p, pool_chunk *c, const pool_job *job, int slot, pid_t pid,
                        double now)
{
    if (!p->opt.trace)
        return;
    if (p->trace_len + c->count > p->trace_cap) {
        size_t cap = p->trace_cap ? p->trace_cap : 1024;
        while (cap < p->trace_len + c->count)
            cap *= 2;
        pool_trace_rec *t = realloc(p->trace, cap * sizeof *t);
        if (t == NULL)
            return; /* tracing is best effort; results are not */
        p->trace = t;
        p->trace_cap = cap;
    }
    c->trace_first = p->trace_len;
    for (uint32_t i = 0; i < c->count; i++) {
        pool_trace_rec *r = &p->trace[p->trace_len++];
        *r = (pool_trace_rec){
            .job = job->id, .item = c->first + i, .task = (uint16_t)job->task,
            .slot = (int16_t)slot, .pid = pid, .t_submit = job->t_submit, .t_result = now,
        };
        if (c->items) {
            const msgpack_object *f = c->items[i].via.array.ptr;
            r->ok = f[0].via.boolean;
            r->t_start = f[2].via.f64;
            r->t_end = f[3].via.f64;
        }
    }
}

/* Hands a chunk to its job, counting and tracing it. Frees it if no job
 * wants it. One pass under the pool lock: this runs once per message. */
static void chunk_dispatch(pool *p, uint64_t id, pool_chunk *c, int slot, bool from_worker)
{
    double now = pool_now();
    pthread_mutex_lock(&p->lock);
    if (from_worker)
        p->stats.messages_received++;
    pool_job *job = pool_tab_find(p, id);
    if (job == NULL) {
        pthread_mutex_unlock(&p->lock);
        pool_chunk_free(c); /* a job already failed or abandoned */
        return;
    }
    pool_job_ref(job);
    for (uint32_t i = 0; i < c->count; i++) {
        const msgpack_object *v;
        const char *msg;
        if (pool_chunk_item(c, i, &v, &msg) == POOL_OK)
            p->stats.tasks_done++;
        else
            p->stats.tasks_failed++;
    }
    trace_chunk(p, c, job, slot, slot >= 0 ? p->ws[slot].pid : 0, now);
    pthread_mutex_unlock(&p->lock);
    job_deliver(job, c);
    pool_job_unref(job);
}

static void handle_frame(pool *p, int slot, const char *data, uint32_t len)
{
    pool_chunk *c = calloc(1, sizeof *c);
    if (c == NULL || (c->raw = malloc(len ? len : 1)) == NULL)
        pool_panic("handle_frame: out of memory");
    memcpy(c->raw, data, len);
    c->trace_first = SIZE_MAX;
    /* The zone lives as long as the result does. msgpack_unpack_next would
     * make one of msgpack-c's default 8 KiB chunks per frame, which 10 000
     * pending apply results would pay each; msgpack_unpack takes a zone
     * sized to the frame instead (about 6 object bytes per packed byte; it
     * grows if that is not enough). */
    msgpack_object frame;
    size_t off = 0;
    c->zone = msgpack_zone_new(256 + 6 * (size_t)len);
    if (c->zone == NULL)
        pool_panic("handle_frame: out of memory");
    if (msgpack_unpack(c->raw, len, &off, c->zone, &frame) != MSGPACK_UNPACK_SUCCESS)
        pool_panic("handle_frame: unreadable frame from worker slot %d", slot);
    if (frame.type != MSGPACK_OBJECT_ARRAY || frame.via.array.size != 5)
        pool_panic("handle_frame: malformed frame from worker slot %d", slot);
    const msgpack_object *f = frame.via.array.ptr;
    bool initfail = f[0].via.i64 == POOL_FRAME_INITFAIL;
    const msgpack_object_array *items = initfail ? NULL : frame_items(&frame);
    if (!initfail && items == NULL)
        pool_panic("handle_frame: malformed frame from worker slot %d", slot);

    if (initfail) {
        char msg[600];
        snprintf(msg, sizeof msg, "the worker initializer '%s' failed: %s",
                 pool_task_name((unsigned)p->cfg.init_task),
                 f[4].type == MSGPACK_OBJECT_STR ? f[4].via.str.ptr : "?");
        pool_chunk_free(c);
        pool_break(p, msg);
        return;
    }
    c->index = (uint32_t)f[2].via.u64;
    c->first = (uint32_t)f[3].via.u64;
    c->count = items->size;
    c->items = items->ptr;
    chunk_dispatch(p, f[1].via.u64, c, slot, true);
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
        ssize_t n = read(w->fd, w->buf + w->len, w->cap - w->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0)
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
            return true; /* likely drained; poll will tell us if not */
    }
}

static void close_worker_fd(pool *p, int slot)
{
    struct pool_wslot *w = &p->ws[slot];
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    w->len = 0;
}

/* Caller holds the lock. */
static bool should_respawn(pool *p)
{
    return !p->broken && !p->fs_gone && !p->shutting_down &&
           (p->state == POOL_RUN || (p->state == POOL_CLOSE && p->tab_len > 0));
}

void pool_respawn(pool *p, int slot)
{
    p->pending++;
    if (pool_fs_send(p->ctl_fd, POOL_FS_SPAWN, slot) != 0)
        p->pending--;
}

/* A worker ended: fail what it held, replace it. */
static void worker_exited(pool *p, const struct pool_fs_msg *m)
{
    int slot = m->slot;
    if (slot < 0 || slot >= p->nworkers)
        pool_panic("worker_exited: slot %d out of range", slot);
    /* Whatever it sent before dying is in its pipe: deliver it first, so
     * that only the chunk it really did not finish is failed. */
    if (p->ws[slot].fd >= 0) {
        int fl = fcntl(p->ws[slot].fd, F_GETFL);
        fcntl(p->ws[slot].fd, F_SETFL, fl | O_NONBLOCK);
        read_worker(p, slot);
        close_worker_fd(p, slot);
    }
    struct pool_slot_shm *s = &p->shm->slot[slot];
    uint64_t job_id = atomic_load(&s->job);
    uint32_t chunk = atomic_load(&s->chunk), first = atomic_load(&s->first),
             item = atomic_load(&s->item);
    atomic_store(&s->job, 0);

    bool clean = WIFEXITED(m->status) && WEXITSTATUS(m->status) == 0;
    pthread_mutex_lock(&p->lock);
    p->live--;
    p->pids[slot] = 0;
    if (!clean && !(p->state == POOL_TERMINATE || p->shutting_down))
        p->stats.worker_deaths++;
    if (should_respawn(p))
        pool_respawn(p, slot);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);

    if (job_id == 0)
        return;
    pool_job *job = job_get(p, job_id);
    if (job == NULL)
        return;
    char how[128];
    pool_describe_exit(m->status, how, sizeof how);
    pool_chunk *c = calloc(1, sizeof *c);
    if (c == NULL)
        pool_panic("worker_exited: out of memory");
    c->index = chunk;
    c->first = first;
    c->count = job->kind == POOL_JOB_RESULT ? pool_result_chunk_count((pool_result *)job, chunk)
                                            : pool_iter_chunk_count((pool_iter *)job, chunk);
    c->status = POOL_EWORKER;
    c->trace_first = SIZE_MAX;
    if (asprintf(&c->errmsg, "worker %d (pid %d) %s while running task '%s' (job %llu, item %u)",
                 slot, (int)m->pid, how, pool_task_name(job->task),
                 (unsigned long long)job_id, item) < 0)
        pool_panic("worker_exited: out of memory");
    pool_job_unref(job);
    chunk_dispatch(p, job_id, c, slot, false);
}

/* One event from the fork server. Returns false when its socket closed. */
static bool fs_event(pool *p)
{
    struct pool_fs_msg m;
    int fd;
    int rc = pool_fs_recv(p->ctl_fd, &m, &fd);
    if (rc <= 0)
        return false;
    if (m.op == POOL_FS_STARTED) {
        if (m.slot < 0 || m.slot >= p->nworkers || fd < 0)
            pool_panic("fs_event: bad STARTED for slot %d", m.slot);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        p->ws[m.slot].fd = fd;
        p->ws[m.slot].pid = m.pid;
        p->ws[m.slot].len = 0;
        pthread_mutex_lock(&p->lock);
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
        p->pending--;
        bool none = p->live == 0 && p->pending == 0;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        if (none) {
            char msg[256];
            snprintf(msg, sizeof msg, "the fork server cannot start a worker: %s",
                     strerror(m.status));
            pool_break(p, msg);
        }
    }
    return true;
}

void *pool_result_handler(void *arg)
{
    pool *p = arg;
    struct pollfd *pf = calloc((size_t)p->nworkers + 1, sizeof *pf);
    int *slot_of = calloc((size_t)p->nworkers + 1, sizeof *slot_of);
    if (pf == NULL || slot_of == NULL)
        pool_panic("result_handler: out of memory");
    for (;;) {
        int n = 0;
        pf[n++] = (struct pollfd){.fd = p->ctl_fd, .events = POLLIN};
        for (int i = 0; i < p->nworkers; i++)
            if (p->ws[i].fd >= 0) {
                slot_of[n] = i;
                pf[n++] = (struct pollfd){.fd = p->ws[i].fd, .events = POLLIN};
            }
        if (poll(pf, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            pool_panic("result_handler: poll: %s", strerror(errno));
        }
        /* Results before fork-server news: a worker's last results must be
         * in before its exit is handled (worker_exited drains too). */
        for (int k = 1; k < n; k++)
            if (pf[k].revents && p->ws[slot_of[k]].fd >= 0 && !read_worker(p, slot_of[k]))
                close_worker_fd(p, slot_of[k]);
        if (pf[0].revents && !fs_event(p))
            break;
    }
    /* The fork server is gone, and every worker with it. */
    pthread_mutex_lock(&p->lock);
    p->fs_gone = true;
    p->live = 0;
    p->pending = 0;
    size_t n;
    pool_job **v = pool_steal_jobs(p, &n);
    pthread_mutex_unlock(&p->lock);
    pool_abort_jobs(v, n, POOL_EWORKER, "the pool's fork server ended, and its workers with it");
    for (int i = 0; i < p->nworkers; i++)
        close_worker_fd(p, i);
    free(pf);
    free(slot_of);
    return NULL;
}
