/*
 * lab.c: `poolbench lab`, a scenario turned into a classroom lab.
 *
 *   poolbench lab                     the labs, in course order
 *   poolbench lab NAME [--seed N]     the setting (every parameter echoed)
 *                                     and the questions
 *   poolbench lab NAME --seed N -c    the same, the model's answers, a run
 *                                     with those parameters, prediction
 *                                     beside measurement, the explanation
 *   ... -c --no-run                   the answers and the explanation alone:
 *                                     a teacher's answer key, in no time
 *   poolbench lab NAME --exercise [FILE]   the exercise "write the fix": a
 *                                     Lua skeleton strategy (to FILE)
 *   ... -c --solution FILE            the student's strategy run beside the
 *                                     reference strategy and judged
 *
 * This is OSTEP's homework simulators in poolbench's terms: a student
 * predicts first, from numbers drawn from a seed, then sees the model's
 * answer and a measurement of the real thing. The lab table lives in the
 * scenario file (docs/lua-api.md, "Labs"; read by lab_table.c), so a lab
 * cannot drift from the scenario it runs, and -c runs that scenario through
 * the runner exactly as `run --set k=v` would (the drawn parameters are
 * handed over as those very strings), checks and all: the exit status means
 * what run's means (0, 1 a check failed, 2 bad usage or a bad file).
 *
 * The setting does not print the scenario's doc paragraph: it states the
 * model, which is the answer. Nothing here starts a thread, so the
 * strategies may still fork their pools afterwards.
 */
#include "lab.h"

#include <ctype.h>
#include <stdarg.h>
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compare.h"
#include "lua_strategy.h"
#include "report.h"
#include "report_timeline.h"
#include "runner.h"

/* ---- answers and measurements --------------------------------------------- */

typedef struct lab_value {
    bool present, isint;
    double v;
} lab_value;

/* The value on top of the stack, popped: 0 a number (in out), 1 nil, -1 another type. */
static int lab_pop_number(lua_State *L, lab_value *out)
{
    int type = lua_type(L, -1);
    if (type == LUA_TNUMBER)
        *out = (lab_value){true, lua_isinteger(L, -1), lua_tonumber(L, -1)};
    lua_pop(L, 1);
    return type == LUA_TNUMBER ? 0 : type == LUA_TNIL ? 1 : -1;
}

static int lab_answer(lab *lb, int qi, const scn_params *p, lab_value *out, char *err,
                      size_t errlen)
{
    scn_lock();
    lua_rawgeti(lb->s->L, LUA_REGISTRYINDEX, lb->q[qi].answer_ref);
    scn_push_params(lb->s, p);
    int rc = scn_pcall(lb->s, 1, 1, err, errlen);
    if (rc > 0)
        lua_pop(lb->s->L, 1);
    if (rc == 0 && lab_pop_number(lb->s->L, out) != 0)
        rc = 1;
    if (rc > 0)
        snprintf(err, errlen, "%s:%d: lab: question %d: answer(p) must return a number",
                 lb->s->path, lb->q[qi].line, qi + 1);
    scn_unlock();
    return rc ? -1 : 0;
}

/*
 * Question qi's measurement from the results table at index rt (caller
 * holds the lock): "label" is r[label].wall_s, "label.field" that field, a
 * function is called as measure(r, p). Leaves out->present false when there
 * is nothing to show (no measure, a label that did not run, nil). 0 or -1.
 */
