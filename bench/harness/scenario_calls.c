/*
 * scenario_calls.c: the parent's calls into a loaded scenario's functions:
 * workload(p), model[label](p), and the optional hooks setup(p) and
 * done(report).
 *
 * workload(p) is turned into plain C data at once (scn_workload): the items
 * packed as one msgpack array, the stage names checked against the Lua tasks
 * and the engine's built-ins. Only the stop and observe rules stay Lua
 * functions, called later under the lock by the runner (runner_callbacks.c).
 * Each call takes scn_lock() itself, runs under scn_protected (the
 * scenario's functions and tables may raise anything, from a metamethod
 * too), reads the tables raw, and reports "file:line: message".
 */
#include "scenario.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_values.h"

#define BUILTINS "sleep, spin, square, identity, fail, die, getpid, init_count"
#define MAX_ITEMS 100000000L /* a count beyond this is a typo, not a workload */

/* ---- workload(p) ------------------------------------------------------------ */

static bool is_lua_task(const scn_scenario *s, const char *name)
{
    for (int i = 0; i < s->ntasks; i++)
        if (strcmp(s->tasks[i], name) == 0)
            return true;
    return false;
}

/* A task name the workload gave (a stage or the initializer), checked. */
static int task_name(scn_scenario *s, int idx, const char *what, char **out, char *err,
                     size_t errlen)
{
    lua_State *L = s->L;
    if (lua_type(L, idx) != LUA_TSTRING) {
        snprintf(err, errlen, "%s:%d: workload: %s must be a task name, not a %s", s->path,
                 scn_line_of_key(s, "workload", 1), what, luaL_typename(L, idx));
        return -1;
    }
    const char *name = lua_tostring(L, idx);
    if (!is_lua_task(s, name) && !pool_task_exists(name)) {
        char list[512] = "";
        for (int i = 0; i < s->ntasks; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s, ", s->tasks[i]);
        snprintf(err, errlen,
                 "%s:%d: workload: %s '%s' is not a task (Lua tasks: %sbuilt-in: " BUILTINS ")",
                 s->path, scn_line_of_name(s, name), what, name, list[0] ? list : "none; ");
        return -1;
    }
    *out = strdup(name);
    return 0;
}

/* items: a count n (1..n, w->count) or a list, packed into w->items. */
static int workload_items(scn_scenario *s, scn_workload *w, int line, char *err, size_t errlen)
{
    lua_State *L = s->L;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w->items, msgpack_sbuffer_write);
    if (lua_type(L, -1) == LUA_TNUMBER) {
        /* lua_tointegerx: a float only when it is a whole number that fits
         * (1e300 does not), never a cast that wraps. */
        int isnum = 0;
        lua_Integer n = lua_tointegerx(L, -1, &isnum);
        if (!isnum)
            n = -1;
        if (n < 0 || n > MAX_ITEMS) {
            char got[64];
            if (lua_isinteger(L, -1))
                snprintf(got, sizeof got, "%lld", (long long)lua_tointeger(L, -1));
            else
                snprintf(got, sizeof got, "%.14g", (double)lua_tonumber(L, -1));
            snprintf(err, errlen, "%s:%d: workload: items must be a count from 0 to %ld or a "
                     "list (got %s)", s->path, line, MAX_ITEMS, got);
            return -1;
        }
        w->n = (size_t)n; /* 1..n made as read: 10^7 items cost nothing here */
        w->count = true;
        return 0;
    }
    char why[256] = "a list is expected";
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    bool ok = lua_type(L, -1) == LUA_TTABLE && luav_pack(L, -1, &pk, why, sizeof why) == 0 &&
              msgpack_unpack_next(&u, w->items.data, w->items.size, &off) ==
                  MSGPACK_UNPACK_SUCCESS &&
              u.data.type == MSGPACK_OBJECT_ARRAY;
    if (ok)
        w->n = u.data.via.array.size;
    msgpack_unpacked_destroy(&u);
    if (!ok)
        snprintf(err, errlen, "%s:%d: workload: items must be a count or a list (1, 2, ...): %s",
                 s->path, line, why);
    return ok ? 0 : -1;
}

/* Every key of the workload's table (at t) is one of its fields. */
static int workload_fields(scn_scenario *s, int t, int line, char *err, size_t errlen)
{
    static const char *const fields[] = {"items", "stages", "stop", "observe", "initializer",
                                         "initargs", "fire_and_forget", NULL};
    lua_State *L = s->L;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        bool known = false;
        for (int i = 0; fields[i] && !known; i++)
            known = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), fields[i]) == 0;
        if (!known) {
            char kb[128];
            snprintf(err, errlen, "%s:%d: workload: unknown field '%s' (fields: items, stages, "
                     "stop, observe, initializer, initargs, fire_and_forget)", s->path, line,
                     scn_key_name(L, -1, kb, sizeof kb));
            return -1;
        }
    }
    return 0;
}

