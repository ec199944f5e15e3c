/*
 * report.c: the parameter echo, the human table and the files for
 * programs (report.h); the progress line is progress.c.
 *
 * The table is for a person at a terminal: seconds with three decimals
 * (milliseconds are what these phenomena are made of), the model beside the
 * measurement, the deviation as a signed percentage, per-worker task counts
 * in slot order (their imbalance is phenomena P7 and P8). Numbers that are
 * not there (no model) are a dash, not a zero that could be read as one.
 *
 * JSON, CSV and trace files are for programs (jq, gnuplot, a spreadsheet):
 * full precision, absent values null (JSON) or empty (CSV), times relative
 * to the strategy's start, so that runs line up on one axis.
 */
#include "report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the parameter echo ---------------------------------------------------- */

static const char *transport_word(int kind)
{
    return kind == POOL_TRANSPORT_SHM ? "shm" : kind == POOL_TRANSPORT_MPI ? "mpi" : "socket";
}

void rep_echo(FILE *f, const run_report *r)
{
    const scn_scenario *s = r->s;
    fprintf(f, "poolbench %s: %s (%s)\n", POOLBENCH_VERSION, s->name, s->path);
    if (s->source[0])
        fprintf(f, "ARG source %s\n", s->source);
    for (int i = 0; i < s->nparams; i++) {
        const scn_param *q = &s->params[i];
        char v[64];
        scn_num_format(r->p.v[i], v, sizeof v);
        /* Where the value came from, when it is not the default. */
        const char *why = q->implicit                 ? " (the online CPUs)"
                          : r->p.v[i].d == q->def.d   ? ""
                          : r->quick && r->p.v[i].d == q->quick.d ? " (quick)"
                                                                  : " (--set)";
        fprintf(f, "ARG %s %s%s\n", q->name, v, why);
    }
    fprintf(f, "ARG quick %s\nARG repeat %d\nARG impls ", r->quick ? "yes" : "no", r->repeat);
    for (int i = 0; i < r->nselected; i++)
        fprintf(f, "%s%s", i ? "," : "", r->selected[i]->label);
    fputc('\n', f);
    for (int i = 0; i < r->nselected; i++) {
        const scn_variant *v = r->selected[i];
        if (v->nset == 0 && strcmp(v->label, v->impl->name) == 0)
            continue;
        fprintf(f, "ARG variant %s = %s", v->label, v->impl->name);
        for (int k = 0; k < v->nset; k++) {
            char n[64];
            /* a function(p)'s value as run_prepare resolved it */
            scn_num_format(v->set_fn[k] ? r->vparams[i].v[v->set_param[k]] : v->set_value[k], n,
                           sizeof n);
            fprintf(f, "%s%s=%s%s", k ? ", " : " with ", s->params[v->set_param[k]].name, n,
                    v->set_fn[k] ? " (function)" : "");
        }
        fputc('\n', f);
    }
    /* How the pools started their workers: one method, or each variant's. */
    bool one = true;
    for (int i = 1; i < r->nselected; i++)
        one = one && r->start_method[i] == r->start_method[0];
    fprintf(f, "ARG start_method");
    if (one && r->nselected > 0)
        fprintf(f, " %s", pool_start_method_name(r->start_method[0]));
    for (int i = 0; !one && i < r->nselected; i++)
        fprintf(f, "%s %s=%s", i ? "," : "", r->selected[i]->label,
                pool_start_method_name(r->start_method[i]));
    fputc('\n', f);
    /* The run's transport, and each variant that ran on another; one
     * transport when every variant ran on it (spawn on the socket). */
    int run_tr = r->transport;
    bool same = r->nselected > 0;
    for (int i = 1; i < r->nselected; i++)
        same = same && r->vtransport[i] == r->vtransport[0];
    if (same)
        run_tr = r->vtransport[0];
    fprintf(f, "ARG transport %s", transport_word(run_tr));
    for (int i = 0; i < r->nselected; i++)
        if (r->vtransport[i] != run_tr)
            fprintf(f, " (%s: %s)", r->selected[i]->label,
                    transport_word(r->vtransport[i]));
    fprintf(f, "\nARG cores %d\nARG os %s\nARG date %s\n", r->cores, r->os, r->date);
    fprintf(f, "figures measured on this machine (%d cores, %s); model = the scenario's "
            "prediction\n", r->cores, r->os);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* Honest figures: a sanitized build is several times slower, and ASan's
     * quarantine keeps freed memory, so no check on them means much. */
    fprintf(f, "built with a sanitizer: timings and memory are the sanitizer's, not poolbench's\n");
#endif
    fputc('\n', f);
}

