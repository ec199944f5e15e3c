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

#include "report.h"
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
    if (exec != 0)
        return 2;
    rep_checks(stdout, r);
    return run_exit_status(r);
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

/* Each answer beside its measurement in r. 0, or 2 with err set. */
static int lab_compare(lab *lb, run_report *r, const lab_value *ans, char *err, size_t errlen)
{
    int rc = 0;
    printf("\nprediction vs measurement (measured on this machine, %d cores; ratio = "
           "measured / predicted):\n  %-3s %-16s %-16s %-6s %s\n", r->cores, "#", "predicted",
           "measured", "ratio", "what was measured");
    scn_lock();
    run_push_results(r);
    int rt = lua_gettop(lb->s->L);
    for (int i = 0; i < lb->nq; i++) {
        lab_value m;
        char pb[64], mb[64], ratio[32] = "-", what[96];
        if (lab_measure(lb, r, i, rt, &m, err, errlen) != 0) {
            rc = 2;
            break;
        }
        lab_format(&ans[i], lb->q[i].unit, pb, sizeof pb);
        lab_format(&m, lb->q[i].unit, mb, sizeof mb);
        if (m.present && ans[i].v != 0)
            snprintf(ratio, sizeof ratio, "%.2f", m.v / ans[i].v);
        lab_what(lb, i, what, sizeof what);
        printf("  %-3d %-16s %-16s %-6s %s\n", i + 1, pb, mb, ratio, what);
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
    if (rc != 2 && lab_compare(lb, &r, ans, err, errlen) != 0)
        rc = 2;
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
    fprintf(stderr, "\nusage: poolbench lab [NAME [--seed N] [-c [--no-run]]]\n");
    return 2;
}

int lab_main(int argc, char **argv, const char *dir)
{
    const char *name = NULL;
    bool answers = false, seeded = false, run = true;
    uint64_t seed = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0) {
            answers = true;
        } else if (strcmp(a, "--no-run") == 0) {
            run = false;
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
    if (!seeded) /* a seed the student can type again */
        seed = ((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 7)) % 100000;
    lab *lb = lab_find(dir, name);
    if (lb == NULL)
        return 2;
    int rc = lab_show(lb, seed, seeded, answers, run, prog);
    lab_free(lb);
    return rc;
}
