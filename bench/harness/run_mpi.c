/*
 * run_mpi.c: the poolbench command on an MPI job (run_mpi.h): rank 0's
 * start and end, the worker ranks' run, and the context each pool carries
 * from rank 0 to its workers (the scenario's P, packed with lua_values.c).
 *
 * Each pool after the first finds a fresh Lua state on the rank (the
 * scenario loaded again), as each pool's forked workers find a copy of the
 * parent's: what a pool's tasks leave in globals does not reach the next.
 *
 * Why P travels and nothing else: a forked worker is a copy of the parent
 * after the runner set P for the variant (runner.c, scn_set_P); a rank
 * loaded the scenario on its own and has no P, so each pool brings it.
 * Packing runs in pool_create on the creating thread, applying before the
 * pool's initializer on the worker rank; both under scn_lock like every
 * other use of the Lua state.
 */
#include "run_mpi.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_values.h"
#include "pool_mpi.h"
#include "pool_transport.h"
#include "runner.h"
#include "runner_callbacks.h"

static scn_scenario *mpi_scn;
/* A worker rank: the scenario's file, and whether its Lua state has served
 * a pool already (the next pool then gets a fresh one). */
static const char *mpi_file;
static bool mpi_scn_used;

/* A worker rank's Lua state for the next pool. A forked worker starts from
 * a copy of the parent's state, so what a pool's tasks or initializer leave
 * in globals (worker_init's INIT_RUNS) dies with it; a rank serves pool
 * after pool, so each pool after the first gets the scenario loaded anew.
 * Its tasks register under the same names, so at the same indices. */
static int fresh_state(char *err, size_t errlen)
{
    if (!mpi_scn_used) {
        mpi_scn_used = true;
        return 0;
    }
    scn_scenario *s = scn_load(mpi_file, err, errlen);
    if (s == NULL)
        return -1;
    run_register_tasks(s);
    scn_free(mpi_scn);
    mpi_scn = s;
    return 0;
}

/* Rank 0: P of the running variant, packed. */
static int pack_P(char **buf, size_t *len)
{
    if (mpi_scn == NULL)
        return 0;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    char err[256];
    scn_lock();
    lua_State *L = mpi_scn->L;
    lua_pushglobaltable(L);
    lua_pushstring(L, "P");
    lua_rawget(L, -2);
    int rc = lua_isnil(L, -1) ? 0 : luav_pack(L, -1, &pk, err, sizeof err);
    lua_pop(L, 2);
    scn_unlock();
    if (rc != 0) {
        fprintf(stderr, "poolbench: MPI: the scenario's P cannot be sent: %s\n", err);
        msgpack_sbuffer_destroy(&sb);
        return -1;
    }
    *buf = sb.data; /* ours now: the transport frees it */
    *len = sb.size;
    return 0;
}

/* A worker rank: sets P as rank 0 had it (raw, as scn_set_P). */
static int apply_P(const char *buf, size_t len, char *err, size_t errlen)
{
    if (fresh_state(err, errlen) != 0)
        return -1;
    if (len == 0)
        return 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS) {
        snprintf(err, errlen, "poolbench: MPI: the scenario's P from rank 0 is not msgpack");
        msgpack_unpacked_destroy(&u);
        return -1;
    }
    scn_lock();
    lua_State *L = mpi_scn->L;
    lua_pushglobaltable(L);
    lua_pushstring(L, "P");
    luav_push(L, &u.data);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    scn_unlock();
    msgpack_unpacked_destroy(&u);
    return 0;
}

/* The report's workers list: slot k is rank k + 1. */
static const char *worker_host(int slot)
{
    return slot >= 0 ? pool_mpi_host(slot + 1) : NULL;
}

int run_mpi_start(int *argc, char ***argv)
{
    char err[256];
    if (pool_mpi_init(argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "poolbench: --transport mpi: %s\n", err);
        return -1;
    }
    pool_transport_register_mpi(&pool_transport_mpi_ops);
    pool_mpi_set_context(pack_P, apply_P);
    /* Every pool of the run is on MPI through the runner (--transport mpi
     * wins over a variant's own: runner.c); no environment variable, which
     * a child poolbench (interrupt, orphans) would inherit without a job. */
    if (pool_mpi_rank() == 0)
        run_worker_host = worker_host;
    return pool_mpi_rank();
}

void run_mpi_bind(scn_scenario *s)
{
    mpi_scn = s;
}

int run_mpi_worker(const char *file)
{
    char err[SCN_ERR];
    scn_scenario *s = scn_load(file, err, sizeof err);
    if (s == NULL) {
        fprintf(stderr, "poolbench: MPI rank %d: %s\n", pool_mpi_rank(), err);
        scn_tmp_cleanup();
        return 2; /* without MPI_Finalize: mpirun ends the job, naming this rank */
    }
    run_register_tasks(s);
    mpi_scn = s;
    mpi_file = file;
    pool_mpi_serve();
    pool_mpi_finalize();
    scn_free(mpi_scn); /* the last pool's state: fresh_state freed the others */
    mpi_scn = NULL;
    scn_tmp_cleanup();
    return 0;
}

void run_mpi_describe(FILE *f)
{
    fprintf(f, "transport: mpi, %d ranks: rank 0 (the parent) on %s, pid %d\n", pool_mpi_size(),
            pool_mpi_host(0), (int)pool_mpi_pid(0));
    for (int r = 1; r < pool_mpi_size(); r++)
        fprintf(f, "  rank %d = worker slot %d on %s, pid %d, clock %+.1f us from rank 0's "
                "(within %.1f us: half the best of 16 round trips)\n", r, r - 1,
                pool_mpi_host(r), (int)pool_mpi_pid(r), pool_mpi_clock_offset(r) * 1e6,
                pool_mpi_clock_rtt(r) * 1e6 / 2);
}

void run_mpi_end(void)
{
    mpi_scn = NULL;
    pool_mpi_finalize();
}
