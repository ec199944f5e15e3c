/*
 * runner_checks.c: the results as the scenario's Lua sees them, and the
 * calls that judge them: checks(r, p, check), then done(report).
 *
 * r[label] is built by the same field visitor as the JSON object and the
 * CSV row (run_result_visit, result_fields.c), so a field a check can read
 * is a field the reports write, under the same name.
 *
 * --impl may leave out a strategy that a check reads. Rather than let the
 * check fail on a nil (a FAIL that is not about the phenomenon), r has an
 * __index that raises the skip marker (a light userdata no scenario can
 * make) for any label the scenario declares but this run did not measure;
 * the checks stop there and the report says which ones were skipped and
 * why. Checks recorded before that point stand. Any other error checks
 * raise is a failed check with its file:line.
 *
 * When a report names fields its engine cannot give (run_report.cannot:
 * `poolbench compare` judging CPython's figures with the twin's `cannot`
 * keys), those fields of r[label] sit behind an __index that notes each
 * read, and check() tags the check that follows the read with the field
 * (run_check.reads): compare then shows that check n/a when it fails,
 * whatever its name.
 *
 * Everything here runs on the main thread after the last pool is gone, but
 * takes scn_lock() all the same: the rule is "every parent-side use". It
 * reads what the runner measured and never calls the runner.
 */
#include "runner.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The visitor that builds a Lua table (caller holds the lock). */
typedef struct lua_out {
    lua_State *L;
    scn_scenario *s;
} lua_out;

static void l_num(void *c, const char *k, double v, bool present)
{
    lua_State *L = ((lua_out *)c)->L;
    if (present) {
        lua_pushnumber(L, v);
        lua_setfield(L, -2, k);
    }
}

static void l_int(void *c, const char *k, long long v)
{
    lua_pushinteger(((lua_out *)c)->L, (lua_Integer)v);
    lua_setfield(((lua_out *)c)->L, -2, k);
}

static void l_str(void *c, const char *k, const char *v)
{
    if (v) {
        lua_pushstring(((lua_out *)c)->L, v);
        lua_setfield(((lua_out *)c)->L, -2, k);
    }
}

static void l_bool(void *c, const char *k, bool v)
{
    lua_pushboolean(((lua_out *)c)->L, v);
    lua_setfield(((lua_out *)c)->L, -2, k);
}

static void l_workers(void *c, const char *k, const run_worker *w, int n)
{
    lua_State *L = ((lua_out *)c)->L;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 4);
        l_int(c, "slot", w[i].slot);
        l_int(c, "pid", w[i].pid);
        l_int(c, "tasks", (long long)w[i].tasks);
        l_num(c, "busy_s", w[i].busy_s, true);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, k);
}

static void l_params(void *c, const char *k, const scn_params *p)
{
    scn_push_params(((lua_out *)c)->s, p);
    lua_setfield(((lua_out *)c)->L, -2, k);
}

static void l_facts(void *c, const char *k, const strat_outcome *o)
{
    lua_State *L = ((lua_out *)c)->L;
    lua_createtable(L, 0, o->nfacts);
    for (int i = 0; i < o->nfacts; i++) {
        lua_pushnumber(L, o->facts[i].value);
        lua_setfield(L, -2, o->facts[i].name);
    }
    lua_setfield(L, -2, k);
}

static void l_pct(void *c, const char *k, const run_pct *p)
{
    lua_State *L = ((lua_out *)c)->L;
    lua_createtable(L, 0, 5);
    l_int(c, "n", (long long)p->n);
    l_num(c, "p50", p->p50, p->n > 0);
    l_num(c, "p90", p->p90, p->n > 0);
    l_num(c, "p99", p->p99, p->n > 0);
    l_num(c, "max", p->max, p->n > 0);
    lua_setfield(L, -2, k);
}

static void push_result(run_report *r, const run_result *res)
{
    lua_out lo = {r->s->L, r->s};
    run_visitor v = {l_num, l_int, l_str, l_bool, l_workers, l_params, l_facts, l_pct, &lo};
    lua_createtable(r->s->L, 0, 40);
    run_result_visit(r, res, &v);
}

