/*
 * lua_args.c: what every method of a Lua strategy's pool does first: find
 * its run (and refuse one that is over or interrupted), drop the `self` of
 * pool:m(...), check a task's name, a timeout, a list of items or arguments
 * and the options table; and how each raises, "Kind: message" as Python's
 * exceptions are named (TimeoutError, TaskError, ...), so that a strategy
 * can match the kind.
 *
 * Why a file of its own: lua_pool.c (the run and its table), lua_handle.c,
 * lua_iter.c and lua_thread.c all use these, and they use nothing of those:
 * kept here, below them all, the dependencies run one way (lua_pool.c's
 * comment draws them). lua_pool_internal.h declares them.
 */
#include "lua_pool_internal.h"

#include <lauxlib.h>
#include <stdarg.h>

#include "lua_values.h"

lp_run *lp_run_of(lua_State *L)
{
    lp_run *run = luaL_checkudata(L, lua_upvalueindex(1), LP_RUN);
    if (run->p == NULL)
        luaL_error(L, "this pool belongs to a strategy run that is over");
    /* SIGINT, SIGTERM, the run's time limit: the strategy's next call ends
     * it (its blocking calls return at once: the pool is interrupted). */
    if (strat_interrupted())
        lp_raise_plain(L, "Interrupted: the run was interrupted");
    return run;
}

/* Methods are called pool:m(...): drops the pool table when it is there,
 * so that pool.as_completed(...) works too. */
void lp_drop_self(lua_State *L)
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
void lp_push_error(lua_State *L, int st, const char *msg)
{
    lua_pushfstring(L, "%s: %s", lp_kind(st), msg ? msg : pool_status_name(st));
}

/* Raises "Kind: message" with no position in front, so that code can
 * match it (e:match("^TimeoutError")); an uncaught one gets file:line from
 * scn_pcall's handler. */
int lp_raise_plain(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return lua_error(L);
}

int lp_raise_status(lua_State *L, int st, const char *msg)
{
    lp_push_error(L, st, msg);
    return lua_error(L);
}

/* The timeout argument: nil (or absent) waits forever. */
double lp_opt_timeout(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return -1;
    double t = luaL_checknumber(L, idx);
    luaL_argcheck(L, t >= 0 && t <= 1e6, idx, "a timeout from 0 to 1e6 seconds expected");
    return t;
}

const char *lp_check_task(lua_State *L, int idx)
{
    const char *t = luaL_checkstring(L, idx);
    if (!pool_task_exists(t))
        lp_raise_plain(L, "ValueError: no task named '%s' (the scenario's tasks, the engine's "
                   "built-ins, or strat_chain)", t);
    return t;
}

/* Packs the list at idx (nil: the empty list) into buf; raises when it is
 * not a list (a table with keys 1..n) or holds what cannot cross. */
void lp_pack_list(lua_State *L, int idx, msgpack_sbuffer *buf, const char *what)
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
 * a number (the chunksize), or nil (lp_opts: lua_pool_internal.h). */
void lp_read_opts(lua_State *L, int idx, lp_opts *o)
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