/* stages: one task name or a list of them, each checked, into w->stages. */
static int workload_stages(scn_scenario *s, scn_workload *w, int t, int line, char *err,
                           size_t errlen)
{
    lua_State *L = s->L;
    int type = scn_rawgetfield(L, t, "stages");
    if (type == LUA_TSTRING) {
        lua_createtable(L, 1, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
    } else if (type != LUA_TTABLE) {
        snprintf(err, errlen, "%s:%d: workload: stages must be a list of task names", s->path,
                 line);
        return -1;
    }
    lua_Integer ns = (lua_Integer)lua_rawlen(L, -1);
    if (ns < 1 || ns > STRAT_MAX_STAGES) {
        snprintf(err, errlen, "%s:%d: workload: from 1 to %d stages (got %lld)", s->path, line,
                 STRAT_MAX_STAGES, (long long)ns);
        return -1;
    }
    for (lua_Integer i = 1; i <= ns; i++) {
        lua_rawgeti(L, -1, i);
        if (task_name(s, -1, "stage", &w->stages[w->nstages], err, errlen) != 0)
            return -1;
        w->nstages++;
        lua_pop(L, 1);
    }
    return 0;
}

/* An optional function field (stop, observe) of the table at t: a registry
 * reference in *ref, or LUA_NOREF when nil. `shape` is what the message
 * says it must be. */
static int workload_function(scn_scenario *s, int t, const char *key, const char *shape,
                             int *ref, int line, char *err, size_t errlen)
{
    int type = scn_rawgetfield(s->L, t, key);
    if (type == LUA_TFUNCTION) {
        *ref = luaL_ref(s->L, LUA_REGISTRYINDEX);
        return 0;
    }
    if (type == LUA_TNIL)
        return 0;
    snprintf(err, errlen, "%s:%d: workload: %s must be a %s", s->path, line, key, shape);
    return -1;
}

/* initargs = {a, b}: the initializer's arguments, as CPython's
 * Pool(initializer, initargs); packed as one array (lua_values.c). */
static int workload_initargs(scn_scenario *s, scn_workload *w, int t, int line, char *err,
                             size_t errlen)
{
    lua_State *L = s->L;
    int type = scn_rawgetfield(L, t, "initargs");
    if (type == LUA_TNIL)
        return 0;
    char why[256] = "a list is expected";
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w->initargs, msgpack_sbuffer_write);
    if (w->initializer == NULL)
        snprintf(why, sizeof why, "there is no initializer to give them to");
    else if (type == LUA_TTABLE && luav_pack(L, -1, &pk, why, sizeof why) == 0 &&
             w->initargs.size > 0 && (((unsigned char)w->initargs.data[0] & 0xf0) == 0x90 ||
                                      (unsigned char)w->initargs.data[0] == 0xdc ||
                                      (unsigned char)w->initargs.data[0] == 0xdd))
        return 0;
    else if (type == LUA_TTABLE && w->initargs.size > 0)
        snprintf(why, sizeof why, "a list {a, b, ...} is expected, not a map");
    snprintf(err, errlen, "%s:%d: workload: initargs must be the initializer's arguments as a "
             "list: %s", s->path, line, why);
    return -1;
}

/* Reads the table workload(p) returned (on top of the stack). */
static int workload_read(scn_scenario *s, scn_workload *w, char *err, size_t errlen)
{
    lua_State *L = s->L;
    int line = scn_line_of_key(s, "workload", 1), t = lua_gettop(L);
    if (lua_type(L, t) != LUA_TTABLE) {
        snprintf(err, errlen, "%s:%d: workload(p) must return a table {items = , stages = }, "
                 "not a %s", s->path, line, luaL_typename(L, t));
        return -1;
    }
    if (workload_fields(s, t, line, err, errlen) != 0)
        return -1;
    scn_rawgetfield(L, t, "items");
    if (workload_items(s, w, line, err, errlen) != 0 ||
        workload_stages(s, w, t, line, err, errlen) != 0 ||
        workload_function(s, t, "stop", "function(result, item)", &w->stop_ref, line, err,
                          errlen) != 0 ||
        workload_function(s, t, "observe", "function(result, item, error)", &w->observe_ref,
                          line, err, errlen) != 0)
        return -1;
    if (scn_rawgetfield(L, t, "initializer") != LUA_TNIL &&
        task_name(s, -1, "initializer", &w->initializer, err, errlen) != 0)
        return -1;
    w->fire_and_forget = scn_rawgetfield(L, t, "fire_and_forget") != LUA_TNIL &&
                         lua_toboolean(L, -1);
    return workload_initargs(s, w, t, line, err, errlen);
}

/* workload(p) and the reading of what it returned, under scn_protected:
 * the function may raise, and so may nothing else (the reads are raw). */
typedef struct workload_call {
    scn_scenario *s;
    const scn_params *p;
    scn_workload *w;
    char *err;
    size_t errlen;
    int rc;
} workload_call;

static int workload_protected(lua_State *L)
{
    workload_call *c = lua_touserdata(L, 1);
    scn_push_field(c->s, "workload");
    scn_push_params(c->s, c->p);
    lua_call(L, 1, 1);
    c->rc = workload_read(c->s, c->w, c->err, c->errlen);
    return 0;
}

