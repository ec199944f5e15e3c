/*
 * lua_handle.c: apply, apply_async, map, map_async, starmap, starmap_async
 * and submit for a Lua strategy; the handles they return (get, wait, ready,
 * successful; as futures result, done, add_done_callback); and the Lua
 * callbacks the engine calls for them.
 *
 * A handle is userdata holding a pool_result, freed by __gc, with the run
 * userdata as its user value, so the run outlives it. A callback (lp_cb_run)
 * runs on the engine's result-handler thread, or at once on the calling
 * thread for a future already done: it takes the interpreter lock before any
 * Lua and runs on a Lua thread of its own, so callbacks run one at a time, in
 * the parent, and the main loop waits for them, as in CPython (P2).
 * Callback records (lp_cb) are malloc'd and listed on the run: each is
 * retired once it has run (cb_retire), and those never run are freed by
 * lp_close, after the pool is joined: the engine may call one after its
 * handle was collected (fire and forget).
 *
 * Why a file of its own: handles and their callbacks are one concept, the
 * pool_result seen from Lua; the iterators (lua_iter.c) and pb.thread
 * (lua_thread.c) are others. Uses lua_args.c's helpers; lua_pool.c's lp_open
 * registers lp_handle_fns and lp_handle_metatable.
 */
#include "lua_pool_internal.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>

#include "lua_values.h"

/* A callback given to the engine: what to call, with what. */
enum lp_cb_kind { LP_CB_RESULT, LP_CB_ERROR, LP_CB_DONE };

/* Set on a thread while it runs a Lua callback: get() then reads a status
 * the engine already knows rather than waiting for itself. */
static _Thread_local int lp_in_callback;

/* ---- callbacks: the engine calls them, they run Lua under the lock ------- */

typedef struct lp_cb_call {
    lp_cb *cb;
    int kind;
    pool_result *r;
} lp_cb_call;

/* Under scn_pcall_on, on the callback's own Lua thread. */
static int cb_body(lua_State *T)
{
    lp_cb_call *c = lua_touserdata(T, 1);
    int ref = c->kind == LP_CB_ERROR ? c->cb->efn_ref : c->cb->fn_ref;
    lua_rawgeti(T, LUA_REGISTRYINDEX, ref);
    if (c->kind == LP_CB_RESULT) {
        const msgpack_object *v = pool_result_value(c->r);
        if (v)
            luav_push(T, v);
        else
            lua_pushnil(T);
    } else if (c->kind == LP_CB_ERROR) {
        lp_push_error(T, pool_result_status(c->r), pool_result_error(c->r));
    } else {
        lua_rawgeti(T, LUA_REGISTRYINDEX, c->cb->handle_ref);
    }
    lua_call(T, 1, 0);
    return 0;
}

/* A record whose callback has run: the engine never calls it again (one
 * of callback or error_callback per result, a done callback once), so its
 * references and memory go now, not at lp_close: an apply_async loop with
 * callbacks over n items keeps only the records still pending (caller
 * holds scn_lock). */
static void cb_retire(lp_run *run, lp_cb *cb)
{
    if (cb->prev)
        cb->prev->next = cb->next;
    else
        run->cbs = cb->next;
    if (cb->next)
        cb->next->prev = cb->prev;
    luaL_unref(run->anchor, LUA_REGISTRYINDEX, cb->fn_ref);
    luaL_unref(run->anchor, LUA_REGISTRYINDEX, cb->efn_ref);
    luaL_unref(run->anchor, LUA_REGISTRYINDEX, cb->handle_ref);
    free(cb);
}

/* Runs one Lua callback: the lock, a Lua thread of its own, a protected
 * call; its error goes back to the engine, which counts it. */
