/*
 * scenario_schema.c: the shape of a scenario table, checked field by field.
 *
 * scn_load() (scenario_load.c) runs the file and hands the table it returned to
 * scn_schema(), which fills the scenario struct from it: name and texts,
 * parameters (in the order of the file, found by their line), Lua tasks,
 * the strategies and their variants, the model. Every mistake raises
 * "file:line: message" with the line found in the file's text (the
 * scn_line_of_* lookups of scenario_lua.c), and the message says what would be right: the
 * fields a table may have, the valid strategies, the labels a model may name.
 * Unknown fields are errors, not ignored: a misspelt `chekcs` would
 * otherwise silently check nothing.
 *
 * It runs inside lua_pcall, so that any Lua error raised while reading the
 * table (out of memory) is caught like the rest; everything it allocates
 * hangs off the scenario at once, so scn_free() frees it whatever happened.
 * The tables are read raw (scn_rawgetfield, lua_next, lua_rawlen): a
 * scenario's metatables (a "strict table" that raises on a missing field)
 * are not consulted, and a key is shown without its __tostring.
 */
#include "scenario.h"
#include "pool.h"

#include <ctype.h>
#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the schema walk (inside lua_pcall) ---------------------------------- */

static int schema_error(lua_State *L, scn_scenario *s, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int schema_error(lua_State *L, scn_scenario *s, int line, const char *fmt, ...)
{
    char msg[SCN_ERR];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lua_pushfstring(L, "%s:%d: %s", s->path, line > 0 ? line : scn_line_of_return(s), msg);
    return lua_error(L);
}

/* The string field of table t, NULL if nil; an error if another type. */
static const char *opt_string(lua_State *L, scn_scenario *s, int t, const char *key, int line)
{
    scn_rawgetfield(L, t, key);
    int type = lua_type(L, -1);
    const char *v = type == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* the string stays alive in the table */
    if (type != LUA_TNIL && type != LUA_TSTRING)
        schema_error(L, s, line, "'%s' must be a string, not a %s", key, lua_typename(L, type));
    return v;
}

static void need_type(lua_State *L, scn_scenario *s, int t, const char *key, int want,
                      bool required)
{
    int type = scn_rawgetfield(L, t, key);
    lua_pop(L, 1);
    if (type == LUA_TNIL && required)
        schema_error(L, s, 0, "missing field '%s' (a %s)", key, lua_typename(L, want));
    if (type != LUA_TNIL && type != want)
        schema_error(L, s, scn_line_of_key(s, key, 1), "'%s' must be a %s, not a %s", key,
                     lua_typename(L, want), lua_typename(L, type));
}

/* The line of a positional entry (its key on top of the stack) when its
 * value is a number or a string written on a line of its own after line
 * from ("  42,"); else from. */
static int positional_line(lua_State *L, scn_scenario *s, int t, int from)
{
    char lit[80] = "";
    lua_pushvalue(L, -1);
    lua_rawget(L, t);
    if (lua_type(L, -1) == LUA_TNUMBER)
        scn_key_name(L, -1, lit, sizeof lit);
    else if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) < 60)
        snprintf(lit, sizeof lit, "\"%s\"", lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!lit[0])
        return from;
    size_t n = strlen(lit);
    int line = 1;
    for (const char *p = s->text; *p; line++) {
        const char *q = p;
        while (*q == ' ' || *q == '\t')
            q++;
        if (line > from && strncmp(q, lit, n) == 0 &&
            (q[n] == ',' || q[n] == ';' || q[n] == '\n' || q[n] == '\0' || q[n] == ' '))
            return line;
        const char *nl = strchr(p, '\n');
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return from;
}

/* Every key of table t is a string from the list (NULL-terminated). */
static void known_keys(lua_State *L, scn_scenario *s, int t, const char *const *keys,
                       const char *what, int from)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        bool ok = false;
        if (lua_type(L, -1) == LUA_TSTRING)
            for (int i = 0; keys[i] && !ok; i++)
                ok = strcmp(keys[i], lua_tostring(L, -1)) == 0;
        if (!ok) {
            char list[512] = "";
            for (int i = 0; keys[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         i ? ", " : "", keys[i]);
            char kb[128];
            const char *k = scn_key_name(L, -1, kb, sizeof kb);
            if (lua_isinteger(L, -1))
                schema_error(L, s, positional_line(L, s, t, from), "positional entry #%s in %s: "
                             "every entry needs a name (name = value; fields: %s)", k, what,
                             list);
            int line = lua_type(L, -1) == LUA_TSTRING ? scn_line_of_key(s, k, from) : 0;
            schema_error(L, s, line ? line : from, "unknown field '%s' in %s (fields: %s)", k,
                         what, list);
        }
    }
}

