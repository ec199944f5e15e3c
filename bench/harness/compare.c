/*
 * compare.c: `poolbench compare FILE`, a scenario beside its CPython twin.
 *
 *   poolbench compare FILE [--impl a,b] [--set k=v]... [--quick] [--repeat N]
 *                          [--json F] [--csv F]
 *
 * CPython is the reference, so it is measured in the same run, interleaved:
 * the runner runs each strategy --repeat times, and after every repetition
 * of a label (the runner's progress callback, called once its pool is
 * gone) the twin runs that label once, with exactly the resolved
 * parameters as --set. So each label goes poolbench, CPython, poolbench,
 * CPython...; both sides' walls are medians of N runs taken minutes apart
 * at most, on the same load.
 *
 * The twin's last figures become a run_report (twin_report.c) and the
 * scenario's own checks judge them (run_judge), since the checks state the
 * phenomenon. A check the twin's `cannot` map covers prints as "n/a for
 * CPython: reason". The ratios the checks rely on are declared by the
 * scenario (`ratios`, docs/lua-api.md): a ratio declared is a ratio
 * reported, for both engines and the model, with whether CPython's is
 * within 25% of poolbench's. The first is the scenario's key ratio (the
 * figure plots/compare.gp, docs/reproduction.md).
 */
#include "compare.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "runner.h"
#include "twin_report.h"

#define CMP_MAX_SETS 64
#define CMP_MAX_REPEAT 100
#define CMP_MAX_RATIOS 8
#define CMP_AGREE 0.25 /* |CPython / poolbench - 1| at most this: "agree" */

static const char cmp_usage[] =
    "usage: poolbench compare FILE [--impl a,b] [--set key=value]... [--quick] [--repeat N]\n"
    "                              [--json F] [--csv F]\n";

typedef struct cmp_args {
    const char *file, *json, *csv;
    char impls[1024];
    char *sets[CMP_MAX_SETS];
    int nsets, repeat;
    bool quick;
} cmp_args;

/* One ratio the checks rely on: num / den, each "label" (its wall_s) or
 * "label.field[.field]", or "label.busiest": the most tasks one worker ran
 * (from per_worker), for the phenomena about who ran what. */
typedef struct cmp_ratio {
    char num[96], den[96];
    double pb, cp, model;
    bool has_pb, has_cp, has_model;
} cmp_ratio;

/* The run: poolbench's report, the twin, and what the twin measured. */
typedef struct cmp_run {
    run_report r, tr;
    twin t;
    bool twin_ok, twin_judged;
    json_t *last[SCN_MAX_VARIANTS];           /* each label's last twin JSON */
    double walls[SCN_MAX_VARIANTS][CMP_MAX_REPEAT]; /* CPython's walls */
    int nwalls[SCN_MAX_VARIANTS];
    char twin_failed[400];                    /* a run of the twin that failed */
    cmp_ratio ratios[CMP_MAX_RATIOS];
    int nratios;
} cmp_run;

static int cmp_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "poolbench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", cmp_usage);
    return 2;
}

/* ---- arguments ------------------------------------------------------------- */

static const char *cmp_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    return *i + 1 < argc ? argv[++*i] : NULL;
}

static bool cmp_is(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

static int cmp_parse(int argc, char **argv, cmp_args *a)
{
    memset(a, 0, sizeof *a);
    a->repeat = 1;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i], *v;
        if (strcmp(arg, "--quick") == 0) {
            a->quick = true;
        } else if (cmp_is(arg, "--impl")) {
            if (!(v = cmp_value(argc, argv, &i, "--impl")))
                return cmp_usage_error("%s needs a value", "--impl");
            snprintf(a->impls + strlen(a->impls), sizeof a->impls - strlen(a->impls), "%s%s",
                     a->impls[0] ? "," : "", v);
        } else if (cmp_is(arg, "--set")) {
            if (!(v = cmp_value(argc, argv, &i, "--set")) || !strchr(v, '='))
                return cmp_usage_error("%s needs key=value", "--set");
            if (a->nsets == CMP_MAX_SETS)
                return cmp_usage_error("too many --set (at most %s)", "64");
            a->sets[a->nsets++] = (char *)v;
        } else if (cmp_is(arg, "--repeat")) {
            char *end;
            if (!(v = cmp_value(argc, argv, &i, "--repeat")))
                return cmp_usage_error("%s needs a number", "--repeat");
            errno = 0;
            long n = strtol(v, &end, 10);
            if (errno || *end || end == v || n < 1 || n > CMP_MAX_REPEAT)
                return cmp_usage_error("--repeat expects a whole number from 1 to 100 (got '%s')",
                                       v);
            a->repeat = (int)n;
        } else if (cmp_is(arg, "--json") || cmp_is(arg, "--csv")) {
            const char *name = cmp_is(arg, "--json") ? "--json" : "--csv";
            if (!(v = cmp_value(argc, argv, &i, name)) || !*v)
                return cmp_usage_error("%s needs a file name", name);
            *(name[2] == 'j' ? &a->json : &a->csv) = v;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return cmp_usage_error("unknown option '%s'", arg);
        } else if (a->file == NULL) {
            a->file = arg;
        } else {
            return cmp_usage_error("one scenario file at a time (got '%s' too)", arg);
        }
    }
    return a->file ? 0 : cmp_usage_error("%s needs a scenario file", "compare");
}