static int lab_measure(lab *lb, run_report *r, int qi, int rt, lab_value *out, char *err,
                       size_t errlen)
{
    lua_State *L = lb->s->L;
    const lab_question *q = &lb->q[qi];
    memset(out, 0, sizeof *out);
    if (q->measure_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, q->measure_ref);
        lua_pushvalue(L, rt);
        scn_push_params(lb->s, &r->p);
        int rc = scn_pcall(lb->s, 2, 1, err, errlen);
        if (rc != 0) { /* > 0: the marker of a label --impl left out */
            lua_pop(L, rc > 0);
            return rc > 0 ? 0 : -1;
        }
    } else if (q->measure) {
        /* "label", "label.field" or deeper ("lifecycle.facts.terminated_jobs") */
        const char *m = q->measure;
        size_t n = strcspn(m, ".");
        lua_pushlstring(L, m, n);
        lua_rawget(L, rt); /* raw: no marker for a label not run; nil then */
        if (m[n] == '\0' && lua_istable(L, -1)) {
            lua_getfield(L, -1, "wall_s");
            lua_remove(L, -2);
        }
        while (m[n] == '.' && lua_istable(L, -1)) {
            m += n + 1;
            n = strcspn(m, ".");
            lua_pushlstring(L, m, n);
            lua_rawget(L, -2);
            lua_remove(L, -2);
        }
        if (m[n] != '\0') { /* a label that did not run, or a path through a non-table */
            lua_pop(L, 1);
            return 0;
        }
    } else {
        return 0;
    }
    if (lab_pop_number(L, out) < 0) {
        snprintf(err, errlen, "%s:%d: lab: question %d: the measurement is not a number",
                 lb->s->path, q->line, qi + 1);
        return -1;
    }
    return 0;
}

/* 0.412 s, 24 messages, 1.5: seconds to the millisecond, counts whole. */
static void lab_format(const lab_value *x, const char *unit, char *buf, size_t len)
{
    if (!x->present)
        snprintf(buf, len, "-");
    else if (x->isint)
        snprintf(buf, len, "%lld", (long long)x->v);
    else if (strcmp(unit, "s") == 0)
        snprintf(buf, len, "%.3f", x->v);
    else if (x->v == floor(x->v) && fabs(x->v) < 1e15)
        snprintf(buf, len, "%.0f", x->v);
    else if (fabs(x->v) >= 1000)
        snprintf(buf, len, "%.0f", x->v);
    else
        snprintf(buf, len, "%.3g", x->v);
    if (x->present && unit[0])
        snprintf(buf + strlen(buf), len - strlen(buf), " %s", unit);
}

/* ---- printing ---------------------------------------------------------------- */

/* The setting and the questions: what a student reads before predicting. */
static void lab_print_setting(lab *lb, const lab_setting *st, bool seeded, const char *prog)
{
    scn_scenario *s = lb->s;
    char num[64], lead[16], bad[64];
    printf("lab %d: %s: %s\n", lb->order, s->name, lb->title);
    printf("scenario %s%s%s\n", s->path, s->source[0] ? ", document " : "", s->source);
    printf("ARG seed %llu%s\n", (unsigned long long)st->seed,
           seeded ? "" : " (from the clock; rerun with this --seed for the same numbers)");
    for (int i = 0; i < s->nparams; i++) {
        const scn_param *q = &s->params[i];
        const lab_vary *v = NULL;
        for (int k = 0; k < lb->nvary; k++)
            if (lb->vary[k].param == i)
                v = &lb->vary[k];
        scn_num_format(st->p.v[i], num, sizeof num);
        printf("ARG %s %s", q->name, num);
        if (v && v->count == 1)
            printf(" (fixed by the lab)\n");
        else if (v && v->step.d == 1)
            printf(" (drawn from %.14g..%.14g)\n", v->min.d, v->max);
        else if (v)
            printf(" (drawn from %.14g..%.14g, step %.14g)\n", v->min.d, v->max, v->step.d);
        else
            printf("%s\n", q->implicit ? " (the online CPUs)" : "");
    }
    if (s->summary[0])
        printf("\n%s\n", s->summary);
    printf("\nquestions:\n");
    for (int i = 0; i < lb->nq; i++) {
        char *ask = lab_subst(s, &st->p, lb->q[i].ask, bad, sizeof bad);
        snprintf(lead, sizeof lead, "  %d. ", i + 1);
        rep_wrap(ask ? ask : lb->q[i].ask, lead, "     ");
        free(ask);
    }
    if (prog)
        printf("\nthe answers, from the model, and a run that measures them (a few seconds):\n"
               "  %s lab %s --seed %llu -c\n", prog, s->name, (unsigned long long)st->seed);
}

/* ---- -c: answers, a run, prediction beside measurement ---------------------- */