/* ---- checks and done ------------------------------------------------------- */

static void add_check(run_report *r, const char *name, bool ok, const char *detail)
{
    run_check *c = realloc(r->checks, (size_t)(r->nchecks + 1) * sizeof *c);
    if (c == NULL)
        return;
    r->checks = c;
    c[r->nchecks++] = (run_check){strdup(name), ok, strdup(detail ? detail : ""), NULL};
}

/* check(name, ok, detail) as the scenario's checks() sees it. */
static int check_fn(lua_State *L)
{
    run_report *r = lua_touserdata(L, lua_upvalueindex(1));
    const char *name = luaL_checkstring(L, 1);
    const char *detail = lua_isnoneornil(L, 3) ? "" : luaL_tolstring(L, 3, NULL);
    add_check(r, name, lua_toboolean(L, 2), detail);
    if (r->cannot_seen[0] && r->nchecks > 0 && r->checks[r->nchecks - 1].reads == NULL)
        r->checks[r->nchecks - 1].reads = strdup(r->cannot_seen);
    r->cannot_seen[0] = '\0'; /* reads before the next check() are the next one's */
    return 0;
}

/* r[label] for a label --impl left out: raise the skip marker (a light
 * userdata no scenario can raise by accident, scn_push_skip_marker), so
 * that the checks stop there and are reported as skipped, not failed. The
 * label goes into r->skipped first. */
static int missing_label(lua_State *L)
{
    run_report *r = lua_touserdata(L, lua_upvalueindex(1));
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    for (int i = 0; k && i < r->s->nvariants; i++)
        if (strcmp(r->s->variants[i].label, k) == 0) {
            snprintf(r->skipped, sizeof r->skipped,
                     "the remaining checks need '%s', which --impl left out", k);
            scn_push_skip_marker(L);
            return lua_error(L);
        }
    return 0;
}

/* r[label].FIELD for a field that is not in the table itself (its
 * __index; upvalues: the aside table of r->cannot fields or nil, r, the
 * run_result):
 *   - `trace` (trace = true, --trace, --timeline): the rows, built on the
 *     first read from the spool (run_push_trace) and kept in the table, so
 *     that a run whose checks never read them never holds them in memory;
 *   - a field in r->cannot: its value, kept aside, and the read noted for
 *     the next check() (check_fn). */
static int result_index(lua_State *L)
{
    run_report *r = lua_touserdata(L, lua_upvalueindex(2));
    const run_result *res = lua_touserdata(L, lua_upvalueindex(3));
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
    if (r->keep_trace && strcmp(k, "trace") == 0) {
        run_push_trace(L, res);
        lua_pushvalue(L, -1);
        lua_setfield(L, 1, "trace");
        return 1;
    }
    if (lua_isnil(L, lua_upvalueindex(1)))
        return 0;
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL && k[0])
        snprintf(r->cannot_seen, sizeof r->cannot_seen, "%s", k);
    return 1;
}

/* Moves the result's r->cannot fields (the table on top) aside, and gives
 * it the __index above (the rows of its trace, the cannot fields). */
static void hide_cannot(run_report *r, const run_result *res)
{
    lua_State *L = r->s->L;
    if (r->ncannot == 0 && !r->keep_trace)
        return;
    if (r->ncannot > 0) {
        lua_createtable(L, 0, r->ncannot);
        for (int i = 0; i < r->ncannot; i++) {
            lua_getfield(L, -2, r->cannot[i]);
            lua_setfield(L, -2, r->cannot[i]);
            lua_pushnil(L);
            lua_setfield(L, -3, r->cannot[i]);
        }
    } else {
        lua_pushnil(L);
    }
    lua_createtable(L, 0, 1);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, r);
    lua_pushlightuserdata(L, (void *)res);
    lua_pushcclosure(L, result_index, 3);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