/* ---- wrapped text ---------------------------------------------------------- */

/* text wrapped at 76 columns: first before the first line, rest before the
 * others; a blank line in text starts a new paragraph. */
void rep_wrap(const char *text, const char *first, const char *rest)
{
    size_t col = 0;
    const char *p = text, *lead = first;
    while (*p) {
        int newlines = 0;
        while (*p == ' ' || *p == '\n' || *p == '\t')
            newlines += *p++ == '\n';
        size_t w = strcspn(p, " \n\t");
        if (w == 0)
            break;
        if (col > 0 && (newlines >= 2 || col + 1 + w > 76)) {
            fputs(newlines >= 2 ? "\n\n" : "\n", stdout);
            col = 0;
        }
        col += col == 0 ? (size_t)printf("%s", lead) : (size_t)printf(" ");
        lead = rest;
        col += (size_t)printf("%.*s", (int)w, p);
        p += w;
    }
    if (col)
        putchar('\n');
}

/* ---- the table --------------------------------------------------------------- */

#define NCOLS 7

static void per_worker_cell(const run_result *res, char *buf, size_t len)
{
    buf[0] = '\0';
    if (res->nworkers > 8) {
        size_t lo = SIZE_MAX, hi = 0;
        for (int i = 0; i < res->nworkers; i++) {
            lo = res->workers[i].tasks < lo ? res->workers[i].tasks : lo;
            hi = res->workers[i].tasks > hi ? res->workers[i].tasks : hi;
        }
        snprintf(buf, len, "%d pids, %zu-%zu", res->nworkers, lo, hi);
        return;
    }
    for (int i = 0; i < res->nworkers; i++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%zu", i ? " " : "",
                 res->workers[i].tasks);
    if (res->nworkers == 0)
        snprintf(buf, len, "-");
}

/* The first line of a message (task errors carry a traceback). */
static int first_line(const char *s)
{
    return (int)strcspn(s, "\n");
}

/* A line per strategy under the table: per-task queue wait and run time
 * (p50/p90/p99/max, from the trace) and the bytes that crossed. */
static void table_latency(FILE *f, const run_result *res)
{
    const run_pct *w = &res->queue_wait, *x = &res->run_time;
    const pool_stats *st = &res->out.stats;
    if (w->n == 0 && st->bytes_sent == 0)
        return;
    fprintf(f, "  %s:", res->v->label);
    if (res->out.transport[0])
        fprintf(f, " transport %s,", res->out.transport);
    if (w->n > 0)
        fprintf(f, " queue wait %.3f/%.3f/%.3f/%.3f s,", w->p50, w->p90, w->p99, w->max);
    if (x->n > 0)
        fprintf(f, " run %.3f/%.3f/%.3f/%.3f s (p50/p90/p99/max),", x->p50, x->p90, x->p99,
                x->max);
    fprintf(f, " bytes sent %llu, received %llu\n", (unsigned long long)st->bytes_sent,
            (unsigned long long)st->bytes_received);
}

