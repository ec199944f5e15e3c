/*
 * pool_mpi_wire.h: the messages between rank 0 and the worker ranks, shared
 * by pool_mpi.c (the worker ranks' side) and pool_transport_mpi.c (rank 0's).
 *
 * One conversation per pool, always in this order for a worker rank w:
 *
 *   0 -> w  OPEN    struct pool_mpi_open + initargs + context (the pool starts)
 *   w -> 0  RESULT  an INITFAIL frame, only if the initializer failed; then BYE
 *   0 -> w  TASK    struct pool_wire_hdr + body: one chunk; never a second
 *                   before w's RESULT for the first (one chunk in flight per
 *                   worker: the pull of docs/mpi.md)
 *   w -> 0  RESULT  the chunk's result frame, byte for byte what a forked
 *                   worker writes to its pipe (uint32 length + payload)
 *   0 -> w  EXIT    the pool ends (an EXIT message, a join, a terminate)
 *   w -> 0  BYE     int32 exit status (POOL_EXIT_OK, POOL_EXIT_INIT_FAILED)
 *   0 -> w  QUIT    the job ends: w leaves pool_mpi_serve
 *
 * MPI keeps the order of messages between two ranks on one communicator,
 * whatever their tags, so a RESULT is always read before the BYE after it.
 * CLOCK is the ping-pong of pool_mpi_init, before any pool.
 */
#ifndef POOL_MPI_WIRE_H
#define POOL_MPI_WIRE_H

#include <stdbool.h>
#include <stdint.h>

enum pool_mpi_tag {
    POOL_MPI_CLOCK = 1,
    POOL_MPI_OPEN = 2,
    POOL_MPI_TASK = 3,
    POOL_MPI_EXIT = 4,
    POOL_MPI_RESULT = 5,
    POOL_MPI_BYE = 6,
    POOL_MPI_QUIT = 7,
};

struct pool_mpi_open {
    int32_t slot;          /* the worker slot this rank is (rank - 1) */
    int32_t init_task;     /* -1: no initializer */
    uint32_t registry;     /* pool_mpi_registry_hash() on rank 0 */
    uint32_t initargs_len; /* bytes after this header, then the context's */
    uint32_t context_len;
};

/* A hash of the task registry's names in index order: a chunk names its
 * task by index, so every rank must have registered the same tasks in the
 * same order (each loads the same scenario). */
uint32_t pool_mpi_registry_hash(void);
/* The harness's context hooks (pool_mpi_set_context); NULL when unset. */
int pool_mpi_context_pack(char **buf, size_t *len);
/* Waits up to `seconds` for a message from `source` (any tag): 1 and
 * *tag, *src, *bytes when one is there, 0 at the deadline. Never blocks inside
 * MPI: Iprobe, then short sleeps (pool_mpi.c explains the backoff). */
int pool_mpi_wait_msg(int source, double seconds, int *tag, int *src, int *bytes);
/* The backoff of every MPI wait, rank 0's pump's included: whether a wait
 * of `waited` seconds still spins, and how long it sleeps next. */
bool pool_mpi_spinning(double waited);
double pool_mpi_nap(double waited);

#endif
