/*
 * scenario_eval.c: a loaded scenario's parameters, and the calls into its
 * functions from the parent (workload, model, setup).
 *
 * Parameters are numbers. Resolution is layered, most specific last:
 * the file's default, its quick value (--quick), each --set key=value, then
 * a variant's `set` for that variant alone. Every layer is checked against
 * the parameter's range, and the message names the parameter and the range,
 * because "bad value" alone sends a student hunting. A value keeps its Lua
 * subtype (integer or float), so P.n is 8 in a task, not 8.0.
 *
 * Three parameters mean something to the runner (workers, chunksize,
 * maxtasksperchild); scenario.c narrows their ranges at load so that no
 * value that reaches the engine can be nonsense.
 *
 * workload(p) is turned into plain C data at once (scn_workload): the items
 * packed as one msgpack array, the stage names checked against the Lua tasks
 * and the engine's built-ins. Only the stop rule stays a Lua function,
 * called later under the lock by the runner.
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

/* ---- parameters ------------------------------------------------------------- */

int scn_param_index(const scn_scenario *s, const char *name)
{
    for (int i = 0; i < s->nparams; i++)
        if (strcmp(s->params[i].name, name) == 0)
            return i;
    return -1;
}

void scn_num_format(scn_num v, char *buf, size_t len)
{
    if (v.isint) {
        snprintf(buf, len, "%lld", (long long)v.d);
        return;
    }
    snprintf(buf, len, "%.14g", v.d);
    if (isfinite(v.d) && !strpbrk(buf, ".e"))
        snprintf(buf + strlen(buf), len - strlen(buf), ".0");
}

int scn_param_check(const scn_param *q, scn_num v, const char *what, char *err, size_t errlen)
{
    char got[96], lo[64], hi[64];
    snprintf(got, sizeof got, "%s ", what);
    scn_num_format(v, got + strlen(got), sizeof got - strlen(got));
    snprintf(lo, sizeof lo, "%.14g", q->min);
    snprintf(hi, sizeof hi, "%.14g", q->max);
    if (!isfinite(v.d)) {
        snprintf(err, errlen, "parameter '%s' must be a finite number (%s)", q->name, got);
        return -1;
    }
    if (q->integer && v.d != floor(v.d)) {
        snprintf(err, errlen, "parameter '%s' must be an integer (%s)", q->name, got);
        return -1;
    }
    if (v.d >= q->min && v.d <= q->max)
        return 0;
    if (isfinite(q->min) && isfinite(q->max))
        snprintf(err, errlen, "parameter '%s' must be from %s to %s (%s)", q->name, lo, hi,
                 got);
    else if (isfinite(q->min))
        snprintf(err, errlen, "parameter '%s' must be at least %s (%s)", q->name, lo, got);
    else
        snprintf(err, errlen, "parameter '%s' must be at most %s (%s)", q->name, hi, got);
    return -1;
}

static void declared_list(const scn_scenario *s, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; i < s->nparams; i++)
        if (!s->params[i].implicit)
            snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? ", " : "",
                     s->params[i].name);
    if (buf[0] == '\0')
        snprintf(buf, len, "none: this scenario declares no parameters");
}

/* One --set key=value into out. */
static int apply_set(const scn_scenario *s, const char *set, scn_params *out, char *err,
                     size_t errlen)
{
    const char *eq = strchr(set, '=');
    char key[64], list[1024];
    if (eq == NULL || eq == set || (size_t)(eq - set) >= sizeof key) {
        snprintf(err, errlen, "--set expects key=value (got '%s')", set);
        return -1;
    }
    memcpy(key, set, (size_t)(eq - set));
    key[eq - set] = '\0';
    int i = scn_param_index(s, key);
    if (i < 0 || s->params[i].implicit) {
        declared_list(s, list, sizeof list);
        snprintf(err, errlen, "unknown parameter '%s' (valid: %s)", key, list);
        return -1;
    }
    /* Lua's own reader, so that --set accepts what a scenario file would:
     * 8, 0.05, 1e3, 0x10. */
    scn_lock();
    bool ok = lua_stringtonumber(s->L, eq + 1) != 0;
    scn_num v = {0, false};
    if (ok) {
        v.d = lua_tonumber(s->L, -1);
        v.isint = lua_isinteger(s->L, -1);
        lua_pop(s->L, 1);
    }
    scn_unlock();
    if (!ok) {
        snprintf(err, errlen, "parameter '%s': '%s' is not a number", key, eq + 1);
        return -1;
    }
    if (scn_param_check(&s->params[i], v, "got", err, errlen) != 0)
        return -1;
    if (s->params[i].integer)
        v.isint = true; /* 8.0 given for workers is 8 */
    out->v[i] = v;
    return 0;
}

