/*
 * pool_taskq.c: the task queue in the parent's memory, and the task-handler
 * thread that drains it onto the shared queue.
 *
 * The shared queue is a socket, and a socket's buffer is bounded: when it is
 * full, sending blocks. apply_async must return at once even when 10 000
 * tasks are waiting, so, as in CPython, submitting appends to an unbounded
 * list in memory and a thread of its own moves the messages onto the socket
 * as the workers make room.
 *
 * When nothing is queued and nothing is being sent, the submitting thread
 * sends a one-fragment message itself (the direct path): one thread hand-off
 * fewer, which apply pays on every task. Both paths decide under the pool
 * lock, and the task handler only sends what it popped under that lock
 * (task_busy covers the send), so messages keep their order.
 */
#include "pool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* Appends a list to the queue and wakes the handler (caller holds the lock). */
static void append(pool *p, pool_taskmsg *first, pool_taskmsg *last)
{
    if (p->q_tail)
        p->q_tail->next = first;
    else
        p->q_head = first;
    p->q_tail = last;
    pthread_cond_signal(&p->task_cond);
}

/* ---- the submitting side ------------------------------------------------- */

void pool_taskq_push(pool *p, pool_taskmsg *first, pool_taskmsg *last, size_t n)
{
    pthread_mutex_lock(&p->lock);
    if (p->state == POOL_TERMINATE || p->task_stop || p->broken) {
        /* Terminated, interrupted or broken between register and here: the
         * job is already failed. */
        pthread_mutex_unlock(&p->lock);
        pool_taskmsg_free_list(first);
        return;
    }
    p->stats.messages_sent += n;
    pool_trace_sent(p, first); /* bytes sent; the trace remembers the chunks */
    /* The direct path: nothing queued and nothing being sent. */
    while (first && p->q_head == NULL && !p->task_busy && first->len <= POOL_FRAG_MAX &&
           frag_send(p, &first->hdr, first->data, first->len) == 1) {
        pool_taskmsg *m = first;
        first = m->next;
        free(m);
    }
    if (first)
        append(p, first, last);
    pthread_mutex_unlock(&p->lock);
}

/* One EXIT per worker slot: each live worker takes one and ends (a worker
 * that ends on its own leaves one unread, which is harmless). */
void pool_taskq_push_exits(pool *p)
{
    pool_taskmsg *first = NULL, *last = NULL;
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
    if (first)
        append(p, first, last);
}

void pool_taskq_clear(pool *p)
{
    pool_taskmsg_free_list(p->q_head);
    p->q_head = p->q_tail = NULL;
}

/* ---- the task handler thread --------------------------------------------- */

/* Sends a whole message, fragment by fragment, waiting for room; false if
 * told to stop meanwhile (terminate, join) or the queue is gone. */
static bool send_message(pool *p, const pool_taskmsg *m)
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
        p->task_busy = true; /* until sent: the direct path must not overtake it */
        pthread_mutex_unlock(&p->lock);

        bool ok = send_message(p, m);
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

int pool_taskq_start(pool *p)
{
    if (pipe2(p->wake_task, O_CLOEXEC | O_NONBLOCK) != 0)
        return pool_seterr(POOL_ESYS, "pool_create: pipe: %s", strerror(errno));
    if (pthread_create(&p->task_thread, NULL, task_handler, p) != 0)
        return pool_seterr(POOL_ESYS, "pool_create: cannot start the task handler");
    return POOL_OK;
}

void pool_taskq_stop(pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->task_stop = true;
    pthread_cond_signal(&p->task_cond);
    pthread_mutex_unlock(&p->lock);
    /* A send waiting for room polls the wake pipe, not the condition. */
    if (write(p->wake_task[1], "x", 1) < 0) {
        /* the pipe is full: the task handler is being woken anyway */
    }
    pthread_join(p->task_thread, NULL);
}