/* ---- the interleaved run ------------------------------------------------------ */

/* The runner's progress callback: after each repetition of a label (its pool
 * gone), the twin runs that label once. */
static void cmp_progress(void *ctx, const char *label, int rep, int nrep, bool begin)
{
    cmp_run *c = ctx;
    if (isatty(STDERR_FILENO))
        rep_progress(NULL, label, rep, nrep, begin);
    if (begin || !c->twin_ok || c->t.killed || strat_interrupted())
        return; /* a twin that hung once would hang again: one bound is enough */
    int i = 0;
    while (i < c->r.nselected && strcmp(c->r.selected[i]->label, label) != 0)
        i++;
    if (i == c->r.nselected)
        return;
    json_t *root = twin_run(&c->t, &c->r, label);
    json_t *x = root ? twin_result(root, label) : NULL;
    if (x == NULL) {
        snprintf(c->twin_failed, sizeof c->twin_failed, "%.100s: %.250s", label,
                 c->t.why[0] ? c->t.why : "no result for this label");
        json_decref(root);
        return;
    }
    c->walls[i][c->nwalls[i]++] = json_number_value(json_object_get(x, "wall_s"));
    json_decref(c->last[i]);
    c->last[i] = root;
}

/* Every twin `cannot` key that may name a field of r[label]: the checks on
 * CPython's figures read those through run_report.cannot, so a check that
 * used one shows as n/a (cmp_cannot). Keys with a space are check names. */
static void cmp_cannot_fields(cmp_run *c)
{
    c->tr.ncannot = 0;
    for (int k = 0; k < SCN_MAX_VARIANTS; k++) {
        json_t *x = c->last[k] ? json_array_get(json_object_get(c->last[k], "results"), 0)
                               : NULL;
        const char *key;
        json_t *v;
        json_object_foreach(x ? json_object_get(x, "cannot") : NULL, key, v) {
            bool dup = strchr(key, ' ') != NULL;
            for (int i = 0; !dup && i < c->tr.ncannot; i++)
                dup = strcmp(c->tr.cannot[i], key) == 0;
            if (!dup && c->tr.ncannot < (int)(sizeof c->tr.cannot / sizeof *c->tr.cannot))
                c->tr.cannot[c->tr.ncannot++] = key;
        }
    }
}

/* CPython's report, built from the twin's last runs and judged by the
 * scenario's checks. */
static void cmp_judge_twin(cmp_run *c)
{
    json_t *res[SCN_MAX_VARIANTS] = {0};
    double *walls[SCN_MAX_VARIANTS];
    int nwalls[SCN_MAX_VARIANTS] = {0};
    for (int i = 0; i < c->r.nresults; i++) {
        int k = 0;
        while (k < c->r.nselected && c->r.selected[k] != c->r.results[i].v)
            k++;
        res[i] = k < c->r.nselected && c->last[k]
                     ? twin_result(c->last[k], c->r.results[i].v->label) : NULL;
        walls[i] = c->walls[k < c->r.nselected ? k : 0];
        nwalls[i] = k < c->r.nselected ? c->nwalls[k] : 0;
    }
    twin_build_report(&c->r, res, walls, nwalls, &c->tr);
    cmp_cannot_fields(c);
    char err[SCN_ERR];
    printf("\nCPython's figures through the scenario's checks (and its done):\n");
    fflush(stdout);
    if (run_judge(&c->tr, err, sizeof err) != 0)
        fprintf(stderr, "%s\n", err);
    c->twin_judged = true;
}