/* An optional number of seconds (task_timeout, run_timeout): 0 when absent. */
static double opt_seconds(lua_State *L, scn_scenario *s, int t, const char *key)
{
    int type = scn_rawgetfield(L, t, key);
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (type == LUA_TNIL)
        return 0;
    if (type != LUA_TNUMBER || !(v > 0 && v <= SCN_MAX_SECONDS))
        schema_error(L, s, scn_line_of_key(s, key, 1),
                     "'%s' must be a number of seconds above 0, at most %g", key,
                     (double)SCN_MAX_SECONDS);
    return v;
}

static bool good_name(const char *n)
{
    if (!isalpha((unsigned char)n[0]) && n[0] != '_')
        return false;
    for (const char *p = n; *p; p++)
        if (!scn_ident_char(*p))
            return false;
    return strlen(n) < 48;
}

static int cmp_param(const void *a, const void *b)
{
    const scn_param *x = a, *y = b;
    if (x->line != y->line)
        return x->line - y->line;
    return strcmp(x->name, y->name);
}

/* A number field of a param's table: *out set and true, or false if nil. */
static bool param_number(lua_State *L, scn_scenario *s, scn_param *q, const char *key,
                         scn_num *out)
{
    int type = scn_rawgetfield(L, -1, key);
    if (type != LUA_TNIL && type != LUA_TNUMBER)
        schema_error(L, s, q->line, "parameter '%s': '%s' must be a number, not a %s", q->name,
                     key, lua_typename(L, type));
    if (type == LUA_TNUMBER) {
        out->d = lua_tonumber(L, -1);
        out->isint = lua_isinteger(L, -1);
    }
    lua_pop(L, 1);
    return type == LUA_TNUMBER;
}

/* One entry of params (name at -2, table at -1, as lua_next leaves them). */
static void schema_param(lua_State *L, scn_scenario *s, int from)
{
    static const char *const fields[] = {"default", "quick", "min", "max", "doc", NULL};
    if (lua_type(L, -2) != LUA_TSTRING || !good_name(lua_tostring(L, -2)))
    {
        char kb[128];
        schema_error(L, s, from, "parameter names must be identifiers (got %s)",
                     scn_key_name(L, -2, kb, sizeof kb));
    }
    if (s->nparams == SCN_MAX_PARAMS - 1)
        schema_error(L, s, from, "more than %d parameters", SCN_MAX_PARAMS - 1);
    scn_param *q = &s->params[s->nparams++];
    q->name = scn_strdup(lua_tostring(L, -2));
    q->doc = scn_strdup("");
    q->line = scn_line_of_key(s, q->name, from);
    if (lua_type(L, -1) != LUA_TTABLE)
        schema_error(L, s, q->line, "parameter '%s' must be a table {default = ...}", q->name);
    known_keys(L, s, lua_gettop(L), fields, "a parameter", q->line);
    scn_num v = {0, false};
    if (!param_number(L, s, q, "default", &q->def))
        schema_error(L, s, q->line, "parameter '%s' has no default", q->name);
    q->has_quick = param_number(L, s, q, "quick", &q->quick);
    if (!q->has_quick)
        q->quick = q->def;
    q->min = param_number(L, s, q, "min", &v) ? v.d : -HUGE_VAL;
    q->max = param_number(L, s, q, "max", &v) ? v.d : HUGE_VAL;
    const char *doc = opt_string(L, s, lua_gettop(L), "doc", q->line);
    if (doc) {
        free(q->doc);
        q->doc = scn_strdup(doc);
    }
}

/*
 * The runner's own parameters: their values must make sense to the engine
 * whatever the file says, so their range is narrowed here. `workers`, when
 * not declared, is added with the online CPUs as its value.
 */
static void runner_params(scn_scenario *s)
{
    if (scn_param_index(s, "workers") < 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        scn_param *q = &s->params[s->nparams++];
        *q = (scn_param){.name = scn_strdup("workers"), .def = {(double)cores, true},
                         .quick = {(double)cores, true}, .min = 1, .max = 256,
                         .doc = scn_strdup("pool processes (not declared: the online CPUs)"),
                         .implicit = true};
    }
    for (int i = 0; i < s->nparams; i++) {
        scn_param *q = &s->params[i];
        double lo = strcmp(q->name, "workers") == 0 ? 1 : 0;
        if (strcmp(q->name, "workers") && strcmp(q->name, "chunksize") &&
            strcmp(q->name, "buffersize") && strcmp(q->name, "maxtasksperchild"))
            continue;
        q->integer = true;
        q->min = fmax(q->min, lo);
        if (strcmp(q->name, "workers") == 0)
            q->max = fmin(q->max, 256);
        else
            q->max = fmin(q->max, SCN_RUNNER_INT_MAX);
    }
}

