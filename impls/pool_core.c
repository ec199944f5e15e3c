/*
 * pool_core.c: the pool itself: its lifecycle, its job table, and its two
 * threads.
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
 *
 * States follow CPython: RUN, then CLOSE (no new work, queued work runs) or
 * TERMINATE (workers killed, unfinished jobs failed); join waits for the end.
 */
#include "pool_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* ---- the job table: open addressing on the job id ------------------------ */

static size_t tab_bucket(const pool *p, uint64_t id)
{
    return (size_t)(id * 0x9E3779B97F4A7C15ull) & (p->tab_cap - 1);
}

static pool_job *tab_find(pool *p, uint64_t id)
{
    for (size_t i = tab_bucket(p, id);; i = (i + 1) & (p->tab_cap - 1)) {
        if (p->tab[i].id == id)
            return p->tab[i].job;
        if (p->tab[i].id == 0)
            return NULL;
    }
}

static void tab_put(pool *p, pool_job *job);

static void tab_grow(pool *p)
{
    struct pool_jobslot *old = p->tab;
    size_t old_cap = p->tab_cap;
    p->tab_cap *= 2;
    p->tab = calloc(p->tab_cap, sizeof *p->tab);
    if (p->tab == NULL)
        pool_panic("tab_grow: out of memory for %zu jobs", p->tab_cap);
    p->tab_len = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].id != 0)
            tab_put(p, old[i].job);
    free(old);
}

static void tab_put(pool *p, pool_job *job)
{
    if (2 * (p->tab_len + 1) > p->tab_cap)
        tab_grow(p);
    size_t i = tab_bucket(p, job->id);
    while (p->tab[i].id != 0)
        i = (i + 1) & (p->tab_cap - 1);
    p->tab[i] = (struct pool_jobslot){job->id, job};
    p->tab_len++;
}

