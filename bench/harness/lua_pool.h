/*
 * lua_pool.h: the pool's API for a strategy written in Lua (lua_pool.c, and
 * the files its comment names: lua_handle.c, lua_iter.c, lua_thread.c,
 * lua_args.c), and the interpreter lock it runs under.
 *
 * A Lua strategy (docs/lua-api.md, "Strategies in Lua") receives a `pool`
 * table whose methods are the engine's API named as in Python: apply,
 * apply_async, map, map_async, starmap, starmap_async, imap, imap_unordered,
 * submit, as_completed, executor_map, close, join, terminate; handles with
 * get, wait, ready, successful; futures with result, done,
 * add_done_callback; plus what a strategy reports (final, note, fact).
 *
 * The lock. The parent's Lua runs under scn_lock (scenario_lua.c), one
 * lock for the whole state, held by whoever runs Lua code: the strategy's
 * main thread, a callback on the engine's result-handler thread, a
 * pb.thread. Every call that blocks in the engine releases it (get, wait,
 * join, terminate, apply, map, an iterator's next, as_completed, pb.sleep)
 * and takes it back after, as CPython's GIL. Each callback and each
 * pb.thread runs on a Lua thread of its own (lua_newthread), so that the
 * stacks left mid-call while the lock is released are never touched.
 */
#ifndef LUA_POOL_H
#define LUA_POOL_H

#include <lua.h>

#include "scenario.h"
#include "strategy.h"

typedef struct lp_run lp_run;

/* Pushes the pool table of one run of a Lua strategy on L and returns the
 * run (kept alive by the registry until lp_close). Sets pb.thread. Caller
 * holds scn_lock; may raise a Lua error. */
lp_run *lp_open(lua_State *L, scn_scenario *s, pool *p, const strat_workload *w,
                strat_outcome *out);

/* The strategy function returned (or raised): stops the wall clock if it
 * still runs; when pb.threads are left unjoined, terminates the pool (so
 * that what they wait for ends), makes each raise at its next Lua
 * instruction (a loop on a flag the strategy never set ends) and joins
 * them, the lock released meanwhile. Caller holds scn_lock once. */
void lp_after(lp_run *run, lua_State *L);

/* Whether pool:final ever returned true (the stop rule's answer). */
bool lp_answered(lp_run *run);

/* After strat_pool_finish: every callback has run; drops the run's
 * references, makes the pool table refuse further calls, removes
 * pb.thread. Caller holds scn_lock. */
void lp_close(lp_run *run, lua_State *L);

#endif