static void schema_params(lua_State *L, scn_scenario *s, int t)
{
    int from = scn_line_of_key(s, "params", 1);
    if (scn_rawgetfield(L, t, "params") == LUA_TTABLE) {
        int pt = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, pt)) {
            schema_param(L, s, from);
            lua_pop(L, 1);
        }
    } else if (lua_type(L, -1) != LUA_TNIL) {
        schema_error(L, s, from, "'params' must be a table");
    }
    lua_pop(L, 1);
    qsort(s->params, (size_t)s->nparams, sizeof s->params[0], cmp_param);
    runner_params(s);
    char err[SCN_ERR];
    for (int i = 0; i < s->nparams; i++) {
        scn_param *q = &s->params[i];
        if (q->min > q->max)
            schema_error(L, s, q->line, "parameter '%s': min is above max", q->name);
        if (scn_param_check(q, q->def, "default is", err, sizeof err) != 0 ||
            scn_param_check(q, q->quick, "quick is", err, sizeof err) != 0)
            schema_error(L, s, q->line, "%s", err);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void schema_tasks(lua_State *L, scn_scenario *s, int t)
{
    int from = scn_line_of_key(s, "tasks", 1);
    int type = scn_rawgetfield(L, t, "tasks");
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (type != LUA_TTABLE)
        schema_error(L, s, from, "'tasks' must be a table of functions");
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        char kb[128];
        if (name == NULL || !good_name(name) || strncmp(name, "strat_", 6) == 0)
            schema_error(L, s, from,
                         "task names must be identifiers shorter than 48 bytes, not "
                         "starting with strat_ (got %s)", scn_key_name(L, -2, kb, sizeof kb));
        if (lua_type(L, -1) != LUA_TFUNCTION)
            schema_error(L, s, scn_line_of_key(s, name, from), "task '%s' must be a function",
                         name);
        char **t2 = realloc(s->tasks, (size_t)(s->ntasks + 1) * sizeof *t2);
        if (t2 == NULL)
            luaL_error(L, "out of memory"); /* does not return */
        s->tasks = t2;
        s->tasks[s->ntasks++] = scn_strdup(name);
        lua_pop(L, 1);
    }
    qsort(s->tasks, (size_t)s->ntasks, sizeof *s->tasks, cmp_str);
    s->tasks_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* pops the table */
}

static void strategy_list(const scn_scenario *s, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; strat_all[i]; i++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? ", " : "", strat_all[i]->name);
    for (int i = 0; i < s->nlua_strats; i++)
        snprintf(buf + strlen(buf), len - strlen(buf), ", %s", s->lua_strats[i].name);
}

/* A strategy by name: C first, then the scenario's own in Lua. */
static const strategy *strategy_find(const scn_scenario *s, const char *name)
{
    const strategy *st = strat_find(name);
    for (int i = 0; st == NULL && i < s->nlua_strats; i++)
        if (strcmp(s->lua_strats[i].name, name) == 0)
            st = &s->lua_strats[i];
    return st;
}

/* `strategies = {name = function(pool, items, p) ... end}`: each a strategy
 * of its own (lua_strategy.c runs them), named like the C ones. */
static void schema_strategies(lua_State *L, scn_scenario *s, int t)
{
    int from = scn_line_of_key(s, "strategies", 1);
    if (scn_rawgetfield(L, t, "strategies") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (lua_type(L, -1) != LUA_TTABLE)
        schema_error(L, s, from, "'strategies' must be a table {name = function(pool, items, p)}");
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        n++;
        lua_pop(L, 1);
    }
    s->lua_strats = calloc((size_t)(n ? n : 1), sizeof *s->lua_strats);
    if (s->lua_strats == NULL)
        luaL_error(L, "out of memory");
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int line = name ? scn_line_of_key(s, name, from) : from;
        if (name == NULL || !good_name(name))
            schema_error(L, s, line ? line : from, "a strategy's name must be an identifier");
        if (strat_find(name))
            schema_error(L, s, line ? line : from,
                         "strategy '%s' has the name of a C strategy: choose another", name);
        if (lua_type(L, -1) != LUA_TFUNCTION)
            schema_error(L, s, line ? line : from,
                         "strategy '%s' must be a function(pool, items, p)", name);
        s->lua_strats[s->nlua_strats++] =
            (strategy){scn_strdup(name), "lua", "a Lua strategy", scn_lua_strategy_run};
        lua_pop(L, 1);
    }
    s->strategies_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* pops the table */
}