/* The model's answers, computed and printed. 0, or 2 with err set. */
static int lab_answers(lab *lb, const lab_setting *st, lab_value *ans, char *err, size_t errlen)
{
    printf("\nanswers (the model's):\n");
    for (int i = 0; i < lb->nq; i++) {
        char buf[64];
        if (lab_answer(lb, i, &st->p, &ans[i], err, errlen) != 0)
            return 2;
        lab_format(&ans[i], lb->q[i].unit, buf, sizeof buf);
        printf("  %d. %s\n", i + 1, buf);
    }
    return 0;
}

/* The run, as `poolbench run --set ...` would do it, into r: run's exit
 * status (0, 1 a check failed, 2 with err set). */
static int lab_run(lab *lb, const lab_setting *st, run_report *r, char *err, size_t errlen)
{
    printf("\nthe run, as `poolbench run %s", lb->s->path);
    for (int i = 0; i < st->nsets; i++)
        printf(" --set %s", st->sets[i]);
    printf("%s%s`:\n\n", lb->impls[0] ? " --impl " : "", lb->impls);
    fflush(stdout); /* before any fork, and before the run's own lines */

    run_register_tasks(lb->s); /* before any pool exists */
    run_options o = {.impls = lb->impls[0] ? lb->impls : NULL, .sets = st->sets,
                     .nsets = st->nsets, .repeat = 1,
                     .progress = isatty(STDERR_FILENO) ? rep_progress : NULL};
    if (run_prepare(lb->s, &o, r, err, errlen) != 0)
        return 2;
    rep_echo(stdout, r);
    fflush(stdout);
    int exec = run_execute(r, &o, err, errlen);
    rep_table(stdout, r);
    rep_timelines(stdout, r, rep_timeline_width()); /* the run as text (report_timeline.h) */
    if (exec != 0)
        return 2;
    rep_checks(stdout, r);
    return run_exit_status(r);
}

/* ---- the exercise: write the fix ------------------------------------------- */

static const run_result *lab_result(const run_report *r, const char *label)
{
    for (int i = 0; i < r->nresults; i++)
        if (strcmp(r->results[i].v->label, label) == 0)
            return &r->results[i];
    return NULL;
}