static int lp_cb_run(lp_cb *cb, int kind, pool_result *r, char *err, size_t errlen)
{
    lp_run *run = cb->run;
    /* Counted outside the lock, as a C strategy's callbacks are (strategy.c's
     * lock is always taken before ours, never inside it). */
    strat_callback_enter(run->out);
    scn_lock();
    lp_in_callback++;
    lua_State *T = lua_newthread(run->anchor);
    int tref = luaL_ref(run->anchor, LUA_REGISTRYINDEX);
    lp_cb_call c = {cb, kind, r};
    lua_pushcfunction(T, cb_body);
    lua_pushlightuserdata(T, &c);
    int rc = scn_pcall_on(run->s, T, 1, 0, err, errlen);
    if (rc > 0)
        snprintf(err, errlen, "a callback raised poolbench's skip marker");
    luaL_unref(run->anchor, LUA_REGISTRYINDEX, tref);
    cb_retire(run, cb); /* the engine calls each record once: nothing kept per task */
    lp_in_callback--;
    scn_unlock();
    strat_callback_leave(run->out);
    return rc != 0;
}

static int lp_on_result(pool_result *r, void *udata, char *err, size_t errlen)
{
    return lp_cb_run(udata, LP_CB_RESULT, r, err, errlen);
}

static int lp_on_error(pool_result *r, void *udata, char *err, size_t errlen)
{
    return lp_cb_run(udata, LP_CB_ERROR, r, err, errlen);
}

static int lp_on_done(pool_result *r, void *udata, char *err, size_t errlen)
{
    return lp_cb_run(udata, LP_CB_DONE, r, err, errlen);
}

/* A record for the engine, listed on the run (NULL when no function). */
static lp_cb *cb_new(lua_State *L, lp_run *run, int fn_ref, int efn_ref, int handle_ref)
{
    if (fn_ref == LUA_NOREF && efn_ref == LUA_NOREF)
        return NULL;
    lp_cb *cb = malloc(sizeof *cb);
    if (cb == NULL) {
        luaL_unref(L, LUA_REGISTRYINDEX, fn_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, efn_ref);
        luaL_error(L, "out of memory");
    }
    *cb = (lp_cb){run, fn_ref, efn_ref, handle_ref, run->cbs, NULL};
    if (run->cbs)
        run->cbs->prev = cb;
    run->cbs = cb;
    return cb;
}

/* ---- handles: apply_async, map_async, submit ------------------------------ */

static lp_handle *push_handle(lua_State *L, pool_result *r, bool future)
{
    lp_handle *h = lua_newuserdatauv(L, sizeof *h, 1);
    *h = (lp_handle){r, future};
    luaL_setmetatable(L, LP_HANDLE);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the run lives as long as its handles */
    lua_setiuservalue(L, -2, 1);
    return h;
}

static lp_handle *check_handle(lua_State *L)
{
    lp_handle *h = luaL_checkudata(L, 1, LP_HANDLE);
    if (h->r == NULL)
        luaL_error(L, "a freed handle");
    return h;
}

/* get()'s wait: the lock released while it waits. Inside a callback the
 * engine's status is final already (waiting would wait for itself). */
static int handle_wait_get(lua_State *L, lp_handle *h, double t, const msgpack_object **v)
{
    if (lp_in_callback) {
        int st = pool_result_status(h->r);
        if (st != POOL_ENOTREADY) {
            *v = st == POOL_OK ? pool_result_value(h->r) : NULL;
            return st;
        }
    }
    bool rel = scn_gil_release(L);
    int st = pool_result_get(h->r, t, v);
    scn_gil_reacquire(rel);
    return st;
}

/* What a wait got: its error raised, or its value (nil for none) pushed. */
static int handle_push_got(lua_State *L, lp_handle *h, int st, const msgpack_object *v)
{
    if (st != POOL_OK)
        return lp_raise_status(L, st, pool_result_error(h->r));
    if (v)
        luav_push(L, v);
    else
        lua_pushnil(L);
    return 1;
}

