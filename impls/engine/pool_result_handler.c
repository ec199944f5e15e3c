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
 */
#include "pool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- result frames, to their jobs --------------------------------------------- */

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
    pool_job **v = pool_jobs_steal(p, &n);
    pool_taskq_clear(p);
    pthread_mutex_unlock(&p->lock);
    pool_jobs_abort(v, n, POOL_EBROKEN, msg);
}

/* Hands a chunk to its job, counting and tracing it. Frees it if no job
 * wants it. One pass under the pool lock: this runs once per message. */
static void chunk_dispatch(pool *p, uint64_t id, pool_chunk *c, int slot, bool from_worker)
{
    double now = pool_now();
    pthread_mutex_lock(&p->lock);
    if (from_worker)
        p->stats.messages_received++;
    pool_job *job = pool_job_find(p, id);
    if (job == NULL) {
        pthread_mutex_unlock(&p->lock);
        pool_chunk_free(c); /* a job already failed or abandoned */
        return;
    }
    job->ops->ref(job);
    pool_record_chunk(p, c, job, slot, slot >= 0 ? p->ws[slot].pid : 0, now);
    pthread_mutex_unlock(&p->lock);
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
    pool_break(p, msg);
}

/* Copies a frame into a new chunk and unpacks it there; *frame is the
 * unpacked [kind, job, chunk, first, body]. */
static pool_chunk *unpack_frame(int slot, const char *data, uint32_t len, msgpack_object *frame)
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
    size_t off = 0;
    c->zone = msgpack_zone_new(256 + 6 * (size_t)len);
    if (c->zone == NULL)
        pool_panic("handle_frame: out of memory");
    if (msgpack_unpack(c->raw, len, &off, c->zone, frame) != MSGPACK_UNPACK_SUCCESS)
        pool_panic("handle_frame: unreadable frame from worker slot %d", slot);
    if (frame->type != MSGPACK_OBJECT_ARRAY || frame->via.array.size != 5)
        pool_panic("handle_frame: malformed frame from worker slot %d", slot);
    return c;
}

static void handle_frame(pool *p, int slot, const char *data, uint32_t len)
{
    msgpack_object frame;
    pool_chunk *c = unpack_frame(slot, data, len, &frame);
    const msgpack_object *f = frame.via.array.ptr;
    if (f[0].via.i64 == POOL_FRAME_INITFAIL) {
        init_failed(p, &f[4]);
        pool_chunk_free(c);
        return;
    }
    const msgpack_object_array *items = frame_items(&frame);
    if (items == NULL)
        pool_panic("handle_frame: malformed frame from worker slot %d", slot);
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
    if (pool_fs_send(p->ctl_fd, POOL_FS_SPAWN, slot) != 0)
        p->pending--;
}

/* What a dead worker's shared-memory slot said it held. */
struct held_chunk {
    uint64_t job;
    uint32_t chunk, first, item;
};

/* Fails the chunk a dead worker held: a chunk of the same size whose every
 * item carries the cause. */
static void fail_held_chunk(pool *p, const struct pool_fs_msg *m, const struct held_chunk *held)
{
    uint64_t job_id = held->job;
    pool_job *job = pool_job_get(p, job_id);
    if (job == NULL)
        return; /* already failed or abandoned */
    char how[160];
    pool_describe_exit(m->status, how, sizeof how);
    pool_chunk *c = calloc(1, sizeof *c);
    if (c == NULL)
        pool_panic("worker_exited: out of memory");
    c->index = held->chunk;
    c->first = held->first;
    c->count = job->ops->chunk_count(job, held->chunk);
    c->status = POOL_EWORKER;
    c->trace_first = SIZE_MAX;
    if (asprintf(&c->errmsg, "worker %d (pid %d) %s while running task '%s' (job %llu, item %u)",
                 m->slot, (int)m->pid, how, pool_task_name(job->task),
                 (unsigned long long)job_id, held->item) < 0)
        pool_panic("worker_exited: out of memory");
    job->ops->unref(job);
    chunk_dispatch(p, job_id, c, m->slot, false);
}

/* A worker ended: deliver what it sent, fail what it held, replace it. */
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
    struct held_chunk held = {atomic_load(&s->job), atomic_load(&s->chunk),
                              atomic_load(&s->first), atomic_load(&s->item)};
    atomic_store(&s->job, 0);

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

/* ---- the thread ------------------------------------------------------------------ */

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
    pool_job **v = pool_jobs_steal(p, &n);
    pthread_mutex_unlock(&p->lock);
    pool_jobs_abort(v, n, POOL_EWORKER, "the pool's fork server ended, and its workers with it");
    for (int i = 0; i < p->nworkers; i++)
        close_worker_fd(p, i);
    free(pf);
    free(slot_of);
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
