/*
 * pool_transport_shm.c: the shared-memory transport (pool_transport.h).
 * Chunks and results travel through byte rings in one MAP_SHARED |
 * MAP_ANONYMOUS segment that the parent maps before the fork server forks
 * (so every worker has it, and nothing named is left behind: the segment
 * dies with its last process). A side makes a system call only to wake a
 * side that said it sleeps, so while both are busy a message costs two
 * memcpy and a few atomics, and one wake-up carries every result written
 * meanwhile.
 *
 *   the task ring     one byte stream of task messages (header + body, no
 *                     fragments), one producer at a time (the task handler
 *                     or a submitter, serialized by the pool lock), read by
 *                     every worker, one message per take, under a robust
 *                     process-shared lock: P8's race is intact.
 *   a result ring     per worker slot, a byte stream of result frames: one
 *                     producer (the worker), one consumer (the result
 *                     handler), no lock.
 *
 * Positions are 64-bit byte counts that only grow (head: consumed, tail:
 * published); a byte is in the ring at (pos mod cap). A producer copies,
 * then publishes by storing tail; a consumer copies, then frees by storing
 * head. Each side that waits says so (consumer_sleeps / producer_sleeps,
 * set before its last check of the positions, all sequentially consistent)
 * and sleeps on a futex word the other side bumps (data_seq, space_seq):
 * either the sleeper sees the new position or the other side sees the
 * flag and wakes it. Every futex wait has a timeout and re-checks.
 *
 * The result handler cannot sleep on a futex: it must also wake for the
 * fork server's socket and the interrupt pipe. So it sleeps in poll(2) on
 * those and on the workers' pipes from the fork server, after setting
 * parent_sleeps; a worker that publishes a frame and finds parent_sleeps
 * set writes one byte to its own pipe: the doorbell (the result handler
 * clears the flag as it wakes, so a worker stopped before ringing delays
 * no other's results). A pipe's EOF is still its worker's death. Before it
 * sleeps, while a worker holds a chunk, it yields its core and looks again
 * for up to LINGER_S: a result that comes back that soon costs no wake-up.
 *
 * Taking a message keeps rule 2 (claim before take) at any instruction:
 * holding the lock, a worker peeks at the header at head, claims it in its
 * slot record, stores msg_end (where the message ends), then consumes
 * header and body, advancing head as it copies (a message larger than the
 * ring streams through it). A worker killed before msg_end left the message
 * whole (another runs it; the job ignores the second result); one killed
 * after left head < msg_end: the next holder (told EOWNERDEAD, or not: it
 * always checks) skips to msg_end. A stopped holder stalls the others until
 * the time limit kills it, as with the socket.
 */
#include "pool_internal.h"
#include "pool_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TASK_RING_CAP (4u << 20)    /* bytes; pages are touched only as used */
#define RESULT_RING_CAP (128u << 10)
#define WAIT_SLICE_S 0.2            /* a futex wait re-checks at least this often */
#define EXTRA_POLL_S 0.001
#define LINGER_S 50e-6              /* the result handler's look before it sleeps, while
                                       a worker holds a chunk (its result is owed) */          /* while results keep coming, how often the result
                                       handler still looks at its other descriptors */

/* One ring's positions and wake-up words, each side's on its own line. */
struct ring {
    _Atomic uint64_t head;             /* consumed */
    _Atomic uint32_t space_seq;        /* futex word: head moved */
    _Atomic uint32_t producer_sleeps;
    char pad1[64 - 16];
    _Atomic uint64_t tail;             /* published */
    _Atomic uint32_t data_seq;         /* futex word: tail moved */
    _Atomic uint32_t consumer_sleeps;
    _Atomic uint64_t msg_end;          /* task ring: the end of the message being taken */
    char pad2[64 - 24];
};

/* The head of the segment. */
struct shm_head {
    pthread_mutex_t lock;              /* held to take one message off the task ring */
    char pad[64];
    _Atomic uint32_t parent_sleeps;    /* the result handler is in poll(2) */
};

