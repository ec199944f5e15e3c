/*
 * lua_pool.c: the pool's API for a Lua strategy, named as in Python, and the
 * interpreter lock it runs under (lua_pool.h says what; docs/lua-api.md,
 * "Strategies in Lua", is the user's contract).
 *
 * This file holds the run: the pool table lp_open builds, close, join and
 * terminate, what a strategy reports (final, pipeline, call, note, fact),
 * and lp_close. The rest is in a file per concept, sharing
 * lua_pool_internal.h:
 *   lua_handle.c  apply, map, submit and their kin, the handles they return,
 *                 and the Lua callbacks the engine calls
 *   lua_iter.c    imap, imap_unordered, executor_map, as_completed
 *   lua_thread.c  pb.thread, and lp_after, which ends the threads a
 *                 strategy left running
 *   lua_args.c    what every method does first (its run, its arguments)
 *                 and how it raises
 * Dependencies run one way: this file -> lua_handle.c, lua_iter.c,
 * lua_thread.c -> lua_args.c.
 *
 * Objects. The pool is a plain table of closures over one `lp_run`
 * userdata (this run's pool, workload and outcome). Handles (apply_async,
 * map_async, submit) are userdata holding a pool_result; iterators (imap,
 * imap_unordered, executor_map, as_completed) are userdata holding a
 * pool_iter, callable (so a generic `for` uses them) and to-be-closed
 * (a `break` frees them at once; __gc too, if abandoned otherwise). Each
 * keeps the run userdata as its user value, so the run outlives them.
 *
 * The lock is scn_lock (scenario_lua.c), re-entrant per thread. The rules:
 *   - Lua code of the run (the strategy, a callback, a pb.thread) runs on a
 *     Lua thread of its own, holding the lock once;
 *   - every engine call that may wait goes between scn_gil_release and
 *     scn_gil_reacquire, and touches no Lua value in between: the values it
 *     needs are copied out first (packed arguments), its results pushed
 *     after (the engine keeps them valid until the handle is freed);
 *   - an engine callback (lp_cb_run, on the result-handler thread, or at
 *     once on the calling thread for a future already done) takes the lock
 *     before any Lua: callbacks therefore run one at a time, in the parent,
 *     and the main loop waits for them, as in CPython (phenomenon P2).
 * Callback records (lp_cb): lua_handle.c's comment.
 */
#include "lua_pool_internal.h"

#include <lauxlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_values.h"

/* ---- close, join, terminate ------------------------------------------------------ */

static int p_close(lua_State *L)
{
    lp_drop_self(L);
    lp_run *run = lp_run_of(L);
    int st = pool_close(run->p);
    if (st != POOL_OK)
        return lp_raise_status(L, st, pool_last_error());
    return 0;
}

/* join: the clock stops when it returns (if the strategy has not stopped
 * it): the work is over then. */
static int p_join(lua_State *L)
{
    lp_drop_self(L);
    lp_run *run = lp_run_of(L);
    bool rel = scn_gil_release(L);
    int st = pool_join(run->p);
    scn_gil_reacquire(rel);
    if (st != POOL_OK)
        return lp_raise_status(L, st, st == POOL_ESTATE ? "Pool is still running (close or "
                                                       "terminate it first)"
                                                     : pool_last_error());
    if (run->out->wall_s == 0)
        strat_stop_clock(run->out);
    return 0;
}

/* terminate: the clock stops when it is called, as strat_pool_finish stops
 * a C strategy's before terminating at the answer. */
static int p_terminate(lua_State *L)
{
    lp_drop_self(L);
    lp_run *run = lp_run_of(L);
    if (run->out->wall_s == 0)
        strat_stop_clock(run->out);
    bool rel = scn_gil_release(L);
    pool_terminate(run->p);
    scn_gil_reacquire(rel);
    return 0;
}

/* ---- what a strategy reports ------------------------------------------------------- */

/* pool:final(i, value [, err]): item i's final result (err: its error),
 * through strat_final as the C strategies'; true when it is the answer. */
