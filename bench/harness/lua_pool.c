/*
 * lua_pool.c: the pool's API for a Lua strategy, named as in Python, and the
 * interpreter lock it runs under (lua_pool.h says what; docs/lua-api.md,
 * "Strategies in Lua", is the user's contract).
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
 * Callback records (lp_cb) are malloc'd, listed on the run and freed only in
 * lp_close, after the pool is joined: the engine may call one after its
 * handle was collected (fire and forget).
 */
#include "lua_pool.h"

#include <lauxlib.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_values.h"

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

/* A callback given to the engine: what to call, with what. */
enum lp_cb_kind { LP_CB_RESULT, LP_CB_ERROR, LP_CB_DONE };
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

enum lp_iter_kind { LP_IT_ITEMS, LP_IT_AS_COMPLETED };
typedef struct lp_iter {
    pool_iter *it;
    int kind;
    bool ended;
    msgpack_sbuffer items;    /* the packed items, alive as long as the iterator */
    pool_result **futures;    /* as_completed's (their userdata: user value 2) */
    size_t nfutures, yielded;
    double deadline;          /* as_completed: 0 none */
} lp_iter;

struct lp_thread {
    lp_run *run;
    lua_State *T; /* its Lua thread while it runs (read and written under the lock) */
    pthread_t tid;
    int fn_ref, self_ref;
    bool started, joined, ok;
    char err[SCN_ERR];
};

/* Set on a thread while it runs a Lua callback: get() then reads a status
 * the engine already knows rather than waiting for itself. */
static _Thread_local int lp_in_callback;

/* ---- small helpers ---------------------------------------------------------- */

static int raise_plain(lua_State *L, const char *fmt, ...);

static lp_run *run_of(lua_State *L)
{
    lp_run *run = luaL_checkudata(L, lua_upvalueindex(1), LP_RUN);
    if (run->p == NULL)
        luaL_error(L, "this pool belongs to a strategy run that is over");
    /* SIGINT, SIGTERM, the run's time limit: the strategy's next call ends
     * it (its blocking calls return at once: the pool is interrupted). */
    if (strat_interrupted())
        raise_plain(L, "Interrupted: the run was interrupted");
    return run;
}

/* Methods are called pool:m(...): drops the pool table when it is there,
 * so that pool.as_completed(...) works too. */
static void drop_self(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TTABLE)
        return;
    int type = scn_rawgetfield(L, 1, "_pool");
    lua_pop(L, 1);
    if (type == LUA_TBOOLEAN)
        lua_remove(L, 1);
}

static const char *lp_kind(int st)
{
    switch (st) {
    case POOL_ETIMEDOUT: return "TimeoutError";
    case POOL_ETASK: return "TaskError";
    case POOL_EWORKER: return "WorkerLost";
    case POOL_ETERMINATED: return "Terminated";
    case POOL_EBROKEN: return "BrokenPool";
    case POOL_ETIMELIMIT: return "TimeLimit";
    case POOL_EINTR: return "Interrupted";
    case POOL_ESTATE: return "ValueError";
    default: return "PoolError";
    }
}

/* Pushes "Kind: message", the form every error of this API has. */
static void push_error(lua_State *L, int st, const char *msg)
{
    lua_pushfstring(L, "%s: %s", lp_kind(st), msg ? msg : pool_status_name(st));
}

/* Raises "Kind: message" with no position in front, so that code can
 * match it (e:match("^TimeoutError")); an uncaught one gets file:line from
 * scn_pcall's handler. */
static int raise_plain(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return lua_error(L);
}

static int raise_status(lua_State *L, int st, const char *msg)
{
    push_error(L, st, msg);
    return lua_error(L);
}

/* The timeout argument: nil (or absent) waits forever. */
static double opt_timeout(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return -1;
    double t = luaL_checknumber(L, idx);
    luaL_argcheck(L, t >= 0 && t <= 1e6, idx, "a timeout from 0 to 1e6 seconds expected");
    return t;
}

static const char *check_task(lua_State *L, int idx)
{
    const char *t = luaL_checkstring(L, idx);
    if (!pool_task_exists(t))
        raise_plain(L, "ValueError: no task named '%s' (the scenario's tasks, the engine's "
                   "built-ins, or strat_chain)", t);
    return t;
}