/* Removes by backward shift, so lookups never need tombstones. */
static bool tab_remove(pool *p, uint64_t id)
{
    size_t i = tab_bucket(p, id);
    while (p->tab[i].id != id) {
        if (p->tab[i].id == 0)
            return false;
        i = (i + 1) & (p->tab_cap - 1);
    }
    for (size_t j = (i + 1) & (p->tab_cap - 1); p->tab[j].id != 0; j = (j + 1) & (p->tab_cap - 1)) {
        size_t home = tab_bucket(p, p->tab[j].id);
        /* Move j into the hole at i if its home is not in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            p->tab[i] = p->tab[j];
            i = j;
        }
    }
    p->tab[i] = (struct pool_jobslot){0, NULL};
    p->tab_len--;
    return true;
}

static int frag_send(pool *p, const struct pool_wire_hdr *hdr, const char *body, size_t len);

/* ---- helpers for the API files ------------------------------------------ */

static void pool_job_ref(pool_job *job)
{
    if (job->kind == POOL_JOB_RESULT)
        pool_result_ref((pool_result *)job);
    else
        pool_iter_ref((pool_iter *)job);
}

static void pool_job_unref(pool_job *job)
{
    if (job->kind == POOL_JOB_RESULT)
        pool_result_unref((pool_result *)job);
    else
        pool_iter_unref((pool_iter *)job);
}

static void pool_job_abort(pool_job *job, int status, const char *msg)
{
    if (job->kind == POOL_JOB_RESULT)
        pool_result_abort((pool_result *)job, status, msg);
    else
        pool_iter_abort((pool_iter *)job, status, msg);
}

/* Takes every job out of the table (caller holds the lock). The caller
 * aborts them and drops the table's references. */
static pool_job **steal_jobs(pool *p, size_t *n)
{
    pool_job **v = malloc((p->tab_len ? p->tab_len : 1) * sizeof *v);
    if (v == NULL)
        pool_panic("steal_jobs: out of memory");
    *n = 0;
    for (size_t i = 0; i < p->tab_cap; i++)
        if (p->tab[i].id != 0) {
            v[(*n)++] = p->tab[i].job;
            p->tab[i] = (struct pool_jobslot){0, NULL};
        }
    p->tab_len = 0;
    pthread_cond_broadcast(&p->cond);
    return v;
}

static void abort_jobs(pool_job **v, size_t n, int status, const char *msg)
{
    for (size_t i = 0; i < n; i++) {
        pool_job_abort(v[i], status, msg);
        pool_job_unref(v[i]);
    }
    free(v);
}

static void free_task_queue(pool *p)
{
    while (p->q_head) {
        pool_taskmsg *m = p->q_head;
        p->q_head = m->next;
        free(m);
    }
    p->q_tail = NULL;
}

/* Lists the registered task names into buf, for "unknown task" errors. */
static void list_tasks(char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < POOL_MAX_TASKS && off < len; i++) {
        const char *name = pool_task_name(i);
        if (strcmp(name, "?") == 0)
            break;
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", name);
    }
}

int pool_check_submit(pool *p, const char *task)
{
    if (p == NULL)
        return pool_seterr(POOL_EINVAL, "no pool");
    pthread_mutex_lock(&p->lock);
    int rc = POOL_OK;
    if (p->broken)
        rc = pool_seterr(POOL_EBROKEN, "%s", p->broken_msg);
    else if (p->state != POOL_RUN)
        rc = pool_seterr(POOL_ESTATE, "the pool is %s: it accepts no new work",
                         p->state == POOL_CLOSE ? "closed" : "terminated");
    pthread_mutex_unlock(&p->lock);
    if (rc != POOL_OK)
        return rc;
    int index = pool_task_index(task);
    if (index < 0) {
        char names[2048];
        list_tasks(names, sizeof names);
        return pool_seterr(POOL_EINVAL, "unknown task '%s'; the registered tasks are: %s",
                           task ? task : "(null)", names);
    }
    return index;
}

uint64_t pool_new_job(pool *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t id = ++p->next_job;
    p->stats.jobs_submitted++;
    pthread_mutex_unlock(&p->lock);
    return id;
}

int pool_register(pool *p, pool_job *job, bool continuing)
{
    int rc = POOL_OK;
    pthread_mutex_lock(&p->lock);
    /* Checked under the lock that terminate holds while it empties the
     * table: a job is either in the table when terminate looks, or refused. */
    if (p->broken)
        rc = pool_seterr(POOL_EBROKEN, "%s", p->broken_msg);
    else if (p->state == POOL_TERMINATE || p->shutting_down ||
             (p->state == POOL_CLOSE && !continuing))
        rc = pool_seterr(POOL_ESTATE, "the pool is %s: it accepts no new work",
                         p->state == POOL_TERMINATE ? "terminated" : "closed");
    else
        tab_put(p, job);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

bool pool_unregister(pool *p, uint64_t id)
{
    pthread_mutex_lock(&p->lock);
    bool found = tab_remove(p, id);
    if (found && p->tab_len == 0)
        pthread_cond_broadcast(&p->cond); /* join may be waiting for this */
    pthread_mutex_unlock(&p->lock);
    return found;
}

void pool_enqueue(pool *p, pool_taskmsg *first, pool_taskmsg *last, size_t n)
{
    pthread_mutex_lock(&p->lock);
    if (p->state == POOL_TERMINATE || p->task_stop) {
        /* Terminated between register and here: the job is already failed. */
        pthread_mutex_unlock(&p->lock);
        while (first) {
            pool_taskmsg *m = first;
            first = m->next;
            free(m);
        }
        return;
    }
    p->stats.messages_sent += n;
    /* Nothing queued and nothing being sent: put a one-fragment message on
     * the shared queue from this thread, saving a hand-off to the task
     * handler (apply pays it on every task). Order is kept: the task
     * handler only sends what it popped under this same lock. */
    while (first && p->q_head == NULL && !p->task_busy && first->len <= POOL_FRAG_MAX &&
           frag_send(p, &first->hdr, first->data, first->len) == 1) {
        pool_taskmsg *m = first;
        first = m->next;
        free(m);
    }
    if (first) {
        if (p->q_tail)
            p->q_tail->next = first;
        else
            p->q_head = first;
        p->q_tail = last;
        pthread_cond_signal(&p->task_cond);
    }
    pthread_mutex_unlock(&p->lock);
}

bool pool_on_result_thread(pool *p)
{
    return pthread_equal(pthread_self(), p->result_thread);
}

pthread_t pool_result_thread_id(pool *p)
{
    return p->result_thread;
}

void pool_trace_mark_callback(pool *p, size_t first, size_t count, double t)
{
    pthread_mutex_lock(&p->lock);
    for (size_t i = first; i < first + count && i < p->trace_len; i++)
        p->trace[i].t_callback = t;
    pthread_mutex_unlock(&p->lock);
}

void pool_count_callback(pool *p, int rc, const char *what, uint64_t job, const char *err)
{
    pthread_mutex_lock(&p->lock);
    p->stats.callbacks_run++;
    if (rc != 0)
        p->stats.callback_errors++;
    pthread_mutex_unlock(&p->lock);
    if (rc != 0)
        fprintf(stderr, "pool: %s of job %llu failed: %s\n", what, (unsigned long long)job,
                err[0] ? err : "(no message)");
}

void pool_count_unobserved(pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->stats.errors_unobserved++;
    pthread_mutex_unlock(&p->lock);
}

pid_t pool_job_holder(pool *p, uint64_t id)
{
    for (int i = 0; i < p->nworkers; i++)
        if (atomic_load(&p->shm->slot[i].job) == id)
            return atomic_load(&p->shm->slot[i].pid);
    return 0;
}

long pool_imap_window(pool *p)
{
    return p->opt.imap_window > 0 ? p->opt.imap_window : 2L * p->nworkers;
}

/* ---- the task handler ----------------------------------------------------- */

/* Sends one fragment (header + body) without waiting: 1 sent, 0 no room,
 * -1 the workers' end is gone. */
static int frag_send(pool *p, const struct pool_wire_hdr *hdr, const char *body, size_t len)
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
        while ((rc = frag_send(p, &hdr, m->data + off, body)) == 0) {
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

static void *task_handler(void *arg)
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
    pool_job **v = steal_jobs(p, &n);
    free_task_queue(p);
    pthread_mutex_unlock(&p->lock);
    abort_jobs(v, n, POOL_EBROKEN, msg);
}

/* Looks a job up and takes a reference for the caller, or NULL. */
static pool_job *job_get(pool *p, uint64_t id)
{
    pthread_mutex_lock(&p->lock);
    pool_job *job = tab_find(p, id);
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
    pool_job *job = tab_find(p, id);
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

static void respawn(pool *p, int slot)
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
        respawn(p, slot);
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

static void *result_handler(void *arg)
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
    pool_job **v = steal_jobs(p, &n);
    pthread_mutex_unlock(&p->lock);
    abort_jobs(v, n, POOL_EWORKER, "the pool's fork server ended, and its workers with it");
    for (int i = 0; i < p->nworkers; i++)
        close_worker_fd(p, i);
    free(pf);
    free(slot_of);
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------------- */

void pool_options_default(pool_options *opt)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    *opt = (pool_options){.workers = n > 0 ? (int)n : 1};
}

/* ThreadSanitizer's runtime runs a background thread of its own, which
 * holds none of our locks; every other build must be single-threaded. */
#if defined(__SANITIZE_THREAD__)
#define POOL_OWN_THREADS 2
#else
#define POOL_OWN_THREADS 1
#endif

/* Threads of this process, from /proc/self/task. */
static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int check_options(const pool_options *opt, int *init_task)
{
    if (opt->workers < 1)
        return pool_seterr(POOL_EINVAL, "pool_create: workers must be at least 1 (got %d)",
                           opt->workers);
    if (opt->workers > 4096)
        return pool_seterr(POOL_EINVAL, "pool_create: workers must be at most 4096 (got %d)",
                           opt->workers);
    if (opt->maxtasksperchild < 0)
        return pool_seterr(POOL_EINVAL,
                           "pool_create: maxtasksperchild must be 0 (never) or more (got %ld)",
                           opt->maxtasksperchild);
    if (opt->imap_window < 0)
        return pool_seterr(POOL_EINVAL, "pool_create: imap_window must be 0 (default) or more");
    *init_task = -1;
    if (opt->initializer) {
        *init_task = pool_task_index(opt->initializer);
        if (*init_task < 0)
            return pool_seterr(POOL_EINVAL, "pool_create: unknown initializer task '%s'",
                               opt->initializer);
        if (opt->initargs &&
            pool_msg_check_value(opt->initargs, opt->initargs_len, true, "initargs") != POOL_OK)
            return POOL_EINVAL;
    }
    int threads = count_threads();
    if (threads > POOL_OWN_THREADS)
        return pool_seterr(POOL_ESTATE,
                           "pool_create: this process has %d threads; create pools before "
                           "starting threads (a fork would copy locks other threads hold)",
                           threads - POOL_OWN_THREADS + 1);
    return POOL_OK;
}

static void pool_free(pool *p)
{
    free_task_queue(p);
    if (p->ws)
        for (int i = 0; i < p->nworkers; i++) {
            if (p->ws[i].fd >= 0)
                close(p->ws[i].fd);
            free(p->ws[i].buf);
        }
    free(p->ws);
    free(p->pids);
    free(p->tab);
    free(p->trace);
    free(p->cfg.initargs);
    for (int i = 0; i < 2; i++)
        if (p->wake_task[i] >= 0)
            close(p->wake_task[i]);
    if (p->ctl_fd >= 0)
        close(p->ctl_fd);
    if (p->queue_fd >= 0)
        close(p->queue_fd);
    if (p->shm)
        munmap(p->shm, p->shm_size);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    pthread_cond_destroy(&p->task_cond);
    free(p);
}

pool *pool_create(const pool_options *opt)
{
    pool_options def;
    if (opt == NULL) {
        pool_options_default(&def);
        opt = &def;
    }
    int init_task = -1;
    pool_registry_init();
    if (check_options(opt, &init_task) != POOL_OK)
        return NULL;
    pool *p = calloc(1, sizeof *p);
    if (p == NULL)
    {
        pool_seterr(POOL_ESYS, "pool_create: out of memory");
        return NULL;
    }
    p->opt = *opt;
    p->opt.initializer = NULL; /* not owned; the index is kept in cfg */
    p->nworkers = opt->workers;
    p->ctl_fd = p->queue_fd = -1;
    p->wake_task[0] = p->wake_task[1] = -1;
    pthread_mutex_init(&p->lock, NULL);
    pool_cond_init(&p->cond);
    pool_cond_init(&p->task_cond);
    p->tab_cap = 64;
    p->tab = calloc(p->tab_cap, sizeof *p->tab);
    p->ws = calloc((size_t)p->nworkers, sizeof *p->ws);
    p->pids = calloc((size_t)p->nworkers, sizeof *p->pids);
    p->shm_size = sizeof(struct pool_shm) + (size_t)p->nworkers * sizeof(struct pool_slot_shm);
    p->shm = mmap(NULL, p->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p->shm == MAP_FAILED)
        p->shm = NULL;
    if (p->tab == NULL || p->ws == NULL || p->pids == NULL || p->shm == NULL) {
        pool_seterr(POOL_ESYS, "pool_create: out of memory");
        goto fail;
    }
    for (int i = 0; i < p->nworkers; i++)
        p->ws[i].fd = -1;

    /* The queue lock lives in shared memory and must survive its holder's
     * death: process-shared and robust. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&p->shm->queue_lock, &ma);
    pthread_mutexattr_destroy(&ma);

    int qv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, qv) != 0) {
        pool_seterr(POOL_ESYS, "pool_create: socketpair: %s", strerror(errno));
        goto fail;
    }
    p->queue_fd = qv[0];
    if (opt->initializer && opt->initargs) {
        p->cfg.initargs = malloc(opt->initargs_len);
        if (p->cfg.initargs == NULL) {
            close(qv[1]);
            goto fail;
        }
        memcpy(p->cfg.initargs, opt->initargs, opt->initargs_len);
        p->cfg.initargs_len = opt->initargs_len;
    }
    p->cfg.queue_fd = qv[1];
    p->cfg.parent_queue_fd = qv[0];
    p->cfg.shm = p->shm;
    p->cfg.init_task = init_task;
    p->cfg.maxtasks = opt->maxtasksperchild;

    /* The fork server first: this process has one thread (checked). */
    p->fs_pid = pool_forkserver_start(&p->cfg, p->nworkers, &p->ctl_fd);
    close(qv[1]); /* only the fork server and its workers read the queue */
    if (p->fs_pid < 0)
        goto fail;
    if (pipe2(p->wake_task, O_CLOEXEC | O_NONBLOCK) != 0) {
        pool_seterr(POOL_ESYS, "pool_create: pipe: %s", strerror(errno));
        goto fail_fs;
    }
    if (pthread_create(&p->task_thread, NULL, task_handler, p) != 0) {
        pool_seterr(POOL_ESYS, "pool_create: cannot start the task handler");
        goto fail_fs;
    }
    if (pthread_create(&p->result_thread, NULL, result_handler, p) != 0) {
        pool_seterr(POOL_ESYS, "pool_create: cannot start the result handler");
        pthread_mutex_lock(&p->lock);
        p->task_stop = true;
        pthread_cond_signal(&p->task_cond);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->task_thread, NULL);
        goto fail_fs;
    }
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->nworkers; i++)
        respawn(p, i);
    pthread_mutex_unlock(&p->lock);
    return p;

fail_fs:
    close(p->ctl_fd); /* the fork server sees EOF and exits */
    p->ctl_fd = -1;
    waitpid(p->fs_pid, NULL, 0);
fail:
    pool_free(p);
    return NULL;
}

