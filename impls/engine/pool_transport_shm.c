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
 * flag and wakes it. Every futex wait has a timeout and re-checks. (On the
 * task ring consumer_sleeps is the lock holder's, waiting for the rest of a
 * message; idle workers wait elsewhere, below.)
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
 * Likewise a caller waiting for one result (sync apply's get) looks for
 * SPIN_S before it sleeps on the result (wait_spin_s, pool_result.c).
 *
 * An idle worker waits for a message OUTSIDE the lock, and takes the lock
 * only once a header is there (then looks again under it: another worker
 * may have taken it). Before, it waited holding the lock and the other idle
 * workers queued on the mutex: on two cores every unlock woke one of them,
 * which only went to sleep again on the ring (half the time of a trivial
 * task was that scheduling). Now: one idle worker at a time looks for up to
 * SPIN_S, yielding its core (the spinner, with a beat); the others sleep on
 * idle_seq, counted in idle_sleep. The producer wakes ONE sleeper per
 * message, and none while the spinner's beat is fresh (LOOK_FRESH_S); a
 * taker that leaves another message behind with no one looking passes a
 * wake-up on. So a message that comes while
 * a worker looks costs no system call on either side, and one that comes
 * to sleeping workers wakes one of them, not all. A worker stopped or
 * killed while it waits holds nothing: the others go on (a woken worker
 * stopped before it takes delays that message one wait slice at most), and
 * the parent takes back a dead one's count and its spinner place
 * (rx_detach, by its slot's flag). While another worker holds the lock,
 * a taker tries again, yielding, for up to SPIN_S before it sleeps on the
 * mutex: a holder is done in microseconds.
 *
 * Taking a message keeps rule 2 (claim before take) at any instruction:
 * holding the lock, a worker peeks at the header at head, claims it in its
 * slot record, stores msg_end (where the message ends), then consumes
 * header and body, advancing head as it copies (a message larger than the
 * ring streams through it). A worker killed before msg_end left the message
 * whole (another runs it; the job ignores the second result); one killed
 * after left head < msg_end: the next holder (told EOWNERDEAD, or not: it
 * always checks) skips to msg_end. The lock is held only while a message is
 * there to take (or streams in), so only a worker stopped mid-take stalls
 * the others, until the time limit kills it, as with the socket.
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
#define EXTRA_POLL_S 0.001          /* while results keep coming, how often the result
                                       handler still looks at its other descriptors */
#define LINGER_S 50e-6              /* the result handler's look before it sleeps, while
                                       a worker holds a chunk (its result is owed) */
#define SPIN_S 20e-6                /* an idle worker's look before it sleeps */
#define LOOK_FRESH_S 1e-3           /* a looker whose beat is this recent still counts:
                                       it yields, and on a busy core its turn may take
                                       that long (a stopped one stops counting then) */

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
    char pad2[60];
    /* Idle workers, waiting OUTSIDE the lock for a message to be published. */
    _Atomic uint32_t idle_seq;         /* futex word: a message was published */
    _Atomic uint32_t idle_sleep;       /* how many sleep on it (never fewer: struct shm_taker) */
    _Atomic uint32_t spinner;          /* slot + 1 of the one looking without sleeping, 0 */
    _Atomic double spin_beat;          /* when one of them last looked */
};

/* Per worker slot, in the segment: whether its worker is counted in
 * idle_sleep, so that the parent can take back the count of a worker that
 * died asleep (rx_detach). One line each: written only by its worker. */
struct shm_taker {
    _Atomic uint32_t asleep;
    char pad[60];
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
    struct shm_taker *takers;          /* nworkers */
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

static void futex_wake(_Atomic uint32_t *w, int n)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, n, NULL, NULL, 0);
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
        futex_wake(&r->data_seq, INT_MAX);
}