/* Packs the list at idx (nil: the empty list) into buf; raises when it is
 * not a list (a table with keys 1..n) or holds what cannot cross. */
static void pack_list(lua_State *L, int idx, msgpack_sbuffer *buf, const char *what)
{
    msgpack_packer pk;
    char why[256];
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    if (lua_isnoneornil(L, idx)) {
        msgpack_pack_array(&pk, 0);
        return;
    }
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "%s must be a list, not a %s", what, luaL_typename(L, idx));
    size_t n = 0, keys = 0;
    if (luav_is_count(L, idx, &n)) { /* the workload's items = n: 1..n */
        msgpack_pack_array(&pk, n);
        for (size_t i = 1; i <= n; i++)
            msgpack_pack_uint64(&pk, i);
        return;
    }
    n = lua_rawlen(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        keys++;
        lua_pop(L, 1);
    }
    if (keys != n)
        luaL_error(L, "%s must be a list (keys 1..n), not a table with other keys", what);
    if (luav_pack(L, idx, &pk, why, sizeof why) != 0)
        luaL_error(L, "%s: %s", what, why);
}

/* Options {chunksize=, buffersize=, callback=, error_callback=} at idx, or
 * a number (the chunksize), or nil. Function fields are pushed as refs.
 * buffersize is the imap family's (pool_imap_opts: 0, every item at once). */
typedef struct lp_opts {
    long chunksize;
    int fn_ref, efn_ref;
    long buffersize;
} lp_opts;

