/*
 * lab_table.c: a scenario's `lab` table, read and checked, and the
 * parameters drawn from a seed.
 *
 * Reading happens inside lua_pcall (lab_read), like the schema walk of
 * scenario_schema.c: every mistake is raised as "file:line: lab: message",
 * the line found by the same text search (scn_line_of_key), and names what
 * would be right. The lab's functions (answer, measure, where) stay in the
 * scenario's Lua state as registry references; everything else is copied
 * out, so lab.c never walks the table again.
 *
 * The draws. A seed must give the same numbers on every machine, so they
 * come from a generator of our own, xorshift64* seeded through splitmix64
 * (64-bit integer arithmetic only), and they are taken in the order of the
 * file's parameters: never rand(), whose sequence differs between C
 * libraries, and never Lua's table order, which depends on string hashes
 * that Lua seeds afresh in every process. A value is min + k*step with k
 * drawn uniformly; the modulo's bias (below 1e-9 for any range a lab
 * uses) does not matter for a classroom.
 */
#include "lab.h"

#include <ctype.h>
#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the generator ---------------------------------------------------------- */

/* splitmix64 turns any seed, 0 included, into a well-mixed non-zero state. */
void lab_rng_seed(lab_rng *r, uint64_t seed)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    r->x = z ? z : 1;
}

/* xorshift64* (Vigna): 64-bit integer arithmetic only, the same everywhere. */
uint64_t lab_rng_next(lab_rng *r)
{
    uint64_t x = r->x;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->x = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ---- %name in a text ------------------------------------------------------- */

/* lab.h says what; open_memstream because the text may be pages long. */
char *lab_subst(const scn_scenario *s, const scn_params *p, const char *text, char *bad,
                size_t badlen)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL)
        return scn_strdup("(out of memory)");
    for (const char *c = text; *c; c++) {
        if (c[0] == '%' && c[1] == '%') {
            fputc('%', f);
            c++;
            continue;
        }
        if (c[0] != '%' || !(isalpha((unsigned char)c[1]) || c[1] == '_')) {
            fputc(*c, f);
            continue;
        }
        size_t n = 1;
        while (isalnum((unsigned char)c[n]) || c[n] == '_')
            n++;
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(n - 1), c + 1);
        int i = scn_param_index(s, name);
        if (i < 0) {
            snprintf(bad, badlen, "%s", name);
            fclose(f);
            free(out);
            return NULL;
        }
        char v[64] = "";
        if (p)
            scn_num_format(p->v[i], v, sizeof v);
        fputs(v, f);
        c += n - 1;
    }
    fclose(f);
    return out;
}

/* ---- reading the lab table (inside lua_pcall) ------------------------------- */

static int lab_error(lua_State *L, const lab *lb, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int lab_error(lua_State *L, const lab *lb, int line, const char *fmt, ...)
{
    char msg[SCN_ERR];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lua_pushfstring(L, "%s:%d: lab: %s", lb->s->path, line > 0 ? line : lb->line, msg);
    return lua_error(L);
}

/* Every key of the table at t is one of keys (NULL-terminated). */
static void lab_known(lua_State *L, const lab *lb, int t, const char *const *keys, int line,
                      const char *what)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        bool ok = false;
        for (int i = 0; keys[i] && !ok; i++)
            ok = lua_type(L, -1) == LUA_TSTRING && strcmp(keys[i], lua_tostring(L, -1)) == 0;
        if (!ok) {
            char list[256] = "";
            for (int i = 0; keys[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         keys[i]);
            char kb[128];
            const char *k = scn_key_name(L, -1, kb, sizeof kb);
            int l = scn_line_of_key(lb->s, k, line);
            lab_error(L, lb, l ? l : line, "unknown field '%s' in %s (fields: %s)", k, what, list);
        }
    }
}

/* Field key of the table at t as a string: required, or NULL when nil. */
static const char *lab_string(lua_State *L, const lab *lb, int t, const char *key, bool required,
                              int line)
{
    int type = scn_rawgetfield(L, t, key);
    const char *v = type == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* the string stays alive in the table */
    if ((type == LUA_TNIL && required) || (type != LUA_TNIL && type != LUA_TSTRING))
        lab_error(L, lb, line, "'%s' must be a string%s", key, required ? " (required)" : "");
    return v;
}

