/*
 * scenario_params.c: a scenario's parameters, resolved from their layers,
 * checked against their ranges, and shown to Lua.
 *
 * Parameters are numbers. Resolution is layered, most specific last:
 * the file's default, its quick value (--quick), each --set key=value, then
 * a variant's `set` for that variant alone. Every layer is checked against
 * the parameter's range, and the message names the parameter and the range,
 * because "bad value" alone sends a student hunting. A value keeps its Lua
 * subtype (integer or float), so P.n is 8 in a task, not 8.0.
 *
 * Three parameters mean something to the runner (workers, chunksize,
 * maxtasksperchild); scenario_schema.c narrows their ranges at load so that
 * no value that reaches the engine can be nonsense.
 */
#include "scenario.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int scn_param_index(const scn_scenario *s, const char *name)
{
    for (int i = 0; i < s->nparams; i++)
        if (strcmp(s->params[i].name, name) == 0)
            return i;
    return -1;
}

void scn_num_format(scn_num v, char *buf, size_t len)
{
    if (v.isint && fabs(v.d) >= 9.2e18) { /* beyond long long: no cast */
        snprintf(buf, len, "%.0f", v.d);
        return;
    }
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
    /* An integer is checked over the range a double holds exactly, so that
     * no value reaches C or Lua rounded or wrapped (0x7fffffffffffffff
     * would become -2^63 on the way). */
    bool whole = q->integer || v.isint;
    double lo_ok = whole ? fmax(q->min, -SCN_INT_LIMIT) : q->min;
    double hi_ok = whole ? fmin(q->max, SCN_INT_LIMIT) : q->max;
    if (v.d >= lo_ok && v.d <= hi_ok)
        return 0;
    if (whole && !(v.d >= -SCN_INT_LIMIT && v.d <= SCN_INT_LIMIT)) {
        snprintf(lo, sizeof lo, "%.0f", lo_ok);
        snprintf(hi, sizeof hi, "%.0f", hi_ok);
        snprintf(err, errlen, "parameter '%s' must be an integer from %s to %s (%s)", q->name,
                 lo, hi, got);
        return -1;
    }
    /* Below the minimum of a runner parameter whose maximum is only the
     * runner's ceiling: "at least", as the file declared. */
    bool hi_shown = isfinite(q->max) && !(v.d < q->min && q->max >= SCN_RUNNER_INT_MAX);
    if (isfinite(q->min) && hi_shown)
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
        v.isint = lua_isinteger(s->L, -1);
        /* a huge integer rounds here, but lands outside 2^53: refused below */
        v.d = v.isint ? (double)lua_tointeger(s->L, -1) : lua_tonumber(s->L, -1);
        lua_pop(s->L, 1);
    }
    scn_unlock();
    if (!ok) {
        snprintf(err, errlen, "parameter '%s': '%s' is not a number", key, eq + 1);
        return -1;
    }
    if (scn_param_check(&s->params[i], v, "got", err, errlen) != 0) {
        /* A huge integer was rounded to a double on the way: show it as given. */
        char *g = strstr(err, " (got ");
        if (v.isint && fabs(v.d) > SCN_INT_LIMIT && g)
            snprintf(g, errlen - (size_t)(g - err), " (got %s)", eq + 1);
        return -1;
    }
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

/* A variant's value given as a function(p), under scn_protected. */
typedef struct set_call {
    scn_scenario *s;
    const scn_params *p; /* what the function is given */
    int ref;
    scn_num out;
    bool isnum;
} set_call;

static int set_protected(lua_State *L)
{
    set_call *c = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
    scn_push_params(c->s, c->p);
    lua_call(L, 1, 1);
    c->isnum = lua_type(L, -1) == LUA_TNUMBER;
    c->out = (scn_num){lua_tonumber(L, -1), lua_isinteger(L, -1)};
    return 0;
}

/* The variant's plain numbers first, then its functions, each given the
 * parameters with --set, --quick and those numbers applied: so that a
 * chunksize of n // workers follows --set n=. */
int scn_params_for_eval(const scn_scenario *s, const scn_params *base, const scn_variant *v,
                        scn_params *out, char *err, size_t errlen)
{
    *out = *base;
    for (int k = 0; k < v->nset; k++)
        if (v->set_fn[k] == 0)
            out->v[v->set_param[k]] = v->set_value[k];
    scn_params given = *out;
    for (int k = 0; k < v->nset; k++) {
        if (v->set_fn[k] == 0)
            continue;
        const scn_param *q = &s->params[v->set_param[k]];
        set_call c = {(scn_scenario *)s, &given, v->set_fn[k], {0, false}, false};
        scn_lock();
        int top = lua_gettop(s->L);
        int rc = scn_protected((scn_scenario *)s, set_protected, &c, err, errlen);
        lua_settop(s->L, top);
        scn_unlock();
        char why[SCN_ERR] = "";
        if (rc < 0) /* Lua's own "file:line: message" says where */
            snprintf(why, sizeof why, "raised: %s", err);
        else if (rc > 0)
            snprintf(why, sizeof why, "raised the --impl skip marker");
        else if (!c.isnum)
            snprintf(why, sizeof why, "must return a number");
        else
            scn_param_check(q, c.out, "got", why, sizeof why);
        if (why[0]) {
            snprintf(err, errlen, "%s:%d: variant '%s': set.%s = function(p): %s", s->path,
                     v->line, v->label, q->name, why);
            return -1;
        }
        out->v[v->set_param[k]] = c.out;
    }
    return 0;
}

void scn_params_for(const scn_scenario *s, const scn_params *base, const scn_variant *v,
                    scn_params *out)
{
    char err[SCN_ERR];
    if (scn_params_for_eval(s, base, v, out, err, sizeof err) != 0)
        for (int k = 0; k < v->nset; k++) /* the base value where a function failed */
            if (v->set_fn[k] != 0)
                out->v[v->set_param[k]] = base->v[v->set_param[k]];
}

long scn_param_long(const scn_scenario *s, const scn_params *p, const char *name, long dflt)
{
    int i = scn_param_index(s, name);
    if (i < 0)
        return dflt;
    /* checked at every layer to lie within the runner's range; clamp all
     * the same, so that no cast can wrap */
    double d = p->v[i].d;
    return d >= SCN_RUNNER_INT_MAX ? (long)SCN_RUNNER_INT_MAX : d <= 0 ? 0 : (long)d;
}

void scn_push_params(scn_scenario *s, const scn_params *p)
{
    lua_State *L = s->L;
    lua_createtable(L, 0, s->nparams);
    for (int i = 0; i < s->nparams; i++) {
        if (p->v[i].isint && fabs(p->v[i].d) <= SCN_INT_LIMIT) /* always: checked */
            lua_pushinteger(L, (lua_Integer)p->v[i].d);
        else
            lua_pushnumber(L, p->v[i].d);
        lua_setfield(L, -2, s->params[i].name);
    }
}

void scn_set_P(scn_scenario *s, const scn_params *p)
{
    scn_lock();
    /* Raw: a scenario may guard its globals with a __newindex that raises
     * (the "strict" idiom); P is poolbench's to set. */
    lua_pushglobaltable(s->L);
    lua_pushstring(s->L, "P");
    scn_push_params(s, p);
    lua_rawset(s->L, -3);
    lua_pop(s->L, 1);
    scn_unlock();
}