int pool_close(pool *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->state == POOL_RUN)
        p->state = POOL_CLOSE;
    pthread_mutex_unlock(&p->lock);
    return POOL_OK;
}

int pool_terminate(pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->state = POOL_TERMINATE;
    if (!p->fs_gone)
        pool_fs_send(p->ctl_fd, POOL_FS_KILLALL, -1);
    size_t n;
    pool_job **v = steal_jobs(p, &n);
    free_task_queue(p);
    pthread_mutex_unlock(&p->lock);
    abort_jobs(v, n, POOL_ETERMINATED, "the pool was terminated before the task finished");
    if (pool_on_result_thread(p))
        return POOL_OK; /* from a callback: the result handler reaps later */
    pthread_mutex_lock(&p->lock);
    while ((p->live > 0 || p->pending > 0) && !p->fs_gone)
        pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return POOL_OK;
}

/* Waits until every worker has ended; kills them if they take longer than
 * `grace` seconds (a task stuck after close). Caller holds the lock. */
static void wait_workers(pool *p, double grace)
{
    double deadline = pool_deadline(grace);
    while ((p->live > 0 || p->pending > 0) && !p->fs_gone) {
        if (pool_cond_wait_until(&p->cond, &p->lock, deadline) == ETIMEDOUT) {
            pool_fs_send(p->ctl_fd, POOL_FS_KILLALL, -1);
            deadline = -1;
        }
    }
}