/* h:get([timeout]) / future:result([timeout]) */
static int h_get(lua_State *L)
{
    lp_handle *h = check_handle(L);
    double t = lp_opt_timeout(L, 2);
    const msgpack_object *v = NULL;
    int st = handle_wait_get(L, h, t, &v);
    if (st == POOL_ETIMEDOUT) {
        return lp_raise_plain(L, "TimeoutError: no result within %f s", t);
    }
    return handle_push_got(L, h, st, v);
}

/* h:wait([timeout]): true when ready, false on timeout. */
static int h_wait(lua_State *L)
{
    lp_handle *h = check_handle(L);
    double t = lp_opt_timeout(L, 2);
    bool rel = scn_gil_release(L);
    int st = pool_result_wait(h->r, t);
    scn_gil_reacquire(rel);
    lua_pushboolean(L, st == POOL_OK);
    return 1;
}

static int h_ready(lua_State *L)
{
    lua_pushboolean(L, pool_result_ready(check_handle(L)->r));
    return 1;
}

/* h:successful(): raises ValueError when not ready, as CPython. */
static int h_successful(lua_State *L)
{
    int st = pool_result_successful(check_handle(L)->r);
    if (st == POOL_ENOTREADY)
        return lp_raise_plain(L, "ValueError: result is not ready");
    lua_pushboolean(L, st == 1);
    return 1;
}

/* future:add_done_callback(f): f(future), on the result handler (at once,
 * here, when the future is done already). */
static int h_add_done_callback(lua_State *L)
{
    lp_handle *h = check_handle(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_getiuservalue(L, 1, 1);
    lp_run *run = luaL_checkudata(L, -1, LP_RUN);
    lua_pop(L, 1);
    if (run->p == NULL)
        return luaL_error(L, "this future belongs to a strategy run that is over");
    lua_pushvalue(L, 2);
    int fn = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 1);
    int self = luaL_ref(L, LUA_REGISTRYINDEX);
    lp_cb *cb = cb_new(L, run, fn, LUA_NOREF, self);
    /* A future done already runs it at once, here: released, the callback
     * takes the lock as any other does. */
    bool rel = scn_gil_release(L);
    int st = pool_result_add_done_callback(h->r, lp_on_done, cb);
    scn_gil_reacquire(rel);
    if (st != POOL_OK)
        return lp_raise_status(L, pool_last_status(), pool_last_error());
    return 0;
}

static int h_gc(lua_State *L)
{
    lp_handle *h = luaL_checkudata(L, 1, LP_HANDLE);
    pool_result_free(h->r);
    h->r = NULL;
    return 0;
}

/* ---- the pool's calls --------------------------------------------------------- */

/* A submit's outcome: the handle, or Python's exception. */
static int push_submitted(lua_State *L, pool_result *r, bool future)
{
    if (r == NULL)
        return lp_raise_status(L, pool_last_status(), pool_last_error());
    push_handle(L, r, future);
    return 1;
}

/* The opening every call of one task shares, pool:NAME(task, args, ...):
 * the run, the task's name, its arguments packed into args (initialized
 * here; may raise: nothing is held yet but args). */
static const char *task_call(lua_State *L, lp_run **run, msgpack_sbuffer *args)
{
    lp_drop_self(L);
    *run = lp_run_of(L);
    const char *task = lp_check_task(L, 1);
    msgpack_sbuffer_init(args);
    lp_pack_list(L, 2, args, "args");
    return task;
}

/* pool:apply_async(task, args, {callback=, error_callback=}) */
static int p_apply_async(lua_State *L)
{
    lp_run *run;
    msgpack_sbuffer args;
    const char *task = task_call(L, &run, &args);
    lp_opts o;
    lp_read_opts(L, 3, &o);
    lp_cb *cb = cb_new(L, run, o.fn_ref, o.efn_ref, LUA_NOREF);
    pool_result *r = pool_apply_async(run->p, task, args.data, args.size,
                                      cb && o.fn_ref != LUA_NOREF ? lp_on_result : NULL,
                                      cb && o.efn_ref != LUA_NOREF ? lp_on_error : NULL, cb);
    msgpack_sbuffer_destroy(&args);
    return push_submitted(L, r, false);
}

