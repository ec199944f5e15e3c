/*
 * pool_transport_socket.c: the socket transport (pool_transport.h): one
 * SOCK_SEQPACKET queue that every worker reads, one pipe per worker for its
 * results. It was the engine's only medium before the seam.
 *
 * The queue keeps message boundaries, so a worker always reads whole
 * fragments; a message longer than POOL_FRAG_MAX is sent as one FIRST
 * fragment and CONT fragments, which a worker reads while holding the queue
 * lock (a robust, process-shared mutex in a shared page of this transport),
 * so no other worker can take a piece of it. Taking is the three steps of
 * rule 2: holding the lock, PEEK at the next header, CLAIM it in the slot
 * record, then TAKE its fragments. A worker that dies mid-read leaves orphan
 * CONT fragments, which the next reader skips. An idle worker waits for a
 * message inside the lock (the peek blocks): the others wait for the lock.
 *
 * The task side never blocks the pool: tx_send without wait uses
 * MSG_DONTWAIT; with wait it polls the queue for room and a wake-up pipe
 * (tx_wake) for a stop. The result side is the worker's pipe itself: the
 * result handler polls every pipe with the descriptors it is given, and a
 * pipe's EOF is its worker's death.
 */
#include "pool_internal.h"
#include "pool_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

struct sock_transport {
    pool_transport base;
    int nworkers;
    struct pool_slot_shm *slots;
    pthread_mutex_t *lock;  /* the queue lock, alone in a shared page */
    int queue_fd;           /* the parent's end (sends) */
    int worker_fd;          /* the workers' end (reads) */
    int wake[2];            /* tx_wake -> a tx_send waiting for room */
    int *fd;                /* per slot: the worker's result pipe, -1 when none */
};

#define ST(t) ((struct sock_transport *)(void *)(t))

static pool_transport *sock_create(int nworkers, struct pool_slot_shm *slots)
{
    struct sock_transport *s = calloc(1, sizeof *s);
    int qv[2] = {-1, -1};
    if (s == NULL || (s->fd = malloc((size_t)nworkers * sizeof *s->fd)) == NULL)
        goto fail;
    s->base.ops = &pool_transport_socket_ops;
    s->nworkers = nworkers;
    s->slots = slots;
    s->wake[0] = s->wake[1] = -1;
    for (int i = 0; i < nworkers; i++)
        s->fd[i] = -1;
    s->lock = mmap(NULL, sizeof *s->lock, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (s->lock == MAP_FAILED) {
        s->lock = NULL;
        goto fail;
    }
    pool_shared_mutex_init(s->lock);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, qv) != 0 ||
        pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0)
        goto fail;
    s->queue_fd = qv[0];
    s->worker_fd = qv[1];
    return &s->base;
fail:
    pool_seterr(POOL_ESYS, "pool_create: socket transport: %s", strerror(errno));
    if (qv[0] >= 0) {
        close(qv[0]);
        close(qv[1]);
        qv[0] = -1;
    }
    if (s) {
        s->queue_fd = s->worker_fd = -1;
        pool_transport_socket_ops.destroy(&s->base);
    }
    return NULL;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void sock_in_forkserver(pool_transport *t)
{
    close_fd(&ST(t)->queue_fd);
    close_fd(&ST(t)->wake[0]);
    close_fd(&ST(t)->wake[1]);
}

static void sock_in_parent(pool_transport *t)
{
    close_fd(&ST(t)->worker_fd); /* only the fork server and its workers read */
}

static void sock_destroy(pool_transport *t)
{
    struct sock_transport *s = ST(t);
    close_fd(&s->queue_fd);
    close_fd(&s->worker_fd);
    close_fd(&s->wake[0]);
    close_fd(&s->wake[1]);
    if (s->fd)
        for (int i = 0; i < s->nworkers; i++)
            close_fd(&s->fd[i]);
    free(s->fd);
    if (s->lock) {
        pthread_mutex_destroy(s->lock);
        munmap(s->lock, sizeof *s->lock);
    }
    free(s);
}

/* ---- the task side ---------------------------------------------------------- */

