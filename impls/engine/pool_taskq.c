/*
 * pool_taskq.c: the task queue in the parent's memory, and the task-handler
 * thread that drains it onto the transport's shared queue (pool_transport.h).
 *
 * The shared queue (a socket, or a ring in shared memory) is bounded: when
 * it is full, sending waits. apply_async must return at once even when 10 000
 * tasks are waiting, so, as in CPython, submitting appends to an unbounded
 * list in memory and a thread of its own moves the messages onto the socket
 * as the workers make room.
 *
 * When nothing is queued and nothing is being sent, the submitting thread
 * sends a message itself if it fits at once (the direct path): one thread hand-off
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

bool pool_taskq_push_locked(pool *p, pool_taskmsg *first, pool_taskmsg *last, size_t n)
{
    if (p->state == POOL_TERMINATE || p->task_stop || p->broken)
        return false; /* terminated, interrupted or broken since register: the job failed */
    p->stats.messages_sent += n;
    pool_trace_sent(p, first); /* bytes sent; the trace remembers the chunks */
    /* The direct path: nothing queued and nothing being sent. */
    while (first && p->q_head == NULL && !p->task_busy &&
           p->tx->ops->tx_send(p->tx, &first->hdr, first->data, first->len, false) == 1) {
        pool_taskmsg *m = first;
        first = m->next;
        free(m);
    }
    if (first)
        append(p, first, last);
    return true;
}

void pool_taskq_push(pool *p, pool_taskmsg *first, pool_taskmsg *last, size_t n)
{
    pthread_mutex_lock(&p->lock);
    bool taken = pool_taskq_push_locked(p, first, last, n);
    pthread_mutex_unlock(&p->lock);
    if (!taken)
        pool_taskmsg_free_list(first);
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

        /* Waits for room; tx_wake (pool_taskq_stop) ends the wait. */
        int rc = p->tx->ops->tx_send(p->tx, &m->hdr, m->data, m->len, true);
        free(m);
        if (rc != 1) {
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
    /* A send waiting for room waits on the transport, not the condition. */
    p->tx->ops->tx_wake(p->tx);
    pthread_join(p->task_thread, NULL);
}