/* pool:submit(task, args): a future. */
static int p_submit(lua_State *L)
{
    lp_run *run;
    msgpack_sbuffer args;
    const char *task = task_call(L, &run, &args);
    pool_result *r = pool_submit(run->p, task, args.data, args.size);
    msgpack_sbuffer_destroy(&args);
    return push_submitted(L, r, true);
}

/* A blocking call's handle: its value, or its error raised. */
static int push_value_of(lua_State *L, pool_result *r)
{
    if (r == NULL)
        return lp_raise_status(L, pool_last_status(), pool_last_error());
    lp_handle *h = push_handle(L, r, false); /* freed by the GC, like any handle */
    const msgpack_object *v = NULL;
    int st = handle_wait_get(L, h, -1, &v);
    return handle_push_got(L, h, st, v);
}

/* pool:apply(task, args): blocks, the lock released. */
static int p_apply(lua_State *L)
{
    lp_run *run;
    msgpack_sbuffer args;
    const char *task = task_call(L, &run, &args);
    bool rel = scn_gil_release(L);
    pool_result *r = pool_apply(run->p, task, args.data, args.size);
    scn_gil_reacquire(rel);
    msgpack_sbuffer_destroy(&args);
    return push_value_of(L, r);
}

/* map, starmap, map_async, starmap_async. */
static int map_common(lua_State *L, bool star, bool async)
{
    lp_drop_self(L);
    lp_run *run = lp_run_of(L);
    const char *task = lp_check_task(L, 1);
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    lp_opts o;
    lp_pack_list(L, 2, &items, "items");
    lp_read_opts(L, 3, &o);
    pool_result *r;
    if (async) {
        lp_cb *cb = cb_new(L, run, o.fn_ref, o.efn_ref, LUA_NOREF);
        pool_callback f = cb && o.fn_ref != LUA_NOREF ? lp_on_result : NULL;
        pool_callback e = cb && o.efn_ref != LUA_NOREF ? lp_on_error : NULL;
        r = star ? pool_starmap_async(run->p, task, items.data, items.size, o.chunksize, f, e, cb)
                 : pool_map_async(run->p, task, items.data, items.size, o.chunksize, f, e, cb);
        msgpack_sbuffer_destroy(&items);
        return push_submitted(L, r, false);
    }
    bool rel = scn_gil_release(L);
    r = star ? pool_starmap(run->p, task, items.data, items.size, o.chunksize)
             : pool_map(run->p, task, items.data, items.size, o.chunksize);
    scn_gil_reacquire(rel);
    msgpack_sbuffer_destroy(&items);
    return push_value_of(L, r);
}

static int p_map(lua_State *L) { return map_common(L, false, false); }
static int p_starmap(lua_State *L) { return map_common(L, true, false); }
static int p_map_async(lua_State *L) { return map_common(L, false, true); }
static int p_starmap_async(lua_State *L) { return map_common(L, true, true); }

/* The pool's methods of this file (lp_open puts them in the pool table). */
const luaL_Reg lp_handle_fns[] = {
    {"apply", p_apply},
    {"apply_async", p_apply_async},
    {"map", p_map},
    {"map_async", p_map_async},
    {"starmap", p_starmap},
    {"starmap_async", p_starmap_async},
    {"submit", p_submit},
    {NULL, NULL},
};

/* The metatable of handles and futures (lp_open makes it). */
void lp_handle_metatable(lua_State *L)
{
    static const luaL_Reg handle[] = {
        {"get", h_get},     {"result", h_get},   {"wait", h_wait},
        {"ready", h_ready}, {"done", h_ready},   {"successful", h_successful},
        {"add_done_callback", h_add_done_callback}, {NULL, NULL},
    };
    if (luaL_newmetatable(L, LP_HANDLE)) {
        luaL_newlib(L, handle);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, h_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}