static bool lab_verdict(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool lab_verdict(bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s  ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    return ok;
}

/* Each strategy of the solution against the reference: it ran and gave
 * every final result the reference gave (the same errors too); it is within
 * the margin of the reference's model (no slower than model * (1 + margin)
 * + 20 ms); it is as fast as the reference measured (within 25% + 30 ms: two runs of
 * the same strategy on a busy machine differ by that much).
 * 0 when all hold, else 1. */
static int lab_judge(lab *lb, const run_report *r)
{
    const run_result *ref = lab_result(r, lb->ex_reference);
    bool all = true;
    printf("\nyour strategy beside the reference, %s:\n", lb->ex_reference);
    if (ref == NULL || ref->run_failed) {
        printf("FAIL  the reference %s did not run\n", lb->ex_reference);
        return 1;
    }
    char labels[sizeof lb->ex_labels];
    snprintf(labels, sizeof labels, "%s", lb->ex_labels);
    for (char *save = NULL, *l = strtok_r(labels, ",", &save); l; l = strtok_r(NULL, ",", &save)) {
        const run_result *sol = lab_result(r, l);
        if (sol == NULL || sol->run_failed) {
            all = lab_verdict(false, "%s ran (%s)", l,
                              sol && sol->out.first_error[0] ? sol->out.first_error : "no run");
            continue;
        }
        if (ref->out.stopped_early) /* how many results came before the stop varies */
            all &= lab_verdict(sol->out.stopped_early && sol->out.answer_s > 0,
                               "%s stopped at the answer as %s did (%zu of %zu tasks run)", l,
                               ref->v->label, sol->out.tasks_run, sol->out.tasks_total);
        else
            all &= lab_verdict(sol->out.results == ref->out.results &&
                                   sol->out.errors == ref->out.errors,
                               "%s gave the final results %s gave (results %zu/%zu, errors "
                               "%zu/%zu)",
                               l, ref->v->label, sol->out.results, ref->out.results,
                               sol->out.errors, ref->out.errors);
        if (ref->has_model)
            all &= lab_verdict(sol->wall_s <= ref->model_s * (1 + lb->ex_margin) + 0.020,
                               "%s is within the model of %s (+%.0f%% + 20 ms): %.3f s, model "
                               "%.3f s",
                               l, ref->v->label, 100 * lb->ex_margin, sol->wall_s, ref->model_s);
        all &= lab_verdict(sol->wall_s <= 1.25 * ref->wall_s + 0.030,
                           "%s is as fast as %s (within 25%% + 30 ms): %.3f s vs %.3f s", l,
                           ref->v->label, sol->wall_s, ref->wall_s);
    }
    printf("%s\n", all ? "your fix holds." : "not yet: read the lab's page and try again.");
    return all ? 0 : 1;
}

/* Adds the student's strategies from file: a function, or a table of them
 * (each under its key), each run with the reference's `set`. 0 or -1. */
static int lab_add_solution(lab *lb, const char *file, char *err, size_t errlen)
{
    scn_scenario *s = lb->s;
    lua_State *L = s->L;
    int rc = 0;
    scn_lock();
    int top = lua_gettop(L);
    if (luaL_loadfile(L, file) != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        rc = -1;
    } else if (scn_pcall(s, 0, 1, err, errlen) != 0) {
        rc = -1;
    } else if (lua_type(L, -1) == LUA_TFUNCTION) {
        rc = lua_strat_add(s, "solution", "solution", err, errlen);
        if (rc == 0) {
            lua_strat_copy_set(s, lb->ex_reference);
            snprintf(lb->ex_labels, sizeof lb->ex_labels, "solution");
        }
    } else if (lua_type(L, -1) == LUA_TTABLE) {
        int t = lua_gettop(L);
        lua_pushnil(L);
        while (rc == 0 && lua_next(L, t)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            if (k == NULL || lua_type(L, -1) != LUA_TFUNCTION) {
                snprintf(err, errlen, "%s: every entry must be name = function(pool, items, p)",
                         file);
                rc = -1;
                break;
            }
            char name[64];
            snprintf(name, sizeof name, "%s", k);
            rc = lua_strat_add(s, name, name, err, errlen); /* pops the function */
            if (rc == 0) {
                lua_strat_copy_set(s, lb->ex_reference);
                snprintf(lb->ex_labels + strlen(lb->ex_labels),
                         sizeof lb->ex_labels - strlen(lb->ex_labels), "%s%s",
                         lb->ex_labels[0] ? "," : "", name);
            }
        }
    } else {
        snprintf(err, errlen, "%s must return function(pool, items, p) or a table of them", file);
        rc = -1;
    }
    lua_settop(L, top);
    scn_unlock();
    if (rc == 0 && lb->impls[0]) { /* -c runs the lab's labels: the reference and these too */
        char add[512];
        snprintf(add, sizeof add, ",%s,%s", lb->ex_reference, lb->ex_labels);
        snprintf(lb->impls + strlen(lb->impls), sizeof lb->impls - strlen(lb->impls), "%s", add);
    }
    return rc;
}

/* --exercise [FILE]: the skeleton, with what to write and how to judge it. */
static int lab_exercise(lab *lb, const char *name, const char *file)
{
    if (lb->ex_task == NULL) {
        fprintf(stderr, "poolbench: lab %s has no exercise\n", name);
        return 2;
    }
    FILE *f = file ? fopen(file, "w") : stdout;
    if (f == NULL) {
        fprintf(stderr, "poolbench: %s: %s\n", file, strerror(errno));
        return 2;
    }
    fprintf(f, "-- Exercise for lab %s: %s\n--\n", name, lb->title);
    for (const char *p = lb->ex_task; *p;) {
        size_t n = strcspn(p, "\n");
        fprintf(f, "-- %.*s\n", (int)n, p);
        p += n + (p[n] == '\n');
    }
    fprintf(f, "--\n-- Write it, then judge it beside the reference strategy (%s) and the model:\n"
               "--   poolbench lab %s --seed 1 -c --solution %s\n"
               "-- The pool API: docs/lua-api.md, \"Strategies in Lua\".\n\n",
            lb->ex_reference, name, file ? file : "FILE");
    fputs(lb->ex_skeleton, f);
    if (lb->ex_skeleton[0] && lb->ex_skeleton[strlen(lb->ex_skeleton) - 1] != '\n')
        fputc('\n', f);
    if (file) {
        if (fclose(f) != 0) {
            fprintf(stderr, "poolbench: %s: %s\n", file, strerror(errno));
            return 2;
        }
        printf("wrote the exercise of lab %s to %s\n", name, file);
    }
    return 0;
}

/* What question qi measured, for the last column. */
static void lab_what(const lab *lb, int qi, char *what, size_t len)
{
    if (lb->q[qi].measure)
        snprintf(what, len, "%s", lb->q[qi].measure);
    else if (lb->q[qi].measure_ref != LUA_NOREF)
        snprintf(what, len, "measure(r, p), %s:%d", lb->s->path, lb->q[qi].measure_line);
    else
        snprintf(what, len, "(nothing: a question of the model alone)");
}

/* Each answer beside its measurement in r, and CPython's in cp (the twin's
 * figures, compare.h; NULL: not measured). 0, or 2 with err set. */
static int lab_compare(lab *lb, run_report *r, run_report *cp, const lab_value *ans, char *err,
                       size_t errlen)
{
    int rc = 0;
    printf("\nprediction vs measurement (measured on this machine, %d cores; ratio = "
           "measured / predicted):\n  %-3s %-16s %-16s %-*s%-6s %s\n", r->cores, "#",
           "predicted", "measured", cp ? 17 : 0, cp ? "CPython" : "", "ratio",
           "what was measured");
    scn_lock();
    run_push_results(r);
    int rt = lua_gettop(lb->s->L);
    if (cp)
        run_push_results(cp);
    for (int i = 0; i < lb->nq; i++) {
        lab_value m, c = {0};
        char pb[64], mb[64], cb[64] = "", ratio[32] = "-", what[96];
        if (lab_measure(lb, r, i, rt, &m, err, errlen) != 0 ||
            (cp && lab_measure(lb, cp, i, rt + 1, &c, err, errlen) != 0)) {
            rc = 2;
            break;
        }
        lab_format(&ans[i], lb->q[i].unit, pb, sizeof pb);
        lab_format(&m, lb->q[i].unit, mb, sizeof mb);
        if (cp) /* the column only where CPython was measured: one line said why not */
            lab_format(&c, lb->q[i].unit, cb, sizeof cb);
        if (m.present && ans[i].v != 0)
            snprintf(ratio, sizeof ratio, "%.2f", m.v / ans[i].v);
        lab_what(lb, i, what, sizeof what);
        printf("  %-3d %-16s %-16s %-*s%-6s %s\n", i + 1, pb, mb, cp ? 17 : 0, cb, ratio, what);
    }
    lua_settop(lb->s->L, rt - 1);
    scn_unlock();
    return rc;
}

/* The run, then each answer beside its measurement: run's exit status. */
static int lab_check(lab *lb, const lab_setting *st, const lab_value *ans, char *err,
                     size_t errlen)
{
    run_report r;
    int rc = lab_run(lb, st, &r, err, errlen);
    run_report cp; /* CPython's figures: the twin, run with the same parameters */
    bool have_cp = rc != 2 && compare_twin_once(&r, lb->impls, &cp);
    if (rc != 2 && lab_compare(lb, &r, have_cp ? &cp : NULL, ans, err, errlen) != 0)
        rc = 2;
    if (have_cp)
        run_report_free(&cp);
    if (rc != 2 && lb->ex_labels[0] && lab_judge(lb, &r) != 0)
        rc = 1;
    run_report_free(&r);
    return rc;
}

/* answers: -c; run: false for --no-run (the answers alone, an answer key). */
static int lab_show(lab *lb, uint64_t seed, bool seeded, bool answers, bool run,
                    const char *prog)
{
    char err[SCN_ERR], bad[64];
    lab_setting st;
    lab_value ans[LAB_MAX_QUESTIONS];
    if (lab_draw(lb, seed, &st, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    lab_print_setting(lb, &st, seeded, answers ? NULL : prog);
    if (!answers)
        return 0;
    int rc = lab_answers(lb, &st, ans, err, sizeof err);
    if (rc == 0 && run)
        rc = lab_check(lb, &st, ans, err, sizeof err);
    fflush(stdout);
    if (rc == 2) { /* "file:line: message" as it is; the runner's usage errors prefixed */
        bool located = strncmp(err, lb->s->path, strlen(lb->s->path)) == 0;
        fprintf(stderr, "%s%s\n", located ? "" : "poolbench: ", err);
        return 2;
    }
    char *x = lab_subst(lb->s, &st.p, lb->explain, bad, sizeof bad);
    printf("\nwhy (the model):\n");
    rep_wrap(x ? x : lb->explain, "  ", "  ");
    free(x);
    return rc;
}

/* ---- finding labs ------------------------------------------------------------- */

typedef struct lab_entry {
    int order;
    char *name, *title, *path;
} lab_entry;

static int lab_entry_cmp(const void *a, const void *b)
{
    const lab_entry *x = a, *y = b;
    return x->order != y->order ? x->order - y->order : strcmp(x->name, y->name);
}

/*
 * Every lab of the scenarios in dir, in course order. A file that cannot be
 * loaded, or whose lab table is wrong, is reported on stderr and sets
 * *broken; the others are still listed. Returns the count, or -1 when dir
 * cannot be read.
 */
static int lab_scan(const char *dir, lab_entry **out, bool *broken)
{
    struct dirent **names;
    char path[PATH_MAX], err[SCN_ERR];
    int n = scandir(dir, &names, scn_is_scenario_file, alphasort), count = 0;
    *out = NULL;
    if (n < 0) {
        fprintf(stderr, "poolbench: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        free(names[i]);
        lab *lb = lab_open(path, err, sizeof err);
        if (lb == NULL && err[0]) {
            fprintf(stderr, "%s\n", err);
            *broken = true;
        }
        lab_entry *e = lb ? realloc(*out, (size_t)(count + 1) * sizeof *e) : NULL;
        if (e) {
            *out = e;
            e[count++] = (lab_entry){lb->order, scn_strdup(lb->s->name), scn_strdup(lb->title),
                                     scn_strdup(path)};
        }
        lab_free(lb);
    }
    free(names);
    if (count > 0)
        qsort(*out, (size_t)count, sizeof **out, lab_entry_cmp);
    return count;
}

static void lab_entries_free(lab_entry *e, int n)
{
    for (int i = 0; i < n; i++) {
        free(e[i].name);
        free(e[i].title);
        free(e[i].path);
    }
    free(e);
}

static int lab_list(const char *dir, const char *prog)
{
    lab_entry *e;
    bool broken = false;
    int n = lab_scan(dir, &e, &broken);
    if (n < 0)
        return 2;
    printf("labs, in course order (%s):\n", dir);
    for (int i = 0; i < n; i++)
        printf("  %3d  %-16s %s\n", e[i].order, e[i].name, e[i].title);
    if (n == 0)
        printf("  (none: no scenario there has a lab table)\n");
    printf("\nthe setting and questions:  %s lab NAME [--seed N]\n"
           "the answers and a run:      %s lab NAME --seed N -c\n"
           "the pages: docs/labs/README.md\n", prog, prog);
    lab_entries_free(e, n);
    return broken ? 2 : 0;
}

/* Whether name is a path (a file that exists) rather than a lab's name. */
static bool lab_is_path(const char *name)
{
    struct stat st;
    return (strchr(name, '/') || strstr(name, ".lua")) && stat(name, &st) == 0 &&
           S_ISREG(st.st_mode);
}

/* The lab called name (the scenario's name, or its file's name with or
 * without .lua), or a file's; NULL with the message printed. */
static lab *lab_find(const char *dir, const char *name)
{
    char err[SCN_ERR];
    lab_entry *e;
    bool broken = false;
    lab *lb = NULL;
    if (lab_is_path(name)) {
        if ((lb = lab_open(name, err, sizeof err)) == NULL)
            fprintf(stderr, "%s\n", err[0] ? err : "poolbench: that scenario has no lab table");
        if (lb || err[0])
            return lb;
    }
    int n = lab_scan(dir, &e, &broken);
    for (int i = 0; i < n && lb == NULL; i++) {
        const char *base = strrchr(e[i].path, '/') ? strrchr(e[i].path, '/') + 1 : e[i].path;
        size_t bl = strlen(base) - 4; /* without .lua */
        if (strcmp(e[i].name, name) == 0 || strcmp(base, name) == 0 ||
            (strlen(name) == bl && strncmp(base, name, bl) == 0))
            lb = lab_open(e[i].path, err, sizeof err);
    }
    if (lb == NULL && n >= 0) {
        fprintf(stderr, "poolbench: unknown lab '%s' (valid, in course order:", name);
        for (int i = 0; i < n; i++)
            fprintf(stderr, "%s %s", i ? "," : "", e[i].name);
        fprintf(stderr, "%s)\n", n ? "" : " none");
    }
    lab_entries_free(e, n > 0 ? n : 0);
    return lb;
}

/* ---- the command ----------------------------------------------------------------- */

static int lab_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "poolbench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nusage: poolbench lab [NAME [--seed N] [-c [--no-run | --solution FILE]] "
                    "[--exercise [FILE]]]\n");
    return 2;
}

int lab_main(int argc, char **argv, const char *dir)
{
    const char *name = NULL, *solution = NULL, *exercise_file = NULL;
    bool answers = false, seeded = false, run = true, exercise = false;
    uint64_t seed = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0) {
            answers = true;
        } else if (strcmp(a, "--no-run") == 0) {
            run = false;
        } else if (strcmp(a, "--exercise") == 0 || strncmp(a, "--exercise=", 11) == 0) {
            exercise = true;
            if (a[10] == '=')
                exercise_file = a + 11;
            else if (i + 1 < argc && argv[i + 1][0] != '-' &&
                     (name != NULL || i + 2 < argc) && strstr(argv[i + 1], ".lua"))
                exercise_file = argv[++i];
        } else if (strcmp(a, "--solution") == 0 || strncmp(a, "--solution=", 11) == 0) {
            solution = a[10] == '=' ? a + 11 : i + 1 < argc ? argv[++i] : NULL;
            if (solution == NULL || solution[0] == '\0')
                return lab_usage("%s expects a file (a Lua strategy)", "--solution");
        } else if (strncmp(a, "--seed", 6) == 0 && (a[6] == '\0' || a[6] == '=')) {
            const char *v = a[6] == '=' ? a + 7 : i + 1 < argc ? argv[++i] : NULL;
            char *end;
            errno = 0;
            unsigned long long n = v && isdigit((unsigned char)v[0]) ? strtoull(v, &end, 10) : 0;
            if (v == NULL || !isdigit((unsigned char)v[0]) || errno || *end)
                return lab_usage("--seed expects a whole number (got '%s')", v ? v : "");
            seed = n;
            seeded = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            return lab_usage("unknown option '%s' for lab", a);
        } else if (name == NULL) {
            name = a;
        } else {
            return lab_usage("one lab at a time (got '%s' too)", a);
        }
    }
    const char *prog = argv[0];
    if (name == NULL) {
        if (answers || seeded || !run)
            return lab_usage("%s need a lab's name (poolbench lab lists them)",
                             "-c, --seed and --no-run");
        return lab_list(dir, prog);
    }
    if (!run && !answers)
        return lab_usage("%s goes with -c (the answers without the run)", "--no-run");
    if (solution && (!answers || !run))
        return lab_usage("%s goes with -c (it runs your strategy)", "--solution");
    if (!seeded) /* a seed the student can type again */
        seed = ((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 7)) % 100000;
    lab *lb = lab_find(dir, name);
    if (lb == NULL)
        return 2;
    if (exercise) {
        int erc = lab_exercise(lb, name, exercise_file);
        lab_free(lb);
        return erc;
    }
    if (solution) {
        char err[SCN_ERR];
        if (lb->ex_task == NULL || lab_add_solution(lb, solution, err, sizeof err) != 0) {
            fprintf(stderr, "poolbench: %s\n",
                    lb->ex_task == NULL ? "this lab has no exercise" : err);
            lab_free(lb);
            return 2;
        }
    }
    int rc = lab_show(lb, seed, seeded, answers, run, prog);
    lab_free(lb);
    return rc;
}
