/*
 * runner_callbacks.c: what the engine calls back into a scenario's Lua
 * during a run: its Lua tasks, its stop rule and its observe hook.
 *
 * Lua tasks. The engine runs named C tasks, so each Lua task is registered
 * under its name with one C trampoline, lua_task(), whose udata is the name.
 * In a worker, the trampoline runs in the worker's own copy of the parent's
 * Lua state (a worker is a fork of the fork server, itself a fork of this
 * process at pool_create, after the runner set P): it finds tasks[name],
 * pushes the arguments (luav_push_args), calls the function under a message
 * handler that appends a traceback, and packs the result (luav_pack). The
 * same trampoline may run in the parent, on the result-handler thread, when
 * a strategy runs a stage there (callback_chain): hence scn_lock() around
 * every use, in workers too (there it is simply free).
 *
 * The stop rule is the same idea the other way: impls/strategy.c calls
 * run_stop() (and run_observe()) under its own lock, strat_lock, and they
 * call the Lua stop(result, item) under ours. Lock order: strat_lock, then
 * scn_lock; the trampoline takes only scn_lock, so no cycle.
 *
 * pb.fact(name, value), registered here with the tasks, lets the stop rule
 * and the observe hook put what they count into the running repeat's
 * facts (r[label].facts), so checks need no recorder kept in Lua.
 */
#include "runner_callbacks.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lua_values.h"

/* The scenario whose tasks are registered: set once, before any pool. */
static scn_scenario *run_cur;

/* ---- the Lua task trampoline ---------------------------------------------- */

typedef struct task_call {
    const char *name;
    const msgpack_object_array *args;
} task_call;

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Under lua_pcall: luav_push_args may raise, as may the task. */
static int call_task(lua_State *L)
{
    const task_call *c = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, run_cur->tasks_ref);
    lua_getfield(L, -1, c->name);
    luav_push_args(L, c->args); /* checks the stack room itself */
    lua_call(L, (int)c->args->size, 1);
    return 1;
}

static int lua_task(const msgpack_object_array *args, msgpack_packer *out, pool_task_ctx *ctx)
{
    const char *name = pool_task_udata(ctx);
    if (run_cur == NULL)
        return pool_task_fail(ctx, "Lua task '%s': no scenario is loaded", name);
    scn_lock();
    lua_State *L = run_cur->L;
    int top = lua_gettop(L), rc = 0;
    task_call c = {name, args};
    lua_pushcfunction(L, traceback);
    lua_pushcfunction(L, call_task);
    lua_pushlightuserdata(L, &c);
    if (lua_pcall(L, 1, 1, top + 1) != LUA_OK) {
        rc = pool_task_fail(ctx, "%s", lua_tostring(L, -1));
    } else {
        /* Packed aside first: on failure luav_pack may leave a partial
         * value, which must not reach the engine's buffer. */
        msgpack_sbuffer buf;
        msgpack_packer pk;
        char why[256];
        msgpack_sbuffer_init(&buf);
        msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
        if (luav_pack(L, -1, &pk, why, sizeof why) != 0)
            rc = pool_task_fail(ctx, "task '%s' returned a value that cannot cross processes: %s",
                                name, why);
        else
            out->callback(out->data, buf.data, buf.size);
        msgpack_sbuffer_destroy(&buf);
    }
    lua_settop(L, top);
    scn_unlock();
    return rc;
}

/* ---- pb.fact: a figure the scenario's parent-side code records ------------- */

/* The running repeat's facts live in a registry table (made by
 * run_facts_begin, read by run_facts_end), so a stop rule or observe hook
 * can put what it counted into r[label].facts, where checks read it and
 * where CPython's twin reports its own figure under the same name (so
 * `poolbench compare` judges each engine by its own figures). */
#define RUN_FACTS_KEY "poolbench.run_facts"
static pid_t run_parent_pid;

/* pb.fact(name, number) sets a fact of the running strategy; pb.fact(name)
 * reads it back (nil if unset) for counting across calls. */