/* ---- ratios ----------------------------------------------------------------------- */

/* The scenario's `ratios`: { {"num", "den"}, ... } (docs/lua-api.md). */
static void cmp_read_ratios(cmp_run *c)
{
    scn_scenario *s = c->r.s;
    scn_lock();
    lua_State *L = s->L;
    int top = lua_gettop(L);
    if (scn_push_field(s, "ratios") == LUA_TTABLE) {
        for (int i = 1; i <= CMP_MAX_RATIOS; i++) {
            if (lua_rawgeti(L, -1, i) != LUA_TTABLE)
                break;
            cmp_ratio *x = &c->ratios[c->nratios];
            lua_rawgeti(L, -1, 1);
            lua_rawgeti(L, -2, 2);
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
                snprintf(x->num, sizeof x->num, "%s", lua_tostring(L, -2));
                snprintf(x->den, sizeof x->den, "%s", lua_tostring(L, -1));
                c->nratios++;
            } else {
                fprintf(stderr, "%s:%d: ratios[%d] must be {\"label[.field]\", "
                        "\"label[.field]\"}: skipped\n", s->path,
                        scn_line_of_key(s, "ratios", 1), i);
            }
            lua_pop(L, 3);
        }
    }
    lua_settop(L, top);
    scn_unlock();
}

/* A term, "label" or "label.field.field", in the results table at rt (the
 * lock held). model: the label's model_s instead, for a time with a model
 * (wall_s, answer_s). */
static bool cmp_term(lua_State *L, int rt, const char *term, bool model, double *out)
{
    int top = lua_gettop(L);
    size_t n = strcspn(term, ".");
    lua_pushlstring(L, term, n);
    lua_rawget(L, rt);
    const char *field = term[n] ? term + n + 1 : "wall_s";
    if (model) {
        if (strcmp(field, "wall_s") != 0 && strcmp(field, "answer_s") != 0) {
            lua_settop(L, top);
            return false;
        }
        field = "model_s";
    }
    if (strcmp(field, "busiest") == 0 && lua_istable(L, -1)) { /* the most tasks one worker ran */
        double most = 0;
        lua_getfield(L, -1, "per_worker");
        for (lua_Integer i = 1; lua_istable(L, -1) && lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
            lua_getfield(L, -1, "tasks");
            most = fmax(most, lua_tonumber(L, -1));
            lua_pop(L, 2);
        }
        lua_settop(L, top);
        *out = most;
        return true;
    }
    while (lua_istable(L, -1) && *field) {
        size_t k = strcspn(field, ".");
        lua_pushlstring(L, field, k);
        lua_rawget(L, -2);
        lua_remove(L, -2);
        field += k + (field[k] == '.');
    }
    bool ok = lua_type(L, -1) == LUA_TNUMBER && !*field;
    *out = ok ? lua_tonumber(L, -1) : 0;
    lua_settop(L, top);
    return ok;
}

/* num / den over report r; model: the model's. */
static bool cmp_ratio_of(run_report *r, const cmp_ratio *x, bool model, double *out)
{
    double a, b;
    scn_lock();
    run_push_results(r);
    int rt = lua_gettop(r->s->L);
    bool ok = cmp_term(r->s->L, rt, x->num, model, &a) && cmp_term(r->s->L, rt, x->den, model, &b)
              && b != 0;
    lua_settop(r->s->L, rt - 1);
    scn_unlock();
    *out = ok ? a / b : 0;
    return ok;
}

static void cmp_ratios(cmp_run *c)
{
    for (int i = 0; i < c->nratios; i++) {
        cmp_ratio *x = &c->ratios[i];
        x->has_pb = cmp_ratio_of(&c->r, x, false, &x->pb);
        x->has_model = cmp_ratio_of(&c->r, x, true, &x->model);
        x->has_cp = c->twin_judged && cmp_ratio_of(&c->tr, x, false, &x->cp);
    }
}

