/*
 * pool_transport.h: the seam through which task chunks and their results
 * travel between the parent and the workers. One module per medium behind
 * one small table of operations (pool_transport_ops), chosen per pool
 * (pool_options.transport):
 *
 *   pool_transport_socket.c  today's medium: one SOCK_SEQPACKET queue that
 *                            every worker reads (the shared queue), one
 *                            pipe per worker for its results.
 *   pool_transport_shm.c     rings in a MAP_SHARED|MAP_ANONYMOUS segment made
 *                            before the fork server forks: one task ring
 *                            that every worker takes from under a robust
 *                            process-shared lock, one single-producer result
 *                            ring per worker; a side is woken (futex, or the
 *                            worker's pipe for the result handler) only when
 *                            it said it sleeps, so one wake-up carries every
 *                            result written meanwhile.
 *   (an MPI transport)       rank 0 the parent, ranks 1..N the workers.
 *
 * What the seam moves, and what it does not. The engine above it keeps every
 * semantic whatever the medium: jobs, chunks, callbacks on the one result
 * handler thread, the trace, time limits, dead-worker accounting. The seam
 * moves only bytes with a fixed meaning:
 *
 *   a TASK MESSAGE   struct pool_wire_hdr + payload (pool_msg.c builds it);
 *                    kind FIRST carries a chunk, EXIT tells one worker to end.
 *                    The parent hands whole messages to tx_send; fragments
 *                    (POOL_FRAG_MAX) are the medium's business.
 *   a RESULT STREAM  per worker slot, a byte stream of frames (uint32 length
 *                    + msgpack payload, pool_internal.h) that the worker
 *                    appends with wk_send and the parent reads with rx_read,
 *                    exactly as it read a pipe: bytes written before a
 *                    worker dies are still readable after, a partial frame
 *                    is dropped by the parent (rx_detach).
 *
 * The rules every transport keeps (the tests run on each):
 *
 *   1. ONE SHARED QUEUE, ONE CHUNK PER TAKE. Every worker takes from the same
 *      queue, whoever asks first (P8's race must still happen); a take
 *      returns one whole message.
 *   2. CLAIM BEFORE TAKE. Before a message leaves the queue, the worker's
 *      slot record (struct pool_slot_shm: job, chunk, first, item, pid,
 *      t_start, lock_at) names it, so that after any death the parent knows
 *      exactly which chunk the worker held: dead before the claim, the
 *      message is still queued; dead after the take, the slot names it; dead
 *      in between, the chunk is failed AND run by another worker, and the job
 *      ignores the second result. A SIGKILL or SIGSTOP at any instruction of
 *      a take must leave the queue usable by the others (a robust lock, or a
 *      lock-free claim), and a stopped taker may stall them at most until the
 *      time limit kills it (lock_at says it held the queue).
 *   3. NOTHING WAITS FOREVER. Every wait of an operation is bounded or has a
 *      wake path: tx_wake ends a tx_send waiting for room (terminate, join);
 *      rx_wait returns on the extra descriptors it is given (the fork
 *      server's socket, the interrupt pipe) and at its timeout; a worker's
 *      waits end when the pool's process dies (PR_SET_PDEATHSIG) and are
 *      re-checked periodically.
 *   4. NOTHING LEFT BEHIND. destroy releases every descriptor and mapping; no
 *      named object (no /dev/shm file) outlives the pool's process.
 *
 * Where the memory is. The interface itself assumes no shared memory: the
 * worker's slot record is reached only through the transport (wk_slot in a
 * worker, slot in the parent). The socket and shm transports return the one
 * record in the segment both sides map; an MPI transport would keep the
 * parent's copy itself (it knows which rank it sent which chunk, so it can
 * claim on the worker's behalf, and a worker's item starts arrive as small
 * messages) and give the worker a local record. Likewise rx_attach receives
 * the worker's pipe from the fork server (a death signal: its EOF) but an
 * implementation may ignore it (-1 for a remote rank).
 *
 * Threads and processes. tx_* run in the parent, one caller at a time (the
 * task handler or a submitter on the direct path, both under the pool lock,
 * except tx_wake which any thread may call). rx_* run on the result handler
 * thread only. wk_* run in a worker process. The transport object is made by
 * create in the parent BEFORE the fork server forks, so the fork server and
 * every worker inherit it (its descriptors and its shared mappings);
 * in_forkserver and in_parent then drop each side's unneeded ends.
 */