static int pb_fact(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    bool get = lua_isnoneornil(L, 2);
    lua_Number v = get ? 0 : luaL_checknumber(L, 2);
    luaL_argcheck(L, strlen(name) < sizeof ((strat_outcome *)0)->facts[0].name, 1,
                  "a name of at most 31 characters expected");
    if (getpid() != run_parent_pid)
        return luaL_error(L, "pb.fact records in the parent (stop, observe); not in a task");
    if (lua_getfield(L, LUA_REGISTRYINDEX, RUN_FACTS_KEY) != LUA_TTABLE)
        return luaL_error(L, "pb.fact: no strategy is running");
    if (get) {
        lua_getfield(L, -1, name);
        return 1;
    }
    lua_pushnumber(L, v);
    lua_setfield(L, -2, name);
    return 0;
}

void run_facts_begin(scn_scenario *s)
{
    scn_lock();
    lua_newtable(s->L);
    lua_setfield(s->L, LUA_REGISTRYINDEX, RUN_FACTS_KEY);
    scn_unlock();
}

void run_facts_end(scn_scenario *s, strat_outcome *out)
{
    lua_State *L = s->L;
    scn_lock();
    if (lua_getfield(L, LUA_REGISTRYINDEX, RUN_FACTS_KEY) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2) != 0) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TNUMBER)
                strat_fact_set(out, lua_tostring(L, -2), lua_tonumber(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, RUN_FACTS_KEY);
    scn_unlock();
}

void run_register_tasks(scn_scenario *s)
{
    run_cur = s;
    run_parent_pid = getpid();
    if (lua_getglobal(s->L, "pb") == LUA_TTABLE) {
        lua_pushcfunction(s->L, pb_fact);
        lua_setfield(s->L, -2, "fact");
    }
    lua_pop(s->L, 1);
    strat_register_tasks();
    for (int i = 0; i < s->ntasks; i++)
        pool_task_register(s->tasks[i], lua_task, s->tasks[i]);
}

/* ---- the stop rule and the observe hook ------------------------------------ */

/* Pushes the call's result (nil when none) and its item, 1-based as Lua
 * lists are. */
static void push_result_item(lua_State *L, const stop_ctx *c)
{
    if (c->result)
        luav_push(L, c->result);
    else
        lua_pushnil(L);
    lua_pushinteger(L, (lua_Integer)c->item + 1);
}

static int call_stop(lua_State *L)
{
    stop_ctx *c = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
    push_result_item(L, c);
    lua_call(L, 2, 1);
    return 1;
}

static int call_observe(lua_State *L)
{
    stop_ctx *c = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->observe_ref);
    push_result_item(L, c);
    if (c->error)
        lua_pushstring(L, c->error);
    else
        lua_pushnil(L);
    lua_call(L, 3, 0);
    return 0;
}

/*
 * Calls fn (call_stop or call_observe) on c under scn_lock, with c->result
 * and c->item already set. Keeps the first error in c (`what` names the
 * hook when the error is a table). The caller reads any result at the top
 * of the stack before unlocking; returns the stack's old top for that.
 */
static int call_hook(stop_ctx *c, lua_CFunction fn, int nresults, const char *what, int *rc)
{
    char err[SCN_ERR];
    int top = lua_gettop(c->s->L);
    lua_pushcfunction(c->s->L, fn);
    lua_pushlightuserdata(c->s->L, c);
    *rc = scn_pcall(c->s, 1, nresults, err, sizeof err);
    if (*rc != 0 && !c->failed) {
        c->failed = true;
        snprintf(c->err, sizeof c->err, "%s", *rc > 0 ? what : err);
    }
    return top;
}

/* The workload's observe(result, item, error): every final result, in the
 * parent, under the same lock as the stop rule. */
void run_observe(void *ctx, int status, const msgpack_object *result, const char *error,
                 size_t item)
{
    stop_ctx *c = ctx;
    int rc;
    scn_lock();
    c->result = result;
    c->error = status == POOL_OK ? NULL : (error ? error : pool_status_name(status));
    c->item = item;
    int top = call_hook(c, call_observe, 0, "observe raised a table", &rc);
    lua_settop(c->s->L, top);
    scn_unlock();
}

bool run_stop(void *ctx, const msgpack_object *result, size_t item)
{
    stop_ctx *c = ctx;
    int rc;
    scn_lock();
    c->result = result;
    c->item = item;
    int top = call_hook(c, call_stop, 1, "stop raised a table", &rc);
    bool yes = rc == 0 && lua_toboolean(c->s->L, -1);
    lua_settop(c->s->L, top);
    scn_unlock();
    return yes;
}