/* Pushes r: {label = result}, with the marker for labels not run. Also
 * what a lab's measure functions read (lab.c), so they see what checks see. */
void run_push_results(run_report *r)
{
    lua_State *L = r->s->L;
    lua_createtable(L, 0, r->nresults);
    for (int i = 0; i < r->nresults; i++) {
        push_result(r, &r->results[i]);
        hide_cannot(r, &r->results[i]);
        lua_setfield(L, -2, r->results[i].v->label);
    }
    lua_createtable(L, 0, 1);
    lua_pushlightuserdata(L, r);
    lua_pushcclosure(L, missing_label, 1);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

/* checks(r, p, check), under scn_protected. */
static int checks_protected(lua_State *L)
{
    run_report *r = lua_touserdata(L, 1);
    if (scn_push_field(r->s, "checks") != LUA_TFUNCTION)
        return 0;
    run_push_results(r);
    scn_push_params(r->s, &r->p);
    lua_pushlightuserdata(L, r);
    lua_pushcclosure(L, check_fn, 1);
    lua_call(L, 3, 0);
    return 0;
}

/* checks(r, p, check), then a failed check for every strategy that could
 * not run. A checks that raises an error is a failed check, with the error
 * ("file:line: message") as its detail: only the skip marker stops the
 * checks without failing. Returns 0. */
static int judge_checks(run_report *r, char *err, size_t errlen)
{
    scn_scenario *s = r->s;
    scn_lock();
    int top = lua_gettop(s->L);
    int rc = scn_protected(s, checks_protected, r, err, errlen);
    lua_settop(s->L, top);
    scn_unlock();
    if (rc == 0) /* the checks caught the marker themselves and went on */
        r->skipped[0] = '\0';
    if (rc > 0 && !r->skipped[0]) /* the marker, raised again by the scenario */
        snprintf(r->skipped, sizeof r->skipped, "the checks raised the --impl skip marker");
    if (rc < 0)
        add_check(r, "the checks ran to the end without an error", false, err);
    for (int i = 0; i < r->nresults; i++)
        if (r->results[i].run_failed) {
            char name[160];
            snprintf(name, sizeof name, "strategy %s ran", r->results[i].v->label);
            add_check(r, name, false, r->results[i].out.first_error);
        }
    return 0;
}

/* Pushes the report done(report) receives: the run as --json writes it,
 * less the poolbench, quick, repeat and checks_skipped fields (caller holds
 * the lock). */
static void push_report(scn_scenario *s, void *arg)
{
    run_report *r = arg;
    lua_State *L = s->L;
    lua_createtable(L, 0, 10);
    lua_pushstring(L, s->name);
    lua_setfield(L, -2, "scenario");
    lua_pushstring(L, s->source);
    lua_setfield(L, -2, "source");
    lua_pushstring(L, s->path);
    lua_setfield(L, -2, "file");
    lua_pushstring(L, r->date);
    lua_setfield(L, -2, "date");
    scn_push_params(s, &r->p);
    lua_setfield(L, -2, "params");
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, r->cores);
    lua_setfield(L, -2, "cores");
    lua_pushstring(L, r->os);
    lua_setfield(L, -2, "os");
    lua_setfield(L, -2, "machine");
    lua_createtable(L, r->nresults, 0);
    for (int i = 0; i < r->nresults; i++) {
        push_result(r, &r->results[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "results");
    lua_createtable(L, r->nchecks, 0);
    for (int i = 0; i < r->nchecks; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, r->checks[i].name);
        lua_setfield(L, -2, "name");
        lua_pushboolean(L, r->checks[i].ok);
        lua_setfield(L, -2, "ok");
        lua_pushstring(L, r->checks[i].detail);
        lua_setfield(L, -2, "detail");
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "checks");
}

int run_judge(run_report *r, char *err, size_t errlen)
{
    if (judge_checks(r, err, errlen) != 0)
        return -1;
    return scn_call_hook(r->s, "done", push_report, r, err, errlen);
}