/* A variant's set = {param = value} (on top of the stack, popped), each
 * value checked against its parameter's range. */
static void schema_variant_set(lua_State *L, scn_scenario *s, scn_variant *v)
{
    const char *label = v->label;
    if (lua_type(L, -1) != LUA_TTABLE)
        schema_error(L, s, v->line, "variant '%s': set must be a table {param = value}", label);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        int i = scn_param_index(s, k);
        if (i < 0)
            schema_error(L, s, v->line, "variant '%s' sets '%s', which is not a parameter", label,
                         k);
        if (lua_type(L, -1) == LUA_TFUNCTION) { /* evaluated per run: scn_params_for_eval */
            v->set_param[v->nset] = i;
            v->set_fn[v->nset++] = luaL_ref(L, LUA_REGISTRYINDEX); /* pops the value */
            continue;
        }
        if (lua_type(L, -1) != LUA_TNUMBER)
            schema_error(L, s, v->line, "variant '%s': '%s' must be a number or a function(p)",
                         label, k);
        scn_num n = {lua_tonumber(L, -1), lua_isinteger(L, -1)};
        char err[SCN_ERR];
        if (scn_param_check(&s->params[i], n, "set to", err, sizeof err) != 0)
            schema_error(L, s, v->line, "variant '%s': %s", label, err);
        v->set_param[v->nset] = i;
        v->set_value[v->nset++] = n;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* One entry of impls, on top of the stack: "name" or {impl=, label=, set=}. */
static void schema_variant(lua_State *L, scn_scenario *s, scn_variant *v, int from)
{
    static const char *const fields[] = {"impl", "label", "set", "transport", NULL};
    const char *impl, *label;
    int e = lua_gettop(L);
    if (lua_type(L, e) == LUA_TSTRING) {
        impl = label = lua_tostring(L, e);
    } else if (lua_type(L, e) == LUA_TTABLE) {
        known_keys(L, s, e, fields, "a variant", from);
        impl = opt_string(L, s, e, "impl", from);
        label = opt_string(L, s, e, "label", from);
        if (impl == NULL)
            schema_error(L, s, from, "a variant in impls needs impl = \"strategy name\"");
        if (label == NULL)
            label = impl;
    } else {
        schema_error(L, s, from, "impls entries are strategy names or {impl=, label=, set=}, "
                     "not a %s", luaL_typename(L, e));
        return; /* not reached: schema_error raises */
    }
    v->label = scn_strdup(label);
    v->line = scn_line_of_name(s, label);
    if (!good_name(label))
        schema_error(L, s, v->line, "label '%s' must be an identifier", label);
    if ((v->impl = strategy_find(s, impl)) == NULL) {
        char list[1024];
        strategy_list(s, list, sizeof list);
        schema_error(L, s, scn_line_of_name(s, impl), "unknown strategy '%s' (valid: %s)", impl,
                     list);
    }
    if (lua_type(L, e) == LUA_TTABLE && scn_rawgetfield(L, e, "set") != LUA_TNIL)
        schema_variant_set(L, s, v);
    const char *tr = lua_type(L, e) == LUA_TTABLE ? opt_string(L, s, e, "transport", from) : NULL;
    if (tr != NULL && (v->transport = pool_transport_parse(tr)) < 0)
        schema_error(L, s, v->line, "variant '%s': unknown transport '%s' "
                     "(valid: socket, shm)", label, tr);
}

static void schema_impls(lua_State *L, scn_scenario *s, int t)
{
    int from = scn_line_of_key(s, "impls", 1);
    scn_rawgetfield(L, t, "impls");
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    if (n == 0)
        schema_error(L, s, from, "'impls' must list at least one strategy");
    if (n > SCN_MAX_VARIANTS)
        schema_error(L, s, from, "'impls' lists more than %d strategies", SCN_MAX_VARIANTS);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        scn_variant *v = &s->variants[s->nvariants++];
        schema_variant(L, s, v, from);
        for (int j = 0; j < s->nvariants - 1; j++)
            if (strcmp(s->variants[j].label, v->label) == 0)
                schema_error(L, s, v->line, "label '%s' appears twice in impls", v->label);
        lua_settop(L, t + 1);
    }
    lua_pop(L, 1);
}