static void read_opts(lua_State *L, int idx, lp_opts *o)
{
    *o = (lp_opts){0, LUA_NOREF, LUA_NOREF, 0};
    if (lua_isnoneornil(L, idx))
        return;
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Integer c = luaL_checkinteger(L, idx);
        luaL_argcheck(L, c >= 0 && c <= 2147483647, idx, "chunksize must be >= 0");
        o->chunksize = (long)c;
        if (lua_type(L, idx + 1) == LUA_TTABLE)
            idx++; /* map_async(task, items, chunksize, {callback=...}) */
        else
            return;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    if (scn_rawgetfield(L, idx, "chunksize") != LUA_TNIL) {
        lua_Integer c = luaL_checkinteger(L, -1);
        if (c < 0 || c > 2147483647)
            luaL_error(L, "chunksize must be >= 0");
        o->chunksize = (long)c;
    }
    lua_pop(L, 1);
    if (scn_rawgetfield(L, idx, "buffersize") != LUA_TNIL) {
        lua_Integer b = luaL_checkinteger(L, -1);
        if (b < 0 || b > 2147483647)
            luaL_error(L, "buffersize must be >= 0");
        o->buffersize = (long)b;
    }
    lua_pop(L, 1);
    const char *names[2] = {"callback", "error_callback"};
    int *refs[2] = {&o->fn_ref, &o->efn_ref};
    for (int i = 0; i < 2; i++) {
        int t = scn_rawgetfield(L, idx, names[i]);
        if (t == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        if (t != LUA_TFUNCTION)
            luaL_error(L, "%s must be a function", names[i]);
        *refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
}

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
        push_error(T, pool_result_status(c->r), pool_result_error(c->r));
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

/* h:get([timeout]) / future:result([timeout]) */
static int h_get(lua_State *L)
{
    lp_handle *h = check_handle(L);
    double t = opt_timeout(L, 2);
    const msgpack_object *v = NULL;
    int st = handle_wait_get(L, h, t, &v);
    if (st == POOL_ETIMEDOUT) {
        return raise_plain(L, "TimeoutError: no result within %f s", t);
    }
    if (st != POOL_OK)
        return raise_status(L, st, pool_result_error(h->r));
    if (v)
        luav_push(L, v);
    else
        lua_pushnil(L);
    return 1;
}

/* h:wait([timeout]): true when ready, false on timeout. */
static int h_wait(lua_State *L)
{
    lp_handle *h = check_handle(L);
    double t = opt_timeout(L, 2);
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
        return raise_plain(L, "ValueError: result is not ready");
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
        return raise_status(L, pool_last_status(), pool_last_error());
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
        return raise_status(L, pool_last_status(), pool_last_error());
    push_handle(L, r, future);
    return 1;
}

/* pool:apply_async(task, args, {callback=, error_callback=}) */
static int p_apply_async(lua_State *L)
{
    drop_self(L);
    lp_run *run = run_of(L);
    const char *task = check_task(L, 1);
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    lp_opts o;
    pack_list(L, 2, &args, "args"); /* may raise: nothing held yet but args */
    read_opts(L, 3, &o);
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
    drop_self(L);
    lp_run *run = run_of(L);
    const char *task = check_task(L, 1);
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    pack_list(L, 2, &args, "args");
    pool_result *r = pool_submit(run->p, task, args.data, args.size);
    msgpack_sbuffer_destroy(&args);
    return push_submitted(L, r, true);
}

/* A blocking call's handle: its value, or its error raised. */
static int push_value_of(lua_State *L, pool_result *r)
{
    if (r == NULL)
        return raise_status(L, pool_last_status(), pool_last_error());
    lp_handle *h = push_handle(L, r, false); /* freed by the GC, like any handle */
    const msgpack_object *v = NULL;
    int st = handle_wait_get(L, h, -1, &v);
    if (st != POOL_OK)
        return raise_status(L, st, pool_result_error(r));
    if (v)
        luav_push(L, v);
    else
        lua_pushnil(L);
    return 1;
}

/* pool:apply(task, args): blocks, the lock released. */
static int p_apply(lua_State *L)
{
    drop_self(L);
    lp_run *run = run_of(L);
    const char *task = check_task(L, 1);
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    pack_list(L, 2, &args, "args");
    bool rel = scn_gil_release(L);
    pool_result *r = pool_apply(run->p, task, args.data, args.size);
    scn_gil_reacquire(rel);
    msgpack_sbuffer_destroy(&args);
    return push_value_of(L, r);
}

/* map, starmap, map_async, starmap_async. */
static int map_common(lua_State *L, bool star, bool async)
{
    drop_self(L);
    lp_run *run = run_of(L);
    const char *task = check_task(L, 1);
    msgpack_sbuffer items;
    msgpack_sbuffer_init(&items);
    lp_opts o;
    pack_list(L, 2, &items, "items");
    read_opts(L, 3, &o);
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

/* ---- iterators ---------------------------------------------------------------- */

static lp_iter *push_iter(lua_State *L, int kind)
{
    lp_iter *it = lua_newuserdatauv(L, sizeof *it, 2);
    memset(it, 0, sizeof *it);
    it->kind = kind;
    msgpack_sbuffer_init(&it->items);
    luaL_setmetatable(L, LP_ITER);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setiuservalue(L, -2, 1);
    return it;
}

static void iter_release(lp_iter *it)
{
    pool_iter_free(it->it); /* does not wait: chunks in flight finish unseen */
    it->it = NULL;
    it->ended = true;
}

/* The generic for's four values: the iterator (callable), nil, nil, and
 * the iterator again as the to-be-closed value, so `break` frees it. */
static int push_for(lua_State *L)
{
    lua_pushnil(L);
    lua_pushnil(L);
    lua_pushvalue(L, -3);
    return 4;
}

/* imap, imap_unordered, executor_map: (task, items, chunksize | {chunksize=}) */
static int iter_common(lua_State *L, int mode)
{
    drop_self(L);
    lp_run *run = run_of(L);
    const char *task = check_task(L, 1);
    lp_opts o;
    read_opts(L, 3, &o);
    luaL_unref(L, LUA_REGISTRYINDEX, o.fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, o.efn_ref);
    lp_iter *it = push_iter(L, LP_IT_ITEMS);
    pack_list(L, 2, &it->items, "items");
    pool_imap_opts io = {.chunksize = o.chunksize, .buffersize = o.buffersize,
                         .ordered = mode != 1};
    if (mode == 2)
        it->it = pool_executor_map_opt(run->p, task, it->items.data, it->items.size, &io);
    else
        it->it = pool_imap_array_opt(run->p, task, it->items.data, it->items.size, &io);
    if (it->it == NULL)
        return raise_status(L, pool_last_status(), pool_last_error());
    return push_for(L);
}

static int p_imap(lua_State *L) { return iter_common(L, 0); }
static int p_imap_unordered(lua_State *L) { return iter_common(L, 1); }
static int p_executor_map(lua_State *L) { return iter_common(L, 2); }

/* pool.as_completed(futures, [timeout]): yields each future as it is done,
 * and its position in the list. */
static int p_as_completed(lua_State *L)
{
    drop_self(L);
    run_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    double t = opt_timeout(L, 2);
    size_t n = lua_rawlen(L, 1);
    lp_iter *it = push_iter(L, LP_IT_AS_COMPLETED);
    int self = lua_gettop(L);
    it->futures = calloc(n ? n : 1, sizeof *it->futures);
    if (it->futures == NULL)
        return luaL_error(L, "out of memory");
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 1, (lua_Integer)i + 1);
        lp_handle *h = luaL_testudata(L, -1, LP_HANDLE);
        if (h == NULL || h->r == NULL)
            return luaL_error(L, "as_completed: futures[%d] is not a future", (int)i + 1);
        it->futures[i] = h->r;
        lua_pop(L, 1);
    }
    it->nfutures = n;
    lua_pushvalue(L, 1); /* the futures outlive the iterator */
    lua_setiuservalue(L, self, 2);
    it->deadline = t >= 0 ? pool_now() + t : 0;
    it->it = pool_as_completed(it->futures, n);
    if (it->it == NULL)
        return raise_status(L, pool_last_status(), pool_last_error());
    lua_settop(L, self);
    return push_for(L);
}

/* One step: (i, value, err) for items, (future, i) for as_completed, nil at
 * the end. A timeout raises TimeoutError. */
static int iter_next(lua_State *L, lp_iter *it, double t)
{
    if (it->ended || it->it == NULL)
        return 0;
    if (it->kind == LP_IT_AS_COMPLETED && it->deadline > 0) {
        t = it->deadline - pool_now();
        if (t < 0)
            t = 0;
    }
    const msgpack_object *v = NULL;
    size_t idx = 0;
    bool rel = scn_gil_release(L);
    int st = pool_iter_next(it->it, t, &v, &idx);
    scn_gil_reacquire(rel);
    if (st == POOL_EEND) {
        iter_release(it);
        return 0;
    }
    if (st == POOL_ETIMEDOUT) {
        if (it->kind == LP_IT_AS_COMPLETED)
            return raise_plain(L, "TimeoutError: %d (of %d) futures unfinished",
                              (int)(it->nfutures - it->yielded), (int)it->nfutures);
        return raise_plain(L, "TimeoutError: no next result within %f s", t);
    }
    if (it->kind == LP_IT_AS_COMPLETED) {
        if (st != POOL_OK)
            return raise_status(L, st, pool_iter_error(it->it));
        it->yielded++;
        lua_getiuservalue(L, 1, 2);
        lua_rawgeti(L, -1, (lua_Integer)idx + 1);
        lua_pushinteger(L, (lua_Integer)idx + 1);
        return 2;
    }
    if (st == POOL_OK) {
        lua_pushinteger(L, (lua_Integer)idx + 1);
        if (v)
            luav_push(L, v);
        else
            lua_pushnil(L);
        return 2;
    }
    /* An item's error: (i, nil, err); the whole iteration's: (0, nil, err),
     * and the next step ends it. */
    bool whole = idx == SIZE_MAX;
    lua_pushinteger(L, whole ? 0 : (lua_Integer)idx + 1);
    lua_pushnil(L);
    push_error(L, st, pool_iter_error(it->it));
    if (whole)
        iter_release(it);
    return 3;
}

static int it_call(lua_State *L)
{
    return iter_next(L, luaL_checkudata(L, 1, LP_ITER), -1);
}

/* it:next([timeout]) */
static int it_next(lua_State *L)
{
    lp_iter *it = luaL_checkudata(L, 1, LP_ITER);
    return iter_next(L, it, opt_timeout(L, 2));
}

/* it:close(), __close, __gc */
static int it_close(lua_State *L)
{
    lp_iter *it = luaL_checkudata(L, 1, LP_ITER);
    iter_release(it);
    return 0;
}

static int it_gc(lua_State *L)
{
    lp_iter *it = luaL_checkudata(L, 1, LP_ITER);
    iter_release(it);
    msgpack_sbuffer_destroy(&it->items);
    msgpack_sbuffer_init(&it->items);
    free(it->futures);
    it->futures = NULL;
    return 0;
}

/* ---- close, join, terminate ------------------------------------------------------ */

static int p_close(lua_State *L)
{
    drop_self(L);
    lp_run *run = run_of(L);
    int st = pool_close(run->p);
    if (st != POOL_OK)
        return raise_status(L, st, pool_last_error());
    return 0;
}

/* join: the clock stops when it returns (if the strategy has not stopped
 * it): the work is over then. */
static int p_join(lua_State *L)
{
    drop_self(L);
    lp_run *run = run_of(L);
    bool rel = scn_gil_release(L);
    int st = pool_join(run->p);
    scn_gil_reacquire(rel);
    if (st != POOL_OK)
        return raise_status(L, st, st == POOL_ESTATE ? "Pool is still running (close or "
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
    drop_self(L);
    lp_run *run = run_of(L);
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
    drop_self(L);
    lp_run *run = run_of(L);
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
    drop_self(L);
    lp_run *run = run_of(L);
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
    drop_self(L);
    run_of(L);
    const char *task = check_task(L, 1);
    msgpack_sbuffer args, res;
    msgpack_sbuffer_init(&args);
    msgpack_sbuffer_init(&res);
    pack_list(L, 2, &args, "args");
    bool rel = scn_gil_release(L);
    int st = pool_task_call(task, args.data, args.size, &res);
    scn_gil_reacquire(rel);
    msgpack_sbuffer_destroy(&args);
    if (st != POOL_OK) {
        msgpack_sbuffer_destroy(&res);
        return raise_status(L, st, pool_last_error());
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
    drop_self(L);
    lp_run *run = run_of(L);
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0, 1, "a count >= 0 expected");
    run->out->tasks_total = (size_t)n;
    return 0;
}

static int p_note(lua_State *L)
{
    drop_self(L);
    lp_run *run = run_of(L);
    snprintf(run->out->note, sizeof run->out->note, "%s", luaL_checkstring(L, 1));
    return 0;
}

static int p_fact(lua_State *L)
{
    drop_self(L);
    lp_run *run = run_of(L);
    strat_fact_set(run->out, luaL_checkstring(L, 1), luaL_checknumber(L, 2));
    return 0;
}

/* ---- pb.thread: an OS thread running Lua under the lock ------------------------------ */

static int thread_body_lua(lua_State *T)
{
    lp_thread *th = lua_touserdata(T, 1);
    lua_rawgeti(T, LUA_REGISTRYINDEX, th->fn_ref);
    lua_call(T, 0, 0);
    return 0;
}

/* The hook set on a pb.thread still running when its strategy has ended:
 * its next Lua instruction raises, so a loop waiting for a flag the
 * strategy never set (it raised first) ends, and so does the join. */
static void thread_stop_hook(lua_State *T, lua_Debug *ar)
{
    (void)ar;
    luaL_error(T, "pb.thread stopped: its strategy had ended without joining it");
}

static void *thread_main(void *arg)
{
    lp_thread *th = arg;
    lp_run *run = th->run;
    scn_lock();
    lua_State *T = lua_newthread(run->anchor);
    int tref = luaL_ref(run->anchor, LUA_REGISTRYINDEX);
    lua_pushcfunction(T, thread_body_lua);
    lua_pushlightuserdata(T, th);
    th->T = T;
    if (run->threads_stopped) /* it got the lock only after its strategy ended */
        lua_sethook(T, thread_stop_hook, LUA_MASKCOUNT, 1);
    th->ok = scn_pcall_on(run->s, T, 1, 0, th->err, sizeof th->err) == 0;
    th->T = NULL;
    luaL_unref(run->anchor, LUA_REGISTRYINDEX, tref);
    scn_unlock();
    return NULL;
}

/* pb.thread(fn): starts fn on a new OS thread; :join() waits for it. */
static int pb_thread(lua_State *L)
{
    lp_run *run = run_of(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (run->nthreads == LP_MAX_THREADS)
        return luaL_error(L, "pb.thread: at most %d threads per run", LP_MAX_THREADS);
    lp_thread *th = lua_newuserdatauv(L, sizeof *th, 1);
    memset(th, 0, sizeof *th);
    th->run = run;
    th->fn_ref = th->self_ref = LUA_NOREF;
    luaL_setmetatable(L, LP_THREAD);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, 1);
    th->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, -1);
    th->self_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* alive while it runs */
    if (pthread_create(&th->tid, NULL, thread_main, th) != 0)
        return luaL_error(L, "pb.thread: cannot start a thread");
    th->started = true;
    run->threads[run->nthreads++] = th;
    return 1;
}

static void thread_join(lua_State *L, lp_thread *th)
{
    if (th->joined || !th->started)
        return;
    bool rel = scn_gil_release(L);
    pthread_join(th->tid, NULL);
    scn_gil_reacquire(rel);
    th->joined = true;
    luaL_unref(L, LUA_REGISTRYINDEX, th->fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, th->self_ref);
    th->fn_ref = th->self_ref = LUA_NOREF;
}

/* t:join(): true, or false and the error the thread's function raised. */
static int th_join(lua_State *L)
{
    lp_thread *th = luaL_checkudata(L, 1, LP_THREAD);
    thread_join(L, th);
    lua_pushboolean(L, th->ok);
    if (th->ok)
        return 1;
    lua_pushstring(L, th->err);
    return 2;
}

/* ---- the run ---------------------------------------------------------------------------- */

static void new_metatables(lua_State *L)
{
    static const luaL_Reg handle[] = {
        {"get", h_get},     {"result", h_get},   {"wait", h_wait},
        {"ready", h_ready}, {"done", h_ready},   {"successful", h_successful},
        {"add_done_callback", h_add_done_callback}, {NULL, NULL},
    };
    static const luaL_Reg iter[] = {{"next", it_next}, {"close", it_close}, {NULL, NULL}};
    if (luaL_newmetatable(L, LP_HANDLE)) {
        luaL_newlib(L, handle);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, h_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, LP_ITER)) {
        luaL_newlib(L, iter);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, it_call);
        lua_setfield(L, -2, "__call");
        lua_pushcfunction(L, it_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, it_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, LP_THREAD)) {
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, th_join);
        lua_setfield(L, -2, "join");
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newmetatable(L, LP_RUN);
    lua_pop(L, 1);
}