int scn_params_resolve(const scn_scenario *s, bool quick, char *const *sets, int nsets,
                       scn_params *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < s->nparams; i++)
        out->v[i] = quick ? s->params[i].quick : s->params[i].def;
    for (int k = 0; k < nsets; k++)
        if (apply_set(s, sets[k], out, err, errlen) != 0)
            return -1;
    return 0;
}

void scn_params_for(const scn_scenario *s, const scn_params *base, const scn_variant *v,
                    scn_params *out)
{
    (void)s;
    *out = *base;
    for (int k = 0; k < v->nset; k++)
        out->v[v->set_param[k]] = v->set_value[k];
}

long scn_param_long(const scn_scenario *s, const scn_params *p, const char *name, long dflt)
{
    int i = scn_param_index(s, name);
    return i < 0 ? dflt : (long)p->v[i].d;
}

void scn_push_params(scn_scenario *s, const scn_params *p)
{
    lua_State *L = s->L;
    lua_createtable(L, 0, s->nparams);
    for (int i = 0; i < s->nparams; i++) {
        if (p->v[i].isint)
            lua_pushinteger(L, (lua_Integer)p->v[i].d);
        else
            lua_pushnumber(L, p->v[i].d);
        lua_setfield(L, -2, s->params[i].name);
    }
}

void scn_set_P(scn_scenario *s, const scn_params *p)
{
    scn_lock();
    scn_push_params(s, p);
    lua_setglobal(s->L, "P");
    scn_unlock();
}

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

