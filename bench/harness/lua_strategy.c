/*
 * lua_strategy.c: a strategy written in Lua, run exactly as a C one.
 *
 * A C strategy creates its pool with strat_pool_create, sends each item's
 * final result through strat_final, and ends with strat_pool_finish: that
 * is where startup_s, wall_s, tasks_run, the stop rule, stopped_s, the
 * stats and the trace come from. A Lua strategy goes through the same three:
 *
 *   1. strat_pool_create, before the interpreter lock is taken (the engine
 *      forks its fork server there, and a fork must not copy a held lock);
 *   2. the lock taken, the strategy's function called on a Lua thread of
 *      its own, function(pool, items, p), with the pool of lua_pool.c: its
 *      pool:final(i, value, err) is strat_final;
 *   3. the lock released, strat_pool_finish: at an answer (the stop rule
 *      said yes) the pool is terminated, otherwise closed and joined, and
 *      the engine's stats and trace are copied into the outcome as for a C
 *      strategy. Callbacks still pending take the lock as they run.
 *
 * A strategy that raises fails that strategy alone: run returns -1 with the
 * error, "file:line: message", in first_error (the runner marks it
 * run_failed and goes on with the next).
 */
#include "lua_strategy.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_pool.h"
#include "lua_values.h"

/* Bound by the runner on its (single) thread before each variant runs. */
static scn_scenario *ls_scenario;
static const strategy *ls_strategy;

void lua_strat_bind(scn_scenario *s, const strategy *impl)
{
    ls_scenario = s;
    ls_strategy = impl;
}

bool lua_strat_is(const strategy *impl)
{
    return impl && impl->run == scn_lua_strategy_run;
}

typedef struct ls_call {
    scn_scenario *s;
    const char *name;
    pool *p;
    const strat_workload *w;
    strat_outcome *out;
    lp_run *run; /* set once the pool table exists */
} ls_call;

/* Under scn_pcall_on: strategies[name](pool, items, P). */
static int ls_body(lua_State *T)
{
    ls_call *c = lua_touserdata(T, 1);
    lua_rawgeti(T, LUA_REGISTRYINDEX, c->s->strategies_ref);
    scn_rawgetfield(T, -1, c->name);
    lua_remove(T, -2);
    if (lua_type(T, -1) != LUA_TFUNCTION)
        return luaL_error(T, "strategy '%s' is not a function", c->name);
    c->run = lp_open(T, c->s, c->p, c->w, c->out);
    if (c->w->items_count) {
        luav_push_count(T, c->w->n); /* 1..n, nothing per item */
        lua_getglobal(T, "P");
        lua_call(T, 3, 0);
        return 0;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, c->w->items, c->w->items_len, &off) != MSGPACK_UNPACK_SUCCESS) {
        msgpack_unpacked_destroy(&u);
        return luaL_error(T, "the items are not a packed array");
    }
    luav_push(T, &u.data); /* a list of n values; u leaks only if this raises */
    msgpack_unpacked_destroy(&u);
    lua_getglobal(T, "P");
    lua_call(T, 3, 0);
    return 0;
}

int scn_lua_strategy_run(const strat_workload *w, strat_outcome *out)
{
    scn_scenario *s = ls_scenario;
    if (s == NULL || !lua_strat_is(ls_strategy)) {
        snprintf(out->first_error, sizeof out->first_error,
                 "a Lua strategy ran with no scenario bound (lua_strat_bind)");
        return -1;
    }
    pool *p = strat_pool_create(w, out, NULL, STRAT_TASK_PER_STAGE);
    if (p == NULL)
        return -1;
    char err[SCN_ERR] = "";
    ls_call c = {s, ls_strategy->name, p, w, out, NULL};

    scn_lock();
    scn_gil_enable(true);
    lua_State *L = s->L;
    int top = lua_gettop(L);
    lua_State *T = lua_newthread(L);
    int tref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushcfunction(T, ls_body);
    lua_pushlightuserdata(T, &c);
    int rc = scn_pcall_on(s, T, 1, 0, err, sizeof err);
    if (rc > 0)
        snprintf(err, sizeof err, "%s: strategy '%s' raised poolbench's skip marker", s->path,
                 c.name);
    if (c.run)
        lp_after(c.run, T);
    else if (out->wall_s == 0)
        strat_stop_clock(out);
    scn_unlock(); /* callbacks still due take it as they run */

    bool answer = rc == 0 && c.run && lp_answered(c.run);
    if (rc != 0)
        pool_terminate(p);
    strat_pool_finish(p, out, NULL, answer);

    scn_lock();
    if (c.run)
        lp_close(c.run, T);
    luaL_unref(L, LUA_REGISTRYINDEX, tref);
    lua_settop(L, top);
    scn_gil_enable(false);
    scn_unlock();
    if (rc != 0) {
        snprintf(out->first_error, sizeof out->first_error, "%.255s", err);
        return -1;
    }
    return 0;
}

int lua_strat_add(scn_scenario *s, const char *name, const char *label, char *err,
                  size_t errlen)
{
    lua_State *L = s->L;
    if (strat_find(name) || s->nvariants == SCN_MAX_VARIANTS) {
        snprintf(err, errlen, "cannot add strategy '%s': %s", name,
                 strat_find(name) ? "a C strategy has that name" : "too many strategies");
        lua_pop(L, 1);
        return -1;
    }
    for (int i = 0; i < s->nvariants; i++)
        if (strcmp(s->variants[i].label, label) == 0) {
            snprintf(err, errlen, "cannot add strategy '%s': label '%s' is taken", name, label);
            lua_pop(L, 1);
            return -1;
        }
    if (s->strategies_ref == LUA_NOREF) {
        lua_newtable(L);
        s->strategies_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->strategies_ref);
    lua_insert(L, -2);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
    /* Variants point into the array: move them along with it. */
    int at[SCN_MAX_VARIANTS];
    for (int i = 0; i < s->nvariants; i++) {
        at[i] = -1;
        for (int k = 0; k < s->nlua_strats; k++)
            if (s->variants[i].impl == &s->lua_strats[k])
                at[i] = k;
    }
    strategy *st = realloc(s->lua_strats, (size_t)(s->nlua_strats + 1) * sizeof *st);
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < s->nvariants; i++)
        if (at[i] >= 0)
            s->variants[i].impl = &st[at[i]];
    s->lua_strats = st;
    st[s->nlua_strats] = (strategy){scn_strdup(name), "lua", "a Lua strategy",
                                    scn_lua_strategy_run};
    scn_variant *v = &s->variants[s->nvariants++];
    memset(v, 0, sizeof *v);
    v->label = scn_strdup(label);
    v->impl = &st[s->nlua_strats++];
    v->line = 0;
    return 0;
}

void lua_strat_copy_set(scn_scenario *s, const char *from_label)
{
    scn_variant *last = &s->variants[s->nvariants - 1];
    for (int i = 0; i < s->nvariants - 1; i++)
        if (strcmp(s->variants[i].label, from_label) == 0) {
            last->nset = s->variants[i].nset;
            memcpy(last->set_param, s->variants[i].set_param, sizeof last->set_param);
            memcpy(last->set_value, s->variants[i].set_value, sizeof last->set_value);
        }
}