int pool_join(pool *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->state == POOL_RUN) {
        pthread_mutex_unlock(&p->lock);
        return pool_seterr(POOL_ESTATE, "pool_join: the pool is still running "
                           "(close or terminate it first)");
    }
    if (p->joined) {
        pthread_mutex_unlock(&p->lock);
        return POOL_OK;
    }
    if (pool_on_result_thread(p)) {
        pthread_mutex_unlock(&p->lock);
        return pool_seterr(POOL_ESTATE, "pool_join: called from a callback, it would wait "
                           "for the thread it runs on");
    }
    /* Closed: queued work finishes first. */
    while (p->state == POOL_CLOSE && p->tab_len > 0 && !p->fs_gone)
        pthread_cond_wait(&p->cond, &p->lock);
    p->shutting_down = true;
    /* One EXIT per worker slot: each live worker takes one and ends (a
     * worker that ends on its own leaves one unread, which is harmless). */
    pool_taskmsg *first = NULL, *last = NULL;
    if (p->state == POOL_CLOSE)
        for (int i = 0; i < p->nworkers; i++) {
            pool_taskmsg *m = calloc(1, sizeof *m);
            if (m == NULL)
                break;
            m->hdr.kind = POOL_WIRE_EXIT;
            if (last)
                last->next = m;
            else
                first = m;
            last = m;
        }
    if (first) {
        if (p->q_tail)
            p->q_tail->next = first;
        else
            p->q_head = first;
        p->q_tail = last;
        pthread_cond_signal(&p->task_cond);
    }
    wait_workers(p, 10.0);
    if (!p->fs_gone)
        pool_fs_send(p->ctl_fd, POOL_FS_QUIT, -1);
    p->task_stop = true;
    pthread_cond_signal(&p->task_cond);
    pthread_mutex_unlock(&p->lock);

    if (write(p->wake_task[1], "x", 1) < 0) {
        /* the pipe is full: the task handler is being woken anyway */
    }
    pthread_join(p->task_thread, NULL);
    pthread_join(p->result_thread, NULL); /* returns once the fork server's socket closes */
    waitpid(p->fs_pid, NULL, 0);
    pthread_mutex_lock(&p->lock);
    p->joined = true;
    pthread_mutex_unlock(&p->lock);
    return POOL_OK;
}