#ifndef POOL_TRANSPORT_H
#define POOL_TRANSPORT_H

#include "pool.h"

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pool_wire_hdr;  /* pool_internal.h */
struct pool_slot_shm;  /* pool_internal.h */
struct pool_worker_cfg; /* pool_internal.h */

typedef struct pool_transport pool_transport;

#define POOL_SPAWN_FDS 2 /* spawn_fds: descriptors a spawned worker inherits */

typedef struct pool_transport_ops {
    const char *name; /* "socket", "shm": what reports print */
    /* How long a thread waiting for one result (get, wait) looks for it,
     * yielding its core, before it sleeps: > 0 only where a result comes
     * back without a system call on the worker's side (shm), so that sync
     * apply's caller is not woken once per task. 0 (unset): it sleeps at once. */
    double wait_spin_s;

    /* ---- lifecycle (parent) ---- */
    /* Makes the transport for `nworkers` slots whose records live in
     * `slots` (an array in shared memory the caller made, or NULL for a
     * transport that keeps its own). NULL with pool_last_error set. */
    pool_transport *(*create)(int nworkers, struct pool_slot_shm *slots);
    /* In the fork server, once after it forked: closes the parent's ends. */
    void (*in_forkserver)(pool_transport *t);
    /* In the parent, once the fork server is forked: closes the workers' ends. */
    void (*in_parent)(pool_transport *t);
    /* Frees everything (no thread uses the transport any more). */
    void (*destroy)(pool_transport *t);

    /* ---- the task side (parent) ---- */
    /* Sends one whole task message: header (its `total` = len for FIRST) and
     * body. With wait false: all of it at once or nothing (1 sent, 0 no room
     * now). With wait true: waits for room, fragment by fragment; returns 1
     * when all is sent, 0 when tx_wake interrupted the wait (the message may
     * be partly sent: a later reader skips its orphan fragments). -1: the
     * workers' side is gone. */
    int (*tx_send)(pool_transport *t, const struct pool_wire_hdr *hdr, const char *body,
                   size_t len, bool wait);
    /* Makes a tx_send waiting for room return 0 now (any thread; the caller
     * has set the flag that says why: the task handler's task_stop). */
    void (*tx_wake)(pool_transport *t);

    /* ---- the result side (parent, result handler thread) ---- */
    /* A worker started in `slot`; fd is its pipe's read end from the fork
     * server (the transport owns it from here; -1 if none). */
    void (*rx_attach)(pool_transport *t, int slot, int fd);
    /* The worker in `slot` is gone and its stream drained: closes what
     * rx_attach took and empties the stream for the next worker. */
    void (*rx_detach)(pool_transport *t, int slot);
    /* Waits until some attached stream may have bytes, one of `extra` is
     * ready (their revents are set, as poll), or timeout_ms passes (-1:
     * no timeout). Sets ready[slot] for the streams worth reading. Returns
     * > 0 when something is ready, 0 on timeout, -1 with errno (EINTR). */
    int (*rx_wait)(pool_transport *t, struct pollfd *extra, int nextra, int timeout_ms,
                   bool *ready);
    /* Reads up to `cap` bytes of slot's stream into buf, without waiting:
     * > 0 bytes read, 0 none now, -1 the stream ended (the worker is gone:
     * its EXITED is owed). */
    long (*rx_read)(pool_transport *t, int slot, char *buf, size_t cap);

    /* ---- the worker side (in a worker process) ---- */
    /* Takes one whole message for the worker in `slot`, claiming it in its
     * slot record first (rule 2). Grows *buf to the body. Returns the kind
     * (POOL_WIRE_FIRST with *hdr and the body in *buf, POOL_WIRE_EXIT), or 0
     * when the queue is closed. Exits the process with a pool_exit_status
     * when the queue is unusable. */
    int (*wk_take)(pool_transport *t, int slot, struct pool_wire_hdr *hdr, char **buf,
                   size_t *cap);
    /* Appends bytes to the slot's result stream (waits for room); fd is the
     * worker's pipe from the fork server. 0, or -1 when the parent is gone. */
    int (*wk_send)(pool_transport *t, int slot, int fd, const char *data, size_t len);

    /* ---- start method spawn (optional: NULL where a worker cannot be exec'd) ---- */
    /* The descriptors a spawned worker must inherit to take chunks (at most
     * POOL_SPAWN_FDS; -1: none), in the order wk_open takes them. The
     * launcher (pool_launcher.c) keeps them open across the exec. */
    void (*spawn_fds)(pool_transport *t, int fds[POOL_SPAWN_FDS]);
    /* In a spawned worker: its side rebuilt from those descriptors and the
     * slot records (which the caller mapped from the pool's memfd). NULL
     * when they are unusable. */
    pool_transport *(*wk_open)(const int fds[POOL_SPAWN_FDS], struct pool_slot_shm *slots,
                               int nworkers);

    /* ---- workers that are not forked (optional: NULL for socket and shm) ---- */
    /* A transport whose workers are not processes the fork server forks
     * (MPI: they are the job's ranks) starts them itself: the engine forks
     * no fork server and calls this instead, and the transport answers the
     * fork server's protocol (pool_fs_msg: SPAWN -> STARTED with no pipe,
     * KILLALL and QUIT -> EXITED, then the socket's end) on *ctl_fd, which
     * the engine owns and closes as it would the fork server's socket. The
     * pool then has no fork-server pid (0), and its process may have
     * threads; maxtasksperchild and task_timeout are refused (pool_create),
     * since such a worker is neither killed nor replaced. POOL_OK, or an
     * error status with pool_last_error set. */
    int (*start_workers)(pool_transport *t, const struct pool_worker_cfg *cfg, int *ctl_fd);

    /* ---- the worker's slot record ---- */
    /* The record the parent reads (job held, item, t_start, lock_at, pid) and
     * the worker writes (wk side: the same call in the worker process). */
    struct pool_slot_shm *(*slot)(pool_transport *t, int slot);
} pool_transport_ops;

