/*
 * lua_pool_internal.h: what the files of the pool's Lua API share, and no
 * other file uses (lua_pool.h is the harness's view of them; lua_pool.c's
 * comment says which file holds what, and the lock's rules).
 *
 * Dependencies run one way: lua_pool.c (the run, lp_open) -> lua_handle.c,
 * lua_iter.c, lua_thread.c (each exports its methods and metatable, and
 * names nothing of the others') -> lua_args.c (the helpers below, which
 * name none of them).
 */
#ifndef LUA_POOL_INTERNAL_H
#define LUA_POOL_INTERNAL_H

#include <lauxlib.h>
#include <stdatomic.h>

#include "lua_pool.h"

#define LP_RUN "poolbench.run"
#define LP_HANDLE "poolbench.handle"
#define LP_ITER "poolbench.iter"
#define LP_THREAD "poolbench.thread"
#define LP_MAX_THREADS 64

typedef struct lp_cb lp_cb;
typedef struct lp_thread lp_thread;

/* One run of a Lua strategy. Guarded by the lock (scn_lock), except p, w
 * and out, set before the strategy starts and read-only after (out's
 * fields go through strategy.c's own lock, strat_final). */
struct lp_run {
    scn_scenario *s;
    pool *p;                  /* NULL once the run is over */
    const strat_workload *w;
    strat_outcome *out;
    lua_State *anchor;        /* a Lua thread never mid-call: makes the others */
    int anchor_ref, self_ref;
    lp_cb *cbs;               /* the callback records not yet run (lp_cb_run
                                 retires each once it ran), the rest freed by lp_close */
    lp_thread *threads[LP_MAX_THREADS];
    int nthreads;
    bool threads_stopped;     /* lp_after: a pb.thread's Lua raises at once */
    atomic_bool answered;     /* pool:final returned true (read without the lock) */
};

/* A callback record given to the engine (lua_handle.c). lp_close frees
 * those never run. */
struct lp_cb {
    lp_run *run;
    int fn_ref, efn_ref;      /* callback, error_callback (LUA_NOREF: none) */
    int handle_ref;           /* a done callback's future, or LUA_NOREF */
    lp_cb *next, *prev;       /* on run->cbs */
};

typedef struct lp_handle {
    pool_result *r;
    bool future;
} lp_handle;

/* ---- lua_args.c: what every method does first ------------------------------ */

/* The run of the pool table whose method this is (upvalue 1); raises when
 * the run is over, or Interrupted when the run was. */
lp_run *lp_run_of(lua_State *L);
/* Methods are called pool:m(...): drops the pool table when it is there,
 * so that pool.as_completed(...) works too. */
void lp_drop_self(lua_State *L);
/* Pushes "Kind: message", the form every error of this API has. */
void lp_push_error(lua_State *L, int st, const char *msg);
/* Raises "Kind: message" (fmt is lua_pushfstring's) with no position in
 * front, so that code can match it; lp_raise_status for an engine status. */
int lp_raise_plain(lua_State *L, const char *fmt, ...);
int lp_raise_status(lua_State *L, int st, const char *msg);
/* The timeout argument at idx: nil (or absent) waits forever (-1). */
double lp_opt_timeout(lua_State *L, int idx);
/* The task name at idx; raises ValueError when no such task exists. */
const char *lp_check_task(lua_State *L, int idx);
/* Packs the list at idx (nil: the empty list) into buf; raises when it is
 * not a list or holds what cannot cross. */
void lp_pack_list(lua_State *L, int idx, msgpack_sbuffer *buf, const char *what);

/* Options {chunksize=, buffersize=, callback=, error_callback=} at idx, or
 * a number (the chunksize), or nil. Function fields are pushed as refs.
 * buffersize is the imap family's (pool_imap_opts: 0, every item at once). */
typedef struct lp_opts {
    long chunksize;
    int fn_ref, efn_ref;
    long buffersize;
} lp_opts;
void lp_read_opts(lua_State *L, int idx, lp_opts *o);

/* ---- the methods and metatables lp_open registers -------------------------- */

/* lua_handle.c: apply, apply_async, map, map_async, starmap, starmap_async,
 * submit; handles and futures. */
extern const luaL_Reg lp_handle_fns[];
void lp_handle_metatable(lua_State *L);
/* lua_iter.c: imap, imap_unordered, as_completed, executor_map. */
extern const luaL_Reg lp_iter_fns[];
void lp_iter_metatable(lua_State *L);
/* lua_thread.c: pb.thread(fn) (a closure over the run) and its threads. */
int lp_pb_thread(lua_State *L);
void lp_thread_metatable(lua_State *L);

#endif