static bool cmp_agree(const cmp_ratio *x)
{
    return x->has_pb && x->has_cp && x->pb != 0 && fabs(x->cp / x->pb - 1) <= CMP_AGREE;
}

/* ---- printing ---------------------------------------------------------------------- */

static void cmp_cell(char *buf, size_t len, bool present, double v, const char *fmt)
{
    if (present)
        snprintf(buf, len, fmt, v);
    else
        snprintf(buf, len, "-");
}

static void cmp_print_table(cmp_run *c)
{
    printf("\nwall time, seconds (median of %d; measured on this machine, %d cores, %s):\n"
           "  %-24s %-10s %-10s %-10s %s\n", c->r.repeat, c->r.cores, c->r.os, "strategy",
           "poolbench", "CPython", "model", "CPython / poolbench");
    for (int i = 0; i < c->r.nresults; i++) {
        const run_result *p = &c->r.results[i];
        const run_result *q = i < c->tr.nresults ? &c->tr.results[i] : NULL;
        bool cp = q && !q->run_failed;
        char a[32], b[32], m[32], ratio[32];
        cmp_cell(a, sizeof a, !p->run_failed, p->wall_s, "%.3f");
        cmp_cell(b, sizeof b, cp, cp ? q->wall_s : 0, "%.3f");
        cmp_cell(m, sizeof m, p->has_model, p->model_s, "%.3f");
        cmp_cell(ratio, sizeof ratio, cp && p->wall_s > 0, cp ? q->wall_s / p->wall_s : 0,
                 "%.2f");
        printf("  %-24s %-10s %-10s %-10s %s\n", p->v->label, a, b, m, ratio);
    }
    printf("\nratios the checks rely on (the scenario's `ratios`; agree: CPython's within %.0f%% "
           "of poolbench's):\n", 100 * CMP_AGREE);
    if (c->nratios == 0)
        printf("  (none declared)\n");
    for (int i = 0; i < c->nratios; i++) {
        const cmp_ratio *x = &c->ratios[i];
        char name[200], a[32], b[32], m[32];
        snprintf(name, sizeof name, "%s / %s", x->num, x->den);
        cmp_cell(a, sizeof a, x->has_pb, x->pb, "%.3g"); /* 2.25, 0.0123, 130 */
        cmp_cell(b, sizeof b, x->has_cp, x->cp, "%.3g");
        cmp_cell(m, sizeof m, x->has_model, x->model, "%.3g");
        printf("  %-44s poolbench %-6s CPython %-6s model %-6s %s\n", name, a, b, m,
               !x->has_cp ? "CPython not measured" : cmp_agree(x) ? "agree" : "DISAGREE");
    }
}

/* Variant k's last twin result (its first), or NULL when it had none. */
static json_t *cmp_twin_result(cmp_run *c, int k)
{
    return c->last[k] ? json_array_get(json_object_get(c->last[k], "results"), 0) : NULL;
}

/* The twin's `cannot` reason for a check, or NULL: a key that names a field
 * the check read (run_check.reads, noted as it ran), or else one its name
 * matches (twin_reason). */
static const char *cmp_cannot(cmp_run *c, const run_check *check)
{
    for (int k = 0; k < SCN_MAX_VARIANTS; k++) {
        json_t *x = cmp_twin_result(c, k);
        json_t *v = x && check->reads
                        ? json_object_get(json_object_get(x, "cannot"), check->reads) : NULL;
        const char *why = v ? (json_string_value(v) ? json_string_value(v) : "(no reason given)")
                          : x ? twin_reason(x, "cannot", check->name) : NULL;
        if (why)
            return why;
    }
    return NULL;
}

/* Why CPython fails a check by design (the twin's `differs` map), or NULL. */
static const char *cmp_differs(cmp_run *c, const run_check *check)
{
    for (int k = 0; k < SCN_MAX_VARIANTS; k++) {
        json_t *x = cmp_twin_result(c, k);
        const char *why = x ? twin_reason(x, "differs", check->name) : NULL;
        if (why)
            return why;
    }
    return NULL;
}