static void schema_model(lua_State *L, scn_scenario *s, int t)
{
    int from = scn_line_of_key(s, "model", 1);
    if (scn_rawgetfield(L, t, "model") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (lua_type(L, -1) != LUA_TTABLE)
        schema_error(L, s, from, "'model' must be a table {label = function(p) ... end}");
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        int line = scn_line_of_key(s, k, from);
        bool known = false;
        for (int i = 0; i < s->nvariants && !known; i++)
            known = strcmp(s->variants[i].label, k) == 0 ||
                    strcmp(s->variants[i].impl->name, k) == 0;
        if (!known) {
            char list[1024] = "";
            for (int i = 0; i < s->nvariants; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         i ? ", " : "", s->variants[i].label);
            schema_error(L, s, line ? line : from,
                         "model for '%s', which is not in impls (labels: %s)", k, list);
        }
        if (lua_type(L, -1) != LUA_TFUNCTION)
            schema_error(L, s, line ? line : from, "model '%s' must be a function(p)", k);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* repeats = N (the default --repeat, 1..1000; `repeat` is a Lua keyword,
 * so ["repeat"] = N is accepted too) and trace = true (checks get
 * r[label].trace): both optional. */
static void schema_repeat_trace(lua_State *L, scn_scenario *s, int t)
{
    const char *key = "repeats";
    int type = scn_rawgetfield(L, t, key);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        type = scn_rawgetfield(L, t, key = "repeat");
    }
    int isint = 0;
    lua_Integer n = lua_tointegerx(L, -1, &isint);
    lua_pop(L, 1);
    if (type != LUA_TNIL && (type != LUA_TNUMBER || !isint || n < 1 || n > 1000))
        schema_error(L, s, scn_line_of_key(s, key, 1),
                     "'%s' must be a whole number from 1 to 1000", key);
    s->repeat = type == LUA_TNIL ? 0 : (int)n;
    type = scn_rawgetfield(L, t, "trace");
    s->trace = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (type != LUA_TNIL && type != LUA_TBOOLEAN)
        schema_error(L, s, scn_line_of_key(s, "trace", 1), "'trace' must be true or false");
}

int scn_schema(lua_State *L)
{
    static const char *const fields[] = {
        "name", "source", "summary", "doc", "params", "tasks", "workload",
        "impls", "model", "checks", "setup", "done", "cleanup", "lab",
        "task_timeout", "run_timeout", "strategies", "repeats", "repeat", "trace", "ratios", NULL,
    };
    scn_scenario *s = lua_touserdata(L, 1);
    const int t = 2;
    known_keys(L, s, t, fields, "the scenario", scn_line_of_return(s));
    need_type(L, s, t, "name", LUA_TSTRING, true);
    need_type(L, s, t, "workload", LUA_TFUNCTION, true);
    need_type(L, s, t, "impls", LUA_TTABLE, true);
    need_type(L, s, t, "checks", LUA_TFUNCTION, false);
    need_type(L, s, t, "setup", LUA_TFUNCTION, false);
    need_type(L, s, t, "done", LUA_TFUNCTION, false);
    need_type(L, s, t, "cleanup", LUA_TFUNCTION, false);
    s->task_timeout = opt_seconds(L, s, t, "task_timeout");
    s->run_timeout = opt_seconds(L, s, t, "run_timeout");
    schema_repeat_trace(L, s, t);
    /* A classroom lab (docs/lua-api.md, "Labs"): only its type here; lab_table.c
     * reads the rest when `poolbench lab` opens it, with the same
     * file:line messages. */
    need_type(L, s, t, "lab", LUA_TTABLE, false);
    /* The ratios the checks rely on, {{"num", "den"}, ...}: read by
     * `poolbench compare` (compare.c), which says what a bad entry is. */
    need_type(L, s, t, "ratios", LUA_TTABLE, false);
    const char *str[4] = {
        opt_string(L, s, t, "name", 0), opt_string(L, s, t, "source", 0),
        opt_string(L, s, t, "summary", 0), opt_string(L, s, t, "doc", 0),
    };
    char **dst[4] = {&s->name, &s->source, &s->summary, &s->doc};
    for (int i = 0; i < 4; i++)
        *dst[i] = scn_strdup(str[i]);
    if (!good_name(s->name))
        schema_error(L, s, scn_line_of_key(s, "name", 1),
                     "name '%s' must be an identifier (letters, digits, _)", s->name);
    schema_params(L, s, t);
    schema_tasks(L, s, t);
    schema_strategies(L, s, t);
    schema_impls(L, s, t);
    schema_model(L, s, t);
    return 0;
}