/* One fragment (header + body) without waiting: 1 sent, 0 no room, -1 gone. */
static int frag_send(struct sock_transport *s, const struct pool_wire_hdr *hdr,
                     const char *body, size_t len)
{
    struct iovec iov[2] = {{(void *)hdr, sizeof *hdr}, {(void *)body, len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    for (;;) {
        if (sendmsg(s->queue_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
            return 1;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN ? 0 : -1;
    }
}

static int sock_tx_send(pool_transport *t, const struct pool_wire_hdr *h, const char *body,
                        size_t len, bool wait)
{
    struct sock_transport *s = ST(t);
    if (!wait)
        return len <= POOL_FRAG_MAX ? frag_send(s, h, body, len) : 0;
    struct pool_wire_hdr hdr = *h;
    size_t off = 0;
    do {
        size_t n = len - off < POOL_FRAG_MAX ? len - off : POOL_FRAG_MAX;
        int rc;
        while ((rc = frag_send(s, &hdr, body + off, n)) == 0) {
            struct pollfd pf[2] = {{.fd = s->queue_fd, .events = POLLOUT},
                                   {.fd = s->wake[0], .events = POLLIN}};
            poll(pf, 2, -1); /* ends: room, or tx_wake */
            if (pf[1].revents)
                return 0;
        }
        if (rc < 0)
            return -1;
        off += n;
        hdr.kind = POOL_WIRE_CONT;
    } while (off < len);
    return 1;
}

static void sock_tx_wake(pool_transport *t)
{
    if (write(ST(t)->wake[1], "x", 1) < 0) {
        /* full: a wake-up is pending anyway */
    }
}

/* ---- the result side ---------------------------------------------------------- */

static void sock_rx_attach(pool_transport *t, int slot, int fd)
{
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    ST(t)->fd[slot] = fd;
}

static void sock_rx_detach(pool_transport *t, int slot)
{
    close_fd(&ST(t)->fd[slot]);
}

static int sock_rx_wait(pool_transport *t, struct pollfd *extra, int nextra, int timeout_ms,
                        bool *ready)
{
    struct sock_transport *s = ST(t);
    return pool_transport_poll(s->fd, s->nworkers, extra, nextra, timeout_ms, ready);
}

static long sock_rx_read(pool_transport *t, int slot, char *buf, size_t cap)
{
    int fd = ST(t)->fd[slot];
    if (fd < 0)
        return -1;
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n > 0)
            return (long)n;
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 && errno == EAGAIN ? 0 : -1;
    }
}

/* ---- the worker side ------------------------------------------------------------ */

/* Reads the fragments of the message whose header was peeked into *buf
 * (grown as needed). Caller holds the queue lock. */
static void read_body(struct sock_transport *s, const struct pool_wire_hdr *hdr, char *frag,
                      size_t fraglen, char **buf, size_t *cap)
{
    pool_grow_or_exit(buf, cap, hdr->total);
    size_t got = 0;
    bool first = true;
    while (first || got < hdr->total) {
        ssize_t n = recv(s->worker_fd, frag, fraglen, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < (ssize_t)sizeof *hdr)
            _exit(POOL_EXIT_QUEUE_CUT);
        size_t body = (size_t)n - sizeof *hdr;
        if (got + body > hdr->total)
            _exit(POOL_EXIT_QUEUE_OVERRUN);
        memcpy(*buf + got, frag + sizeof *hdr, body);
        got += body;
        first = false;
    }
}

/* Step 1, under the lock: the next FIRST or EXIT header (EXIT taken), or 0
 * when the queue is closed; orphan CONT fragments are skipped. */
static int peek_next(struct sock_transport *s, struct pool_wire_hdr *hdr, char *frag, size_t fl)
{
    for (;;) {
        ssize_t n = recv(s->worker_fd, hdr, sizeof *hdr, MSG_PEEK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        if (hdr->kind == POOL_WIRE_FIRST)
            return POOL_WIRE_FIRST;
        recv(s->worker_fd, frag, fl, 0); /* take it */
        if (hdr->kind == POOL_WIRE_EXIT)
            return POOL_WIRE_EXIT;
        /* A CONT fragment here is an orphan of a worker that died mid-read. */
    }
}

static int sock_wk_take(pool_transport *t, int slot, struct pool_wire_hdr *hdr, char **buf,
                        size_t *cap)
{
    struct sock_transport *s = ST(t);
    struct pool_slot_shm *me = &s->slots[slot];
    static char frag[sizeof(struct pool_wire_hdr) + POOL_FRAG_MAX];
    pool_shared_mutex_lock_or_exit(s->lock);
    atomic_store(&me->lock_at, pool_now()); /* cleared at the unlock below */
    int kind = peek_next(s, hdr, frag, sizeof frag);
    if (kind == POOL_WIRE_FIRST) {
        pool_slot_claim(me, hdr);                          /* step 2 */
        read_body(s, hdr, frag, sizeof frag, buf, cap);    /* step 3 */
    }
    atomic_store(&me->lock_at, 0.0);
    pthread_mutex_unlock(s->lock);
    return kind;
}

static int sock_wk_send(pool_transport *t, int slot, int fd, const char *data, size_t len)
{
    (void)t;
    (void)slot;
    return pool_write_all(fd, data, len);
}

static struct pool_slot_shm *sock_slot(pool_transport *t, int slot)
{
    return &ST(t)->slots[slot];
}

const pool_transport_ops pool_transport_socket_ops = {
    .name = "socket",
    .create = sock_create,
    .in_forkserver = sock_in_forkserver,
    .in_parent = sock_in_parent,
    .destroy = sock_destroy,
    .tx_send = sock_tx_send,
    .tx_wake = sock_tx_wake,
    .rx_attach = sock_rx_attach,
    .rx_detach = sock_rx_detach,
    .rx_wait = sock_rx_wait,
    .rx_read = sock_rx_read,
    .wk_take = sock_wk_take,
    .wk_send = sock_wk_send,
    .slot = sock_slot,
};