static int p_final(lua_State *L)
{
    lp_drop_self(L);
    lp_run *run = lp_run_of(L);
    lua_Integer i = luaL_checkinteger(L, 1);
    if (i < 1 || (size_t)i > run->w->n)
        return luaL_error(L, "final: item %d is not from 1 to %d", (int)i, (int)run->w->n);
    const char *err = NULL;
    char errbuf[SCN_ERR];
    if (!lua_isnoneornil(L, 3)) {
        snprintf(errbuf, sizeof errbuf, "%s", luaL_tolstring(L, 3, NULL));
        err = errbuf;
    }
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    char why[256];
    if (err == NULL && luav_pack(L, 2, &pk, why, sizeof why) != 0) {
        msgpack_sbuffer_destroy(&buf);
        return luaL_error(L, "final: item %d's value: %s", (int)i, why);
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    const msgpack_object *v = NULL;
    if (err == NULL && msgpack_unpack_next(&u, buf.data, buf.size, &off) == MSGPACK_UNPACK_SUCCESS)
        v = u.data.type == MSGPACK_OBJECT_NIL ? NULL : &u.data;
    /* strat_final takes strategy.c's lock, then (the stop rule, observe)
     * ours: released first, so that the order is the C strategies'. */
    bool rel = scn_gil_release(L);
    bool answer = strat_final(run->w, run->out, err ? POOL_ETASK : POOL_OK, v, err,
                              (size_t)i - 1);
    scn_gil_reacquire(rel);
    if (answer)
        atomic_store(&run->answered, true);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&buf);
    lua_pushboolean(L, answer);
    return 1;
}

/* pool:pipeline(item): the task and args that run every stage of item in
 * one task, as strat_pipeline_args: (stage, {item}) or
 * ("strat_chain", {{stages...}, item}). */
static int p_pipeline(lua_State *L)
{
    lp_drop_self(L);
    lp_run *run = lp_run_of(L);
    lua_settop(L, 1);
    const strat_workload *w = run->w;
    lua_createtable(L, 2, 0);
    if (w->nstages == 1) {
        lua_pushstring(L, w->stages[0]);
        lua_pushvalue(L, 1);
        lua_rawseti(L, 2, 1);
    } else {
        lua_pushstring(L, STRAT_CHAIN_TASK);
        lua_createtable(L, w->nstages, 0);
        for (int s = 0; s < w->nstages; s++) {
            lua_pushstring(L, w->stages[s]);
            lua_rawseti(L, -2, s + 1);
        }
        lua_rawseti(L, 2, 1);
        lua_pushvalue(L, 1);
        lua_rawseti(L, 2, 2);
    }
    lua_insert(L, 2); /* task, args */
    return 2;
}

/* pool:call(task, args): runs a task here, in the parent (callback_chain's
 * later stages): the lock released, a Lua task takes it itself. */
static int p_call(lua_State *L)
{
    lp_drop_self(L);
    lp_run_of(L);
    const char *task = lp_check_task(L, 1);
    msgpack_sbuffer args, res;
    msgpack_sbuffer_init(&args);
    msgpack_sbuffer_init(&res);
    lp_pack_list(L, 2, &args, "args");
    bool rel = scn_gil_release(L);
    int st = pool_task_call(task, args.data, args.size, &res);
    scn_gil_reacquire(rel);
    msgpack_sbuffer_destroy(&args);
    if (st != POOL_OK) {
        msgpack_sbuffer_destroy(&res);
        return lp_raise_status(L, st, pool_last_error());
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, res.data, res.size, &off) == MSGPACK_UNPACK_SUCCESS)
        luav_push(L, &u.data); /* may raise: u and res leak only then */
    else
        lua_pushnil(L);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&res);
    return 1;
}

static int p_set_tasks_total(lua_State *L)
{
    lp_drop_self(L);
    lp_run *run = lp_run_of(L);
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0, 1, "a count >= 0 expected");
    run->out->tasks_total = (size_t)n;
    return 0;
}

static int p_note(lua_State *L)
{
    lp_drop_self(L);
    lp_run *run = lp_run_of(L);
    snprintf(run->out->note, sizeof run->out->note, "%s", luaL_checkstring(L, 1));
    return 0;
}