int scn_workload_eval(scn_scenario *s, const scn_params *p, scn_workload *w, char *err,
                      size_t errlen)
{
    memset(w, 0, sizeof *w);
    msgpack_sbuffer_init(&w->items);
    msgpack_sbuffer_init(&w->initargs);
    w->stop_ref = LUA_NOREF;
    w->observe_ref = LUA_NOREF;
    scn_lock();
    int top = lua_gettop(s->L);
    workload_call c = {s, p, w, err, errlen, 0};
    int rc = scn_protected(s, workload_protected, &c, err, errlen);
    if (rc > 0) /* the skip marker: not ours to interpret here */
        snprintf(err, errlen, "%s:%d: workload raised the --impl skip marker", s->path,
                 scn_line_of_key(s, "workload", 1));
    if (rc == 0)
        rc = c.rc;
    lua_settop(s->L, top);
    scn_unlock();
    if (rc != 0) {
        scn_workload_free(s, w);
        return -1;
    }
    return 0;
}

void scn_workload_free(scn_scenario *s, scn_workload *w)
{
    msgpack_sbuffer_destroy(&w->items);
    for (int i = 0; i < w->nstages; i++)
        free(w->stages[i]);
    free(w->initializer);
    msgpack_sbuffer_destroy(&w->initargs);
    scn_lock();
    if (w->stop_ref != LUA_NOREF)
        luaL_unref(s->L, LUA_REGISTRYINDEX, w->stop_ref);
    if (w->observe_ref != LUA_NOREF)
        luaL_unref(s->L, LUA_REGISTRYINDEX, w->observe_ref);
    scn_unlock();
    memset(w, 0, sizeof *w);
    w->stop_ref = LUA_NOREF;
    w->observe_ref = LUA_NOREF;
}

/* ---- model and hooks --------------------------------------------------------- */

typedef struct model_call {
    scn_scenario *s;
    const scn_variant *v;
    const scn_params *p;
    double *out;
    char *err;
    size_t errlen;
    int rc; /* 1 a prediction, 0 none, -1 an error in err */
} model_call;

/* model[label] or model[strategy], called; under scn_protected. */
static int model_protected(lua_State *L)
{
    model_call *c = lua_touserdata(L, 1);
    scn_scenario *s = c->s;
    const char *key = c->v->label;
    if (scn_push_field(s, "model") != LUA_TTABLE)
        return 0;
    if (scn_rawgetfield(L, -1, key) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        if (scn_rawgetfield(L, -1, key = c->v->impl->name) != LUA_TFUNCTION)
            return 0;
    }
    scn_push_params(s, c->p);
    lua_call(L, 1, 1);
    if (lua_type(L, -1) != LUA_TNUMBER) {
        snprintf(c->err, c->errlen, "%s:%d: model '%s' must return a number of seconds (got %s)",
                 s->path, scn_line_of_key(s, key, scn_line_of_key(s, "model", 1)), key,
                 luaL_typename(L, -1));
        c->rc = -1;
        return 0;
    }
    *c->out = lua_tonumber(L, -1);
    c->rc = 1;
    return 0;
}

int scn_model_eval(scn_scenario *s, const scn_variant *v, const scn_params *p, double *out,
                   char *err, size_t errlen)
{
    scn_lock();
    int top = lua_gettop(s->L);
    model_call c = {s, v, p, out, err, errlen, 0};
    int rc = scn_protected(s, model_protected, &c, err, errlen);
    if (rc > 0)
        snprintf(err, errlen, "%s:%d: model '%s' raised the --impl skip marker", s->path,
                 scn_line_of_key(s, v->label, scn_line_of_key(s, "model", 1)), v->label);
    lua_settop(s->L, top);
    scn_unlock();
    return rc != 0 ? -1 : c.rc;
}

typedef struct hook_call {
    scn_scenario *s;
    const char *name;
    void (*push_arg)(scn_scenario *, void *);
    void *arg;
} hook_call;

static int hook_protected(lua_State *L)
{
    hook_call *c = lua_touserdata(L, 1);
    if (scn_push_field(c->s, c->name) != LUA_TFUNCTION)
        return 0;
    int nargs = 0;
    if (c->push_arg) {
        c->push_arg(c->s, c->arg);
        nargs = 1;
    }
    lua_call(L, nargs, 0);
    return 0;
}

int scn_call_hook(scn_scenario *s, const char *name, void (*push_arg)(scn_scenario *, void *),
                  void *arg, char *err, size_t errlen)
{
    scn_lock();
    int top = lua_gettop(s->L);
    hook_call c = {s, name, push_arg, arg};
    int rc = scn_protected(s, hook_protected, &c, err, errlen);
    if (rc > 0)
        snprintf(err, errlen, "%s:%d: %s raised the --impl skip marker", s->path,
                 scn_line_of_key(s, name, 1), name);
    lua_settop(s->L, top);
    scn_unlock();
    return rc ? -1 : 0;
}

static void push_params_arg(scn_scenario *s, void *p)
{
    scn_push_params(s, p);
}

int scn_setup(scn_scenario *s, const scn_params *p, char *err, size_t errlen)
{
    return scn_call_hook(s, "setup", push_params_arg, (void *)p, err, errlen);
}