/* items: a count n (1..n) or a list, packed into w->items. */
static int workload_items(scn_scenario *s, scn_workload *w, int line, char *err, size_t errlen)
{
    lua_State *L = s->L;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w->items, msgpack_sbuffer_write);
    if (lua_type(L, -1) == LUA_TNUMBER) {
        lua_Integer n;
        if (!lua_isinteger(L, -1) && lua_tonumber(L, -1) != floor(lua_tonumber(L, -1)))
            n = -1;
        else
            n = (lua_Integer)lua_tonumber(L, -1);
        if (n < 0 || n > MAX_ITEMS) {
            snprintf(err, errlen, "%s:%d: workload: items must be a count from 0 to %ld or a "
                     "list (got %s)", s->path, line, MAX_ITEMS, lua_tostring(L, -1));
            return -1;
        }
        msgpack_pack_array(&pk, (size_t)n);
        for (lua_Integer i = 1; i <= n; i++)
            msgpack_pack_int64(&pk, i);
        w->n = (size_t)n;
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

/* Reads the table workload(p) returned (on top of the stack). */
static int workload_read(scn_scenario *s, scn_workload *w, char *err, size_t errlen)
{
    static const char *const fields[] = {"items", "stages", "stop", "observe", "initializer",
                                         "fire_and_forget", NULL};
    lua_State *L = s->L;
    int line = scn_line_of_key(s, "workload", 1), t = lua_gettop(L);
    if (lua_type(L, t) != LUA_TTABLE) {
        snprintf(err, errlen, "%s:%d: workload(p) must return a table {items = , stages = }, "
                 "not a %s", s->path, line, luaL_typename(L, t));
        return -1;
    }
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        bool known = false;
        for (int i = 0; fields[i] && !known; i++)
            known = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), fields[i]) == 0;
        if (!known) {
            snprintf(err, errlen, "%s:%d: workload: unknown field '%s' (fields: items, stages, "
                     "stop, observe, initializer, fire_and_forget)", s->path, line,
                     luaL_tolstring(L, -1, NULL));
            return -1;
        }
    }
    lua_getfield(L, t, "items");
    if (workload_items(s, w, line, err, errlen) != 0)
        return -1;
    int type = lua_getfield(L, t, "stages");
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
    if ((type = lua_getfield(L, t, "stop")) == LUA_TFUNCTION) {
        w->stop_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else if (type != LUA_TNIL) {
        snprintf(err, errlen, "%s:%d: workload: stop must be a function(result, item)", s->path,
                 line);
        return -1;
    }
    if ((type = lua_getfield(L, t, "observe")) == LUA_TFUNCTION) {
        w->observe_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else if (type != LUA_TNIL) {
        snprintf(err, errlen, "%s:%d: workload: observe must be a function(result, item, error)",
                 s->path, line);
        return -1;
    }
    if (lua_getfield(L, t, "initializer") != LUA_TNIL &&
        task_name(s, -1, "initializer", &w->initializer, err, errlen) != 0)
        return -1;
    w->fire_and_forget = lua_getfield(L, t, "fire_and_forget") != LUA_TNIL &&
                         lua_toboolean(L, -1);
    return 0;
}

int scn_workload_eval(scn_scenario *s, const scn_params *p, scn_workload *w, char *err,
                      size_t errlen)
{
    memset(w, 0, sizeof *w);
    msgpack_sbuffer_init(&w->items);
    w->stop_ref = LUA_NOREF;
    w->observe_ref = LUA_NOREF;
    scn_lock();
    int top = lua_gettop(s->L);
    scn_push_field(s, "workload");
    scn_push_params(s, p);
    int rc = scn_pcall(s, 1, 1, err, errlen);
    if (rc > 0) /* a table thrown: not ours to interpret here */
        snprintf(err, errlen, "%s:%d: workload raised a table", s->path,
                 scn_line_of_key(s, "workload", 1));
    if (rc == 0)
        rc = workload_read(s, w, err, errlen);
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

int scn_model_eval(scn_scenario *s, const scn_variant *v, const scn_params *p, double *out,
                   char *err, size_t errlen)
{
    lua_State *L = s->L;
    int rc = 0;
    scn_lock();
    int top = lua_gettop(L);
    const char *key = v->label;
    if (scn_push_field(s, "model") == LUA_TTABLE &&
        (lua_getfield(L, -1, key) == LUA_TFUNCTION ||
         (lua_pop(L, 1), lua_getfield(L, -1, key = v->impl->name) == LUA_TFUNCTION))) {
        scn_push_params(s, p);
        rc = scn_pcall(s, 1, 1, err, errlen);
        if (rc > 0)
            snprintf(err, errlen, "%s:%d: model '%s' raised a table", s->path,
                     scn_line_of_key(s, key, scn_line_of_key(s, "model", 1)), key);
        if (rc == 0 && lua_type(L, -1) != LUA_TNUMBER) {
            snprintf(err, errlen, "%s:%d: model '%s' must return a number of seconds (got %s)",
                     s->path, scn_line_of_key(s, key, scn_line_of_key(s, "model", 1)), key,
                     luaL_typename(L, -1));
            rc = -1;
        }
        if (rc == 0) {
            *out = lua_tonumber(L, -1);
            rc = 1;
        }
    }
    lua_settop(L, top);
    scn_unlock();
    return rc > 0 ? 1 : rc;
}

int scn_setup(scn_scenario *s, const scn_params *p, char *err, size_t errlen)
{
    int rc = 0;
    scn_lock();
    int top = lua_gettop(s->L);
    if (scn_push_field(s, "setup") == LUA_TFUNCTION) {
        scn_push_params(s, p);
        rc = scn_pcall(s, 1, 0, err, errlen);
        if (rc > 0)
            snprintf(err, errlen, "%s:%d: setup raised a table", s->path,
                     scn_line_of_key(s, "setup", 1));
    }
    lua_settop(s->L, top);
    scn_unlock();
    return rc ? -1 : 0;
}