/* Consumer: frees bytes up to head, waking a sleeping producer. */
static void ring_free(struct ring *r, uint64_t head)
{
    atomic_store(&r->head, head);
    atomic_fetch_add(&r->space_seq, 1);
    if (atomic_load(&r->producer_sleeps))
        futex_wake(&r->space_seq, INT_MAX);
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

/* ---- the idle takers' wait (outside the lock) ----------------------------------- */

/* Whether a whole header may be waiting past head. Read without the lock: a
 * hint that says whether to take the lock, re-checked under it (another
 * worker may take the message first; the bytes may be the rest of a message
 * another holds, or an orphan). */
static bool header_ready(const struct ring *r)
{
    return atomic_load(&r->tail) - atomic_load(&r->head) >= sizeof(struct pool_wire_hdr);
}

/* After a message (or a part of one) is published on the task ring: wakes
 * ONE idle taker if any sleeps. One, not all: the others would only find it
 * gone. Each message gets its own wake-up, and a taker that leaves another
 * message behind passes a wake-up on (shm_wk_take), so that a woken taker
 * that is stopped or killed before it takes delays a message one slice at
 * most. */
static void wake_idle(struct shm_transport *s)
{
    struct shm_head *h = s->head;
    atomic_fetch_add(&h->idle_seq, 1);
    if (atomic_load(&h->idle_sleep) == 0)
        return;
    if (atomic_load(&h->spinner) != 0 && pool_now() - atomic_load(&h->spin_beat) < LOOK_FRESH_S)
        return; /* a worker looking now sees it */
    futex_wake(&h->idle_seq, 1);
}

/* An idle worker looks for a message a little while (SPIN_S) before it
 * sleeps, yielding its core each time (a runnable thread, the producer
 * perhaps, runs meanwhile): the next message, if it comes that soon, costs
 * no wake-up, and the producer makes no system call for it (wake_idle
 * skips while someone looks and its beat is fresh). ONE worker looks at a
 * time (`spinner`, its slot + 1; the others sleep at once): one suffices
 * to catch the next message, and six yielding on two cores would take the
 * cores from the producer and the result handler. A looker stopped or
 * killed stops beating, so the producer wakes a sleeper again once its beat
 * is LOOK_FRESH_S old (a message it skipped waits for a sleeper's slice at
 * most); the parent frees a dead looker's place (rx_detach). */
static bool spin_for_message(struct shm_transport *s, int slot)
{
    struct shm_head *h = s->head;
    uint32_t none = 0, me = (uint32_t)slot + 1;
    if (!atomic_compare_exchange_strong(&h->spinner, &none, me))
        return false;
    double now = pool_now(), until = now + SPIN_S;
    bool ready;
    do {
        atomic_store(&h->spin_beat, now);
        sched_yield();
        ready = header_ready(s->task);
    } while (!ready && (now = pool_now()) < until);
    atomic_compare_exchange_strong(&h->spinner, &me, 0);
    return ready;
}

/* The producer's publish on the task ring: a mid-message holder and an idle
 * taker are woken. */
static void task_publish(struct shm_transport *s, uint64_t tail)
{
    ring_publish(s->task, tail);
    wake_idle(s);
}

/* An idle worker: returns once a header may be there, sleeping in slices on
 * idle_seq meanwhile. It holds no lock, so a worker SIGKILLed or SIGSTOPped
 * here holds up no other: it is counted in idle_sleep (FIRST, then its flag
 * set; the flag cleared, THEN the count, so that a death in between leaves
 * the count too high, which costs a wasted wake-up, never too low, which
 * would cost a lost one), and the parent takes a dead worker's count back by
 * its flag (rx_detach). The same order as ring_wait_data against the
 * producer's publish (count, then last check; publish, then read the
 * count) makes a lost wake-up impossible. */
static void await_message(struct shm_transport *s, int slot)
{
    struct ring *r = s->task;
    struct shm_taker *me = &s->takers[slot];
    if (header_ready(r) || spin_for_message(s, slot))
        return;
    while (!header_ready(r)) {
        atomic_fetch_add(&s->head->idle_sleep, 1);
        atomic_store(&me->asleep, 1);
        uint32_t seq = atomic_load(&s->head->idle_seq);
        if (!header_ready(r))
            futex_wait(&s->head->idle_seq, seq, WAIT_SLICE_S);
        atomic_store(&me->asleep, 0);
        atomic_fetch_sub(&s->head->idle_sleep, 1);
    }
}

/* Producer: appends n bytes to the task ring, waiting for room; tx_wake
 * (`stop`) ends the wait early (false). `min_first`: the first piece is at
 * least this long (a task header is never published in halves). */
static bool task_write(struct shm_transport *s, const char *src, size_t n, size_t min_first)
{
    struct ring *r = s->task;
    uint64_t tail = atomic_load(&r->tail);
    size_t off = 0;
    while (off < n) {
        size_t room = TASK_RING_CAP - (size_t)(tail - atomic_load(&r->head));
        size_t want = off == 0 && min_first > 1 ? min_first : 1;
        if (room < want) {
            if (atomic_load(&s->stop))
                return false;
            ring_wait_space(r, TASK_RING_CAP, tail, want);
            continue;
        }
        size_t k = n - off < room ? n - off : room;
        ring_copy_in(s->task_data, TASK_RING_CAP, tail, src + off, k);
        tail += k;
        off += k;
        task_publish(s, tail);
    }
    return true;
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
    size_t rings = sizeof(struct shm_head) + (size_t)(nworkers + 1) * sizeof(struct ring) +
                   (size_t)nworkers * sizeof(struct shm_taker);
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
    s->takers = (struct shm_taker *)(void *)(s->res + nworkers);
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
    uint64_t tail = atomic_load(&r->tail);
    if (TASK_RING_CAP - (tail - atomic_load(&r->head)) >= sizeof *hdr + len) {
        /* It fits: published whole, once (one wake-up at most), waiting or not. */
        ring_copy_in(s->task_data, TASK_RING_CAP, tail, (const char *)hdr, sizeof *hdr);
        ring_copy_in(s->task_data, TASK_RING_CAP, tail + sizeof *hdr, body, len);
        task_publish(s, tail + sizeof *hdr + len);
        return 1;
    }
    if (!wait)
        return 0;
    if (!task_write(s, (const char *)hdr, sizeof *hdr, sizeof *hdr))
        return 0;
    return task_write(s, body, len, 0) ? 1 : 0;
}

static void shm_tx_wake(pool_transport *t)
{
    struct shm_transport *s = SH(t);
    atomic_store(&s->stop, true);
    atomic_fetch_add(&s->task->space_seq, 1);
    futex_wake(&s->task->space_seq, INT_MAX);
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
    /* It died asleep outside the lock: its count goes (await_message). */
    if (atomic_exchange(&s->takers[slot].asleep, 0))
        atomic_fetch_sub(&s->head->idle_sleep, 1);
    uint32_t me = (uint32_t)slot + 1; /* it died looking (spin_for_message) */
    atomic_compare_exchange_strong(&s->head->spinner, &me, 0);
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

/* Under the lock, a header at head: peek, claim, take (rule 2). */
static int take_message(struct shm_transport *s, struct pool_slot_shm *me,
                        struct pool_wire_hdr *hdr, char **buf, size_t *cap)
{
    struct ring *r = s->task;
    uint64_t head = atomic_load(&r->head);
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
    return kind;
}

/* With a message there, takes the lock. While another holds it, tries again,
 * yielding, as long as a message is there and for SPIN_S at most: the
 * holder takes a message in a few microseconds, and a taker that waited on
 * the mutex would cost a wake-up at every unlock. false: the message went
 * to the holder (back to await_message). After SPIN_S it waits on the
 * mutex (a stopped holder: the time limit kills it; a dead one: the mutex
 * is robust). */
static bool lock_for_take(struct shm_transport *s)
{
    pthread_mutex_t *m = &s->head->lock;
    double until = 0;
    while (!pool_shared_mutex_trylock_or_exit(m)) {
        if (!header_ready(s->task))
            return false;
        double now = pool_now();
        if (until == 0)
            until = now + SPIN_S;
        else if (now >= until) {
            pool_shared_mutex_lock_or_exit(m);
            break;
        }
        sched_yield();
    }
    return true;
}

/* Waits outside the lock (await_message), then takes the lock and looks
 * again: the message may have gone to another worker meanwhile, and then
 * this one waits again. */
static int shm_wk_take(pool_transport *t, int slot, struct pool_wire_hdr *hdr, char **buf,
                       size_t *cap)
{
    struct shm_transport *s = SH(t);
    struct pool_slot_shm *me = &s->slots[slot];
    for (int kind = 0;;) {
        await_message(s, slot);
        if (!lock_for_take(s))
            continue;
        atomic_store(&me->lock_at, pool_now()); /* cleared at the unlock below */
        skip_orphan(s);
        if (header_ready(s->task))
            kind = take_message(s, me, hdr, buf, cap);
        atomic_store(&me->lock_at, 0.0);
        pthread_mutex_unlock(&s->head->lock);
        /* Another message waits, a taker sleeps and none looks: a wake-up
         * is passed on (wake_idle), after the unlock so that the lock is
         * not held over the system call. With a looker, the looker takes
         * the next message: waking a sleeper as well cost a futex call per
         * message or nearly in a flood of trivial tasks. */
        if (header_ready(s->task) && atomic_load(&s->head->idle_sleep) > 0 &&
            atomic_load(&s->head->spinner) == 0)
            futex_wake(&s->head->idle_seq, 1);
        if (kind != 0)
            return kind;
    }
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
    .wait_spin_s = SPIN_S,
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