/* A label of the scenario, or (impl_too) a strategy name one of its labels uses. */
static bool lab_is_label(const scn_scenario *s, const char *name, size_t n, bool impl_too)
{
    for (int i = 0; i < s->nvariants; i++) {
        const char *l = s->variants[i].label, *m = s->variants[i].impl->name;
        if ((strlen(l) == n && !strncmp(l, name, n)) ||
            (impl_too && strlen(m) == n && !strncmp(m, name, n)))
            return true;
    }
    return false;
}

/* Whether -c runs label: what run's --impl filter (runner.c) would select
 * from the lab's impls. A name that is a label selects that variant alone;
 * a strategy name that is no label selects every variant of it. */
static bool lab_runs(const lab *lb, const char *label, size_t n)
{
    const scn_scenario *s = lb->s;
    if (lb->impls[0] == '\0')
        return true;
    for (int i = 0; i < s->nvariants; i++) {
        const scn_variant *v = &s->variants[i];
        if (strlen(v->label) != n || strncmp(v->label, label, n))
            continue;
        size_t m = strlen(v->impl->name);
        for (const char *p = lb->impls; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
            size_t k = strcspn(p, ",");
            if ((k == n && !strncmp(p, label, n)) ||
                (k == m && !strncmp(p, v->impl->name, k) && !lab_is_label(s, p, k, false)))
                return true;
        }
    }
    return false;
}

/* vary.NAME for parameter i, {min, max[, step]} on top of the stack (left
 * there), checked against the parameter's range into lb->vary. */
static void lab_read_range(lua_State *L, lab *lb, int i, int line)
{
    const scn_param *q = &lb->s->params[i];
    int l = scn_line_of_key(lb->s, q->name, line);
    lua_Integer len = lua_istable(L, -1) ? (lua_Integer)lua_rawlen(L, -1) : 0;
    scn_num v[3] = {{0, true}, {0, true}, {1, true}};
    for (lua_Integer k = 1; k <= len && k <= 3; k++) {
        if (lua_rawgeti(L, -1, k) != LUA_TNUMBER)
            len = 0;
        v[k - 1] = (scn_num){lua_tonumber(L, -1), lua_isinteger(L, -1)};
        lua_pop(L, 1);
    }
    if (len < 2 || len > 3)
        lab_error(L, lb, l, "vary.%s must be {min, max} or {min, max, step}, numbers",
                  q->name);
    char err[SCN_ERR];
    if (scn_param_check(q, v[0], "min is", err, sizeof err) != 0 ||
        scn_param_check(q, v[1], "max is", err, sizeof err) != 0)
        lab_error(L, lb, l, "vary.%s: %s", q->name, err);
    if (v[0].d > v[1].d || !(v[2].d > 0))
        lab_error(L, lb, l, "vary.%s: min must not exceed max, and step must be above 0",
                  q->name);
    if (q->integer && (!v[2].isint && v[2].d != floor(v[2].d)))
        lab_error(L, lb, l, "vary.%s: an integer parameter needs an integer step", q->name);
    double count = floor((v[1].d - v[0].d) / v[2].d + 1e-9) + 1;
    if (count > 1e9)
        lab_error(L, lb, l, "vary.%s: more than 1e9 values", q->name);
    lb->vary[lb->nvary++] = (lab_vary){i, v[0], v[2], v[1].d, (long long)count};
}