static int p_fact(lua_State *L)
{
    lp_drop_self(L);
    lp_run *run = lp_run_of(L);
    strat_fact_set(run->out, luaL_checkstring(L, 1), luaL_checknumber(L, 2));
    return 0;
}

/* ---- the run ---------------------------------------------------------------------------- */

static void new_metatables(lua_State *L)
{
    lp_handle_metatable(L);
    lp_iter_metatable(L);
    lp_thread_metatable(L);
    luaL_newmetatable(L, LP_RUN);
    lua_pop(L, 1);
}

lp_run *lp_open(lua_State *L, scn_scenario *s, pool *p, const strat_workload *w,
                strat_outcome *out)
{
    /* This file's methods; lua_handle.c's and lua_iter.c's are in their tables. */
    static const luaL_Reg fns[] = {
        {"close", p_close},
        {"join", p_join},
        {"terminate", p_terminate},
        {"final", p_final},
        {"pipeline", p_pipeline},
        {"call", p_call},
        {"set_tasks_total", p_set_tasks_total},
        {"note", p_note},
        {"fact", p_fact},
        {NULL, NULL},
    };
    new_metatables(L);
    lp_run *run = lua_newuserdatauv(L, sizeof *run, 0);
    memset(run, 0, sizeof *run);
    luaL_setmetatable(L, LP_RUN);
    run->s = s;
    run->p = p;
    run->w = w;
    run->out = out;
    lua_pushvalue(L, -1);
    run->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    run->anchor = lua_newthread(L);
    run->anchor_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    int u = lua_gettop(L);

    /* pb.thread, for this run */
    if (lua_getglobal(L, "pb") == LUA_TTABLE) {
        lua_pushvalue(L, u);
        lua_pushcclosure(L, lp_pb_thread, 1);
        lua_setfield(L, -2, "thread");
    }
    lua_pop(L, 1);

    lua_createtable(L, 0, 32);
    const luaL_Reg *tables[] = {lp_handle_fns, lp_iter_fns, fns};
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const luaL_Reg *f = tables[t]; f->name; f++) {
            lua_pushvalue(L, u);
            lua_pushcclosure(L, f->func, 1);
            lua_setfield(L, -2, f->name);
        }
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "_pool");
    lua_pushinteger(L, w->workers);
    lua_setfield(L, -2, "workers");
    lua_pushinteger(L, (lua_Integer)w->n);
    lua_setfield(L, -2, "n");
    lua_pushinteger(L, w->chunksize);
    lua_setfield(L, -2, "chunksize");
    lua_pushboolean(L, w->fire_and_forget);
    lua_setfield(L, -2, "fire_and_forget");
    /* When pool_create was called, on pb.now()'s clock: workers' start-up
     * is measured from here (scenarios/start_method.lua). */
    lua_pushnumber(L, out->t0 - out->startup_s);
    lua_setfield(L, -2, "t_create");
    lua_pushstring(L, pool_start_method_name(w->start_method));
    lua_setfield(L, -2, "start_method");
    lua_createtable(L, w->nstages, 0);
    for (int i = 0; i < w->nstages; i++) {
        lua_pushstring(L, w->stages[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "stages");
    lua_remove(L, u);
    return run;
}

void lp_close(lp_run *run, lua_State *L)
{
    for (lp_cb *cb = run->cbs, *next; cb; cb = next) {
        next = cb->next;
        luaL_unref(L, LUA_REGISTRYINDEX, cb->fn_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, cb->efn_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, cb->handle_ref);
        free(cb);
    }
    run->cbs = NULL;
    run->p = NULL;
    run->nthreads = 0;
    luaL_unref(L, LUA_REGISTRYINDEX, run->anchor_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, run->self_ref);
    run->anchor = NULL;
    if (lua_getglobal(L, "pb") == LUA_TTABLE) {
        lua_pushnil(L);
        lua_setfield(L, -2, "thread");
    }
    lua_pop(L, 1);
}

bool lp_answered(lp_run *run)
{
    return atomic_load(&run->answered);
}