struct shm_transport {
    pool_transport base;
    int nworkers;
    struct pool_slot_shm *slots;
    void *seg;
    size_t seg_size;
    struct shm_head *head;
    struct ring *task;                 /* its bytes: task_data */
    char *task_data;
    struct ring *res;                  /* nworkers rings; bytes: res_data + slot * cap */
    char *res_data;
    int *fd;                           /* parent: per slot the worker's pipe (doorbell), -1 */
    bool *eof;                         /* parent: that pipe ended */
    bool *ring_ready;                  /* parent: scratch for rx_wait */
    _Atomic bool stop;                 /* tx_wake was called */
    double extra_at;                   /* result handler: its last poll of the descriptors */
};

#define SH(t) ((struct shm_transport *)(void *)(t))

/* ---- futexes (the segment is shared: not FUTEX_PRIVATE) ------------------------ */

static void futex_wait(_Atomic uint32_t *w, uint32_t val, double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ---- byte rings ------------------------------------------------------------------ */

static void ring_copy_in(char *data, uint32_t cap, uint64_t pos, const char *src, size_t n)
{
    size_t off = (size_t)(pos % cap), first = cap - off < n ? cap - off : n;
    memcpy(data + off, src, first);
    memcpy(data, src + first, n - first);
}

static void ring_copy_out(const char *data, uint32_t cap, uint64_t pos, char *dst, size_t n)
{
    size_t off = (size_t)(pos % cap), first = cap - off < n ? cap - off : n;
    memcpy(dst, data + off, first);
    memcpy(dst + first, data, n - first);
}

/* Producer: makes n more bytes visible, waking a sleeping consumer. */
static void ring_publish(struct ring *r, uint64_t tail)
{
    atomic_store(&r->tail, tail);
    atomic_fetch_add(&r->data_seq, 1);
    if (atomic_load(&r->consumer_sleeps))
        futex_wake(&r->data_seq);
}

/* Consumer: frees bytes up to head, waking a sleeping producer. */
static void ring_free(struct ring *r, uint64_t head)
{
    atomic_store(&r->head, head);
    atomic_fetch_add(&r->space_seq, 1);
    if (atomic_load(&r->producer_sleeps))
        futex_wake(&r->space_seq);
}

/* Consumer: waits (one slice at most) until more than `pos` is published. */
static void ring_wait_data(struct ring *r, uint64_t pos)
{
    atomic_store(&r->consumer_sleeps, 1);
    uint32_t seq = atomic_load(&r->data_seq);
    if (atomic_load(&r->tail) <= pos)
        futex_wait(&r->data_seq, seq, WAIT_SLICE_S);
    atomic_store(&r->consumer_sleeps, 0);
}

/* Producer: waits (one slice at most) until at least `need` bytes are free. */
static void ring_wait_space(struct ring *r, uint32_t cap, uint64_t tail, size_t need)
{
    atomic_store(&r->producer_sleeps, 1);
    uint32_t seq = atomic_load(&r->space_seq);
    if (cap - (tail - atomic_load(&r->head)) < need)
        futex_wait(&r->space_seq, seq, WAIT_SLICE_S);
    atomic_store(&r->producer_sleeps, 0);
}

/* Producer: appends n bytes, waiting for room; `stop` (may be NULL) ends
 * the wait early (false). `min_first`: the first piece is at least this
 * long (a task header is never published in halves). */
static bool ring_write(struct ring *r, char *data, uint32_t cap, const char *src, size_t n,
                       size_t min_first, _Atomic bool *stop)
{
    uint64_t tail = atomic_load(&r->tail);
    size_t off = 0;
    while (off < n) {
        size_t room = cap - (size_t)(tail - atomic_load(&r->head));
        size_t want = off == 0 && min_first > 1 ? min_first : 1;
        if (room < want) {
            if (stop && atomic_load(stop))
                return false;
            ring_wait_space(r, cap, tail, want);
            continue;
        }
        size_t k = n - off < room ? n - off : room;
        ring_copy_in(data, cap, tail, src + off, k);
        tail += k;
        off += k;
        ring_publish(r, tail);
    }
    return true;
}

/* Consumer: copies n bytes from head into dst (NULL: skips them), waiting
 * for them to be published, and frees them as it goes. */
static void ring_read(struct ring *r, const char *data, uint32_t cap, char *dst, size_t n)
{
    uint64_t head = atomic_load(&r->head);
    size_t off = 0;
    while (off < n) {
        size_t avail = (size_t)(atomic_load(&r->tail) - head);
        if (avail == 0) {
            ring_wait_data(r, head);
            continue;
        }
        size_t k = n - off < avail ? n - off : avail;
        if (dst)
            ring_copy_out(data, cap, head, dst + off, k);
        head += k;
        off += k;
        ring_free(r, head);
    }
}

/* ---- lifecycle ------------------------------------------------------------------- */

static void shm_destroy(pool_transport *t)
{
    struct shm_transport *s = SH(t);
    if (s->fd)
        for (int i = 0; i < s->nworkers; i++)
            if (s->fd[i] >= 0)
                close(s->fd[i]);
    free(s->fd);
    free(s->eof);
    free(s->ring_ready);
    if (s->seg) {
        pthread_mutex_destroy(&s->head->lock);
        munmap(s->seg, s->seg_size);
    }
    free(s);
}

static pool_transport *shm_create(int nworkers, struct pool_slot_shm *slots)
{
    struct shm_transport *s = calloc(1, sizeof *s);
    if (s == NULL)
        goto fail;
    s->base.ops = &pool_transport_shm_ops;
    s->nworkers = nworkers;
    s->slots = slots;
    s->fd = malloc((size_t)nworkers * sizeof *s->fd);
    s->eof = calloc((size_t)nworkers, sizeof *s->eof);
    s->ring_ready = calloc((size_t)nworkers, sizeof *s->ring_ready);
    if (s->fd == NULL || s->eof == NULL || s->ring_ready == NULL)
        goto fail;
    for (int i = 0; i < nworkers; i++)
        s->fd[i] = -1;
    size_t rings = sizeof(struct shm_head) + (size_t)(nworkers + 1) * sizeof(struct ring);
    rings = (rings + 4095) & ~(size_t)4095;
    s->seg_size = rings + TASK_RING_CAP + (size_t)nworkers * RESULT_RING_CAP;
    s->seg = mmap(NULL, s->seg_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s->seg == MAP_FAILED) {
        s->seg = NULL;
        goto fail;
    }
    s->head = s->seg;
    s->task = (struct ring *)(void *)((char *)s->seg + sizeof(struct shm_head));
    s->res = s->task + 1;
    s->task_data = (char *)s->seg + rings;
    s->res_data = s->task_data + TASK_RING_CAP;
    pool_shared_mutex_init(&s->head->lock);
    return &s->base;
fail:
    pool_seterr(POOL_ESYS, "pool_create: shm transport: %s", strerror(errno));
    if (s)
        shm_destroy(&s->base);
    return NULL;
}

static void shm_in_forkserver(pool_transport *t)
{
    (void)t; /* the parent holds no descriptor of this transport yet */
}

static void shm_in_parent(pool_transport *t)
{
    (void)t;
}

/* ---- the task side ------------------------------------------------------------- */

static int shm_tx_send(pool_transport *t, const struct pool_wire_hdr *hdr, const char *body,
                       size_t len, bool wait)
{
    struct shm_transport *s = SH(t);
    struct ring *r = s->task;
    if (!wait) {
        uint64_t tail = atomic_load(&r->tail);
        if (TASK_RING_CAP - (tail - atomic_load(&r->head)) < sizeof *hdr + len)
            return 0;
        ring_copy_in(s->task_data, TASK_RING_CAP, tail, (const char *)hdr, sizeof *hdr);
        ring_copy_in(s->task_data, TASK_RING_CAP, tail + sizeof *hdr, body, len);
        ring_publish(r, tail + sizeof *hdr + len);
        return 1;
    }
    if (!ring_write(r, s->task_data, TASK_RING_CAP, (const char *)hdr, sizeof *hdr,
                    sizeof *hdr, &s->stop))
        return 0;
    return ring_write(r, s->task_data, TASK_RING_CAP, body, len, 0, &s->stop) ? 1 : 0;
}

static void shm_tx_wake(pool_transport *t)
{
    struct shm_transport *s = SH(t);
    atomic_store(&s->stop, true);
    atomic_fetch_add(&s->task->space_seq, 1);
    futex_wake(&s->task->space_seq);
}

/* ---- the result side ----------------------------------------------------------- */

static void shm_rx_attach(pool_transport *t, int slot, int fd)
{
    struct shm_transport *s = SH(t);
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    s->fd[slot] = fd;
    s->eof[slot] = false;
}

static void shm_rx_detach(pool_transport *t, int slot)
{
    struct shm_transport *s = SH(t);
    if (s->fd[slot] >= 0)
        close(s->fd[slot]);
    s->fd[slot] = -1;
    /* Its worker is dead and its stream drained (or dropped): the next
     * worker of the slot starts on an empty ring. */
    struct ring *r = &s->res[slot];
    atomic_store(&r->head, atomic_load(&r->tail));
}

/* Marks the slots whose ring holds bytes, or whose worker is gone. */
static int scan_rings(struct shm_transport *s, bool *ready)
{
    int n = 0;
    for (int i = 0; i < s->nworkers; i++) {
        struct ring *r = &s->res[i];
        if (s->fd[i] >= 0 &&
            (s->eof[i] || atomic_load(&r->tail) != atomic_load(&r->head))) {
            ready[i] = true;
            n++;
        }
    }
    return n;
}

/* Empties the doorbell pipes poll found ready; notes the ended ones. */
static void drain_doorbells(struct shm_transport *s, const bool *rang)
{
    char buf[256];
    for (int i = 0; i < s->nworkers; i++) {
        if (!rang[i] || s->fd[i] < 0)
            continue;
        ssize_t n;
        while ((n = read(s->fd[i], buf, sizeof buf)) > 0) {
        }
        if (n == 0)
            s->eof[i] = true;
    }
}

/* Whether some worker holds a chunk, so that a result is owed soon. */
static bool result_owed(const struct shm_transport *s)
{
    for (int i = 0; i < s->nworkers; i++)
        if (s->fd[i] >= 0 && atomic_load(&s->slots[i].job) != 0)
            return true;
    return false;
}

/* Before it sleeps, the result handler gives its core away for a while
 * (sched_yield: a worker that is runnable runs) and looks again, as long as
 * a result is owed: a result that comes back within LINGER_S then costs no
 * doorbell and no wake-up, and the results of several workers are read in
 * one pass. Returns the slots with bytes, 0 when none came. */
static int linger(struct shm_transport *s, bool *ready)
{
    int n = 0;
    double until = pool_now() + LINGER_S;
    while (n == 0 && result_owed(s) && pool_now() < until) {
        sched_yield();
        n = scan_rings(s, ready);
    }
    return n;
}

static int shm_rx_wait(pool_transport *t, struct pollfd *extra, int nextra, int timeout_ms,
                       bool *ready)
{
    struct shm_transport *s = SH(t);
    double now = pool_now();
    int n = scan_rings(s, ready);
    if (n == 0 && timeout_ms != 0)
        n = linger(s, ready);
    atomic_store(&s->head->parent_sleeps, 1); /* before the last look at the rings */
    n = n > 0 ? n : scan_rings(s, ready);
    if (n > 0) {
        atomic_store(&s->head->parent_sleeps, 0);
        if (now - s->extra_at < EXTRA_POLL_S) {
            for (int i = 0; i < nextra; i++)
                extra[i].revents = 0;
            return n; /* busy: results first, the descriptors within EXTRA_POLL_S */
        }
        timeout_ms = 0;
    }
    memset(s->ring_ready, 0, (size_t)s->nworkers * sizeof *s->ring_ready);
    int rc = pool_transport_poll(s->fd, s->nworkers, extra, nextra, timeout_ms, s->ring_ready);
    atomic_store(&s->head->parent_sleeps, 0);
    s->extra_at = now;
    if (rc < 0)
        return rc;
    drain_doorbells(s, s->ring_ready);
    int extra_ready = 0;
    for (int i = 0; i < nextra; i++)
        extra_ready += extra[i].revents != 0;
    return scan_rings(s, ready) + extra_ready;
}

static long shm_rx_read(pool_transport *t, int slot, char *buf, size_t cap)
{
    struct shm_transport *s = SH(t);
    struct ring *r = &s->res[slot];
    uint64_t head = atomic_load(&r->head);
    size_t avail = (size_t)(atomic_load(&r->tail) - head);
    if (avail == 0)
        return s->eof[slot] || s->fd[slot] < 0 ? -1 : 0;
    size_t k = avail < cap ? avail : cap;
    ring_copy_out(s->res_data + (size_t)slot * RESULT_RING_CAP, RESULT_RING_CAP, head, buf, k);
    ring_free(r, head + k);
    return (long)k;
}

/* ---- the worker side ----------------------------------------------------------- */

/* Under the lock: skips what is left of a message whose taker died in it. */
static void skip_orphan(struct shm_transport *s)
{
    struct ring *r = s->task;
    uint64_t head = atomic_load(&r->head), end = atomic_load(&r->msg_end);
    if (head < end)
        ring_read(r, s->task_data, TASK_RING_CAP, NULL, (size_t)(end - head));
}

static int shm_wk_take(pool_transport *t, int slot, struct pool_wire_hdr *hdr, char **buf,
                       size_t *cap)
{
    struct shm_transport *s = SH(t);
    struct ring *r = s->task;
    struct pool_slot_shm *me = &s->slots[slot];
    pool_shared_mutex_lock_or_exit(&s->head->lock);
    atomic_store(&me->lock_at, pool_now()); /* cleared at the unlock below */
    skip_orphan(s);
    uint64_t head = atomic_load(&r->head);
    while (atomic_load(&r->tail) - head < sizeof *hdr) /* an idle worker waits here */
        ring_wait_data(r, head + sizeof *hdr - 1);
    ring_copy_out(s->task_data, TASK_RING_CAP, head, (char *)hdr, sizeof *hdr); /* 1: peek */
    int kind = (int)hdr->kind;
    if (kind == POOL_WIRE_FIRST) {
        pool_slot_claim(me, hdr);                                         /* 2: claim */
        atomic_store(&r->msg_end, head + sizeof *hdr + hdr->total);
        pool_grow_or_exit(buf, cap, hdr->total);
        ring_read(r, s->task_data, TASK_RING_CAP, NULL, sizeof *hdr);     /* 3: take */
        ring_read(r, s->task_data, TASK_RING_CAP, *buf, hdr->total);
    } else if (kind == POOL_WIRE_EXIT) {
        ring_read(r, s->task_data, TASK_RING_CAP, NULL, sizeof *hdr);
    } else {
        _exit(POOL_EXIT_BAD_MESSAGE); /* the parent wrote it: a broken invariant */
    }
    atomic_store(&me->lock_at, 0.0);
    pthread_mutex_unlock(&s->head->lock);
    return kind;
}

static int shm_wk_send(pool_transport *t, int slot, int fd, const char *data, size_t len)
{
    struct shm_transport *s = SH(t);
    struct ring *r = &s->res[slot];
    char *ring = s->res_data + (size_t)slot * RESULT_RING_CAP;
    uint64_t tail = atomic_load(&r->tail);
    size_t off = 0;
    while (off < len) {
        size_t room = RESULT_RING_CAP - (size_t)(tail - atomic_load(&r->head));
        if (room == 0) {
            ring_wait_space(r, RESULT_RING_CAP, tail, 1);
            continue;
        }
        size_t k = len - off < room ? len - off : room;
        ring_copy_in(ring, RESULT_RING_CAP, tail, data + off, k);
        tail += k;
        off += k;
        atomic_store(&r->tail, tail);
        /* The doorbell: only if the result handler sleeps. Each worker rings
         * its own pipe and none clears the flag (the result handler does, as
         * it wakes): a worker stopped between seeing the flag and ringing
         * must not keep the others' results waiting. */
        if (atomic_load(&s->head->parent_sleeps) && pool_write_all(fd, "r", 1) != 0)
            return -1;
    }
    return 0;
}

static struct pool_slot_shm *shm_slot(pool_transport *t, int slot)
{
    return &SH(t)->slots[slot];
}

const pool_transport_ops pool_transport_shm_ops = {
    .name = "shm",
    .create = shm_create,
    .in_forkserver = shm_in_forkserver,
    .in_parent = shm_in_parent,
    .destroy = shm_destroy,
    .tx_send = shm_tx_send,
    .tx_wake = shm_tx_wake,
    .rx_attach = shm_rx_attach,
    .rx_detach = shm_rx_detach,
    .rx_wait = shm_rx_wait,
    .rx_read = shm_rx_read,
    .wk_take = shm_wk_take,
    .wk_send = shm_wk_send,
    .slot = shm_slot,
};
