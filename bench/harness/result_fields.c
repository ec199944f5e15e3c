/*
 * result_fields.c: the fields of one strategy's result, in the order the
 * reports list them, handed to a visitor (run_visitor, runner.h).
 *
 * One list serves the Lua table r[label] that checks read
 * (runner_checks.c), the JSON object and the CSV row (report.c), so that a
 * field a check can read is a field the reports write, under the same name,
 * and the three cannot drift apart (docs/report-format.md). It calls
 * nothing but the visitor.
 */
#include "runner.h"

void run_result_visit(const run_report *r, const run_result *res, const run_visitor *v)
{
    const strat_outcome *o = &res->out;
    void *c = v->ctx;
    bool dev = res->has_model && res->model_s > 0 && !res->run_failed;
    v->str(c, "impl", res->v->impl->name);
    v->str(c, "label", res->v->label);
    v->num(c, "wall_s", res->wall_s, true);
    v->num(c, "wall_min_s", res->wall_min_s, true);
    v->num(c, "wall_max_s", res->wall_max_s, true);
    v->integer(c, "repeats", r->repeat);
    v->num(c, "model_s", res->model_s, res->has_model);
    v->num(c, "deviation", dev ? res->wall_s / res->model_s - 1 : 0, dev);
    v->num(c, "startup_s", o->startup_s, true);
    v->num(c, "answer_s", o->answer_s, true);
    v->num(c, "stopped_s", o->stopped_s, true);
    v->integer(c, "tasks_run", (long long)o->tasks_run);
    v->integer(c, "tasks_total", (long long)o->tasks_total);
    v->integer(c, "tasks_after_stop", (long long)o->tasks_after_stop);
    v->integer(c, "results", (long long)o->results);
    v->integer(c, "errors", (long long)o->errors);
    v->integer(c, "errors_unobserved", (long long)o->errors_unobserved);
    v->str(c, "first_error", o->first_error[0] ? o->first_error : NULL);
    v->str(c, "note", o->note[0] ? o->note : NULL);
    v->integer(c, "callbacks", (long long)o->callbacks);
    v->integer(c, "callback_pid", o->callback_pid);
    v->integer(c, "callbacks_max_overlap", o->callbacks_max_overlap);
    v->integer(c, "parent_pid", res->parent_pid);
    v->boolean(c, "stopped_early", o->stopped_early);
    v->boolean(c, "run_failed", res->run_failed);
    v->str(c, "interrupted", res->interrupted ? run_interrupt_name(r->interrupted) : NULL);
    v->integer(c, "peak_rss_kb", res->peak_rss_kb);
    v->num(c, "cpu_s", res->cpu_s, true);
    v->integer(c, "messages_sent", (long long)o->stats.messages_sent);
    v->integer(c, "messages_received", (long long)o->stats.messages_received);
    v->integer(c, "workers_started", (long long)o->stats.workers_started);
    v->integer(c, "worker_deaths", (long long)o->stats.worker_deaths);
    v->integer(c, "bytes_sent", (long long)o->stats.bytes_sent);
    v->integer(c, "bytes_received", (long long)o->stats.bytes_received);
    v->pct(c, "queue_wait", &res->queue_wait);
    v->pct(c, "run_time", &res->run_time);
    v->facts(c, "facts", o);
    v->workers(c, "per_worker", res->workers, res->nworkers);
    v->integer(c, "cores", r->cores);
    v->str(c, "start_method", pool_start_method_name(res->start_method));
    /* Here, not beside the label: the CSV's columns before it keep their
     * places, and params stays the last one (plots/ and bench/ read it as $NF). */
    v->str(c, "transport", o->transport[0] ? o->transport : NULL);
    v->params(c, "params", &res->p);
}

