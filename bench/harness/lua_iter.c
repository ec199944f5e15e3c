/*
 * lua_iter.c: imap, imap_unordered, executor_map and as_completed for a Lua
 * strategy: iterators over the engine's pool_iter.
 *
 * An iterator is userdata holding a pool_iter, callable (so a generic `for`
 * uses it) and to-be-closed (a `break` frees it at once; __gc too, if
 * abandoned otherwise). It keeps the run userdata as its user value, so the
 * run outlives it, and the packed items (or as_completed's futures, user
 * value 2) as long as the engine reads them. Each step releases the
 * interpreter lock while it waits in pool_iter_next.
 *
 * Why a file of its own: the iterators are one concept, pool_iter seen from
 * Lua, as lua_handle.c is pool_result. Uses lua_args.c's helpers (and reads a
 * handle's pool_result for as_completed: lp_handle, lua_pool_internal.h);
 * lua_pool.c's lp_open registers lp_iter_fns and lp_iter_metatable.
 */
#include "lua_pool_internal.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "lua_values.h"

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
    lp_drop_self(L);
    lp_run *run = lp_run_of(L);
    const char *task = lp_check_task(L, 1);
    lp_opts o;
    lp_read_opts(L, 3, &o);
    luaL_unref(L, LUA_REGISTRYINDEX, o.fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, o.efn_ref);
    lp_iter *it = push_iter(L, LP_IT_ITEMS);
    lp_pack_list(L, 2, &it->items, "items");
    pool_imap_opts io = {.chunksize = o.chunksize, .buffersize = o.buffersize,
                         .ordered = mode != 1};
    if (mode == 2)
        it->it = pool_executor_map_opt(run->p, task, it->items.data, it->items.size, &io);
    else
        it->it = pool_imap_array_opt(run->p, task, it->items.data, it->items.size, &io);
    if (it->it == NULL)
        return lp_raise_status(L, pool_last_status(), pool_last_error());
    return push_for(L);
}

static int p_imap(lua_State *L) { return iter_common(L, 0); }
static int p_imap_unordered(lua_State *L) { return iter_common(L, 1); }
static int p_executor_map(lua_State *L) { return iter_common(L, 2); }

/* pool.as_completed(futures, [timeout]): yields each future as it is done,
 * and its position in the list. */
static int p_as_completed(lua_State *L)
{
    lp_drop_self(L);
    lp_run_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    double t = lp_opt_timeout(L, 2);
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
        return lp_raise_status(L, pool_last_status(), pool_last_error());
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
            return lp_raise_plain(L, "TimeoutError: %d (of %d) futures unfinished",
                              (int)(it->nfutures - it->yielded), (int)it->nfutures);
        return lp_raise_plain(L, "TimeoutError: no next result within %f s", t);
    }
    if (it->kind == LP_IT_AS_COMPLETED) {
        if (st != POOL_OK)
            return lp_raise_status(L, st, pool_iter_error(it->it));
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
    lp_push_error(L, st, pool_iter_error(it->it));
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
    return iter_next(L, it, lp_opt_timeout(L, 2));
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

/* The pool's methods of this file (lp_open puts them in the pool table). */
const luaL_Reg lp_iter_fns[] = {
    {"imap", p_imap},
    {"imap_unordered", p_imap_unordered},
    {"as_completed", p_as_completed},
    {"executor_map", p_executor_map},
    {NULL, NULL},
};

/* The metatable of iterators (lp_open makes it): callable, to-be-closed. */
void lp_iter_metatable(lua_State *L)
{
    static const luaL_Reg iter[] = {{"next", it_next}, {"close", it_close}, {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__call", it_call}, {"__close", it_close}, {"__gc", it_gc}, {NULL, NULL}};
    if (luaL_newmetatable(L, LP_ITER)) {
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, iter);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}