void pool_destroy(pool *p)
{
    if (p == NULL)
        return;
    if (pool_on_result_thread(p))
        pool_panic("pool_destroy: called from a callback of the same pool");
    pthread_mutex_lock(&p->lock);
    bool running = p->state == POOL_RUN;
    pthread_mutex_unlock(&p->lock);
    if (running)
        pool_terminate(p);
    pool_join(p);
    pool_free(p);
}

/* ---- introspection ----------------------------------------------------------- */

int pool_workers(const pool *p)
{
    return p->nworkers;
}

pid_t pool_forkserver_pid(const pool *p)
{
    return p->fs_pid;
}

int pool_worker_pids(pool *p, pid_t *out, int max)
{
    int n = 0;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->nworkers && n < max; i++)
        if (p->pids[i] != 0)
            out[n++] = p->pids[i];
    pthread_mutex_unlock(&p->lock);
    return n;
}

void pool_get_stats(pool *p, pool_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->stats;
    pthread_mutex_unlock(&p->lock);
}

size_t pool_trace_count(pool *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->trace_len;
    pthread_mutex_unlock(&p->lock);
    return n;
}

size_t pool_trace_copy(pool *p, size_t from, pool_trace_rec *out, size_t max)
{
    pthread_mutex_lock(&p->lock);
    size_t n = 0;
    for (size_t i = from; i < p->trace_len && n < max; i++)
        out[n++] = p->trace[i];
    pthread_mutex_unlock(&p->lock);
    return n;
}