void rep_table(FILE *f, const run_report *r)
{
    static const char *const head[NCOLS] = {"strategy", "wall s (min-max)", "model s", "dev",
                                            "tasks", "per worker", "errors"};
    char cell[SCN_MAX_VARIANTS][NCOLS][96];
    int width[NCOLS];
    for (int c = 0; c < NCOLS; c++)
        width[c] = (int)strlen(head[c]);
    for (int i = 0; i < r->nresults; i++) {
        const run_result *res = &r->results[i];
        const strat_outcome *o = &res->out;
        char(*row)[96] = cell[i];
        snprintf(row[0], 96, "%s", res->v->label);
        if (res->run_failed)
            snprintf(row[1], 96, "did not run");
        else
            snprintf(row[1], 96, "%.3f (%.3f-%.3f)", res->wall_s, res->wall_min_s,
                     res->wall_max_s);
        if (res->has_model)
            snprintf(row[2], 96, "%.3f", res->model_s);
        else
            snprintf(row[2], 96, "-");
        if (res->has_model && res->model_s > 0 && !res->run_failed)
            snprintf(row[3], 96, "%+.0f%%", 100 * (res->wall_s / res->model_s - 1));
        else
            snprintf(row[3], 96, "-");
        snprintf(row[4], 96, "%zu/%zu", o->tasks_run, o->tasks_total);
        per_worker_cell(res, row[5], 96);
        snprintf(row[6], 96, "%zu", o->errors);
        for (int c = 0; c < NCOLS; c++)
            if ((int)strlen(row[c]) > width[c])
                width[c] = (int)strlen(row[c]);
    }
    for (int c = 0; c < NCOLS; c++)
        fprintf(f, "%-*s%s", c == NCOLS - 1 ? 0 : width[c], head[c], c == NCOLS - 1 ? "\n" : "  ");
    for (int i = 0; i < r->nresults; i++)
        for (int c = 0; c < NCOLS; c++)
            fprintf(f, "%-*s%s", c == NCOLS - 1 ? 0 : width[c], cell[i][c],
                    c == NCOLS - 1 ? "\n" : "  ");
    /* What a row cannot say: the first error, and what the strategy did
     * differently from what the workload asked. */
    for (int i = 0; i < r->nresults; i++) {
        const run_result *res = &r->results[i];
        if (res->out.first_error[0])
            fprintf(f, "  %s: first error: %.*s\n", res->v->label,
                    first_line(res->out.first_error), res->out.first_error);
        if (res->out.note[0])
            fprintf(f, "  %s: note: %s\n", res->v->label, res->out.note);
        if (res->interrupted)
            fprintf(f, "  %s: interrupted by %s: its figures are partial\n", res->v->label,
                    run_interrupt_name(r->interrupted));
        table_latency(f, res);
    }
    if (r->interrupted)
        fprintf(f, "interrupted by %s: the table is what was measured until then; "
                "checks not judged\n", run_interrupt_name(r->interrupted));
}

void rep_checks(FILE *f, const run_report *r)
{
    int passed = 0;
    if (r->nchecks || r->skipped[0])
        fputc('\n', f);
    for (int i = 0; i < r->nchecks; i++) {
        const run_check *c = &r->checks[i];
        passed += c->ok;
        fprintf(f, "%s  %s", c->ok ? "PASS" : "FAIL", c->name);
        if (c->detail[0])
            fprintf(f, " (%.*s)", first_line(c->detail), c->detail);
        fputc('\n', f);
    }
    if (r->skipped[0])
        fprintf(f, "SKIP  %s\n", r->skipped);
    fprintf(f, "checks: %d of %d passed%s\n", passed, r->nchecks,
            r->skipped[0] ? " (some skipped)" : "");
}

/* ---- JSON ---------------------------------------------------------------------- */

static json_t *j_number(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static void j_num(void *c, const char *k, double v, bool present)
{
    json_object_set_new(c, k, present ? j_number(v) : json_null());
}

static void j_int(void *c, const char *k, long long v)
{
    json_object_set_new(c, k, json_integer(v));
}

static void j_str(void *c, const char *k, const char *v)
{
    json_object_set_new(c, k, v ? json_string(v) : json_null());
}

static void j_bool(void *c, const char *k, bool v)
{
    json_object_set_new(c, k, json_boolean(v));
}

static void j_workers(void *c, const char *k, const run_worker *w, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        json_t *o = json_pack("{s:i, s:i, s:I, s:o}", "slot", w[i].slot, "pid", w[i].pid,
                              "tasks", (json_int_t)w[i].tasks, "busy_s", j_number(w[i].busy_s));
        if (w[i].host) /* MPI: the rank is slot + 1, on this host */
            json_object_set_new(o, "host", json_string(w[i].host));
        json_array_append_new(a, o);
    }
    json_object_set_new(c, k, a);
}

/* Parameters need the scenario for their names: the context is a pair. */
typedef struct jctx {
    json_t *obj;
    const scn_scenario *s;
} jctx;

static json_t *j_params_obj(const scn_scenario *s, const scn_params *p)
{
    json_t *o = json_object();
    for (int i = 0; i < s->nparams; i++)
        json_object_set_new(o, s->params[i].name,
                            p->v[i].isint ? json_integer((json_int_t)p->v[i].d)
                                          : j_number(p->v[i].d));
    return o;
}