static void cmp_print_checks(cmp_run *c)
{
    printf("\nchecks, poolbench:\n");
    rep_checks(stdout, &c->r);
    if (!c->twin_judged)
        return;
    int held = 0, na = 0;
    printf("\nchecks, CPython (reported; they do not fail the run):\n");
    for (int i = 0; i < c->tr.nchecks; i++) {
        const run_check *k = &c->tr.checks[i];
        const char *why = k->ok ? NULL : cmp_cannot(c, k);
        if (why)
            printf("  n/a for CPython: %s: %s\n", k->name, why);
        else
            printf("  %s  %s%s%.*s%s\n", k->ok ? "PASS" : "FAIL", k->name,
                   k->detail[0] ? " (" : "", (int)strcspn(k->detail, "\n"), k->detail,
                   k->detail[0] ? ")" : "");
        const char *differs = !k->ok && !why ? cmp_differs(c, k) : NULL;
        if (differs)
            printf("        CPython differs here by design: %s\n", differs);
        held += k->ok;
        na += why != NULL;
    }
    printf("CPython checks: %d of %d passed, %d n/a\n", held, c->tr.nchecks, na);
}

/* ---- JSON and CSV ------------------------------------------------------------------ */

static json_t *cmp_num(bool present, double v)
{
    return present ? json_real(v) : json_null();
}

static json_t *cmp_checks_json(cmp_run *c, run_report *r, bool cpython)
{
    json_t *a = json_array();
    for (int i = 0; i < r->nchecks; i++) {
        const run_check *k = &r->checks[i];
        const char *why = cpython && !k->ok ? cmp_cannot(c, k) : NULL;
        const char *differs = cpython && !k->ok && !why ? cmp_differs(c, k) : NULL;
        json_array_append_new(a, json_pack("{s:s, s:b, s:s, s:o, s:o}", "name", k->name, "ok",
                                           k->ok, "detail", k->detail, "na",
                                           why ? json_string(why) : json_null(), "differs",
                                           differs ? json_string(differs) : json_null()));
    }
    return a;
}

static json_t *cmp_json(cmp_run *c, const cmp_args *a)
{
    json_t *st = json_array(), *ra = json_array();
    for (int i = 0; i < c->r.nresults; i++) {
        const run_result *p = &c->r.results[i];
        const run_result *q = i < c->tr.nresults ? &c->tr.results[i] : NULL;
        bool cp = q && !q->run_failed;
        json_array_append_new(st, json_pack(
            "{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "label", p->v->label, "impl",
            p->v->impl->name, "poolbench_s", cmp_num(!p->run_failed, p->wall_s),
            "poolbench_min_s", cmp_num(!p->run_failed, p->wall_min_s), "poolbench_max_s",
            cmp_num(!p->run_failed, p->wall_max_s), "cpython_s", cmp_num(cp, cp ? q->wall_s : 0),
            "cpython_min_s", cmp_num(cp, cp ? q->wall_min_s : 0), "cpython_max_s",
            cmp_num(cp, cp ? q->wall_max_s : 0), "model_s", cmp_num(p->has_model, p->model_s)));
    }
    for (int i = 0; i < c->nratios; i++) {
        const cmp_ratio *x = &c->ratios[i];
        json_array_append_new(ra, json_pack(
            "{s:s, s:s, s:o, s:o, s:o, s:o, s:b}", "num", x->num, "den", x->den, "poolbench",
            cmp_num(x->has_pb, x->pb), "cpython", cmp_num(x->has_cp, x->cp), "model",
            cmp_num(x->has_model, x->model), "agree",
            x->has_cp ? json_boolean(cmp_agree(x)) : json_null(), "key", i == 0));
    }
    scn_scenario *s = c->r.s;
    json_t *params = json_object();
    for (int i = 0; i < s->nparams; i++)
        json_object_set_new(params, s->params[i].name,
                            c->r.p.v[i].isint ? json_integer((json_int_t)c->r.p.v[i].d)
                                              : json_real(c->r.p.v[i].d));
    return json_pack(
        "{s:s, s:o, s:s, s:s, s:s, s:o, s:o, s:b, s:i, s:{s:i, s:s}, s:s, s:o, s:o, "
        "s:{s:o, s:o}, s:o}",
        "poolbench", POOLBENCH_VERSION, "python",
        c->t.version[0] ? json_string(c->t.version) : json_null(), "scenario", s->name,
        "source", s->source, "file", s->path, "twin",
        c->twin_ok ? json_string(c->t.script) : json_null(), "cpython_missing",
        c->twin_ok && !c->twin_failed[0] ? json_null()
                                         : json_string(c->twin_ok ? c->twin_failed : c->t.why),
        "quick", a->quick, "repeat", c->r.repeat, "machine", "cores", c->r.cores, "os",
        c->r.os, "date", c->r.date, "params", params, "strategies", st, "checks", "poolbench",
        cmp_checks_json(c, &c->r, false), "cpython",
        c->twin_judged ? cmp_checks_json(c, &c->tr, true) : json_array(), "ratios", ra);
}