/* Every transport begins with its ops, so the engine can call through any. */
struct pool_transport {
    const pool_transport_ops *ops;
};

extern const pool_transport_ops pool_transport_socket_ops;
extern const pool_transport_ops pool_transport_shm_ops;
/* The MPI transport (pool_transport_mpi.c) is linked only into binaries
 * built with MPI (the poolbench command): such a binary registers it before
 * its first pool, and POOL_TRANSPORT_MPI is refused, saying so, until then. */
extern const pool_transport_ops pool_transport_mpi_ops;
void pool_transport_register_mpi(const pool_transport_ops *ops);

/* The ops of a kind (POOL_TRANSPORT_DEFAULT resolved first: the environment
 * variable POOLBENCH_TRANSPORT, "socket" or "shm", else socket). NULL with
 * pool_last_error set (naming the valid ones) for an unknown kind or value. */
const pool_transport_ops *pool_transport_pick(enum pool_transport_kind kind);

/* ---- helpers the local transports share (pool_transport.c) ---- */

/* A process-shared, robust mutex in shared memory. */
void pool_shared_mutex_init(pthread_mutex_t *m);
/* Locks it in a worker; true when its last holder died holding it (the
 * caller then repairs what the lock guards); exits the worker with
 * POOL_EXIT_QUEUE_LOCK when the lock is unusable. */
bool pool_shared_mutex_lock_or_exit(pthread_mutex_t *m);
/* The same without waiting: 1 locked (its last holder may have died: the
 * caller repairs what the lock guards whatever it is told), 0 held by
 * another; exits as above when the lock is unusable. */
int pool_shared_mutex_trylock_or_exit(pthread_mutex_t *m);
/* Rule 2's step 2: the slot record names the chunk of `hdr` as held. */
void pool_slot_claim(struct pool_slot_shm *me, const struct pool_wire_hdr *hdr);
/* Grows a worker's message buffer to `need` bytes (its contents are not
 * kept), or exits with POOL_EXIT_NOMEM. */
void pool_grow_or_exit(char **buf, size_t *cap, size_t need);
/* Polls `extra` and the descriptors fds[0..nfds) (-1: skipped); sets
 * ready[i] for each fds[i] with an event. As poll(2) otherwise. */
int pool_transport_poll(const int *fds, int nfds, struct pollfd *extra, int nextra,
                        int timeout_ms, bool *ready);

#endif