static void lab_read_vary(lua_State *L, lab *lb, int t)
{
    scn_scenario *s = lb->s;
    int line = scn_line_of_key(s, "vary", lb->line);
    if (scn_rawgetfield(L, t, "vary") == LUA_TNIL)
        return;
    int vt = lua_gettop(L);
    if (!lua_istable(L, vt))
        lab_error(L, lb, line, "'vary' must be a table {param = {min, max[, step]}}");
    lua_pushnil(L);
    while (lua_next(L, vt)) { /* every key must be a declared parameter */
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
        int i = scn_param_index(s, k);
        if (i < 0 || s->params[i].implicit)
            lab_error(L, lb, line, "vary names '%s', which is not a declared parameter", k);
    }
    /* In the file's order, so that the draws do not depend on Lua's hashing. */
    for (int i = 0; i < s->nparams; i++) {
        if (scn_rawgetfield(L, vt, s->params[i].name) != LUA_TNIL)
            lab_read_range(L, lb, i, line);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void lab_read_impls(lua_State *L, lab *lb, int t)
{
    int line = scn_line_of_key(lb->s, "impls", lb->line);
    if (scn_rawgetfield(L, t, "impls") == LUA_TNIL)
        return;
    lua_Integer n = lua_istable(L, -1) ? (lua_Integer)lua_rawlen(L, -1) : 0;
    if (n == 0)
        lab_error(L, lb, line, "'impls' must list the labels -c runs");
    for (lua_Integer i = 1; i <= n; i++) {
        const char *name = lua_rawgeti(L, -1, i) == LUA_TSTRING ? lua_tostring(L, -1) : "";
        if (!lab_is_label(lb->s, name, strlen(name), true))
            lab_error(L, lb, line, "impls names '%s', which is not a label of the scenario", name);
        snprintf(lb->impls + strlen(lb->impls), sizeof lb->impls - strlen(lb->impls), "%s%s",
                 i > 1 ? "," : "", name);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void lab_read_question(lua_State *L, lab *lb, lab_question *q, int n)
{
    static const char *const fields[] = {"ask", "answer", "unit", "measure", NULL};
    int e = lua_gettop(L);
    if (!lua_istable(L, e))
        lab_error(L, lb, q->line, "question %d must be a table {ask=, answer=}", n);
    lab_known(L, lb, e, fields, q->line, "a question");
    const char *ask = lab_string(L, lb, e, "ask", true, q->line);
    const char *unit = lab_string(L, lb, e, "unit", false, q->line);
    char bad[64];
    if ((q->ask = lab_subst(lb->s, NULL, ask, bad, sizeof bad)) == NULL)
        lab_error(L, lb, q->line, "question %d asks about %%%s, which is not a parameter", n, bad);
    free(q->ask);
    q->ask = scn_strdup(ask);
    q->unit = scn_strdup(unit);
    if (scn_rawgetfield(L, e, "answer") != LUA_TFUNCTION)
        lab_error(L, lb, q->line, "question %d needs answer = function(p) return number end", n);
    q->answer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    int type = scn_rawgetfield(L, e, "measure");
    if (type == LUA_TFUNCTION) {
        lua_Debug ar;
        lua_pushvalue(L, -1);
        lua_getinfo(L, ">S", &ar); /* pops the copy */
        q->measure_line = ar.linedefined;
        q->measure_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        return;
    }
    if (type == LUA_TSTRING) {
        const char *m = lua_tostring(L, -1);
        size_t label = strcspn(m, ".");
        int line = scn_line_of_key(lb->s, "measure", q->line);
        if (!lab_is_label(lb->s, m, label, false))
            lab_error(L, lb, line, "question %d measures '%.*s', which is not a label", n,
                      (int)label, m);
        if (!lab_runs(lb, m, label))
            lab_error(L, lb, line, "question %d measures '%.*s', which the lab's impls leave "
                      "out", n, (int)label, m);
        q->measure = scn_strdup(m);
    } else if (type != LUA_TNIL) {
        lab_error(L, lb, q->line, "question %d: measure must be a label or a function(r, p)", n);
    }
    lua_pop(L, 1);
}

/* questions: a list of 1 to LAB_MAX_QUESTIONS tables, each read in turn;
 * a question's line is that of its `ask`, searched from the one before. */
static void lab_read_questions(lua_State *L, lab *lb, int t)
{
    int qline = scn_line_of_key(lb->s, "questions", lb->line);
    scn_rawgetfield(L, t, "questions");
    lua_Integer n = lua_istable(L, -1) ? (lua_Integer)lua_rawlen(L, -1) : 0;
    if (n < 1 || n > LAB_MAX_QUESTIONS)
        lab_error(L, lb, qline, "'questions' must list 1 to %d questions", LAB_MAX_QUESTIONS);
    for (lua_Integer i = 1, line = qline; i <= n; i++) {
        lab_question *q = &lb->q[lb->nq++];
        q->answer_ref = q->measure_ref = LUA_NOREF;
        int l = scn_line_of_key(lb->s, "ask", (int)line);
        q->line = l ? l : qline;
        line = q->line + 1;
        lua_rawgeti(L, t + 1, i);
        lab_read_question(L, lb, q, (int)i);
        lua_settop(L, t + 1);
    }
}

/* exercise = {task=, skeleton=, reference=, margin=}: optional. */
static void lab_read_exercise(lua_State *L, lab *lb, int t)
{
    static const char *const fields[] = {"task", "skeleton", "reference", "margin", NULL};
    int line = scn_line_of_key(lb->s, "exercise", lb->line);
    if (scn_rawgetfield(L, t, "exercise") == LUA_TNIL)
        return;
    int e = lua_gettop(L);
    if (lua_type(L, e) != LUA_TTABLE)
        lab_error(L, lb, line, "'exercise' must be a table {task=, skeleton=, reference=}");
    lab_known(L, lb, e, fields, line, "the exercise");
    const char *task = lab_string(L, lb, e, "task", true, line);
    const char *skel = lab_string(L, lb, e, "skeleton", true, line);
    const char *ref = lab_string(L, lb, e, "reference", true, line);
    if (!lab_is_label(lb->s, ref, strlen(ref), false))
        lab_error(L, lb, line, "the exercise's reference '%s' is not a label of the scenario", ref);
    lb->ex_margin = 0.25;
    if (scn_rawgetfield(L, e, "margin") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TNUMBER || lua_tonumber(L, -1) <= 0 || lua_tonumber(L, -1) > 10)
            lab_error(L, lb, line, "the exercise's margin must be a number from 0 to 10");
        lb->ex_margin = lua_tonumber(L, -1);
    }
    lb->ex_task = scn_strdup(task);
    lb->ex_skeleton = scn_strdup(skel);
    lb->ex_reference = scn_strdup(ref);
}

/* A lab with no exercise of its own: write, in Lua, the first strategy it
 * runs (the lab's first label, or the scenario's), judged against it. */
static void lab_default_exercise(lab *lb)
{
    char ref[128];
    size_t n = strcspn(lb->impls, ",");
    if (n > 0 && n < sizeof ref)
        snprintf(ref, sizeof ref, "%.*s", (int)n, lb->impls);
    else
        snprintf(ref, sizeof ref, "%s", lb->s->variants[0].label);
    for (int i = 0; i < lb->s->nvariants; i++) /* a strategy name: its first label */
        if (strcmp(lb->s->variants[i].impl->name, ref) == 0 &&
            !lab_is_label(lb->s, ref, strlen(ref), false)) {
            snprintf(ref, sizeof ref, "%s", lb->s->variants[i].label);
            break;
        }
    char task[512];
    snprintf(task, sizeof task,
             "This lab has no fix of its own to write. Write the strategy it measures,\n"
             "%s, in Lua: the same calls on the pool, every item's result (or error)\n"
             "reported with pool:final(i, value [, err]). Your run uses %s's parameters.",
             ref, ref);
    lb->ex_task = scn_strdup(task);
    lb->ex_skeleton = scn_strdup("return function(pool, items, p)\n"
                                 "  local task = pool.stages[1]\n"
                                 "  -- TODO: run task on every item, then pool:final(i, value)\n"
                                 "end\n");
    lb->ex_reference = scn_strdup(ref);
    lb->ex_margin = 0.5;
}

/* lua_CFunction(lab, table): fills lab from the scenario's lab table. */
static int lab_read(lua_State *L)
{
    static const char *const fields[] = {"title", "order", "vary", "where", "impls",
                                         "questions", "explain", "exercise", NULL};
    lab *lb = lua_touserdata(L, 1);
    const int t = 2;
    lab_known(L, lb, t, fields, lb->line, "the lab");
    const char *title = lab_string(L, lb, t, "title", true, 0);
    const char *explain = lab_string(L, lb, t, "explain", true, 0);
    if (strchr(title, '\n'))
        lab_error(L, lb, scn_line_of_key(lb->s, "title", lb->line), "the title is one line");
    lb->title = scn_strdup(title);
    lb->explain = scn_strdup(explain);
    char bad[64];
    char *x = lab_subst(lb->s, NULL, explain, bad, sizeof bad);
    if (x == NULL)
        lab_error(L, lb, scn_line_of_key(lb->s, "explain", lb->line),
                  "explain mentions %%%s, which is not a parameter (%%%% for a %%)", bad);
    free(x);
    if (scn_rawgetfield(L, t, "order") != LUA_TNUMBER || !lua_isinteger(L, -1) ||
        lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > 999)
        lab_error(L, lb, scn_line_of_key(lb->s, "order", lb->line),
                  "'order' must be an integer from 1 to 999 (the lab's place in the course)");
    lb->order = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lab_read_vary(L, lb, t);
    lua_settop(L, t);
    if (scn_rawgetfield(L, t, "where") == LUA_TFUNCTION)
        lb->where_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else if (!lua_isnil(L, -1))
        lab_error(L, lb, scn_line_of_key(lb->s, "where", lb->line),
                  "'where' must be a function(p) returning a boolean");
    lua_settop(L, t);
    lab_read_impls(L, lb, t);
    lua_settop(L, t);
    lab_read_questions(L, lb, t);
    lua_settop(L, t);
    lab_read_exercise(L, lb, t);
    if (lb->ex_task == NULL)
        lab_default_exercise(lb);
    return 0;
}

void lab_free(lab *lb)
{
    if (lb == NULL)
        return;
    for (int i = 0; i < lb->nq; i++) {
        free(lb->q[i].ask);
        free(lb->q[i].unit);
        free(lb->q[i].measure);
    }
    free(lb->title);
    free(lb->explain);
    free(lb->ex_task);
    free(lb->ex_skeleton);
    free(lb->ex_reference);
    scn_free(lb->s); /* the Lua state, and the references into it */
    free(lb);
}

lab *lab_open(const char *path, char *err, size_t errlen)
{
    scn_scenario *s = scn_load(path, err, errlen);
    if (s == NULL)
        return NULL;
    lab *lb = calloc(1, sizeof *lb);
    if (lb == NULL) {
        scn_free(s);
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    lb->s = s;
    lb->where_ref = LUA_NOREF;
    lb->line = scn_line_of_key(s, "lab", 1);
    scn_lock();
    int rc = -1;
    if (scn_push_field(s, "lab") != LUA_TTABLE) {
        err[0] = '\0';
        lua_pop(s->L, 1);
    } else {
        int t = lua_gettop(s->L);
        lua_pushcfunction(s->L, lab_read);
        lua_pushlightuserdata(s->L, lb);
        lua_pushvalue(s->L, t);
        if ((rc = scn_pcall(s, 2, 0, err, errlen)) > 0)
            snprintf(err, errlen, "%s:%d: lab: raised the skip marker", s->path, lb->line);
        lua_settop(s->L, t - 1);
    }
    scn_unlock();
    if (rc != 0) {
        lab_free(lb);
        return NULL;
    }
    return lb;
}

/* ---- drawing the parameters ------------------------------------------------ */


/* where(p): 1 true, 0 false, -1 error (err set). */
static int lab_where(lab *lb, const scn_params *p, char *err, size_t errlen)
{
    if (lb->where_ref == LUA_NOREF)
        return 1;
    scn_lock();
    lua_rawgeti(lb->s->L, LUA_REGISTRYINDEX, lb->where_ref);
    scn_push_params(lb->s, p);
    int rc = scn_pcall(lb->s, 1, 1, err, errlen);
    if (rc > 0)
        snprintf(err, errlen, "%s:%d: lab: where raised a table", lb->s->path, lb->line);
    int ok = rc != 0 ? -1 : lua_toboolean(lb->s->L, -1);
    lua_pop(lb->s->L, rc == 0 || rc > 0);
    scn_unlock();
    return ok;
}

int lab_draw(lab *lb, uint64_t seed, lab_setting *st, char *err, size_t errlen)
{
    lab_rng rng;
    memset(st, 0, sizeof *st);
    st->seed = seed;
    lab_rng_seed(&rng, seed);
    for (st->tries = 1; st->tries <= LAB_MAX_TRIES; st->tries++) {
        st->nsets = 0;
        for (int i = 0; i < lb->nvary; i++) {
            const lab_vary *v = &lb->vary[i];
            long long k = (long long)(lab_rng_next(&rng) % (uint64_t)v->count);
            scn_num x = {v->min.d + (double)k * v->step.d, v->min.isint && v->step.isint};
            char num[64];
            scn_num_format(x, num, sizeof num);
            snprintf(st->set[st->nsets], sizeof st->set[0], "%s=%s",
                     lb->s->params[v->param].name, num);
            st->sets[st->nsets] = st->set[st->nsets];
            st->nsets++;
        }
        if (scn_params_resolve(lb->s, false, st->sets, st->nsets, &st->p, err, errlen) != 0)
            return -1;
        int ok = lab_where(lb, &st->p, err, errlen);
        if (ok != 0)
            return ok > 0 ? 0 : -1;
    }
    snprintf(err, errlen, "%s:%d: lab: where(p) held for none of %d draws", lb->s->path,
             scn_line_of_key(lb->s, "where", lb->line), LAB_MAX_TRIES);
    return -1;
}

