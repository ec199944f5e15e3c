/*
 * run_mpi.h: the poolbench command on an MPI job (`mpirun -n N+1 poolbench
 * run FILE --transport mpi`, docs/mpi.md). Built only when Open MPI is
 * there (the Makefile's HAVE_MPI): poolbench.c calls it under POOLBENCH_MPI.
 *
 * Every rank runs the same command line. Rank 0 is the usual run (the
 * strategies, the handlers, the callbacks, the report) whose pools use the
 * MPI transport; ranks 1..N load the same scenario file, register the same
 * tasks in the same order, and serve its pools as workers until rank 0 ends
 * the job. A pool's context, sent with it to the workers, is the
 * scenario's P table of the running variant, so a Lua task that reads P
 * sees what it would see in a forked worker; and each pool after the first
 * gets the scenario loaded anew, as a fork would give it a fresh copy. What setup() leaves in Lua
 * globals is not sent (a worker rank does not run setup): docs/mpi.md.
 */
#ifndef RUN_MPI_H
#define RUN_MPI_H

#include <stdio.h>

#include "scenario.h"

/* Starts MPI and makes the MPI transport the default of this process's
 * pools. Returns the rank (0: the run; > 0: a worker), or -1 with a
 * message on stderr. */
int run_mpi_start(int *argc, char ***argv);
/* A worker rank's whole run: loads `file`, registers its tasks, serves
 * pools until rank 0 ends the job, finalizes MPI. Returns the exit status. */
int run_mpi_worker(const char *file);
/* Rank 0: the scenario whose P a pool carries (set before its pools). */
void run_mpi_bind(scn_scenario *s);
/* Rank 0: one line per rank after the echo: host, pid, and a worker's
 * clock offset to rank 0 with the round trip that bounds it (measured at
 * start, pool_mpi.c). */
void run_mpi_describe(FILE *f);
/* Rank 0, at the end: ends the job for the workers and finalizes MPI. */
void run_mpi_end(void);

#endif
