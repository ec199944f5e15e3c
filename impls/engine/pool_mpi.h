/*
 * pool_mpi.h: the engine on an MPI job (issue 15): rank 0 is the parent
 * (strategies, handlers, callbacks), ranks 1..N are the workers.
 *
 * Why a header of its own. Everything MPI lives in pool_mpi.c (the job:
 * start, clocks, hosts, the worker ranks' loop) and pool_transport_mpi.c
 * (rank 0's transport behind pool_transport.h). They are built into their
 * own archive and linked only into the poolbench binary, so the engine's
 * tests and every other client stay free of libmpi; this header names no
 * MPI type, so the harness can call it without mpi.h.
 *
 * The life of a job:
 *
 *   every rank   pool_mpi_init()      MPI_Init_thread; hosts and pids gathered;
 *                                     each worker's clock offset to rank 0's
 *                                     measured by ping-pong (NTP's rule: the
 *                                     exchange with the shortest round trip)
 *   rank 0       pools with POOL_TRANSPORT_MPI, one at a time; each pool of w
 *                workers uses ranks 1..w (w > N is refused, naming the -n to ask)
 *   ranks 1..N   pool_mpi_serve()     for each pool: apply rank 0's context
 *                                     (the harness's hook: the scenario's P),
 *                                     run the initializer once, then take
 *                                     chunks one at a time until the pool ends
 *   rank 0       pool_mpi_finalize()  tells the workers the job is over
 *
 * What MPI cannot do, refused or said: a rank is never replaced, so
 * maxtasksperchild is refused, and so is task_timeout (the limit kills the
 * worker, and killing a rank ends the job); a worker rank that dies ends the
 * whole job (MPI's rule, mpirun kills every rank): the analogue of
 * concurrent.futures' BrokenProcessPool, with mpirun's message naming the
 * rank. No fork happens in an MPI job's ranks (no fork server: workers are
 * ranks), because fork() after MPI_Init is unsafe with some of MPI's
 * transports.
 */
#ifndef POOL_MPI_H
#define POOL_MPI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Starts MPI in this process (every rank calls it, before any pool). 0, or
 * -1 with the message in err. */
int pool_mpi_init(int *argc, char ***argv, char *err, size_t errlen);
/* Whether pool_mpi_init ran (and pool_mpi_finalize did not). */
bool pool_mpi_active(void);
/* This process's rank, and the job's size (ranks, rank 0 included). */
int pool_mpi_rank(void);
int pool_mpi_size(void);
/* Host name and pid of a rank (as gathered at init; "" and 0 out of range). */
const char *pool_mpi_host(int rank);
pid_t pool_mpi_pid(int rank);
/* Rank r's clock minus rank 0's (seconds, pool_now()), and the round trip of
 * the exchange that measured it: the offset is known within half of it. */
double pool_mpi_clock_offset(int rank);
double pool_mpi_clock_rtt(int rank);

/*
 * The context a pool carries to its worker ranks: rank 0's harness packs it
 * when a pool is created (`pack`: appends bytes to *buf, *len; returns 0),
 * a worker rank's harness applies it before the pool's initializer (`apply`:
 * 0, or -1 with a message: the pool then fails as an initializer would).
 * The poolbench harness sends the scenario's P table this way.
 */
typedef int (*pool_mpi_pack_fn)(char **buf, size_t *len);
typedef int (*pool_mpi_apply_fn)(const char *buf, size_t len, char *err, size_t errlen);
void pool_mpi_set_context(pool_mpi_pack_fn pack, pool_mpi_apply_fn apply);

/* Worker ranks: serves pools until rank 0 ends the job. Returns 0. */
int pool_mpi_serve(void);
/* Rank 0: ends the job for the workers (they leave pool_mpi_serve), then
 * MPI_Finalize. Worker ranks: MPI_Finalize. Idempotent. */
void pool_mpi_finalize(void);

#endif