static void jc_num(void *c, const char *k, double v, bool p) { j_num(((jctx *)c)->obj, k, v, p); }
static void jc_int(void *c, const char *k, long long v) { j_int(((jctx *)c)->obj, k, v); }
static void jc_str(void *c, const char *k, const char *v) { j_str(((jctx *)c)->obj, k, v); }
static void jc_bool(void *c, const char *k, bool v) { j_bool(((jctx *)c)->obj, k, v); }
static void jc_workers(void *c, const char *k, const run_worker *w, int n)
{
    j_workers(((jctx *)c)->obj, k, w, n);
}
static void jc_params(void *c, const char *k, const scn_params *p)
{
    json_object_set_new(((jctx *)c)->obj, k, j_params_obj(((jctx *)c)->s, p));
}
static void jc_facts(void *c, const char *k, const strat_outcome *o)
{
    json_t *f = json_object();
    for (int i = 0; i < o->nfacts; i++)
        json_object_set_new(f, o->facts[i].name, j_number(o->facts[i].value));
    json_object_set_new(((jctx *)c)->obj, k, f);
}

/* queue_wait, run_time: {"n": N, "p50": s, ...}, the numbers null when n = 0. */
static void jc_pct(void *c, const char *k, const run_pct *p)
{
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer((json_int_t)p->n));
    j_num(o, "p50", p->p50, p->n > 0);
    j_num(o, "p90", p->p90, p->n > 0);
    j_num(o, "p99", p->p99, p->n > 0);
    j_num(o, "max", p->max, p->n > 0);
    json_object_set_new(((jctx *)c)->obj, k, o);
}

int rep_json(const char *path, const run_report *r, char *err, size_t errlen)
{
    const scn_scenario *s = r->s;
    json_t *root = json_object(), *results = json_array(), *checks = json_array();
    json_object_set_new(root, "poolbench", json_string(POOLBENCH_VERSION));
    json_object_set_new(root, "scenario", json_string(s->name));
    json_object_set_new(root, "source", json_string(s->source));
    json_object_set_new(root, "file", json_string(s->path));
    json_object_set_new(root, "params", j_params_obj(s, &r->p));
    json_object_set_new(root, "quick", json_boolean(r->quick));
    json_object_set_new(root, "repeat", json_integer(r->repeat));
    json_object_set_new(root, "machine",
                        json_pack("{s:i, s:s}", "cores", r->cores, "os", r->os));
    json_object_set_new(root, "date", json_string(r->date));
    for (int i = 0; i < r->nresults; i++) {
        jctx c = {json_object(), s};
        run_visitor v = {jc_num,    jc_int,   jc_str, jc_bool, jc_workers,
                         jc_params, jc_facts, jc_pct, &c};
        run_result_visit(r, &r->results[i], &v);
        json_array_append_new(results, c.obj);
    }
    json_object_set_new(root, "results", results);
    for (int i = 0; i < r->nchecks; i++)
        json_array_append_new(checks, json_pack("{s:s, s:b, s:s}", "name", r->checks[i].name,
                                                "ok", r->checks[i].ok, "detail",
                                                r->checks[i].detail));
    json_object_set_new(root, "checks", checks);
    json_object_set_new(root, "checks_skipped",
                        r->skipped[0] ? json_string(r->skipped) : json_null());
    json_object_set_new(root, "interrupted", r->interrupted
                                                 ? json_string(run_interrupt_name(r->interrupted))
                                                 : json_null());
    int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    if (rc != 0)
        snprintf(err, errlen, "%s: %s", path, errno ? strerror(errno) : "cannot write JSON");
    json_decref(root);
    return rc == 0 ? 0 : -1;
}

/* ---- CSV ---------------------------------------------------------------------- */