/* A CSV field: quoted when it holds a comma, a quote or a line break. */
static void cmp_csv_field(FILE *f, const char *s, bool last)
{
    if (strpbrk(s, ",\"\n")) {
        fputc('"', f);
        for (; *s; s++)
            fprintf(f, *s == '"' ? "\"\"" : "%c", *s);
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputc(last ? '\n' : ',', f);
}

/* One row per strategy, then one per ratio: the kind column says which. */
static int cmp_csv(cmp_run *c, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "poolbench: %s: %s\n", path, strerror(errno));
        return 2;
    }
    fprintf(f, "scenario,kind,name,poolbench,cpython,model,agree,cores,os,date,"
               "poolbench_version,python_version\n");
    int rows = c->r.nresults + c->nratios;
    for (int i = 0; i < rows; i++) {
        bool strat = i < c->r.nresults;
        const cmp_ratio *x = strat ? NULL : &c->ratios[i - c->r.nresults];
        const run_result *p = strat ? &c->r.results[i] : NULL;
        const run_result *q = strat && i < c->tr.nresults ? &c->tr.results[i] : NULL;
        char name[200], v[3][32], agree[8] = "", cores[16];
        if (strat) {
            snprintf(name, sizeof name, "%s", p->v->label);
            cmp_cell(v[0], 32, !p->run_failed, p->wall_s, "%.6f");
            cmp_cell(v[1], 32, q && !q->run_failed, q ? q->wall_s : 0, "%.6f");
            cmp_cell(v[2], 32, p->has_model, p->model_s, "%.6f");
        } else {
            snprintf(name, sizeof name, "%s / %s", x->num, x->den);
            cmp_cell(v[0], 32, x->has_pb, x->pb, "%.6f");
            cmp_cell(v[1], 32, x->has_cp, x->cp, "%.6f");
            cmp_cell(v[2], 32, x->has_model, x->model, "%.6f");
            snprintf(agree, sizeof agree, "%s", !x->has_cp ? "" : cmp_agree(x) ? "yes" : "no");
        }
        for (int k = 0; k < 3; k++)
            if (strcmp(v[k], "-") == 0)
                v[k][0] = '\0';
        snprintf(cores, sizeof cores, "%d", c->r.cores);
        const char *row[] = {c->r.s->name, strat ? "strategy" : i == c->r.nresults ? "key_ratio"
                                                                                    : "ratio",
                             name, v[0], v[1], v[2], agree, cores, c->r.os, c->r.date,
                             POOLBENCH_VERSION, c->t.version};
        for (int k = 0; k < 12; k++)
            cmp_csv_field(f, row[k], k == 11);
    }
    return fclose(f) == 0 ? 0 : 2;
}

static int cmp_write(cmp_run *c, const cmp_args *a)
{
    int rc = 0;
    if (a->json) {
        json_t *j = cmp_json(c, a);
        if (!j || json_dump_file(j, a->json, JSON_INDENT(2)) != 0) {
            fprintf(stderr, "poolbench: %s: cannot write the JSON\n", a->json);
            rc = 2;
        }
        json_decref(j);
    }
    if (a->csv && cmp_csv(c, a->csv) != 0)
        rc = 2;
    return rc;
}

/* ---- lab -c ------------------------------------------------------------------------ */