lp_run *lp_open(lua_State *L, scn_scenario *s, pool *p, const strat_workload *w,
                strat_outcome *out)
{
    static const luaL_Reg fns[] = {
        {"apply", p_apply},
        {"apply_async", p_apply_async},
        {"map", p_map},
        {"map_async", p_map_async},
        {"starmap", p_starmap},
        {"starmap_async", p_starmap_async},
        {"imap", p_imap},
        {"imap_unordered", p_imap_unordered},
        {"submit", p_submit},
        {"as_completed", p_as_completed},
        {"executor_map", p_executor_map},
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
        lua_pushcclosure(L, pb_thread, 1);
        lua_setfield(L, -2, "thread");
    }
    lua_pop(L, 1);

    lua_createtable(L, 0, 32);
    for (const luaL_Reg *f = fns; f->name; f++) {
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

void lp_after(lp_run *run, lua_State *L)
{
    if (run->out->wall_s == 0)
        strat_stop_clock(run->out);
    bool left = false;
    for (int i = 0; i < run->nthreads; i++)
        left = left || !run->threads[i]->joined;
    if (!left)
        return;
    snprintf(run->out->note, sizeof run->out->note,
             "the strategy ended with pb.threads unjoined: the pool was terminated, "
             "the threads stopped at their next Lua instruction");
    /* Under the lock none of them runs Lua: each sees the hook when it next
     * does (after the pb call it is in, each of which is bounded). */
    run->threads_stopped = true;
    for (int i = 0; i < run->nthreads; i++)
        if (run->threads[i]->T)
            lua_sethook(run->threads[i]->T, thread_stop_hook, LUA_MASKCOUNT, 1);
    bool rel = scn_gil_release(L);
    pool_terminate(run->p);
    scn_gil_reacquire(rel);
    for (int i = 0; i < run->nthreads; i++)
        thread_join(L, run->threads[i]);
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