/* RFC 4180: a field with a comma, quote or line break is quoted. */
static void csv_field(FILE *f, const char *s, bool first)
{
    if (!first)
        fputc(',', f);
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* The CSV visitor: header = true writes the keys, else the values. */
typedef struct cctx {
    FILE *f;
    const scn_scenario *s;
    bool header;
} cctx;

static void c_put(cctx *c, const char *k, const char *v)
{
    csv_field(c->f, c->header ? k : v, false);
}

static void c_num(void *ctx, const char *k, double v, bool present)
{
    char b[64] = "";
    if (present && isfinite(v))
        snprintf(b, sizeof b, "%.9g", v);
    c_put(ctx, k, b);
}

static void c_int(void *ctx, const char *k, long long v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", v);
    c_put(ctx, k, b);
}

static void c_str(void *ctx, const char *k, const char *v)
{
    char b[256];
    snprintf(b, sizeof b, "%.*s", v ? first_line(v) : 0, v ? v : "");
    c_put(ctx, k, b);
}

static void c_bool(void *ctx, const char *k, bool v)
{
    c_put(ctx, k, v ? "true" : "false");
}

/* per_worker becomes per_worker_tasks: the counts, space-separated. */
static void c_workers(void *ctx, const char *k, const run_worker *w, int n)
{
    (void)k;
    char b[1024] = "";
    for (int i = 0; i < n; i++)
        snprintf(b + strlen(b), sizeof b - strlen(b), "%s%zu", i ? " " : "", w[i].tasks);
    c_put(ctx, "per_worker_tasks", b);
}

/* params becomes "n=8 workers=4". */
static void c_params(void *ctx, const char *k, const scn_params *p)
{
    cctx *c = ctx;
    char b[1024] = "", v[64];
    for (int i = 0; i < c->s->nparams; i++) {
        scn_num_format(p->v[i], v, sizeof v);
        snprintf(b + strlen(b), sizeof b - strlen(b), "%s%s=%s", i ? " " : "",
                 c->s->params[i].name, v);
    }
    c_put(ctx, k, b);
}

/* facts become "name=value name=value". */
static void c_facts(void *ctx, const char *k, const strat_outcome *o)
{
    char b[1024] = "";
    for (int i = 0; i < o->nfacts; i++)
        snprintf(b + strlen(b), sizeof b - strlen(b), "%s%s=%.9g", i ? " " : "",
                 o->facts[i].name, o->facts[i].value);
    c_put(ctx, k, b);
}

/* queue_wait becomes queue_wait_p50 ... queue_wait_max (seconds). */
static void c_pct(void *ctx, const char *k, const run_pct *p)
{
    static const char *const names[] = {"p50", "p90", "p99", "max"};
    const double v[] = {p->p50, p->p90, p->p99, p->max};
    for (int i = 0; i < 4; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s_%s", k, names[i]);
        c_num(ctx, key, v[i], p->n > 0);
    }
}

int rep_csv(const char *path, const run_report *r, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* The header comes from the same visitor, run over any result (a blank
     * one when nothing ran): the keys do not depend on the values. */
    run_result blank = {.v = &r->s->variants[0]};
    for (int row = -1; row < r->nresults; row++) {
        cctx c = {f, r->s, row < 0};
        run_visitor v = {c_num, c_int, c_str, c_bool, c_workers, c_params, c_facts, c_pct, &c};
        csv_field(f, row < 0 ? "scenario" : r->s->name, true);
        run_result_visit(r, row >= 0 ? &r->results[row] : r->nresults ? &r->results[0] : &blank,
                         &v);
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- the trace ------------------------------------------------------------------ */

/* Seconds from the strategy's start; empty when the event did not happen. */
static void trace_time(FILE *f, double t, double t0)
{
    if (t > 0)
        fprintf(f, ",%.6f", t - t0);
    else
        fputc(',', f);
}

typedef struct trace_row_ctx {
    FILE *f;
    const run_result *res;
} trace_row_ctx;

static void trace_row(void *c, const pool_trace_rec *t, uint32_t index)
{
    trace_row_ctx *x = c;
    FILE *f = x->f;
    const run_result *res = x->res;
    int stage = run_trace_stage(res, t); /* 0: the chain task, or no stage */
    fprintf(f, "%s,%s,%d,%d,%d", res->v->label, pool_task_name(t->task), stage, t->slot,
            (int)t->pid);
    trace_time(f, t->t_submit, res->out.t0);
    trace_time(f, t->t_start, res->out.t0);
    trace_time(f, t->t_end, res->out.t0);
    trace_time(f, t->t_result, res->out.t0);
    trace_time(f, t->t_callback, res->out.t0);
    fprintf(f, ",%llu,%u,%u,%s\n", (unsigned long long)t->job, t->item, index,
            pool_trace_state_name(t->state));
}

/* The rows stream from each result's spool (run_stream.c), so writing
 * them costs no memory per row. */
int rep_trace(const char *path, const run_report *r, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "impl,task,stage,slot,pid,t_submit,t_start,t_end,t_result,t_callback,"
            "job,item,index,state\n");
    bool lost = false;
    for (int i = 0; i < r->nresults; i++) {
        trace_row_ctx c = {f, &r->results[i]};
        run_trace_each(&r->results[i], trace_row, &c);
        lost |= r->results[i].spool_failed;
    }
    if (fclose(f) != 0 || lost) {
        snprintf(err, errlen, "%s: %s", path,
                 lost ? "rows lost: the temporary file of the trace could not be written"
                      : strerror(errno));
        return -1;
    }
    return 0;
}