bool compare_twin_once(const run_report *r, const char *impls, run_report *out)
{
    twin t;
    if (twin_open(&t, r->s->name) != 0) {
        printf("\nCPython: not measured: %s\n", t.why);
        twin_close(&t);
        return false;
    }
    printf("\nCPython: the twin, once, with the same parameters: %s (%s)\n", t.script,
           t.python);
    fflush(stdout);
    /* Only the labels the twin has: a student's strategy (lab -c --solution)
     * has no CPython twin. */
    char known[2048], labels[1024] = "", want[160];
    twin_labels(&t, known, sizeof known);
    for (int i = 0; i < r->nresults; i++) {
        snprintf(want, sizeof want, ",%s,", r->results[i].v->label);
        if (strstr(known, want))
            snprintf(labels + strlen(labels), sizeof labels - strlen(labels), "%s%s",
                     labels[0] ? "," : "", r->results[i].v->label);
    }
    (void)impls; /* r ran what impls asked for: its results say which labels */
    json_t *root = labels[0] ? twin_run(&t, r, labels) : NULL;
    if (!labels[0])
        snprintf(t.why, sizeof t.why, "the twin has none of the labels run");
    if (root == NULL) {
        printf("CPython: not measured: %s\n", t.why);
        twin_close(&t);
        return false;
    }
    json_t *res[SCN_MAX_VARIANTS] = {0};
    double w[SCN_MAX_VARIANTS][1], *walls[SCN_MAX_VARIANTS];
    int nwalls[SCN_MAX_VARIANTS] = {0};
    for (int i = 0; i < r->nresults; i++) {
        res[i] = twin_result(root, r->results[i].v->label);
        w[i][0] = res[i] ? json_number_value(json_object_get(res[i], "wall_s")) : 0;
        walls[i] = w[i];
        nwalls[i] = res[i] != NULL;
    }
    twin_build_report(r, res, walls, nwalls, out);
    printf("CPython %s measured it\n", t.version[0] ? t.version : "(version unknown)");
    json_decref(root);
    twin_close(&t);
    return true;
}

/* ---- the command ------------------------------------------------------------------- */

/* Runs both sides and judges them: 0, or 2 with err set (a bad scenario). */
static int cmp_execute(cmp_run *c, const cmp_args *a, char *err, size_t errlen)
{
    run_options o = {.impls = a->impls[0] ? a->impls : NULL, .quick = a->quick,
                     .sets = a->sets, .nsets = a->nsets, .repeat = a->repeat,
                     .progress = cmp_progress, .progress_ctx = c};
    if (run_prepare(c->r.s, &o, &c->r, err, errlen) != 0)
        return 2;
    c->twin_ok = twin_open(&c->t, c->r.s->name) == 0;
    rep_echo(stdout, &c->r);
    if (c->twin_ok)
        printf("ARG twin %s\nARG python %s %s\n", c->t.script, c->t.python,
               c->t.version[0] ? c->t.version : "(version unknown)");
    else
        printf("CPython: not measured: %s; poolbench's side runs alone\n", c->t.why);
    fflush(stdout);
    if (run_strategies(&c->r, &o, err, errlen) != 0 || c->r.interrupted)
        return 2;
    if (run_judge(&c->r, err, errlen) != 0)
        return 2;
    if (c->twin_ok)
        cmp_judge_twin(c);
    if (c->twin_failed[0])
        printf("CPython: a run of the twin failed: %s\n", c->twin_failed);
    cmp_read_ratios(c);
    cmp_ratios(c);
    return 0;
}

int compare_main(int argc, char **argv)
{
    cmp_args a;
    int rc = cmp_parse(argc, argv, &a);
    if (rc != 0)
        return rc;
    char err[SCN_ERR];
    scn_scenario *s = scn_load(a.file, err, sizeof err);
    if (s == NULL) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    run_register_tasks(s);
    cmp_run *c = calloc(1, sizeof *c);
    c->r.s = s;
    rc = cmp_execute(c, &a, err, sizeof err);
    if (rc == 0) {
        cmp_print_table(c);
        cmp_print_checks(c);
        rc = run_exit_status(&c->r);
        if (cmp_write(c, &a) != 0)
            rc = 2;
    } else {
        fflush(stdout);
        fprintf(stderr, "%s%s\n", strncmp(err, s->path, strlen(s->path)) ? "poolbench: " : "",
                err[0] ? err : "interrupted");
    }
    if (scn_call_hook(s, "cleanup", NULL, NULL, err, sizeof err) != 0)
        fprintf(stderr, "%s\n", err);
    for (int i = 0; i < SCN_MAX_VARIANTS; i++)
        json_decref(c->last[i]);
    twin_close(&c->t);
    run_report_free(&c->tr);
    run_report_free(&c->r);
    free(c);
    scn_free(s);
    return rc;
}
